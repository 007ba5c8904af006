"""The acceptance checklist: the families' standard items plus the task's own criteria, each
ticked only when every check behind it passed. The items and the wording-to-check rules are
declared by the families (kit.core.family); this module only judges."""
from __future__ import annotations

import re
from dataclasses import dataclass

from kit.core.family import Criterion
from kit.evidence import Evidence
from kit.families import families


@dataclass(frozen=True)
class Item:
    text: str
    checks: tuple[str, ...]
    state: str            # passed | failed | unproven | review
    note: str = ""
    proof: str = ""       # the weakest proof level of the records behind it (never rounded up)

    @property
    def ticked(self) -> bool:
        return self.state == "passed"


def _expand(checks: tuple[str, ...], by_id: dict[str, Evidence]) -> tuple[str, ...]:
    """`family.prefix.*` stands for every record with that prefix (at least one must exist)."""
    out: list[str] = []
    for check in checks:
        matches = sorted(k for k in by_id if check.endswith("*") and k.startswith(check[:-1]))
        out += matches or [check]
    return tuple(out)


def _judge(text: str, checks: tuple[str, ...], by_id: dict[str, Evidence]) -> Item:
    checks = _expand(checks, by_id)
    found = [by_id[c] for c in checks if c in by_id]
    if len(found) < len(checks):
        missing = sorted(set(checks) - set(by_id))
        return Item(text, checks, "unproven", f"no evidence for {', '.join(missing)}")
    if all(r.status == "passed" for r in found):
        return Item(text, checks, "passed", proof=weakest(found))
    bad = [r for r in found if r.status != "passed"]
    return Item(text, checks, "failed" if any(r.status == "failed" for r in bad) else "unproven",
                "; ".join(f"{r.check}: {r.status} ({r.reason})" for r in bad))


def weakest(records: list[Evidence]) -> str:
    """static < emulated < stand-in < real: an item is only as proven as its weakest record."""
    levels = [r.proof for r in records if r.proof]
    return min(levels, key=("static", "emulated", "stand-in", "real").index) if levels else ""


def standard_items(records: list[Evidence]) -> list[Item]:
    by_id = {r.check: r for r in records}
    return [_judge(item.text, item.checks, by_id) for f in families().values() for item in f.checklist]


def criteria() -> list[Criterion]:
    """Every family's criterion rules, most specific first."""
    return sorted((c for f in families().values() for c in f.criteria), key=lambda c: c.priority)


def task_items(texts: tuple[str, ...], records: list[Evidence]) -> list[Item]:
    by_id = {r.check: r for r in records}
    rules = criteria()
    return [_task_item(text, rules, by_id) for text in texts]


def _task_item(text: str, rules: list[Criterion], by_id: dict[str, Evidence]) -> Item:
    for rule in rules:
        match = re.search(rule.pattern, text, re.I)
        if not match:
            continue
        verdict = rule.judge(text, match, by_id) if rule.judge else None
        if verdict is not None:
            behind = [by_id[c] for c in _expand(rule.checks, by_id) if c in by_id]
            return Item(text, rule.checks, *verdict, proof=weakest(behind) if verdict[0] == "passed" else "")
        return _judge(text, rule.checks, by_id)
    return Item(text, (), "review", "needs human review: no check can prove this")
