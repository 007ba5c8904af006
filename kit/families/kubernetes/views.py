"""What notebook 30_kubernetes shows: the built objects, how they connect, the pod timeline."""
from __future__ import annotations

from pathlib import Path

from kit.core.k8s import matches, name_of, pod_specs
from kit.errors import KitError
from kit.evidence import Evidence
from kit.families.kubernetes.rules import key_settings
from kit.model import Spec


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


GROUPS = {"Ingress": "entry", "ExternalSecret": "entry", "Service": "routing", "HorizontalPodAutoscaler": "routing",
          "PodDisruptionBudget": "routing", "ConfigMap": "config", "Secret": "config", "Deployment": "workloads",
          "CronJob": "workloads", "StatefulSet": "data", "NetworkPolicy": "policy"}
COLOURS = {"routes": "#1565c0", "selects": "#2e7d32", "scales": "#6a1b9a", "env": "#ef6c00", "mounts": "#c62828",
           "creates": "#455a64"}


def diagram_dot(objects: list[dict], title: str) -> str:
    """The objects and their references as a Graphviz graph, laid out left to right."""
    from kit.nbview import dot_quote as q
    names = [f"{o['kind']}/{name_of(o)}" for o in objects if o["kind"] in GROUPS]
    links = edges(objects)
    names += [src for src, _dst, _rel in links if src.startswith("Secret/") and src not in names]
    ids = {n: f"n{i}" for i, n in enumerate(names)}
    lines = ["digraph k8s {", f"  label={q(title)}; labelloc=t; rankdir=LR; fontname=Helvetica;",
             '  node [shape=box, style="rounded,filled", fillcolor="#eceff1", fontname=Helvetica, fontsize=9];',
             "  edge [fontname=Helvetica, fontsize=8];"]
    for n in names:
        kind, name = n.split("/", 1)
        lines.append(f"  {ids[n]} [label={q(kind + chr(10) + name)}];")
    for src, dst, rel in links:
        if src in ids and dst in ids:
            lines.append(f"  {ids[src]} -> {ids[dst]} [label={q(rel)}, color={q(COLOURS[rel])}, "
                         f"fontcolor={q(COLOURS[rel])}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def diagram(objects: list[dict], title: str):
    """The objects and how they reference each other, laid out by Graphviz (an SVG to display)."""
    from IPython.display import SVG

    from kit.nbview import graphviz_svg
    return SVG(graphviz_svg(diagram_dot(objects, title)))


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
