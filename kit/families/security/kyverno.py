"""The same rules as Kyverno ClusterPolicies, plus verifyImages with the cosign keyless identity CI
signs with (https://kyverno.io/docs/writing-policies/verify-images/sigstore/), and a `kyverno test`
file. There is no Kyverno CLI here: kit checks their structure (kit.families.security.checks), it
does not evaluate them.

Every rule matches Pods in the overlays' namespaces only (`match.any[].resources.namespaces`,
https://kyverno.io/docs/writing-policies/match-exclude/): a ClusterPolicy applies "across all
namespaces" (https://kyverno.io/docs/kyverno-policies/), where it would deny the cluster's add-ons
(ingress-nginx, cert-manager, the exporters, Fluent Bit run as root or from other registries). The
rules match kind Pod only, so that Kyverno generates the same rule for Deployments, DaemonSets,
StatefulSets, Jobs and CronJobs ("For rules which match on Pods in addition to other kinds,
auto-generation is not activated", https://kyverno.io/docs/writing-policies/autogen/): a bad
Deployment is denied at apply, not left to time out."""
from __future__ import annotations

import yaml

from kit.families.security.admission import MUTATIONS, mutate
from kit.model import Spec

CONTAINERS = ("containers", "initContainers", "ephemeralContainers")


def pods_in(namespaces: list[str]) -> list[dict]:
    return [{"resources": {"kinds": ["Pod"], "namespaces": list(namespaces)}}]


def _validate(name: str, namespaces: list[str], message: str, pattern: dict | None = None, deny: dict | None = None,
              foreach: list | None = None) -> dict:
    # the per-rule action: spec.validationFailureAction is deprecated since Kyverno 1.13 in favour of
    # rules[].validate.failureAction (kyverno.io/docs/policy-types/cluster-policy/validate)
    validate: dict = {"failureAction": "Enforce", "message": message}
    if pattern is not None:
        validate["pattern"] = pattern
    if deny is not None:
        validate["deny"] = deny
    if foreach is not None:
        validate["foreach"] = foreach
    return {"name": name, "match": {"any": pods_in(namespaces)}, "validate": validate}


def policy(name: str, title: str, rules: list[dict], background: bool = True) -> dict:
    return {"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
            "metadata": {"name": name, "annotations": {"policies.kyverno.io/title": title}},
            "spec": {"background": background, "rules": rules}}


def on_every_container(image_pattern: str) -> dict:
    """A pattern on every container's image, init and ephemeral containers included when present:
    the form of Kyverno's samples restrict-image-registries and disallow-latest-tag
    (kyverno/policies, best-practices/)."""
    entry = [{"image": image_pattern}]
    return {"spec": {"=(ephemeralContainers)": entry, "=(initContainers)": entry, "containers": entry}}


def image_patterns(registries: list[str]) -> str:
    """Kyverno matches the image as the Pod spells it: a Docker Hub image admitted as
    docker.io/library/postgres is spelled postgres:15, so both spellings are listed."""
    out: list[str] = []
    for prefix in registries:
        spellings = [prefix]
        if prefix.startswith("docker.io/library/"):
            spellings.append(prefix.removeprefix("docker.io/library/"))
        elif prefix.startswith("docker.io/") and prefix.count("/") >= 2:
            spellings.append(prefix.removeprefix("docker.io/"))
        for s in spellings:
            host_only = "/" not in s and ("." in s or ":" in s or s == "localhost")
            out += [f"{s}/*"] if host_only else [f"{s}/*", f"{s}:*", f"{s}@*"] if "/" in s else [f"{s}:*", f"{s}@*"]
    return " | ".join(dict.fromkeys(out))


def registry_provider(image: str) -> str:
    """The Kyverno registry credential helper for the image's registry: `imageRegistryCredentials.
    providers` takes default, google, azure, amazon, github (kyverno/kyverno api/kyverno/v1/
    image_verification_types.go, `ImageRegistryCredentials`; the chart enables those helpers in
    `features.registryClient.credentialHelpers`). verifyImages reads the signature from the registry
    with the admission controller's own credentials, not the nodes'."""
    host = image.split("/")[0]
    if ".dkr.ecr." in host and host.endswith(".amazonaws.com"):
        return "amazon"
    if host.endswith(("gcr.io", "-docker.pkg.dev")):
        return "google"
    if host.endswith(".azurecr.io"):
        return "azure"
    return "github" if host == "ghcr.io" else "default"


def policies(spec: Spec, allowed_caps: list[str], registries: list[str], namespaces: list[str],
             images: list[str] = ()) -> list[dict]:
    """`images`: exact add-on images admitted besides the registries (cert-manager's HTTP-01 solver)."""
    sec = spec.option("security")
    ns = namespaces
    image_pattern = " | ".join([image_patterns(registries), *images])
    docs = [
        # Kyverno's built-in restricted profile (https://kyverno.io/docs/writing-policies/validate/#pod-security):
        # non-root, no privilege escalation, capabilities (drop ALL, add only NET_BIND_SERVICE), seccomp,
        # volume types (no hostPath), host namespaces and ports
        policy("pod-security-restricted", "Pod Security Standards: restricted", [{
            "name": "restricted", "match": {"any": pods_in(ns)},
            "validate": {"failureAction": "Enforce",
                         "podSecurity": {"level": "restricted", "version": "latest"}}}]),
        policy("allowed-registries", "images from the declared registries only", [_validate(
            "allowed-registries", ns, "images must come from: " + ", ".join([*registries, *images]),
            pattern=on_every_container(image_pattern))]),
        policy("no-latest-tag", "images name a version", [
            _validate("require-image-tag", ns, "an image tag is required", pattern=on_every_container("*:*")),
            _validate("no-latest-tag", ns, "the mutable tag :latest is not allowed", pattern=on_every_container("!*:latest"))]),
        policy("require-limits", "CPU and memory limits required", [_validate(
            "require-limits", ns, "every container needs CPU and memory limits",
            pattern={"spec": {"containers": [{"resources": {"limits": {"cpu": "?*", "memory": "?*"}}}]}})]),
    ]
    forbidden = list(sec.forbidden_capabilities)
    if forbidden:
        docs.append(policy("forbidden-capabilities", "capabilities the task forbids", [_validate(
            "forbidden-capabilities", ns, "a capability forbidden by security.forbidden_capabilities is added",
            foreach=[{"list": f"request.object.spec.{key}[]", "deny": {"conditions": {"any": [{
                "key": "{{ element.securityContext.capabilities.add[] || `[]` }}", "operator": "AnyIn",
                "value": forbidden}]}}} for key in CONTAINERS])]))
    docs.append(policy("verify-images", "images signed by CI (cosign keyless)", [{
        "name": "verify-signature", "match": {"any": pods_in(ns)},
        # exactly the app's repository (a tag or a digest): a bare `repo*` would also catch a sibling
        # repository such as repo-pgbackrest (the backup image), which CI does not sign
        "verifyImages": [{"failureAction": "Enforce",
                          "imageReferences": [f"{spec.image}:*", f"{spec.image}@*"], "mutateDigest": True,
                          "verifyDigest": True,
                          "required": True,
                          "imageRegistryCredentials": {"providers": [registry_provider(spec.image)]},
                          "attestors": [{"entries": [{"keyless": {
                              "subjectRegExp": sec.subject, "issuer": sec.issuer,
                              "rekor": {"url": "https://rekor.sigstore.dev"}}}]}]}]}], background=False))
    return docs


def files(spec: Spec, pod: dict, folder: str, allowed_caps: list[str], registries: list[str],
          namespaces: list[str], images: list[str] = ()) -> dict[str, str]:
    docs = policies(spec, allowed_caps, registries, namespaces, images)
    out = {f"{folder}/policies.yaml": yaml.safe_dump_all(docs, sort_keys=False, width=120),
           f"{folder}/kustomization.yaml": yaml.safe_dump({
               "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
               "resources": ["policies.yaml"]}, sort_keys=False)}
    expected = {"root-user": ("pod-security-restricted", "restricted"),
                "privilege-escalation": ("pod-security-restricted", "restricted"),
                "host-path": ("pod-security-restricted", "restricted"),
                "added-capability": ("pod-security-restricted", "restricted"),
                "latest-tag": ("no-latest-tag", "no-latest-tag"),
                "foreign-registry": ("allowed-registries", "allowed-registries"),
                "no-limits": ("require-limits", "require-limits")}
    samples = [pod] + [mutate(pod, m.name) for m in MUTATIONS]
    out[f"{folder}/tests/resources.yaml"] = yaml.safe_dump_all(samples, sort_keys=False, width=120)
    results = [{"policy": p["metadata"]["name"], "rule": r["name"], "resources": [pod["metadata"]["name"]],
                "kind": "Pod", "result": "pass"} for p in docs if p["metadata"]["name"] != "verify-images"
               for r in p["spec"]["rules"]]
    results += [{"policy": expected[m.name][0], "rule": expected[m.name][1],
                 "resources": [f"{pod['metadata']['name']}-{m.name}"], "kind": "Pod", "result": "fail"}
                for m in MUTATIONS]
    out[f"{folder}/tests/kyverno-test.yaml"] = (
        "# kyverno test k8s/policies/kyverno/tests (Kyverno's own test format). verify-images is left out:\n"
        "# it needs the registry and Rekor. Generated by kit; not run here (no Kyverno CLI offline).\n" +
        yaml.safe_dump({"apiVersion": "cli.kyverno.io/v1alpha1", "kind": "Test",
                        "metadata": {"name": f"{spec.name}-policies"},
                        "policies": ["../policies.yaml"], "resources": ["resources.yaml"], "results": results},
                       sort_keys=False, width=120))
    return out
