"""Security checks: admission (the generated Rego evaluated with regopy on every overlay and on
mutated Pods, and the gator suite's own cases), the policies' structure (Gatekeeper and Kyverno),
the Falco rules' structure, the secret scan of the deliverables, the source and the site (static);
the SBOM, the image secret scan, hardening in the running container and the vulnerability scan
(sandbox)."""
from __future__ import annotations

import copy
import re
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

from kit.core.context import VerifyContext
from kit.evidence import Evidence
from kit.families.security import admission as adm
from kit.families.security import secrets as sec
from kit.families.security.rego import RULES
from kit.families.security.render import GATEKEEPER, KYVERNO
from kit.model import Spec

FALCO = "security/falco_rules.yaml"
CI_SCAN_JOB = {"github": ".github/workflows/ci.yml, job `image` (step \"Scan\", Trivy)",
               "gitlab": ".gitlab-ci.yml, job `scan` (Trivy)"}


def _ds() -> str:
    from importlib.metadata import version
    return f"detect-secrets {version('detect-secrets')}"


def _regopy() -> str:
    from importlib.metadata import version
    return f"regopy {version('regopy')} (rego-cpp)"


def policies(ctx: VerifyContext) -> list[adm.Policy]:
    templates = [adm.load_docs(ctx.files[f"{GATEKEEPER}/{r.name}/template.yaml"])[0] for r in RULES]
    constraints = [adm.load_docs(ctx.files[f"{GATEKEEPER}/constraints/{r.name}.yaml"])[0] for r in RULES]
    return adm.policies_from(templates, constraints)


def structure(spec: Spec, ctx: VerifyContext) -> Evidence:
    """Gatekeeper: each template's kind matches its name, its Rego compiles (regopy) and declares
    `violation`, each Constraint names a template and gives its parameters. Kyverno: each ClusterPolicy
    has rules that match and do exactly one of validate / verifyImages, in Enforce mode."""
    from regopy import Interpreter
    problems = []
    for rule in RULES:
        t = adm.load_docs(ctx.files[f"{GATEKEEPER}/{rule.name}/template.yaml"])[0]
        c = adm.load_docs(ctx.files[f"{GATEKEEPER}/constraints/{rule.name}.yaml"])[0]
        kind = t["spec"]["crd"]["spec"]["names"]["kind"]
        if t["metadata"]["name"] != kind.lower():
            problems.append(f"{rule.name}: template name {t['metadata']['name']} is not {kind.lower()}")
        if c["kind"] != kind:
            problems.append(f"{rule.name}: the Constraint's kind {c['kind']} has no template")
        rego = adm.template_rego(t)[0]
        interp = Interpreter()
        try:
            interp.add_module(rule.name, rego)
            out = interp.query(f"x := data.{rego.split()[1]}")
            if not out.ok():
                problems.append(f"{rule.name}: the Rego does not compile: {str(out)[:200]}")
        except Exception as exc:
            problems.append(f"{rule.name}: the Rego does not compile: {exc}")
        if "violation contains" not in rego:
            problems.append(f"{rule.name}: no violation rule")
        declared = set((t["spec"]["crd"]["spec"].get("validation") or {}).get("openAPIV3Schema", {}).get("properties", {}))
        given = set((c.get("spec") or {}).get("parameters") or {})
        if declared != given:
            problems.append(f"{rule.name}: parameters {sorted(given)} differ from the schema's {sorted(declared)}")
    kyverno = adm.load_docs(ctx.files[f"{KYVERNO}/policies.yaml"])
    for p in kyverno:
        name = p.get("metadata", {}).get("name", "?")
        if p.get("apiVersion") != "kyverno.io/v1" or p.get("kind") != "ClusterPolicy":
            problems.append(f"kyverno {name}: not a kyverno.io/v1 ClusterPolicy")
        if "validationFailureAction" in (p.get("spec") or {}):
            problems.append(f"kyverno {name}: spec.validationFailureAction is deprecated since Kyverno 1.13; set "
                            "failureAction on each rule (kyverno.io/docs/policy-types/cluster-policy/validate)")
        for r in (p.get("spec") or {}).get("rules") or []:
            acts = [r["validate"].get("failureAction")] if "validate" in r else \
                [v.get("failureAction") for v in r.get("verifyImages") or []]
            if any(a != "Enforce" for a in acts):
                problems.append(f"kyverno {name}/{r.get('name')}: failureAction is not Enforce")
            for v in r.get("verifyImages") or []:
                loose = [ref for ref in v.get("imageReferences") or [] if ref.endswith("*")
                         and not ref.endswith((":*", "@*"))]
                if loose:
                    problems.append(f"kyverno {name}/{r.get('name')}: imageReferences {loose} also match sibling "
                                    "repositories (e.g. the unsigned backup image): end with :* and @*")
            actions = [k for k in ("validate", "verifyImages", "mutate", "generate") if k in r]
            if not r.get("match") or len(actions) != 1:
                problems.append(f"kyverno {name}/{r.get('name')}: needs match and exactly one action, has {actions}")
    verify = [r for p in kyverno for r in p["spec"]["rules"] if "verifyImages" in r]
    keyless = [e["keyless"] for r in verify for v in r["verifyImages"] for a in v["attestors"] for e in a["entries"]]
    sec_opts = spec.option("security")
    if not any(k.get("subjectRegExp") == sec_opts.subject and k.get("issuer") == sec_opts.issuer for k in keyless):
        problems.append("kyverno verify-images does not name the identity CI signs with")
    return Evidence("security.policies.structure", "k8s/policies/", "the admission policies are well formed "
                    "(Gatekeeper templates compile; Kyverno structure only, not evaluated: no Kyverno CLI here)",
                    "failed" if problems else "passed", tool=_regopy(), reason="; ".join(problems),
                    figures={"gatekeeper_templates": len(RULES), "kyverno_policies": len(kyverno),
                             "kyverno_evaluated": False, "identity": sec_opts.subject, "issuer": sec_opts.issuer})


def _app_first(pod: dict, image: str) -> dict:
    """The pod with the app's container first (the mutations change the first container)."""
    containers = pod["spec"]["containers"]
    containers.sort(key=lambda c: 0 if c["image"].startswith(image) else 1)
    return pod


def overlay_objects(spec: Spec, ctx: VerifyContext) -> tuple[dict[str, tuple[dict, dict]], list[str]]:
    """env/Kind/name -> (the workload as the API server admits it, the Pod it creates), for every
    overlay; and the overlays that did not build."""
    from kit.core.k8s import OVERLAYS, build_overlay
    cache = ctx.facts.setdefault("security.overlays", {})
    out, failed = {}, []
    for env in OVERLAYS:
        if f"k8s/overlays/{env}/kustomization.yaml" not in ctx.files:
            continue
        if env not in cache:
            cache[env] = build_overlay(ctx.deliverables, env)
        record, objects = cache[env]
        if not record.passed:
            failed.append(f"{env}: {record.reason}")
        for obj in objects:
            pod = adm.pod_of(obj)
            if pod:
                out[f"{env}/{obj['kind']}/{obj['metadata']['name']}"] = (obj, pod)
    return out, failed


def overlay_pods(spec: Spec, ctx: VerifyContext) -> tuple[dict[str, dict], list[str]]:
    """env/Kind/name -> the Pod it creates, for every overlay; and the overlays that did not build."""
    objects, failed = overlay_objects(spec, ctx)
    return {name: pod for name, (_, pod) in objects.items()}, failed


def admission_overlays(spec: Spec, ctx: VerifyContext) -> Evidence:
    """Each workload is evaluated twice, as Gatekeeper sees it: the workload itself (the Constraints
    match Deployments, StatefulSets, CronJobs...) and the Pod its controller creates."""
    started = time.monotonic()
    objects, failed = overlay_objects(spec, ctx)
    pols = policies(ctx)
    table = {name: {p.name: adm.evaluate(p, obj) + [f"(its Pod) {m}" for m in adm.evaluate(p, pod)] for p in pols}
             for name, (obj, pod) in objects.items()}
    pods = objects
    denied = {m: {p: msgs for p, msgs in row.items() if msgs} for m, row in table.items()}
    denied = {m: row for m, row in denied.items() if row}
    reason = "; ".join(f"{m} denied by {p}: {msgs[0]}" for m, row in denied.items() for p, msgs in row.items())
    if failed:
        reason = "; ".join([f"overlay did not build ({f})" for f in failed] + ([reason] if reason else []))
    return Evidence("security.admission.overlays", "k8s/policies/gatekeeper/", "every overlay's workloads and their "
                    "Pods are admitted by every generated Gatekeeper policy (Rego evaluated with regopy)",
                    "failed" if denied or failed or not pods else "passed", tool=_regopy(),
                    duration_s=round(time.monotonic() - started, 3),
                    reason=reason or ("" if pods else "no workload in any overlay"),
                    figures={"matrix": {m: {p: (msgs[0] if msgs else "admitted") for p, msgs in row.items()}
                                        for m, row in table.items()}, "pods": len(pods), "workloads": len(pods)},
                    fallback="regopy (rego-cpp) evaluates the ConstraintTemplates' Rego as Gatekeeper's OPA would, "
                             "with the Constraints' parameters; Gatekeeper's match (kinds, namespaces) is applied "
                             "by kit: every workload of every overlay and the Pod it creates")


def _matched_kinds(constraint: dict) -> set[str]:
    return {k for entry in ((constraint.get("spec") or {}).get("match") or {}).get("kinds") or []
            for k in entry.get("kinds") or []}


def admission_mutations(spec: Spec, ctx: VerifyContext) -> Evidence:
    """Each mutation of the app's Pod denied by its rule, as a Pod and inside every workload kind its
    Constraint matches (the Rego must read the pod template there). A Constraint that does not match
    a workload kind the overlays ship (Deployment at least) admits a bad one: Gatekeeper then denies
    only its Pods and the rollout times out (Gatekeeper, website/docs/workload-resources.md).
    cert-manager's HTTP-01 solver Pod in the app's namespace must be admitted, the same Pod from
    another quay.io image denied (kit.families.security.addons)."""
    from kit.families.security import addons
    from kit.families.security.render import namespaces
    started = time.monotonic()
    objects, _ = overlay_objects(spec, ctx)
    app_name = next((name for name in sorted(objects) if name.endswith(f"/Deployment/{spec.name}")), None)
    if app_name is None:
        return Evidence("security.admission.mutations", "k8s/policies/gatekeeper/", "mutated Pods are denied",
                        "failed", tool=_regopy(), reason=f"no Deployment {spec.name} in any overlay")
    app = _app_first(copy.deepcopy(objects[app_name][1]), spec.image)
    pols = {p.name: p for p in policies(ctx)}
    kinds = {r.name: _matched_kinds(adm.load_docs(ctx.files[f"{GATEKEEPER}/constraints/{r.name}.yaml"])[0])
             for r in RULES}
    shipped = {name.split("/")[1] for name in objects} | {"Deployment"}
    rows, problems, covered = {}, [], {}
    for rule, matched in kinds.items():
        missing = sorted(shipped - matched) + ([] if "Pod" in matched else ["Pod"])
        if missing:
            problems.append(f"the Constraint {rule} does not match {', '.join(missing)}: such an object breaking "
                            "it is admitted")
    for m in adm.MUTATIONS:
        bad = adm.mutate(app, m.name)
        verdicts = {p.name: adm.evaluate(p, bad) for p in pols.values()}
        rows[m.name] = {p: (msgs[0] if msgs else "admitted") for p, msgs in verdicts.items()}
        if not verdicts.get(m.rule):
            problems.append(f"{m.name} was not denied by {m.rule}")
        covered[m.name] = {}
        for kind in sorted(kinds.get(m.rule, set()) - {"Pod"}):
            msgs = adm.evaluate(pols[m.rule], adm.wrap(bad, kind))
            covered[m.name][kind] = msgs[0] if msgs else "admitted"
            if not msgs:
                problems.append(f"a {kind} with {m.name} was admitted by {m.rule}: its Rego reads no pod template "
                                f"of a {kind}")
        deployment = adm.wrap(bad, "Deployment")
        msgs = adm.evaluate(pols[m.rule], deployment) if m.rule in pols else []
        rows[f"Deployment: {m.name}"] = {m.rule: msgs[0] if msgs else "admitted"}     # its own rule only
    expected = {m.name: m.rule for m in adm.MUTATIONS} | {f"Deployment: {m.name}": m.rule for m in adm.MUTATIONS}
    if addons.uses_http01(spec):
        ns = namespaces(spec)[0]
        for case, pod, want in (("cert-manager HTTP-01 solver", addons.solver_pod(ns), False),
                                ("another quay.io image", addons.solver_pod(
                                    ns, "quay.io/attacker/cert-manager-acmesolver:" + addons.cert_manager_version()), True)):
            verdicts = {p.name: adm.evaluate(p, pod) for p in pols.values()}
            rows[case] = {p: (msgs[0] if msgs else "admitted") for p, msgs in verdicts.items()}
            if not want and any(verdicts.values()):
                problems.append(f"{case} ({pod['spec']['containers'][0]['image']}) was denied: "
                                + next(msgs[0] for msgs in verdicts.values() if msgs))
            if want:
                expected[case] = "allowed-registries"
                if not verdicts.get("allowed-registries"):
                    problems.append(f"{case} ({pod['spec']['containers'][0]['image']}) was not denied by allowed-registries")
    return Evidence("security.admission.mutations", "k8s/policies/gatekeeper/", "each mutation of the app's Pod "
                    "(root user, :latest, foreign registry, no limits, privilege escalation, hostPath, added "
                    "capability) is denied by the rule it breaks, as a Pod and in every workload kind its Constraint "
                    "matches; cert-manager's HTTP-01 solver Pod is admitted, another quay.io image denied",
                    "failed" if problems else "passed",
                    tool=_regopy(), duration_s=round(time.monotonic() - started, 3), reason="; ".join(problems),
                    figures={"matrix": rows, "expected": expected, "workload_kinds": covered,
                             "addon_images": addons.images(spec)})


def gator_suite(spec: Spec, ctx: VerifyContext) -> Evidence:
    """The policies' own test suite (suite.yaml, `gator verify` format), each case evaluated with
    regopy: the assertion `violations: yes|no` must hold."""
    suite = yaml.safe_load(ctx.files[f"{GATEKEEPER}/suite.yaml"])
    problems, cases = [], 0
    for test in suite["tests"]:
        t = yaml.safe_load(ctx.files[f"{GATEKEEPER}/{test['template']}"])
        c = yaml.safe_load(ctx.files[f"{GATEKEEPER}/{test['constraint']}"])
        policy = adm.policies_from([t], [c])[0]
        for case in test["cases"]:
            cases += 1
            msgs = adm.evaluate(policy, yaml.safe_load(ctx.files[f"{GATEKEEPER}/{case['object']}"]))
            want = case["assertions"][0]["violations"]
            if (want == "yes") != bool(msgs):
                problems.append(f"{test['name']} / {case['name']}: expected violations {want}, got "
                                f"{msgs[0] if msgs else 'none'}")
    return Evidence("security.policies.tests", f"{GATEKEEPER}/suite.yaml", "the policies' own test suite (gator "
                    "format) holds, each case evaluated with regopy", "failed" if problems else "passed",
                    tool=_regopy(), reason="; ".join(problems), figures={"cases": cases},
                    fallback="gator is not installed here: kit evaluates each suite case with regopy")


# Rego v1 syntax, found outside comments and strings: the rego.v1 import, or the keywords v0 does
# not have without `import future.keywords` (`if`, `contains` as a rule head, not the builtin
# `contains(...)`, `every`, `some ... in`)
_NOISE = re.compile(r'#[^\n]*|"(?:\\.|[^"\\])*"|`[^`]*`')
_V1 = re.compile(r"^\s*import\s+rego\.v1\b|\bif\b|\bcontains\b(?!\s*\()|\bevery\b|\bsome\s+[\w, ]+\s+in\b", re.M)
_FUTURE = re.compile(r"^\s*import\s+future\.keywords\b", re.M)


def rego_v1_syntax(text: str) -> bool:
    """Whether the Rego needs the v1 parser (or a future.keywords import, which it lacks)."""
    code = _NOISE.sub("", text or "")
    return bool(_V1.search(code)) and not _FUTURE.search(code)


def gatekeeper_rego_problems(name: str, template: dict) -> list[str]:
    """The rule Gatekeeper enforces on a ConstraintTemplate's Rego: the `rego:` field is parsed as
    Rego v0; v1 syntax is accepted only under `code: [{engine: Rego, source: {version: "v1", rego}}]`,
    from Gatekeeper 3.19 ("Using Rego v1 syntax is opt-in, by default only Rego v0 is allowed",
    https://open-policy-agent.github.io/gatekeeper/website/docs/constrainttemplates, "Enable OPA Rego
    v1 syntax in ConstraintTemplates"). regopy takes both, so only this rule catches a v1 text in
    the v0 field before a cluster refuses the template."""
    from kit.families.security.rego import GATEKEEPER_MIN
    problems = []
    for i, target in enumerate((template.get("spec") or {}).get("targets") or []):
        if target.get("rego") and rego_v1_syntax(target["rego"]):
            problems.append(f"{name}: targets[{i}].rego carries Rego v1 syntax, which Gatekeeper parses as v0 and "
                            f"refuses; put it under code[{{engine: Rego, source: {{version: \"v1\", rego}}}}] "
                            f"(Gatekeeper >= {GATEKEEPER_MIN})")
        for j, code in enumerate(target.get("code") or []):
            if code.get("engine") != "Rego":
                continue
            source = code.get("source") or {}
            version = str(source.get("version", "v0"))
            if version not in ("v0", "v1"):
                problems.append(f"{name}: targets[{i}].code[{j}].source.version is {version!r}, not v0 or v1")
            elif version == "v0" and rego_v1_syntax(source.get("rego", "")):
                problems.append(f"{name}: targets[{i}].code[{j}] carries Rego v1 syntax with source.version v0")
        if not target.get("rego") and not any(c.get("engine") == "Rego" for c in target.get("code") or []):
            problems.append(f"{name}: targets[{i}] has no Rego (neither rego: nor code[engine: Rego])")
    return problems


def policy_rules(spec: Spec, ctx: VerifyContext) -> Evidence:
    """What the admission controllers enforce when the policies are applied, which regopy does not:
    Gatekeeper's Rego-version rule (gatekeeper_rego_problems); every Constraint and every Kyverno rule
    scoped to exactly the overlays' namespaces (unscoped, they would deny the cluster's add-ons, which
    run as root or from other registries in their own namespaces); Kyverno rules matching kind Pod
    only, so that Kyverno's auto-gen covers the Pod controllers (https://kyverno.io/docs/writing-policies/autogen/:
    "For rules which match on Pods in addition to other kinds, auto-generation is not activated")."""
    from kit.families.security.render import namespaces
    want = sorted(namespaces(spec))
    problems = []
    for rule in RULES:
        problems += gatekeeper_rego_problems(rule.name, adm.load_docs(ctx.files[f"{GATEKEEPER}/{rule.name}/template.yaml"])[0])
        c = adm.load_docs(ctx.files[f"{GATEKEEPER}/constraints/{rule.name}.yaml"])[0]
        got = ((c.get("spec") or {}).get("match") or {}).get("namespaces")
        if sorted(got or []) != want:
            problems.append(f"the Constraint {rule.name} matches the namespaces {got or 'all'}, not the overlays' {want}")
    for p in adm.load_docs(ctx.files[f"{KYVERNO}/policies.yaml"]):
        for r in (p.get("spec") or {}).get("rules") or []:
            where = f"kyverno {p['metadata']['name']}/{r.get('name')}"
            blocks = [b.get("resources") or {} for key in ("any", "all") for b in (r.get("match") or {}).get(key) or []]
            blocks += [r["match"]["resources"]] if (r.get("match") or {}).get("resources") else []
            for b in blocks or [{}]:
                if sorted(b.get("namespaces") or []) != want:
                    problems.append(f"{where} matches the namespaces {b.get('namespaces') or 'all'}, not the overlays' {want}")
                if b.get("kinds") != ["Pod"]:
                    problems.append(f"{where} matches {b.get('kinds')}: only [Pod] gets Kyverno's auto-gen rules for "
                                    "Deployments, StatefulSets, Jobs and CronJobs")
    for p in adm.load_docs(ctx.files[f"{KYVERNO}/policies.yaml"]):
        for r in (p.get("spec") or {}).get("rules") or []:
            for v in r.get("verifyImages") or []:
                creds = v.get("imageRegistryCredentials") or {}
                if not (creds.get("providers") or creds.get("secrets")):
                    problems.append(f"kyverno {p['metadata']['name']}/{r.get('name')}: verifyImages names no "
                                    "imageRegistryCredentials: Kyverno reads the signature from a private registry "
                                    "with its own credentials and denies every Pod it cannot authenticate for")
    return Evidence("security.policies.rules", "k8s/policies/", "the admission controllers' own rules hold: Gatekeeper "
                    "takes the templates' Rego version; every Constraint and Kyverno rule governs only the overlays' "
                    "namespaces; Kyverno rules match Pods so auto-gen covers the workloads", "failed" if problems
                    else "passed", tool="kit (rules from Gatekeeper's and Kyverno's documentation)",
                    reason="; ".join(problems), figures={"namespaces": want, "gatekeeper_min": _gk_min()})


def _gk_min() -> str:
    from kit.families.security.rego import GATEKEEPER_MIN
    return GATEKEEPER_MIN


def policy_kustomize(spec: Spec, ctx: VerifyContext) -> Evidence:
    """`kubectl kustomize` of every kustomization under k8s/policies/, as `kubectl apply -k` would
    build it: proves each one loads (kustomize's load restrictor refuses a file outside the
    kustomization's folder, such as `../<rule>/constraint.yaml`:
    https://kubectl.docs.kubernetes.io/references/kustomize/cmd/build/, --load-restrictor
    LoadRestrictionsRootOnly by default) and counts the objects each emits."""
    from kit.core.tools import tool_version
    from kit.evidence import excerpt
    folders = sorted(rel.rsplit("/", 1)[0] for rel in ctx.files
                     if rel.startswith("k8s/policies/") and rel.endswith("/kustomization.yaml"))
    started = time.monotonic()
    problems, built = [], {}
    for folder in folders:
        try:
            proc = subprocess.run(["kubectl", "kustomize", folder], cwd=ctx.deliverables, capture_output=True,
                                  text=True, timeout=120)
        except FileNotFoundError:
            return Evidence("security.policies.kustomize", "k8s/policies/", "kubectl kustomize builds every policy "
                            "kustomization", "failed", tool="kubectl", reason="kubectl is not installed; run "
                            "scripts/setup.sh or `kit doctor`")
        if proc.returncode:
            problems.append(f"{folder}: {excerpt(proc.stderr, 3)}")
            continue
        built[folder] = len([d for d in yaml.safe_load_all(proc.stdout) if d])
    return Evidence("security.policies.kustomize", "k8s/policies/", "kubectl kustomize builds every policy "
                    "kustomization (the load restrictor holds)", "failed" if problems or not folders else "passed",
                    tool=f"kubectl {tool_version(['kubectl', 'version', '--client'])} (kustomize)",
                    command=" && ".join(f"kubectl kustomize {f}" for f in folders),
                    duration_s=round(time.monotonic() - started, 3),
                    reason="; ".join(problems) or ("" if folders else "no kustomization under k8s/policies/"),
                    figures={"objects": built})


FALCO_RULE_KEYS = ("rule", "desc", "condition", "output", "priority")
FALCO_PRIORITIES = {"EMERGENCY", "ALERT", "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFORMATIONAL", "DEBUG"}


def dead_outbound_exemptions(rule: str, condition: str) -> list[str]:
    """Exemptions that can never apply: Falco's `outbound` macro keeps only connections to non-private
    addresses (`fd.ip != "0.0.0.0" and fd.net != "127.0.0.0/8" and not fd.snet in (rfc_1918_addresses)`,
    falcosecurity/rules rules/falco_rules.yaml, macro `outbound`), so exempting an in-cluster peer, by a
    bare service name (`fd.sip.name in (postgres)`), a private address, or the cluster DNS port
    (`fd.sport in (53)`: kube-dns has a private ClusterIP), is dead code that reads as a control."""
    if not re.search(r"\boutbound\b", condition):
        return []
    out = []
    for field, values in re.findall(r"fd\.(sip\.name|sip|snet|sport|rport)\s+in\s+\(([^)]*)\)", condition):
        items = [v.strip().strip("'\"") for v in values.split(",") if v.strip()]
        dead = [v for v in items if (field == "sip.name" and "." not in v)
                or (field in ("sip", "snet") and re.match(r"(10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|127\.)", v))
                or (field in ("sport", "rport") and v == "53")]
        if dead:
            out.append(f"rule {rule}: the exemption fd.{field} in ({', '.join(dead)}) never applies: Falco's outbound "
                       "macro already leaves out private (RFC 1918) destinations, where in-cluster peers live")
    return out


# libsinsp's condition lexer reads a field name as [a-zA-Z]+[a-zA-Z0-9_]*(\.[a-zA-Z]+[a-zA-Z0-9_]*)+
# (falcosecurity/libs, userspace/libsinsp/filter/parser.cpp, RGX_FIELDNAME) and an argument in
# brackets: a label key holding "/" (app.kubernetes.io/name) must be k8s.pod.label[app.kubernetes.io/name];
# the dotted spelling stops the field at ".io" and leaves "/name", so the rule does not compile.
FALCO_FIELD_WITH_SLASH = re.compile(r"\b(k8s\.(?:pod|ns)\.labels?)\.([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)")


def falco_field_names(condition: str) -> list[str]:
    return [f"{m.group(0)} does not parse in Falco (libsinsp reads the field as {m.group(1)}."
            f"{m.group(2).split('/')[0]} and stops at '/'); write {m.group(1)}[{m.group(2)}]"
            for m in FALCO_FIELD_WITH_SLASH.finditer(condition)]


def falco(spec: Spec, ctx: VerifyContext) -> Evidence:
    """Falco's rules-file structure (https://falco.org/docs/concepts/rules/basic-elements/): a list
    of rule/macro/list items, each rule with desc, condition, output and a known priority, every
    macro and list it names defined here or in Falco's defaults. Not run: needs Falco in the cluster."""
    items = yaml.safe_load(ctx.files[FALCO]) or []
    problems = []
    for item in items:
        problems += [f"{item.get('rule') or item.get('macro')}: {p}" for p in falco_field_names(item.get("condition", ""))]
    defined = {i.get("macro") or i.get("list") for i in items if "macro" in i or "list" in i}
    defaults = {"spawned_process", "container", "open_write", "outbound", "shell_binaries"}
    for item in items:
        if "rule" in item:
            missing = [k for k in FALCO_RULE_KEYS if k not in item]
            if missing:
                problems.append(f"rule {item['rule']}: missing {', '.join(missing)}")
            if str(item.get("priority", "")).upper() not in FALCO_PRIORITIES:
                problems.append(f"rule {item['rule']}: unknown priority {item.get('priority')}")
            for word in re.findall(r"\b[a-z][a-z0-9_]+\b", item.get("condition", "")):
                if word.endswith(("_container", "_writable_paths")) and word not in defined:
                    problems.append(f"rule {item['rule']}: {word} is not defined")
            used = set(re.findall(r"\b(spawned_process|container|open_write|outbound|shell_binaries)\b",
                                  item.get("condition", "")))
            problems += [f"rule {item['rule']}: {u} unknown" for u in used - defaults - defined]
            problems += dead_outbound_exemptions(item["rule"], item.get("condition", ""))
    rules = [i["rule"] for i in items if "rule" in i]
    return Evidence("security.falco", FALCO, "Falco rules are well formed (needs Falco in the cluster: static only)",
                    "failed" if problems or len(rules) < 3 else "passed", tool="kit",
                    reason="; ".join(problems) or ("" if len(rules) >= 3 else "fewer than 3 rules"),
                    figures={"rules": rules, "needs": "Falco in the cluster"})


IMMUTABLE_TAGS = re.compile(r'image_tag_mutability\s*=\s*"IMMUTABLE"|immutable_tags\s*=\s*true')
SIGN = re.compile(r"cosign sign\b")
GUARDED_SIGN = re.compile(r"cosign verify\b(?:'[^']*'|\"[^\"]*\"|[^|'\"])*\|\|\s*cosign sign\b")     # on the text with newlines folded


def signing(spec: Spec, ctx: VerifyContext) -> Evidence:
    """CI signs each digest once when the registry's tags are immutable: cosign stores a signature
    in the tag `sha256-<digest>.sig` and a second signature rewrites it, which ECR's IMMUTABLE tags
    (and Artifact Registry's immutable_tags) refuse (sigstore/cosign#313, "cosign's model of
    appending signatures won't work"; workaround `cosign verify || cosign sign`, sigstore/cosign#2775).
    The same digest is signed again when a job is re-run or the v* tag run rebuilds main's commit."""
    immutable = sorted(rel for rel, text in ctx.files.items() if rel.endswith(".tf") and IMMUTABLE_TAGS.search(text))
    pipelines = [rel for rel in (".github/workflows/ci.yml", ".gitlab-ci.yml") if rel in ctx.files]
    problems = []
    for rel in pipelines:
        text = ctx.files[rel]
        if immutable and SIGN.search(text) and not GUARDED_SIGN.search(re.sub(r"\s*\n\s*", " ", text)):
            problems.append(f"{rel}: `cosign sign` runs unconditionally but {immutable[0]} makes tags immutable: signing "
                            "an already signed digest again (a re-run) fails on the tag sha256-<digest>.sig; guard it "
                            "with `cosign verify ... || cosign sign`")
        sec = spec.option("security")
        ours = (sec.issuer == "https://token.actions.githubusercontent.com") == (rel == ".github/workflows/ci.yml")
        if ours and GUARDED_SIGN.search(re.sub(r"\s*\n\s*", " ", text)) \
                and f"--certificate-identity-regexp '{sec.subject}'" not in text:
            problems.append(f"{rel}: the sign-once guard checks another identity than admission verifies ({sec.subject}): "
                            "a digest signed by another workflow or ref is not signed again, and admission denies it")
    return Evidence("security.signing", ", ".join(pipelines) or "CI", "CI signs each digest once where the registry's "
                    "tags are immutable (a second cosign signature rewrites sha256-<digest>.sig)",
                    "failed" if problems else "passed", tool="kit (rule from sigstore/cosign#313)",
                    reason="; ".join(problems), figures={"immutable_registry": immutable, "pipelines": pipelines})


THREAT_MODEL = "security/threat-model.md"
# a mitigation that works only once a controller runs in the cluster
NEEDS_CONTROLLER = re.compile(r"k8s/policies|verify-images|allowed-registries|admission|Falco rule", re.I)
INSTALLS_CONTROLLER = re.compile(r"\b(gatekeeper|kyverno)\b[^\n]*\bchart\b|\bchart\b[^\n]*\b(gatekeeper|kyverno)\b", re.I)


def threat_model(spec: Spec, ctx: VerifyContext) -> Evidence:
    """The threat model claims no more than the deliverables do: a row whose mitigation rests on the
    admission policies or on Falco must say **conditional** or **open** unless a generated file
    installs that controller (a Gatekeeper or Kyverno Helm chart; kit installs none)."""
    text = ctx.files.get(THREAT_MODEL, "")
    installed = any(INSTALLS_CONTROLLER.search(t) for rel, t in ctx.files.items() if rel.endswith((".tf", "Chart.yaml")))
    rows = [[c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))] for line in text.splitlines()
            if line.startswith("|") and not line.startswith("|---")][1:]
    problems = []
    for row in rows:
        if len(row) != 6:
            problems.append(f"malformed row: {'|'.join(row)[:80]}")
            continue
        component, stride, threat, mitigation, _, status = row
        if NEEDS_CONTROLLER.search(mitigation) and not installed and status.startswith("mitigated") \
                and "conditional" not in status and "open" not in status:
            problems.append(f"{component} {stride} ({threat}) is marked '{status}', but its mitigation needs an "
                            "admission controller or Falco that nothing kit generates installs")
    return Evidence("security.threat_model", THREAT_MODEL, "the threat model marks what rests on an uninstalled "
                    "controller (admission, Falco) as conditional or open", "failed" if problems or not rows else "passed",
                    tool="kit", reason="; ".join(problems) or ("" if rows else "no STRIDE table"),
                    figures={"threats": len(rows), "open": sum("open" in r[-1] for r in rows),
                             "conditional": sum("conditional" in r[-1] for r in rows)})


def _scan_record(check: str, where: str, title: str, findings: list[sec.Finding], scanned: int) -> Evidence:
    real = [f for f in findings if not f.allowed_by]
    return Evidence(check, where, title, "failed" if real else "passed", tool=_ds(),
                    reason="; ".join(f"{f.where}:{f.line} ({f.detector})" for f in real[:10]),
                    figures={"findings": len(real), "files_scanned": scanned, "found": [f.row() for f in real],
                             "allowlisted": [f.row() for f in findings if f.allowed_by]})


def secrets_files(spec: Spec, ctx: VerifyContext) -> Evidence:
    """Every generated file as written on disk (task values land in them)."""
    paths = [ctx.deliverables / rel for rel in sorted(ctx.files)]
    return _scan_record("security.secrets.files", "every generated file", "no secret in any generated file "
                        "(detect-secrets, every detector)", sec.scan_paths(paths, ctx.deliverables), len(paths))


def dockerignored(rel: str, patterns: list[str]) -> bool:
    """Whether the generated .dockerignore keeps `rel` out of the build context: its patterns in
    order, `!` re-including, a pattern matching a folder excluding what is under it. fnmatch's `*`
    also matches `/` (Docker's does not), so this can only leave out more, never scan less than the
    image gets: the image scan (security.secrets.image) reads what really went in."""
    from fnmatch import fnmatch
    parts = rel.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for raw in patterns:
        negate, pattern = raw.startswith("!"), raw.lstrip("!").strip("/")
        if any(fnmatch(p, pattern) for p in prefixes):
            ignored = not negate
    return ignored


def secrets_source(spec: Spec, ctx: VerifyContext) -> Evidence:
    """The service's source as it enters the image: the generated .dockerignore applied (a
    developer's git-ignored .env beside the source is not output and is not scanned)."""
    patterns = [row.strip() for row in ctx.files.get(".dockerignore", "").splitlines()
                if row.strip() and not row.startswith("#")]
    paths = [p for p in sec.text_files(spec.source)
             if not dockerignored(p.relative_to(spec.source).as_posix(), patterns)]
    record = _scan_record("security.secrets.source", str(spec.source.name) + "/", "no secret in the service's "
                          "source as it enters the image (.dockerignore applied; detect-secrets, every detector)",
                          sec.scan_paths(paths, spec.source), len(paths))
    record.figures["dockerignore_patterns"] = len(patterns)
    return record


def secrets_site(spec: Spec, ctx: VerifyContext) -> Evidence:
    site = Path(spec.output) / "site"
    if not site.is_dir():
        return Evidence("security.secrets.site", "site/", "no secret in the rendered site", "skipped",
                        reason="no site in this output folder yet: the site is built after the notebooks, and "
                               "`kit run` scans it right after publishing (a finding fails the run)")
    paths = sec.text_files(site, skip=("assets",))
    return _scan_record("security.secrets.site", "site/", "no secret in the rendered site (detect-secrets, "
                        "every detector; mkdocs-material's assets left out)", sec.scan_paths(paths, site), len(paths))


def static_checks(spec: Spec, ctx: VerifyContext) -> list[Evidence]:
    return [structure(spec, ctx), policy_rules(spec, ctx), policy_kustomize(spec, ctx), gator_suite(spec, ctx),
            admission_overlays(spec, ctx),
            admission_mutations(spec, ctx), falco(spec, ctx), threat_model(spec, ctx), signing(spec, ctx), secrets_files(spec, ctx), secrets_source(spec, ctx),
            secrets_site(spec, ctx)]


def vulnerabilities(spec: Spec) -> Evidence:
    jobs = [CI_SCAN_JOB[p] for p in spec.option("ci").providers]
    sev = spec.option("security").scan_severities
    return Evidence("security.vulnerabilities", "the built image", f"vulnerability scan failing on {sev}",
                    "skipped", tool="trivy (in CI)",
                    reason=f"no vulnerability database is reachable here; CI runs it: {'; '.join(jobs)}")


def sandbox_checks(spec: Spec, ctx: VerifyContext) -> list[Evidence]:
    from kit.core.session import existing_image
    from kit.families.security import hardening
    from kit.families.security import image as img
    if not existing_image(spec, ctx):
        return [Evidence(i, "the built image", i, "skipped", reason="the image did not build")
                for i in ("security.sbom", "security.secrets.image", "security.hardening")] + [vulnerabilities(spec)]
    records = []
    with tempfile.TemporaryDirectory(prefix="kit-sbom-") as tmp:
        out = Path(tmp) / "sbom.json"
        record = img.syft(ctx.image, out)
        if out.is_file():
            text = out.read_text()
            declared = getattr(spec.facts, "dependencies", None)
            if declared is None:                   # Go: the modules go.mod requires
                declared = getattr(spec.facts, "requires", ())
            required = set(declared) - img.not_for_linux(spec.source / "uv.lock")
            record = img.sbom_record(record, text, sorted(required | set(spec.extra_packages)), spec.stack)
            record.figures["saved_to"] = _save_sbom(spec, text, Path(spec.output) / "evidence")
        records.append(record)
    records.append(img.scan_image(ctx.image, _workdir(ctx)))
    hard = hardening.measure(ctx.image, spec)
    sbom = next((r for r in records if r.check == "security.sbom"), None)
    if sbom and sbom.figures.get("os_packages") is not None:
        hard.figures["os_packages"] = sbom.figures["os_packages"]
    records += [hard, vulnerabilities(spec)]
    return records


def _workdir(ctx: VerifyContext) -> str:
    from kit.sandbox.engine import docker
    return docker("image", "inspect", "-f", "{{.Config.WorkingDir}}", ctx.image, check=False).stdout.strip()


def _save_sbom(spec: Spec, text: str, folder: Path) -> str:
    """The SBOM next to the evidence (data, not a deliverable): evidence/sbom.cdx.json."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "sbom.cdx.json").write_text(text)
        return "evidence/sbom.cdx.json"
    except OSError:
        return ""


def site_gate(spec: Spec) -> None:
    """After `kit run` publishes the site (after the notebooks, so no evidence record can hold it):
    the same scan as security.secrets.site; a finding fails the run naming file and line only."""
    from kit.errors import KitError
    record = secrets_site(spec, None)
    if record.status == "failed":
        raise KitError(f"secret scan of the published site ({record.tool}): {record.reason}; "
                       "the value is not printed. Remove it from the source or task and run again")
