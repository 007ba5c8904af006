"""What the 20_compose notebook shows from the compose family's evidence."""
from __future__ import annotations

from kit.evidence import Evidence


def compose_timings(records: list[Evidence]) -> dict[str, float]:
    timings = {}
    for r in records:
        if r.check == "compose.up" and r.passed:
            timings["stack healthy"] = r.figures["time_to_healthy_s"]
        if r.check.startswith("compose.depends.") and "unhealthy_after_stop_s" in r.figures:
            dep = r.check.split(".", 2)[2]
            timings[f"{dep} stopped: health fails"] = r.figures["unhealthy_after_stop_s"]
            timings[f"{dep} back: health passes"] = r.figures["healthy_after_start_s"]
    return timings
