"""What the 75_scaling notebook shows from the scaling family's evidence: views only."""
from __future__ import annotations

from kit.evidence import Evidence


def record(records: list[Evidence], check: str) -> Evidence | None:
    return next((r for r in records if r.check == check), None)


def step_rows(records: list[Evidence]) -> list[dict]:
    found = record(records, "scaling.loadtest")
    if not found or "steps" not in found.figures:
        return []
    keys = ("offered_rps", "achieved_rps", "p50_ms", "p95_ms", "p99_ms", "error_rate", "app_cpu",
            "app_memory_mib", "generator_cpu", "holds", "why")
    return [{k: s[k] for k in keys} for s in found.figures["steps"]]


def sizing_rows(records: list[Evidence]) -> list[dict]:
    found = record(records, "scaling.sizing")
    if not found or "derived" not in found.figures:      # skipped: nothing was measured
        return []
    derived, formulas, have = found.figures["derived"], found.figures["formulas"], found.figures["generated"]
    names = {"min_replicas": "minReplicas", "max_replicas": "maxReplicas"}
    return [{"figure": k, "from the measurement": v, "formula": formulas[k],
             "in the generated files": have.get(names.get(k, k), "")} for k, v in derived.items()]


def latency_chart(records: list[Evidence]):
    """p50/p95/p99 against the achieved rate, with the latency threshold as a line."""
    import matplotlib.pyplot as plt
    found = record(records, "scaling.loadtest")
    rows = step_rows(records)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    x = [r["achieved_rps"] for r in rows]
    for key in ("p50_ms", "p95_ms", "p99_ms"):
        ax.plot(x, [r[key] for r in rows], marker="o", label=key.replace("_ms", ""))
    goal = found.figures["objective"]
    ax.axhline(goal["threshold_ms"], color="#c62828", linestyle="--",
               label=f"objective: {goal['objective']:g} % within {goal['threshold_ms']} ms")
    ax.axvline(found.figures["capacity_rps"], color="#2e7d32", linestyle=":", label="per-pod capacity")
    ax.set_xlabel("achieved requests per second (one pod)")
    ax.set_ylabel("latency, ms")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title("Latency against load")
    fig.tight_layout()
    plt.close(fig)
    return fig


def cpu_chart(records: list[Evidence]):
    import matplotlib.pyplot as plt
    found = record(records, "scaling.loadtest")
    rows = step_rows(records)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    x = [r["offered_rps"] for r in rows]
    ax.plot(x, [r["app_cpu"] for r in rows], marker="o", label="app (Docker stats)")
    ax.plot(x, [r["generator_cpu"] for r in rows], marker="s", label="load generator (Locust)")
    ax.axhline(found.figures["cpu_limit"], color="#555", linestyle="--", label="app CPU limit")
    ax.set_xlabel("offered requests per second")
    ax.set_ylabel("cores")
    ax.legend(fontsize=8)
    ax.set_title("CPU per step")
    fig.tight_layout()
    plt.close(fig)
    return fig


def simulation_chart(records: list[Evidence]):
    import matplotlib.pyplot as plt
    found = record(records, "scaling.simulation")
    if not found or found.status == "skipped" or "t_s" not in found.figures:
        return None
    f = found.figures
    hours = [t / 3600 for t in f["t_s"]]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    top.plot(hours, f["demand"], label="demand (rps)")
    top.plot(hours, f["capacity"], label="ready pods x capacity (rps)")
    for start, end, _ in f["lag"]:
        top.axvspan(start / 3600, end / 3600, color="#c62828", alpha=0.3)
    top.legend(fontsize=8)
    top.set_ylabel("rps")
    top.set_title("HPA replayed over a day (red: capacity lags demand)")
    bottom.step(hours, f["replicas"], where="post", label="HPA replicas")
    bottom.step(hours, f["ready"], where="post", label="ready pods")
    bottom.set_ylabel("pods")
    bottom.set_xlabel("hour of the day")
    bottom.legend(fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig


def scaleout_rows(records: list[Evidence]) -> list[dict]:
    found = record(records, "scaling.scaleout")
    if not found or "by_replicas" not in found.figures:
        return []
    rows = [{"replicas": int(n), **v} for n, v in sorted(found.figures["by_replicas"].items())]
    return rows + [{"replicas": "ratio 2 / 1", "achieved_rps": found.figures["ratio"], "p95_ms": "", "errors": ""}]


def autoscaler_files(files: dict[str, str]) -> list[tuple[str, str]]:
    """(path, text) of the objects that scale the Deployment: the HPA (or, with KEDA, the ScaledObject)
    and the prometheus-adapter rule when the mechanism is hpa-rps."""
    from kit.families.scaling.autoscalers import scaledobject_files
    paths = ("k8s/scaling/prometheus-adapter-rules.yaml", *scaledobject_files(files))
    hpa = files.get("k8s/base/autoscaling.yaml", "")
    hpa = hpa.split("\n---\n")[0] if "\nkind: HorizontalPodAutoscaler\n" in hpa else ""
    return [(p, files[p]) for p in paths if p in files] + ([("k8s/base/autoscaling.yaml", hpa)] if hpa else [])


def measured_rows(records: list[Evidence]) -> list[dict]:
    """What generation took from the task's scaling.measured (or the task's own figure), against what
    the files carry: the scaling.measured record."""
    found = record(records, "scaling.measured")
    if not found or "expected" not in found.figures:
        return []
    want, have, why = found.figures["expected"], found.figures["carried"], found.figures["why"]
    return [{"figure": k, "generation used": v, "from": why[k], "the files carry": have.get(k, "")}
            for k, v in want.items()]
