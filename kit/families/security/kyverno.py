"""The same rules as Kyverno ClusterPolicies, plus verifyImages with the cosign keyless identity CI
signs with (https://kyverno.io/docs/writing-policies/verify-images/sigstore/), and a `kyverno test`
file. There is no Kyverno CLI here: kit checks their structure (kit.families.security.checks), it
does not evaluate them."""
from __future__ import annotations

import yaml

from kit.families.security.admission import MUTATIONS, mutate
from kit.model import Spec

POD = [{"resources": {"kinds": ["Pod"]}}]
CONTAINERS = ("containers", "initContainers", "ephemeralContainers")


def _validate(name: str, message: str, pattern: dict | None = None, deny: dict | None = None,
              foreach: list | None = None) -> dict:
    validate: dict = {"message": message}
    if pattern is not None:
        validate["pattern"] = pattern
    if deny is not None:
        validate["deny"] = deny
    if foreach is not None:
        validate["foreach"] = foreach
    return {"name": name, "match": {"any": POD}, "validate": validate}


def policy(name: str, title: str, rules: list[dict], background: bool = True) -> dict:
    return {"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
            "metadata": {"name": name, "annotations": {"policies.kyverno.io/title": title}},
            "spec": {"validationFailureAction": "Enforce", "background": background, "rules": rules}}


def each_container(name: str, message: str, deny: dict) -> dict:
    return _validate(name, message, foreach=[{"list": f"request.object.spec.{key}[]", "deny": deny}
                                             for key in CONTAINERS])


def policies(spec: Spec, allowed_caps: list[str], registries: list[str]) -> list[dict]:
    sec = spec.option("security")
    return [
        # Kyverno's built-in restricted profile (https://kyverno.io/docs/writing-policies/validate/#pod-security)
        policy("pod-security-restricted", "Pod Security Standards: restricted", [{
            "name": "restricted", "match": {"any": POD},
            "validate": {"podSecurity": {"level": "restricted", "version": "latest"}}}]),
        policy("allowed-registries", "images from the declared registries only", [each_container(
            "allowed-registries", "the image {{ element.image }} is not from an allowed registry",
            {"conditions": {"all": [{"key": "{{ images.containers.\"{{element.name}}\".registry }}", "operator":
                                     "AnyNotIn", "value": sorted({r.split("/")[0] for r in registries})}]}})]),
        policy("no-latest-tag", "images name a version", [each_container(
            "no-latest-tag", "container {{ element.name }} uses :latest or no tag",
            {"conditions": {"any": [{"key": "{{ element.image }}", "operator": "Equals", "value": "*:latest"},
                                    {"key": "{{ contains(element.image, ':') }}", "operator": "Equals",
                                     "value": False}]}})]),
        policy("require-limits", "CPU and memory limits required", [_validate(
            "require-limits", "every container needs CPU and memory limits",
            pattern={"spec": {"containers": [{"resources": {"limits": {"cpu": "?*", "memory": "?*"}}}]}})]),
        policy("restricted-capabilities", "capabilities: only the allowed ones added", [each_container(
            "restricted-capabilities", "container {{ element.name }} adds a capability that is not allowed",
            {"conditions": {"any": [{"key": "{{ element.securityContext.capabilities.add[] || `[]` }}",
                                     "operator": "AnyNotIn", "value": allowed_caps}]}})]),
        policy("verify-images", "images signed by CI (cosign keyless)", [{
            "name": "verify-signature", "match": {"any": POD},
            "verifyImages": [{"imageReferences": [f"{spec.image}*"], "mutateDigest": True, "verifyDigest": True,
                              "required": True, "attestors": [{"entries": [{"keyless": {
                                  "subjectRegExp": sec.subject, "issuer": sec.issuer,
                                  "rekor": {"url": "https://rekor.sigstore.dev"}}}]}]}]}], background=False),
    ]


def files(spec: Spec, pod: dict, folder: str, allowed_caps: list[str], registries: list[str]) -> dict[str, str]:
    docs = policies(spec, allowed_caps, registries)
    out = {f"{folder}/policies.yaml": yaml.safe_dump_all(docs, sort_keys=False, width=120),
           f"{folder}/kustomization.yaml": yaml.safe_dump({
               "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
               "resources": ["policies.yaml"]}, sort_keys=False)}
    expected = {"root-user": "pod-security-restricted", "privilege-escalation": "pod-security-restricted",
                "host-path": "pod-security-restricted", "added-capability": "restricted-capabilities",
                "latest-tag": "no-latest-tag", "foreign-registry": "allowed-registries", "no-limits": "require-limits"}
    rule_of = {p["metadata"]["name"]: p["spec"]["rules"][0]["name"] for p in docs}
    samples = [pod] + [mutate(pod, m.name) for m in MUTATIONS]
    out[f"{folder}/tests/resources.yaml"] = yaml.safe_dump_all(samples, sort_keys=False, width=120)
    results = [{"policy": p, "rule": rule_of[p], "resources": [pod["metadata"]["name"]], "kind": "Pod",
                "result": "pass"} for p in rule_of if p != "verify-images"]
    results += [{"policy": expected[m.name], "rule": rule_of[expected[m.name]],
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
