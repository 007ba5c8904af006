"""How the container family judges two kinds of acceptance criteria from its evidence: an image
size limit, and named metrics that must be in the scrape. A judge returns (state, note), or
None to leave the criterion to the plain rule."""
from __future__ import annotations

import re

from kit.evidence import Evidence

SIZE = re.compile(r"(?:image )?size\D{0,20}?(\d+)\s*(MB|MiB|GB)", re.I)
METRIC = re.compile(r"`([a-zA-Z_:][a-zA-Z0-9_:]*_[a-zA-Z0-9_:]+)`")


def judge_size(text: str, match: re.Match, by_id: dict[str, Evidence]):
    """`image size < N MB`: met when the built image is smaller."""
    build = by_id.get("container.build")
    if build is None:
        return None
    limit = float(match.group(1)) * (1000 if match.group(2).upper() == "GB" else 1)
    size = build.figures.get("size_mb")
    if build.status != "passed" or size is None:
        return ("unproven", "the image did not build")
    ok = size < limit
    note = f"image {size} MB {'<' if ok else '>='} {limit:g} MB"
    if build.standins:
        note += " (built on the local stand-in base; the official base differs in size)"
    return ("passed" if ok else "failed", note)


def judge_metrics(text: str, _match: re.Match, by_id: dict[str, Evidence]):
    """A criterion that names metrics is met only when the scrape had each of them. The parser
    reports counter families without their `_total` suffix."""
    names = METRIC.findall(text)
    metrics = by_id.get("container.metrics")
    if not names or metrics is None:
        return None
    if metrics.status != "passed":
        return ("failed" if metrics.status == "failed" else "unproven",
                    metrics.reason)
    scraped = set(metrics.figures.get("names", []))
    missing = [n for n in names if n not in scraped and n.removesuffix("_total") not in scraped]
    if missing:
        return ("failed", f"not in the scrape: {', '.join(missing)}")
    return ("passed", f"scraped: {', '.join(names)}")
