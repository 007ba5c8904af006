"""prometheus-operator objects checked against the CRD schemas kit ships
(kit/families/observability/crds/, see its README), and the plain Kubernetes objects of k8s/monitoring/
(the base's Fluent Bit, each environment overlay's exporters)
against Kubernetes' own schemas (kubernetes-validate --strict)."""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from kit.evidence import Evidence

CRD_DIR = Path(__file__).resolve().parent / "crds"
CRD_KINDS = ("ExternalSecret",)      # not in kubernetes-validate's schemas (external-secrets.io)
CRD_FILES = {"ServiceMonitor": ("k8s/monitoring/base/servicemonitor.yaml", "k8s/monitoring/base/servicemonitor-exporters.yaml"),
             "PrometheusRule": ("k8s/monitoring/base/prometheusrule.yaml",)}


def schema(kind: str) -> dict:
    return json.loads((CRD_DIR / f"{kind.lower()}.schema.json").read_text())


def validate_crd_object(kind: str, text: str) -> list[str]:
    from jsonschema import Draft202012Validator
    problems = []
    for doc in (d for d in yaml.safe_load_all(text) if d):
        if doc.get("kind") != kind:
            problems.append(f"expected kind {kind}, got {doc.get('kind')}")
            continue
        for err in sorted(Draft202012Validator(schema(kind)).iter_errors(doc), key=lambda e: list(e.path)):
            where = ".".join(str(p) for p in err.path) or "(root)"
            problems.append(f"{where}: {err.message[:200]}")
    return problems


def crd_checks(files: dict[str, str]) -> list[Evidence]:
    records = []
    for kind, rels in CRD_FILES.items():
        rels = [rel for rel in rels if rel in files]
        problems = [f"{rel}: {p}" if len(rels) > 1 else p for rel in rels for p in validate_crd_object(kind, files[rel])]
        records.append(Evidence(f"observability.crd.{kind.lower()}", ", ".join(rels),
                                f"{kind} validates against the monitoring.coreos.com/v1 schema kit ships",
                                "failed" if problems else "passed", tool="kit (jsonschema, kit/families/observability/crds)",
                                reason="; ".join(problems[:5]), figures={"schema": f"{kind.lower()}.schema.json"}))
    return records


def kubernetes_validate(files: dict[str, str]) -> Evidence:
    """The DaemonSet, its RBAC and ConfigMap, and the exporters' Deployments, Services and
    NetworkPolicies against Kubernetes' schemas; a warning (unknown kind, removed API) counts as a
    failure. CRD kinds (the exporters' ExternalSecret) are left out and listed."""
    import tempfile

    from kit.core.tools import tool_version, venv_tool
    from kit.evidence import run_tool
    tool = venv_tool("kubernetes-validate")
    from kit.families.observability.namespaces import OVERLAYS, overlay_envs
    rels = [rel for rel in ("k8s/monitoring/base/fluent-bit.yaml",
                            *(f"{OVERLAYS}/{env}/exporters.yaml" for env in overlay_envs(files))) if rel in files]
    with tempfile.TemporaryDirectory(prefix="kit-k8s-") as tmp:
        paths, crds = [], []
        for rel in rels:
            docs = [d for d in yaml.safe_load_all(files[rel]) if d]
            crds += [f"{d['kind']}/{d['metadata']['name']}" for d in docs if d.get("kind") in CRD_KINDS]
            path = Path(tmp) / rel.replace("/", "__")      # each overlay has an exporters.yaml
            path.write_text(yaml.safe_dump_all([d for d in docs if d.get("kind") not in CRD_KINDS], sort_keys=False))
            paths.append(str(path))
        record = run_tool("observability.k8s_schema", ", ".join(rels), "the Fluent Bit DaemonSet, RBAC and "
                          "ConfigMap and the exporters validate against Kubernetes' schemas (strict)",
                          [tool, "--strict", *paths], tool=f"kubernetes-validate {tool_version([tool, '--version'])}")
        for path, rel in zip(paths, rels, strict=True):
            record.command = record.command.replace(path, rel)
    record.figures["crd_kinds_not_validated"] = crds
    if record.passed and "warn" in record.log.lower():
        record.status, record.reason = "failed", "kubernetes-validate warned (unknown kind or removed API)"
    return record
