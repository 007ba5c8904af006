"""Security checks: admission (the generated Rego evaluated with regopy on every overlay and on
mutated Pods, and the gator suite's own cases), the policies' structure (Gatekeeper and Kyverno),
the Falco rules' structure, the secret scan of the deliverables, the source and the site (static);
the SBOM, the image secret scan, hardening in the running container and the vulnerability scan
(sandbox)."""
from __future__ import annotations

import re
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
    constraints = [adm.load_docs(ctx.files[f"{GATEKEEPER}/{r.name}/constraint.yaml"])[0] for r in RULES]
    return adm.policies_from(templates, constraints)


def structure(spec: Spec, ctx: VerifyContext) -> Evidence:
    """Gatekeeper: each template's kind matches its name, its Rego compiles (regopy) and declares
    `violation`, each Constraint names a template and gives its parameters. Kyverno: each ClusterPolicy
    has rules that match and do exactly one of validate / verifyImages, in Enforce mode."""
    from regopy import Interpreter
    problems = []
    for rule in RULES:
        t = adm.load_docs(ctx.files[f"{GATEKEEPER}/{rule.name}/template.yaml"])[0]
        c = adm.load_docs(ctx.files[f"{GATEKEEPER}/{rule.name}/constraint.yaml"])[0]
        kind = t["spec"]["crd"]["spec"]["names"]["kind"]
        if t["metadata"]["name"] != kind.lower():
            problems.append(f"{rule.name}: template name {t['metadata']['name']} is not {kind.lower()}")
        if c["kind"] != kind:
            problems.append(f"{rule.name}: the Constraint's kind {c['kind']} has no template")
        rego = t["spec"]["targets"][0]["rego"]
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
        if (p.get("spec") or {}).get("validationFailureAction") != "Enforce":
            problems.append(f"kyverno {name}: validationFailureAction is not Enforce")
        for r in (p.get("spec") or {}).get("rules") or []:
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


def overlay_pods(spec: Spec, ctx: VerifyContext) -> tuple[dict[str, dict], list[str]]:
    """env/Kind/name -> the Pod it creates, for every overlay; and the overlays that did not build."""
    from kit.core.k8s import OVERLAYS, build_overlay
    cache = ctx.facts.setdefault("security.overlays", {})
    pods, failed = {}, []
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
                pods[f"{env}/{obj['kind']}/{obj['metadata']['name']}"] = pod
    return pods, failed


def admission_overlays(spec: Spec, ctx: VerifyContext) -> Evidence:
    started = time.monotonic()
    pods, failed = overlay_pods(spec, ctx)
    table = adm.matrix(policies(ctx), pods)
    denied = {m: {p: msgs for p, msgs in row.items() if msgs} for m, row in table.items()}
    denied = {m: row for m, row in denied.items() if row}
    reason = "; ".join(f"{m} denied by {p}: {msgs[0]}" for m, row in denied.items() for p, msgs in row.items())
    if failed:
        reason = "; ".join([f"overlay did not build ({f})" for f in failed] + ([reason] if reason else []))
    return Evidence("security.admission.overlays", "k8s/policies/gatekeeper/", "every overlay's Pods are admitted "
                    "by every generated Gatekeeper policy (Rego evaluated with regopy)",
                    "failed" if denied or failed or not pods else "passed", tool=_regopy(),
                    duration_s=round(time.monotonic() - started, 3),
                    reason=reason or ("" if pods else "no workload in any overlay"),
                    figures={"matrix": {m: {p: (msgs[0] if msgs else "admitted") for p, msgs in row.items()}
                                        for m, row in table.items()}, "pods": len(pods)},
                    fallback="regopy (rego-cpp) evaluates the ConstraintTemplates' Rego as Gatekeeper's OPA would, "
                             "with the Constraints' parameters; Gatekeeper's match (kinds, namespaces) is applied "
                             "by kit: every workload's Pod in every overlay")


def admission_mutations(spec: Spec, ctx: VerifyContext) -> Evidence:
    started = time.monotonic()
    pods, _ = overlay_pods(spec, ctx)
    app = next((p for name, p in sorted(pods.items()) if name.endswith(f"/Deployment/{spec.name}")), None)
    if app is None:
        return Evidence("security.admission.mutations", "k8s/policies/gatekeeper/", "mutated Pods are denied",
                        "failed", tool=_regopy(), reason=f"no Deployment {spec.name} in any overlay")
    app = _app_first(app, spec.image)
    pols = policies(ctx)
    rows, problems = {}, []
    for m in adm.MUTATIONS:
        verdicts = {p.name: adm.evaluate(p, adm.mutate(app, m.name)) for p in pols}
        rows[m.name] = {p: (msgs[0] if msgs else "admitted") for p, msgs in verdicts.items()}
        if not verdicts.get(m.rule):
            problems.append(f"{m.name} was not denied by {m.rule}")
    return Evidence("security.admission.mutations", "k8s/policies/gatekeeper/", "each mutation of the app's Pod "
                    "(root user, :latest, foreign registry, no limits, privilege escalation, hostPath, added "
                    "capability) is denied by the rule it breaks", "failed" if problems else "passed",
                    tool=_regopy(), duration_s=round(time.monotonic() - started, 3), reason="; ".join(problems),
                    figures={"matrix": rows, "expected": {m.name: m.rule for m in adm.MUTATIONS}})


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


FALCO_RULE_KEYS = ("rule", "desc", "condition", "output", "priority")
FALCO_PRIORITIES = {"EMERGENCY", "ALERT", "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFORMATIONAL", "DEBUG"}


def falco(spec: Spec, ctx: VerifyContext) -> Evidence:
    """Falco's rules-file structure (https://falco.org/docs/concepts/rules/basic-elements/): a list
    of rule/macro/list items, each rule with desc, condition, output and a known priority, every
    macro and list it names defined here or in Falco's defaults. Not run: needs Falco in the cluster."""
    items = yaml.safe_load(ctx.files[FALCO]) or []
    problems = []
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
    rules = [i["rule"] for i in items if "rule" in i]
    return Evidence("security.falco", FALCO, "Falco rules are well formed (needs Falco in the cluster: static only)",
                    "failed" if problems or len(rules) < 3 else "passed", tool="kit",
                    reason="; ".join(problems) or ("" if len(rules) >= 3 else "fewer than 3 rules"),
                    figures={"rules": rules, "needs": "Falco in the cluster"})


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
    return [structure(spec, ctx), gator_suite(spec, ctx), admission_overlays(spec, ctx),
            admission_mutations(spec, ctx), falco(spec, ctx), secrets_files(spec, ctx), secrets_source(spec, ctx),
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
            required = set(spec.facts.dependencies) - img.not_for_linux(spec.source / "uv.lock")
            record = img.sbom_record(record, text, sorted(required | set(spec.extra_packages)))
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
