"""What the 10_container notebook shows from the container family's evidence."""
from __future__ import annotations

from kit.evidence import Evidence


def layer_sizes(records: list[Evidence]) -> list[dict]:
    build = next((r for r in records if r.check == "container.build" and r.passed), None)
    return list(build.figures.get("layer_sizes", [])) if build else []
