"""What the 70_backup_dr notebook shows: the drill's timeline, its figures against the targets, and
the retention schedule (views only, no checks)."""
from __future__ import annotations

from kit.evidence import Evidence
from kit.families.backup.options import human
from kit.families.backup.render import retention_rows
from kit.model import Spec


def _record(records: list[Evidence], check: str) -> Evidence | None:
    return next((r for r in records if r.check == check), None)


def timeline(records: list[Evidence]) -> list[dict]:
    rto = _record(records, "backup.drill.rto")
    if rto and rto.figures.get("timeline"):
        return list(rto.figures["timeline"])
    first = next((r for r in records if r.check.startswith("backup.drill.") and r.figures.get("timeline")), None)
    return list(first.figures["timeline"]) if first else []


def timeline_chart(steps: list[dict]):
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(9, 3))
    colors = {"backup": "#1565c0", "wrote": "#2e7d32", "WAL": "#6a1b9a", "destroyed": "#c62828",
              "restore": "#ef6c00", "healthy": "#00838f", "database up": "#455a64"}
    for i, step in enumerate(steps):
        color = next((c for k, c in colors.items() if k in step["step"]), "#455a64")
        ax.axvline(step["t_s"], color=color, alpha=0.5)
        ax.annotate(step["step"], (step["t_s"], i % 5), textcoords="offset points", xytext=(3, 0), fontsize=7,
                    color=color)
        ax.plot([step["t_s"]], [i % 5], "o", color=color)
    destroyed = next((s["t_s"] for s in steps if "destroyed" in s["step"]), None)
    healthy = next((s["t_s"] for s in steps if "healthy" in s["step"]), None)
    if destroyed is not None and healthy is not None:
        ax.axvspan(destroyed, healthy, color="#ffcdd2", alpha=0.5, label=f"measured RTO {healthy - destroyed:.1f} s")
        ax.legend(fontsize=8, loc="upper left")
    ax.set_yticks([])
    if steps:
        ax.set_xlim(min(s["t_s"] for s in steps) - 2, max(s["t_s"] for s in steps) * 1.3 + 2)
    ax.set_xlabel("seconds into the drill")
    ax.set_title("DR drill: backup, writes, destruction, restore, healthy")
    fig.tight_layout()
    plt.close(fig)
    return fig


def target_rows(spec: Spec, records: list[Evidence]) -> list[dict]:
    b = spec.option("backup")
    rows = []
    rto, rpo = _record(records, "backup.drill.rto"), _record(records, "backup.drill.rpo")
    bk, rs = _record(records, "backup.drill.backup"), _record(records, "backup.drill.restore")
    if rto:
        rows.append({"figure": "RTO (destruction to healthy)", "measured": f"{rto.figures.get('rto_s', '')} s",
                     "target": human(b.rto_s), "verdict": rto.status})
    if rpo:
        rows.append({"figure": "RPO: time lost", "measured": f"{rpo.figures.get('seconds_lost', '')} s",
                     "target": human(b.rpo_s), "verdict": rpo.status})
        rows.append({"figure": "RPO: rows lost (of 320 written)", "measured": rpo.figures.get("rows_lost", ""),
                     "target": "the rows no archive held yet", "verdict": rpo.status})
    if bk:
        rows.append({"figure": "backup size / duration", "measured": f"{bk.figures.get('backup_size', '')} in "
                     f"{bk.figures.get('backup_duration_s', '')} s", "target": "a backup with data", "verdict": bk.status})
    if rs:
        rows.append({"figure": "restore duration", "measured": f"{rs.figures.get('restore_duration_s', '')} s",
                     "target": f"within the RTO {human(b.rto_s)}", "verdict": rs.status})
    return rows


def retention_table(spec: Spec) -> list[dict]:
    b = spec.option("backup")
    rows = [{"tier": t, "backups kept": n, "covers": c} for t, n, c in retention_rows(b)]
    every = "one a week" if b.weekly_fulls else f"one per {human(b.interval_s)}"
    rows.append({"tier": "pgBackRest full backups (repo1-retention-full-type=time)", "backups kept": b.fulls_kept,
                 "covers": f"{b.retention_days} days, {every}"})
    if b.weekly_fulls:
        rows.append({"tier": "pgBackRest differential backups (repo1-retention-diff)",
                     "backups kept": b.daily * b.slots_per_day, "covers": f"the last {b.daily} days, every other slot"})
    return rows


def target_chart(spec: Spec, records: list[Evidence]):
    """Measured RTO and RPO (seconds) beside the task's targets, on a log scale."""
    import matplotlib.pyplot as plt
    b = spec.option("backup")
    rto, rpo = _record(records, "backup.drill.rto"), _record(records, "backup.drill.rpo")
    if not rto or not rpo:
        return None
    labels = ["RTO", "RPO (time lost)"]
    measured = [max(float(rto.figures.get("rto_s", 0)), 0.01), max(float(rpo.figures.get("seconds_lost", 0)), 0.01)]
    targets = [b.rto_s, b.rpo_s]
    fig, ax = plt.subplots(figsize=(7, 2.2))
    y = range(len(labels))
    ax.barh([i + 0.2 for i in y], targets, height=0.4, color="#b0bec5", label="target")
    ax.barh([i - 0.2 for i in y], measured, height=0.4, color="#2e7d32", label="measured in the drill")
    for i, (m, tgt) in enumerate(zip(measured, targets, strict=True)):
        ax.annotate(f"{m:g} s", (m, i - 0.2), xytext=(3, -3), textcoords="offset points", fontsize=8)
        ax.annotate(human(tgt), (tgt, i + 0.2), xytext=(3, -3), textcoords="offset points", fontsize=8)
    ax.set_yticks(list(y), labels)
    ax.set_xscale("log")
    ax.set_xlabel("seconds (log scale)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    plt.close(fig)
    return fig
