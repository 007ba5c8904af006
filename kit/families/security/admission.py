"""Admission, evaluated: the generated ConstraintTemplates' Rego run by regopy (rego-cpp) over
the Pod each workload of an overlay would create, with each Constraint's parameters, the way
Gatekeeper's validating webhook calls it (input.review.object, input.parameters). The manifests
kit generates must all be admitted; each mutation must be denied by the rule it breaks."""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass

import yaml

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")


@dataclass(frozen=True)
class Mutation:
    name: str
    rule: str           # the Constraint (metadata.name) expected to deny it
    what: str


MUTATIONS = (
    Mutation("root-user", "require-non-root", "runAsUser: 0 and runAsNonRoot: false on the first container"),
    Mutation("latest-tag", "no-latest-tag", "the first container's image tagged :latest"),
    Mutation("foreign-registry", "allowed-registries", "the first container's image from docker.io/attacker"),
    Mutation("no-limits", "require-limits", "the first container's resources.limits removed"),
    Mutation("privilege-escalation", "no-privilege-escalation", "allowPrivilegeEscalation: true"),
    Mutation("host-path", "restricted-volumes", "a hostPath volume of / mounted"),
    Mutation("added-capability", "restricted-capabilities", "capabilities.add: [SYS_ADMIN]"),
)


def pod_of(obj: dict) -> dict | None:
    """The Pod a workload's controller would create from its template (what Gatekeeper admits when
    the Constraints match kind Pod), or the object itself when it is a Pod."""
    if obj.get("kind") == "Pod":
        return obj
    if obj.get("kind") == "CronJob":
        template = (((obj.get("spec") or {}).get("jobTemplate") or {}).get("spec") or {}).get("template")
    elif obj.get("kind") in WORKLOAD_KINDS:
        template = (obj.get("spec") or {}).get("template")
    else:
        return None
    if not template:
        return None
    meta = dict(template.get("metadata") or {})
    meta.setdefault("name", f"{(obj.get('metadata') or {}).get('name', 'pod')}-x")
    meta.setdefault("namespace", (obj.get("metadata") or {}).get("namespace", "default"))
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": copy.deepcopy(template.get("spec") or {})}


def mutate(pod: dict, mutation: str) -> dict:
    """A copy of `pod` breaking one rule."""
    pod = copy.deepcopy(pod)
    spec = pod["spec"]
    first = spec["containers"][0]
    ctx = first.setdefault("securityContext", {})
    if mutation == "root-user":
        ctx.update({"runAsUser": 0, "runAsNonRoot": False})
        spec.setdefault("securityContext", {}).update({"runAsUser": 0, "runAsNonRoot": False})
    elif mutation == "latest-tag":
        first["image"] = first["image"].split("@")[0].rsplit(":", 1)[0] + ":latest" \
            if ":" in first["image"].split("/")[-1] else first["image"] + ":latest"
    elif mutation == "foreign-registry":
        first["image"] = "docker.io/attacker/" + first["image"].split("/")[-1]
    elif mutation == "no-limits":
        first.setdefault("resources", {}).pop("limits", None)
    elif mutation == "privilege-escalation":
        ctx["allowPrivilegeEscalation"] = True
    elif mutation == "host-path":
        spec.setdefault("volumes", []).append({"name": "host-root", "hostPath": {"path": "/"}})
        first.setdefault("volumeMounts", []).append({"name": "host-root", "mountPath": "/host"})
    elif mutation == "added-capability":
        ctx.setdefault("capabilities", {}).setdefault("add", []).append("SYS_ADMIN")
    else:
        raise ValueError(f"no mutation {mutation!r}")
    pod["metadata"] = {**pod["metadata"], "name": f"{pod['metadata'].get('name', 'pod')}-{mutation}"}
    return pod


@dataclass
class Policy:
    """One ConstraintTemplate's Rego with its Constraint's parameters (read from the files on disk)."""
    name: str
    package: str
    rego: str
    parameters: dict


def template_rego(template: dict) -> tuple[str, str, str]:
    """(Rego text, Rego version, where) of a ConstraintTemplate's first target: the `code` entry of
    engine Rego (its source.version, "v0" when absent) or the legacy `rego:` field (always v0)."""
    target = (template.get("spec") or {}).get("targets", [{}])[0]
    for i, code in enumerate(target.get("code") or []):
        if code.get("engine") == "Rego":
            source = code.get("source") or {}
            return source.get("rego", ""), str(source.get("version", "v0")), f"targets[0].code[{i}].source.rego"
    return target.get("rego", ""), "v0", "targets[0].rego"


def wrap(pod: dict, kind: str) -> dict:
    """A workload of `kind` whose pod template is `pod` (what the API server admits before any Pod
    exists): Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, ReplicationController or CronJob."""
    meta = pod.get("metadata") or {}
    template = {"metadata": {"labels": dict(meta.get("labels") or {"app": "x"})}, "spec": copy.deepcopy(pod["spec"])}
    group = {"Job": "batch/v1", "CronJob": "batch/v1", "ReplicationController": "v1"}.get(kind, "apps/v1")
    spec: dict = {"template": template}
    if kind == "CronJob":
        spec = {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": template}}}
    elif kind != "Job":
        spec["selector"] = {"matchLabels": template["metadata"]["labels"]} if kind != "ReplicationController" \
            else dict(template["metadata"]["labels"])
    return {"apiVersion": group, "kind": kind,
            "metadata": {"name": meta.get("name", "x"), "namespace": meta.get("namespace", "default")}, "spec": spec}


def policies_from(templates: list[dict], constraints: list[dict]) -> list[Policy]:
    by_kind = {}
    for t in templates:
        kind = t["spec"]["crd"]["spec"]["names"]["kind"]
        rego = template_rego(t)[0]
        package = rego.split("package", 1)[1].split()[0]
        by_kind[kind] = (package, rego)
    out = []
    for c in constraints:
        package, rego = by_kind[c["kind"]]
        out.append(Policy(c["metadata"]["name"], package, rego, (c.get("spec") or {}).get("parameters") or {}))
    return out


def evaluate(policy: Policy, obj: dict) -> list[str]:
    """The violation messages of one policy for one object (empty: admitted)."""
    from regopy import Interpreter
    interp = Interpreter()
    interp.add_module(policy.name, policy.rego)
    group, _, version = str(obj.get("apiVersion", "v1")).rpartition("/")
    interp.set_input({"review": {"object": obj, "kind": {"group": group, "version": version, "kind": obj.get("kind")},
                                 "operation": "CREATE"}, "parameters": policy.parameters})
    result = interp.query(f"x := data.{policy.package}.violation")
    out = json.loads(str(result)) if result.ok() else {"error": str(result)}
    if "bindings" not in out:
        raise RuntimeError(f"Rego evaluation of {policy.name} failed: {json.dumps(out)[:400]}")
    return sorted(v["msg"] for v in out["bindings"]["x"])


def matrix(policies: list[Policy], objects: dict[str, dict]) -> dict[str, dict[str, list[str]]]:
    """manifest -> policy -> messages (empty list: admitted)."""
    return {name: {p.name: evaluate(p, obj) for p in policies} for name, obj in objects.items()}


def load_docs(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]
