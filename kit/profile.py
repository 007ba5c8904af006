"""`kit run --profile`: where a run's time went, from what the run recorded (data, not a timer of
its own): each stage's wall time (timings.json), each family step's wall time and each tool's
duration (the evidence records). The part of a notebook's time that no step accounts for is the
notebook's own overhead: kernel start, imports, rendering the deliverables, the views."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from kit.evidence import Evidence


@dataclass(frozen=True)
class Cost:
    what: str
    kind: str        # stage | step | tool | overhead
    seconds: float


def costs(out: Path, records: list[Evidence]) -> list[Cost]:
    path = Path(out) / "timings.json"
    stages = json.loads(path.read_text())["stages"] if path.is_file() else {}
    rows = [Cost(name, "stage", float(sec)) for name, sec in stages.items()]
    steps: dict[str, float] = {}
    for record in records:
        if record.step:
            steps[record.step] = record.wall_s
    rows += [Cost(step, "step", sec) for step, sec in steps.items()]
    rows += [Cost(f"{r.check} ({r.tool})" if r.tool else r.check, "tool", r.duration_s)
             for r in records if r.duration_s]
    from kit.families import families
    for name, family in families().items():
        stage = stages.get(f"notebook {family.notebook}")
        if stage is None:
            continue
        inside = sum(sec for step, sec in steps.items() if step.split(".")[0] == name)
        rows.append(Cost(f"notebook {family.notebook} outside its checks", "overhead",
                         round(max(stage - inside, 0.0), 3)))
    return rows


def report(out: Path, records: list[Evidence], top: int = 12) -> str:
    rows = costs(out, records)
    total = sum(c.seconds for c in rows if c.kind == "stage")
    lines = [f"where the time went ({total:.1f} s in stages; steps and tools are inside them):"]
    for kind, title in (("stage", "stages"), ("step", "family steps"), ("tool", "tools"),
                        ("overhead", "overhead")):
        chosen = sorted((c for c in rows if c.kind == kind), key=lambda c: -c.seconds)[:top]
        if not chosen:
            continue
        lines.append(f"  {title}:")
        lines += [f"    {c.seconds:8.1f} s  {c.what}" for c in chosen]
    return "\n".join(lines)
