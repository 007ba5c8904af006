"""Security family: Gatekeeper ConstraintTemplates + Constraints (k8s/policies/gatekeeper/), the same
rules as Kyverno ClusterPolicies with verifyImages (k8s/policies/kyverno/), each engine's own test
files (gator verify suite, kyverno test), Falco rules, a STRIDE threat model and the secret rotation
procedure (security/)."""
from __future__ import annotations

import yaml

from kit.families.security import addons, kyverno
from kit.families.security.admission import MUTATIONS, mutate
from kit.families.security.rego import GATEKEEPER_MIN, MATCH_KINDS, RESTRICTED_VOLUMES, RULES
from kit.model import Spec
from kit.render import render_variant

GATEKEEPER = "k8s/policies/gatekeeper"
KYVERNO = "k8s/policies/kyverno"
RESTRICTED_ADD = ("NET_BIND_SERVICE",)     # the only capability the restricted profile lets a container add
CREATED_BY = "kit (security family)"


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the Rego) as literal blocks, readable in the ConstraintTemplates."""


_Dumper.add_representer(str, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s, style="|" if "\n" in s else None))


def dump(obj) -> str:
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=False, width=120)


def allowed_capabilities(spec: Spec) -> list[str]:
    return [c for c in RESTRICTED_ADD if c not in spec.option("security").forbidden_capabilities]


def registries(spec: Spec) -> list[str]:
    """The image prefixes admitted: the task's (or service.image's registry) plus each dependency's
    own repository, normalised as the admission rule reads images (docker.io/library/postgres)."""
    allowed = list(spec.option("security").registries)
    for dep in spec.dependencies:
        repo = dep.image.split("@")[0]
        last = repo.split("/")[-1]
        repo = repo[: len(repo) - len(last)] + last.split(":")[0]
        if "/" not in repo:
            repo = f"docker.io/library/{repo}"
        elif not any(ch in repo.split("/")[0] for ch in ".:") and repo.split("/")[0] != "localhost":
            repo = f"docker.io/{repo}"
        if repo not in allowed:
            allowed.append(repo)
    return [("docker.io" if r == "docker.io" else r) for r in allowed]


def parameters(spec: Spec) -> dict[str, dict]:
    return {"restricted-capabilities": {"allowed": allowed_capabilities(spec)},
            "restricted-volumes": {"allowed": list(RESTRICTED_VOLUMES)},
            "allowed-registries": {"registries": registries(spec), "images": addons.images(spec)}}


def namespaces(spec: Spec) -> list[str]:
    """The overlays' namespaces (`<kubernetes.namespace>-<env>`, kit.families.kubernetes.render): the
    only namespaces the policies govern, so the cluster's add-ons (ingress-nginx, cert-manager, the
    exporters, Fluent Bit) in theirs are left alone."""
    k = spec.option("kubernetes")
    return [f"{k.namespace}-{env.name}" for env in k.environments]


def template(rule) -> dict:
    params = {p: {"type": "array", "items": {"type": "string"}} for p in rule.parameters}
    crd = {"names": {"kind": rule.kind}}
    if params:
        crd["validation"] = {"openAPIV3Schema": {"type": "object", "properties": params}}
    return {"apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
            "metadata": {"name": rule.kind.lower(), "annotations": {"description": rule.title}},
            "spec": {"crd": {"spec": crd}, "targets": [{
                "target": "admission.k8s.gatekeeper.sh",
                # Rego v1 syntax: only under code[].source with version "v1" (Gatekeeper >= 3.19); the
                # plain `rego:` field is parsed as v0 (kit.families.security.rego)
                "code": [{"engine": "Rego", "source": {"version": "v1", "rego": rule.rego}}]}]}}


def constraint(spec: Spec, rule) -> dict:
    body = {"enforcementAction": "deny",
            "match": {"kinds": [{"apiGroups": list(k["apiGroups"]), "kinds": list(k["kinds"])} for k in MATCH_KINDS], "namespaces": namespaces(spec)}}
    params = parameters(spec).get(rule.name)
    if params:
        body["parameters"] = params
    return {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": rule.kind,
            "metadata": {"name": rule.name}, "spec": body}


def sample_pod(spec: Spec, base_deployment: str) -> dict:
    """The app's Pod as the base Deployment's template creates it, with a release tag on the image:
    the object the policies' own unit tests admit (the overlays' Pods are evaluated by kit at verify)."""
    deployment = next(d for d in yaml.safe_load_all(base_deployment) if d and d.get("kind") == "Deployment")
    template = deployment["spec"]["template"]
    pod_spec = yaml.safe_load(dump(template["spec"]))
    for c in pod_spec.get("containers") or []:
        if c["name"] == spec.name:       # the base names the image by the service; overlays set the repository
            c["image"] = f"{spec.image}:1.0.0"
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"{spec.name}-sample", "namespace": namespaces(spec)[0],
                         "labels": dict((template.get("metadata") or {}).get("labels") or {})},
            "spec": pod_spec}


def addon_samples(spec: Spec, pod: dict) -> dict[str, dict]:
    """sample name -> object, for the add-on pods of the app's namespaces: cert-manager's HTTP-01
    solver (admitted) and the same pod from another quay.io image (denied by allowed-registries)."""
    if not addons.uses_http01(spec):
        return {}
    ns = pod["metadata"]["namespace"]
    return {"cert-manager-solver": addons.solver_pod(ns),
            "foreign-quay-image": addons.solver_pod(ns, "quay.io/attacker/cert-manager-acmesolver:"
                                                        + addons.cert_manager_version())}


def gatekeeper_files(spec: Spec, pod: dict) -> dict[str, str]:
    from kit.families.security.admission import wrap
    files: dict[str, str] = {}
    tests = []
    extra = addon_samples(spec, pod)
    for rule in RULES:
        folder = f"{GATEKEEPER}/{rule.name}"
        files[f"{folder}/template.yaml"] = dump(template(rule))
        files[f"{GATEKEEPER}/constraints/{rule.name}.yaml"] = dump(constraint(spec, rule))
        cases = [{"name": "the generated pod is admitted", "object": "samples/allowed.yaml",
                  "assertions": [{"violations": "no"}]},
                 {"name": "the generated Deployment is admitted", "object": "samples/deployment-allowed.yaml",
                  "assertions": [{"violations": "no"}]}]
        for m in MUTATIONS:
            if m.rule == rule.name:
                cases += [{"name": f"{m.name} is denied", "object": f"samples/{m.name}.yaml",
                           "assertions": [{"violations": "yes"}]},
                          {"name": f"a Deployment with {m.name} is denied", "object": f"samples/deployment-{m.name}.yaml",
                           "assertions": [{"violations": "yes"}]}]
        if rule.name == "allowed-registries" and extra:
            cases += [{"name": "cert-manager's HTTP-01 solver pod is admitted", "object": "samples/cert-manager-solver.yaml",
                       "assertions": [{"violations": "no"}]},
                      {"name": "another quay.io image is denied", "object": "samples/foreign-quay-image.yaml",
                       "assertions": [{"violations": "yes"}]}]
        tests.append({"name": rule.name, "template": f"{rule.name}/template.yaml",
                      "constraint": f"constraints/{rule.name}.yaml", "cases": cases})
    files[f"{GATEKEEPER}/samples/allowed.yaml"] = dump(pod)
    files[f"{GATEKEEPER}/samples/deployment-allowed.yaml"] = dump(wrap(pod, "Deployment"))
    for m in MUTATIONS:
        files[f"{GATEKEEPER}/samples/{m.name}.yaml"] = dump(mutate(pod, m.name))
        files[f"{GATEKEEPER}/samples/deployment-{m.name}.yaml"] = dump(wrap(mutate(pod, m.name), "Deployment"))
    for name, obj in extra.items():
        files[f"{GATEKEEPER}/samples/{name}.yaml"] = dump(obj)
    files[f"{GATEKEEPER}/suite.yaml"] = (
        "# gator verify k8s/policies/gatekeeper (Gatekeeper's own test format): each ConstraintTemplate\n"
        "# admits the generated pod and Deployment and denies each mutation that breaks it, as a Pod and\n"
        "# as a Deployment's pod template. Needs Gatekeeper/gator >= " + GATEKEEPER_MIN + " (Rego v1). Generated by kit.\n" + dump(
            {"apiVersion": "test.gatekeeper.sh/v1alpha1", "kind": "Suite", "metadata": {"name": f"{spec.name}-policies"},
             "tests": tests}))
    files[f"{GATEKEEPER}/kustomization.yaml"] = dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [f"{r.name}/template.yaml" for r in RULES]})
    files[f"{GATEKEEPER}/constraints/kustomization.yaml"] = dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [f"{r.name}.yaml" for r in RULES]})
    return files


def render_security(spec: Spec) -> dict[str, str]:
    from kit.families.kubernetes.render import render_kubernetes
    sec = spec.option("security")
    base = render_kubernetes(spec)["k8s/base/deployment.yaml"]
    pod = sample_pod(spec, base)
    files = gatekeeper_files(spec, pod)
    files.update(kyverno.files(spec, pod, KYVERNO, allowed_capabilities(spec), registries(spec), namespaces(spec),
                              addons.images(spec)))
    files.update(render_variant("security", "default", {
        "name": spec.name, "port": spec.port, "engine": sec.engine, "severity": sec.severity,
        "scan_severities": sec.scan_severities, "subject": sec.subject, "issuer": sec.issuer,
        "identity_source": sec.identity_source, "image": spec.image, "registries": registries(spec),
        "secrets": list(spec.secrets), "dependencies": [d.name for d in spec.dependencies],
        "namespace": spec.option("kubernetes").namespace, "rules": [(r.name, r.title) for r in RULES],
        "mutations": [(m.name, m.rule, m.what) for m in MUTATIONS],
        "provider": spec.option("cloud").provider, "writable": ["/tmp"], "gatekeeper_min": GATEKEEPER_MIN,
        "namespaces": namespaces(spec), "addon_images": addons.images(spec),
        "kyverno_provider": kyverno.registry_provider(spec.image),
    }))
    return files


def work_notes(spec: Spec) -> list[str]:
    sec = spec.option("security")
    return [
        f"- Admission: {len(RULES)} Gatekeeper ConstraintTemplates + Constraints (`{GATEKEEPER}/`, restricted Pod "
        "Security profile, registry allowlist, no :latest, limits required) evaluated by kit with regopy on every "
        "overlay's Pods and on mutated Pods; the same rules as Kyverno ClusterPolicies with `verifyImages` "
        f"(`{KYVERNO}/`, structure-checked only: no Kyverno CLI here). Engine chosen: {sec.engine}.",
        f"- Signatures: the cluster admits only images signed by `{sec.subject}` (issuer `{sec.issuer}`; "
        f"{sec.identity_source}). CI's vulnerability scan fails on {sec.scan_severities}.",
        "- Evidence on every run: CycloneDX SBOM of the built image (syft), secret scan of the deliverables, the "
        "site and the image's layers and history (detect-secrets), hardening measured in the running container; "
        "the vulnerability scan runs in CI only (no database here) and is recorded as skipped.",
        "- `security/falco_rules.yaml` needs Falco in the cluster (static only here); `security/threat-model.md` "
        "and `security/secrets-rotation.md` document the threats and the rotation procedure.",
    ]
