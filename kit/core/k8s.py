"""The built Kubernetes objects every family reads: `kubectl kustomize` of an overlay, run once
per verification (cached on the context), and small helpers over the objects."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

import yaml

from kit.core.tools import tool_version
from kit.evidence import Evidence, excerpt

OVERLAYS = ("dev", "staging", "prod")
WORKLOADS = ("Deployment", "StatefulSet")


def build_overlay(deliverables: Path, env: str) -> tuple[Evidence, list[dict]]:
    """`kubectl kustomize k8s/overlays/ENV`, run once: its evidence and the objects it built."""
    argv = ["kubectl", "kustomize", f"k8s/overlays/{env}"]
    record = Evidence(f"kubernetes.kustomize.{env}", f"k8s/overlays/{env}",
                      f"kubectl kustomize builds the {env} overlay", "failed",
                      tool=f"kubectl {tool_version(['kubectl', 'version', '--client'])} (kustomize)",
                      command=" ".join(argv))
    start = time.monotonic()
    try:
        proc = subprocess.run(argv, cwd=deliverables, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        record.reason = "kubectl is not installed; run scripts/setup.sh or `kit doctor`"
        return record, []
    record.duration_s = round(time.monotonic() - start, 3)
    if proc.returncode:
        record.reason, record.log = f"exit code {proc.returncode}", excerpt(proc.stderr)
        return record, []
    objects = [d for d in yaml.safe_load_all(proc.stdout) if d]
    record.status = "passed"
    record.figures = {"objects": len(objects), "kinds": len({d["kind"] for d in objects})}
    return record, objects


def name_of(obj: dict) -> str:
    return obj.get("metadata", {}).get("name", "")


def _of(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o.get("kind") == kind]


def pod_specs(objects: list[dict]) -> list[tuple[str, dict, dict]]:
    """(where, pod metadata, pod spec) of every workload, CronJobs included."""
    out = []
    for obj in objects:
        if obj.get("kind") in WORKLOADS:
            tpl = obj["spec"]["template"]
        elif obj.get("kind") == "CronJob":
            tpl = obj["spec"]["jobTemplate"]["spec"]["template"]
        else:
            continue
        out.append((f"{obj['kind']}/{name_of(obj)}", tpl.get("metadata", {}), tpl.get("spec", {})))
    return out


def matches(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def container_port(container: dict, port) -> int | None:
    for entry in container.get("ports", []):
        if port in (entry.get("name"), entry.get("containerPort")):
            return entry["containerPort"]
    return None
