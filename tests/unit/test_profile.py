"""Where a run's time went: every record carries the wall time of the step that made it, the run
writes each stage's time, and the profile sums steps (never the records a step shares)."""
from __future__ import annotations

import json
import time

from kit.evidence import Evidence, load_evidence, save_evidence
from kit.pipeline import timed
from kit.profile import costs, report


def _two_records(_spec, _ctx):
    time.sleep(0.05)
    return [Evidence("container.a", "Dockerfile", "a", "passed", tool="hadolint 2", duration_s=0.02),
            Evidence("container.b", "Dockerfile", "b", "passed")]


def test_each_record_gets_its_steps_wall_time_and_name():
    made = timed("container", _two_records, None, None)
    assert {r.step for r in made} == {"container._two_records"}
    assert all(r.wall_s >= 0.05 for r in made)
    assert made[0].wall_s == made[1].wall_s


def test_wall_time_survives_the_evidence_file(tmp_path):
    made = timed("container", _two_records, None, None)
    save_evidence(made, tmp_path / "e.json")
    back = load_evidence(tmp_path / "e.json")
    assert [(r.step, r.wall_s) for r in back] == [(r.step, r.wall_s) for r in made]


def test_profile_counts_a_step_once_and_shows_the_notebooks_overhead(tmp_path):
    records = [Evidence("container.a", "Dockerfile", "a", "passed", tool="hadolint 2.12.0", duration_s=2.0,
                        wall_s=5.0, step="container.static_checks"),
               Evidence("container.b", "Dockerfile", "b", "passed", wall_s=5.0, step="container.static_checks"),
               Evidence("container.build", "Dockerfile", "build", "passed", wall_s=12.0,
                        step="container.sandbox_checks")]
    (tmp_path / "timings.json").write_text(json.dumps({"stages": {"notebook 10_container": 24.0,
                                                                   "site": 3.0}}))
    rows = {(c.kind, c.what): c.seconds for c in costs(tmp_path, records)}
    assert rows[("step", "container.static_checks")] == 5.0        # once, not 10
    assert rows[("overhead", "notebook 10_container outside its checks")] == 7.0   # 24 - 5 - 12
    assert rows[("tool", "container.a (hadolint 2.12.0)")] == 2.0
    text = report(tmp_path, records)
    assert "27.0 s in stages" in text
    assert text.index("notebook 10_container") < text.index("site")   # the costliest first
