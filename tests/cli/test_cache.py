"""The evidence cache: an unchanged re-run reuses every family and says so everywhere; a change
re-runs exactly the families whose checks read what changed; a cached record is never shown as fresh."""
from __future__ import annotations

import json

import pytest

from kit.cache import Tracked, canon, digest
from kit.evidence import load_evidence
from kit.run import run_project


def test_tracked_options_remember_what_was_read():
    tracked = Tracked({"slo": 1, "ci": 2, "cloud": 3})
    assert tracked["slo"] == 1 and tracked.get("ci") == 2 and tracked.get("nope") is None
    assert tracked.seen == {"slo", "ci", "nope"}


def test_canonical_form_is_stable_and_ignores_set_order():
    a = canon({"b": frozenset({"x", "y", "z"}), "a": ("1", 2)})
    b = canon({"a": ["1", 2], "b": frozenset({"z", "y", "x"})})
    assert a == b and digest(a) == digest(b)


def _reused(out):
    stages = json.loads((out / "timings.json").read_text())["stages"]
    return sorted(k.split()[1] for k in stages if k.endswith("(reused)"))


@pytest.mark.tools
def test_unchanged_rerun_reuses_everything_and_a_change_reruns_only_its_readers(minimal, monkeypatch):
    monkeypatch.delenv("KIT_FRESH", raising=False)
    first = run_project(minimal, sandbox=False)
    out = first.spec.output
    assert not any(r.cached_from for r in first.records) and _reused(out) == []
    # unchanged: every notebook reused, every record marked, nothing presented as fresh
    second = run_project(minimal, sandbox=False)
    assert len(second.records) == len(first.records)
    assert all(r.cached_from.startswith("run ") for r in second.records)
    notebooks = sorted(p.stem for p in (out / "notebooks").glob("*.ipynb"))
    assert _reused(out) == notebooks
    assert "Reused, not re-run" in (out / "notebooks" / "10_container.ipynb").read_text()
    work = (minimal / ".claude" / "work.md").read_text()
    assert f"{len(second.records)} of {len(second.records)} records were reused, not re-run" in work
    evidence_page = (out / "site" / "evidence.html").read_text()
    assert "(reused)" in evidence_page and "reused, not re-run:" in evidence_page
    # a change to the slo: section re-runs the families that read it, and only those
    task = minimal / ".claude" / "task.md"
    task.write_text(task.read_text().replace("---\n# ", "slo:\n  availability: 99.5\n---\n# ", 1))
    third = run_project(minimal, sandbox=False)
    readers = {name for name in ("observability", "scaling", "security", "cicd", "iac", "kubernetes", "compose",
                                 "container", "backup")
               if "slo" in json.loads((out / "evidence" / f"{name}.inputs.json").read_text())["accessed"]}
    assert "observability" in readers
    rerun = {r.check.split(".")[0] for r in third.records if not r.cached_from}
    assert rerun == readers, (rerun, readers)
    assert "10_container" in _reused(out) and "60_observability" not in _reused(out)
    fresh_records = [r for r in third.records if r.check.startswith("observability.")]
    assert fresh_records and not any(r.cached_from for r in fresh_records)
    for name in ("container", "cicd"):
        if name not in readers:
            assert all(r.cached_from for r in load_evidence(out / "evidence" / f"{name}.json"))
    # --fresh reuses nothing
    fourth = run_project(minimal, sandbox=False, fresh=True)
    assert not any(r.cached_from for r in fourth.records) and _reused(out) == []
