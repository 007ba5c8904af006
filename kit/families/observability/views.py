"""What the 60_observability notebook shows: tables and charts built from evidence and the
generated files (views only, no checks)."""
from __future__ import annotations

import yaml

from kit.evidence import Evidence
from kit.families.observability.promql import is_recorded, metric_names

STATE_LEVEL = {"inactive": 0, "pending": 1, "firing": 2}


def _record(records: list[Evidence], check: str) -> Evidence | None:
    return next((r for r in records if r.check == check), None)


def metric_rows(files: dict[str, str], records: list[Evidence]) -> list[dict]:
    """The scraped metric families (live run), or, statically, the metrics the rules use."""
    live = _record(records, "observability.live.metrics")
    used = set((live.figures.get("used") if live else None) or [])
    if live and live.figures.get("families"):
        return [{"metric": m, "type": t, "help": h, "used by rules/dashboard": "yes" if any(
                 u == m or u.startswith(m + "_") for u in used) else ""} for m, t, h in live.figures["families"]]
    names = set()
    for rel in ("monitoring/rules/recording.yml", "monitoring/rules/alerts.yml"):
        for group in (yaml.safe_load(files[rel]) or {}).get("groups") or []:
            names |= {n for r in group.get("rules") or [] for n in metric_names(r["expr"]) if not is_recorded(n)}
    return [{"metric": n, "type": "(not scraped: static mode)", "help": "", "used by rules/dashboard": "yes"}
            for n in sorted(names)]


def rule_test_rows(files: dict[str, str], records: list[Evidence]) -> list[dict]:
    """Each generated promtool case with the verdict of the promtool run that contained it."""
    run = _record(records, "observability.promtool_test")
    verdict = run.status if run else "not run"
    rows = []
    for case in (yaml.safe_load(files["monitoring/rules/tests.yml"]) or {}).get("tests") or []:
        for t in case.get("alert_rule_test") or []:
            rows.append({"case": case["name"], "alert": t["alertname"], "at": t["eval_time"],
                         "expects": "fires" if t.get("exp_alerts") else "silent", "status": verdict})
    return rows


def line_chart(series: dict[str, list], title: str, ylabel: str):
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 3))
    for label, points in series.items():
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], marker=".", label=label)
    ax.set_xlabel("seconds into the live check")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig


def live_series(records: list[Evidence]) -> dict[str, list]:
    run = _record(records, "observability.live.queries")
    return dict((run.figures.get("series") or {}) if run else {})


def alert_timeline(records: list[Evidence]) -> list[list]:
    run = _record(records, "observability.live.target_down")
    return list(run.figures.get("timeline") or []) if run else []


def timeline_chart(timeline: list[list], title: str = "TargetDown after the app was stopped"):
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 2.5))
    times = [t for t, _ in timeline] + [timeline[-1][0] + 1]
    levels = [STATE_LEVEL.get(s, 0) for _, s in timeline]
    ax.step(times, levels + levels[-1:], where="post", color="#c62828")
    for t, state in timeline:
        ax.annotate(f"{state} @ {t:g}s", (t, STATE_LEVEL.get(state, 0)), textcoords="offset points",
                    xytext=(3, 5), fontsize=8)
    ax.set_yticks(list(STATE_LEVEL.values()), list(STATE_LEVEL))
    ax.set_ylim(-0.3, 2.6)
    ax.set_xlabel("seconds after `docker compose stop`")
    ax.set_title(title)
    fig.tight_layout()
    plt.close(fig)
    return fig


def delivery_rows(records: list[Evidence]) -> list[dict]:
    """What Alertmanager delivered to the local webhook receiver, and the warning it muted."""
    routing = _record(records, "observability.live.alert_routing")
    muted = _record(records, "observability.live.inhibition")
    seen = (routing.figures.get("first_seen_s_after_stop") or {}) if routing else {}
    rows = [{"alert": alert, "namespace": ns, "receiver": receiver, "outcome": "delivered",
             "seconds after the stop": seen.get(f"{alert}@{ns} -> {receiver}", "")}
            for receiver, alert, ns in (routing.figures.get("delivered") or [] if routing else [])]
    for ns, status in ((muted.figures.get("inhibited") or {}) if muted else {}).items():
        rows.append({"alert": "KitSandboxInhibitedWarn", "namespace": ns, "receiver": "(none)",
                     "outcome": f"{status.get('state')} by {', '.join(status.get('inhibitedBy') or [])}",
                     "seconds after the stop": ""})
    return rows
