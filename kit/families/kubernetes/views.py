"""What notebook 30_kubernetes shows: the built objects, how they connect, the pod timeline."""
from __future__ import annotations

from pathlib import Path

from kit.core.k8s import matches, name_of, pod_specs
from kit.errors import KitError
from kit.evidence import Evidence
from kit.families.kubernetes.rules import key_settings
from kit.model import Spec

COLUMNS = {"Ingress": 0, "Service": 1, "HorizontalPodAutoscaler": 1, "PodDisruptionBudget": 1,
           "Deployment": 2, "StatefulSet": 3, "CronJob": 2, "ConfigMap": 1, "Secret": 1,
           "ExternalSecret": 0, "NetworkPolicy": 4}


def built(spec: Spec, overlay: str = "dev") -> list[dict]:
    from kit.core.k8s import build_overlay
    record, objects = build_overlay(spec.output, overlay)
    if not record.passed:
        raise KitError(f"kubectl kustomize k8s/overlays/{overlay} failed: {record.reason}\n{record.log}")
    return objects


def object_rows(objects: list[dict]) -> list[dict]:
    return [{"kind": o["kind"], "name": name_of(o), "key settings": key_settings(o)} for o in objects]


def edges(objects: list[dict]) -> list[tuple[str, str, str]]:
    """(from, to, relation) between objects, read from their references and selectors."""
    def node(o: dict) -> str:
        return f"{o['kind']}/{name_of(o)}"
    workloads = [(f"{where}", meta.get("labels", {})) for where, meta, _ in pod_specs(objects)]
    out = []
    for o in objects:
        kind, spec = o["kind"], o.get("spec", {})
        sel = {}
        if kind == "Ingress":
            for rule in spec.get("rules", []):
                for path in rule.get("http", {}).get("paths", []):
                    out.append((node(o), f"Service/{path['backend']['service']['name']}", "routes"))
        elif kind == "Service":
            sel = spec.get("selector", {})
        elif kind == "PodDisruptionBudget":
            sel = spec.get("selector", {}).get("matchLabels", {})
        elif kind == "NetworkPolicy":
            sel = spec.get("podSelector", {}).get("matchLabels", {})
        elif kind == "HorizontalPodAutoscaler":
            ref = spec["scaleTargetRef"]
            out.append((node(o), f"{ref['kind']}/{ref['name']}", "scales"))
        elif kind == "ExternalSecret":
            out.append((node(o), f"Secret/{spec.get('target', {}).get('name') or name_of(o)}", "creates"))
            continue
        elif kind in ("ConfigMap", "Secret"):
            continue
        out += [(node(o), where, "selects") for where, labels in workloads if matches(sel, labels)]
    for where, _meta, pod in pod_specs(objects):
        for c in pod.get("containers", []):
            out += [(f"ConfigMap/{s['configMapRef']['name']}", where, "env")
                    for s in c.get("envFrom", []) if "configMapRef" in s]
        for v in pod.get("volumes", []):
            if "secret" in v:
                out.append((f"Secret/{v['secret']['secretName']}", where, "mounts"))
    return out


def diagram(objects: list[dict], title: str):
    """Objects in columns (entry, routing and policy, workloads, data), arrows for references."""
    import matplotlib.pyplot as plt
    shown = [o for o in objects if o["kind"] in COLUMNS]
    names = [f"{o['kind']}/{name_of(o)}" for o in shown]
    for src, _dst, _rel in edges(objects):             # a Secret made by an ExternalSecret
        if src not in names and src.startswith("Secret/"):
            names.append(src)
    cols: dict[int, list[str]] = {}
    for n in names:
        cols.setdefault(COLUMNS.get(n.split("/")[0], 1), []).append(n)
    pos = {n: (c * 3.2, -i * 1.0) for c, col in cols.items() for i, n in enumerate(col)}
    height = max(len(c) for c in cols.values())
    fig, ax = plt.subplots(figsize=(13, max(3.0, 0.55 * height + 1)))
    colours = {"routes": "#1565c0", "selects": "#2e7d32", "scales": "#6a1b9a", "env": "#ef6c00", "mounts": "#c62828",
               "creates": "#455a64"}
    for src, dst, rel in edges(objects):
        if src in pos and dst in pos:
            (x1, y1), (x2, y2) = pos[src], pos[dst]
            start, end = ((x1 + 2.3, x2 - 0.05) if x2 > x1 else (x1 - 0.05, x2 + 2.3))
            ax.annotate("", xy=(end, y2), xytext=(start, y1),
                        arrowprops={"arrowstyle": "->", "color": colours[rel], "lw": 1, "alpha": 0.7})
    for n, (x, y) in pos.items():
        kind, name = n.split("/", 1)
        ax.text(x, y, f"{kind}\n{name}", fontsize=7, va="center", ha="left",
                bbox={"boxstyle": "round", "fc": "#eceff1", "ec": "#546e7a"})
    for rel, colour in colours.items():
        ax.plot([], [], color=colour, label=rel)
    ax.legend(loc="lower right", fontsize=7)
    ax.set_xlim(-0.3, max(pos.values())[0] + 3)
    ax.set_ylim(-height, 1)
    ax.axis("off")
    ax.set_title(title)
    fig.tight_layout()
    plt.close(fig)
    return fig


def pod_timeline(records: list[Evidence]):
    """Each probe of the pod sandbox on a time axis: startup, then readiness and liveness."""
    import matplotlib.pyplot as plt
    timeline = next((r.figures["timeline"] for r in records if "timeline" in r.figures), [])
    if not timeline:
        return None
    rows = ["startupProbe", "readinessProbe", "livenessProbe"]
    fig, ax = plt.subplots(figsize=(9, 2.4))
    for entry in timeline:
        ax.scatter(entry["t"], rows.index(entry["probe"]), marker="o" if entry["ok"] else "x", s=60,
                   color="#2e7d32" if entry["ok"] else "#c62828")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("seconds since the container started")
    ax.set_title("Pod sandbox probes (o passed, x failed)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    plt.close(fig)
    return fig


def prerequisites(spec: Spec) -> str:
    text = (Path(spec.output) / "k8s" / "README.md").read_text()
    return text.split("## Prerequisites in the cluster", 1)[1].split("##", 1)[0].strip()
