"""The scaling family's load test on a service of our own whose /report is served one at a time
(a module-wide lock around a 20 ms section): the measured capacity is bounded by that lock, and the
replica counts sized from it are large. The example's load test runs in test_run_example.py."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.conftest import copy_project
from tests.integration.helpers import assert_nothing_left

pytestmark = [pytest.mark.docker, pytest.mark.slow]
FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "slow-report"
LOCKED_S = 0.02


def test_a_slow_endpoint_measures_low_and_sizes_many_replicas(tmp_path):
    """Only the families the load test needs (the container family builds the image): a whole
    `kit verify` would add every other family's sandbox run."""
    from kit.pipeline import generate, verify
    from kit.spec import load_spec
    project = copy_project(FIXTURE, tmp_path / "slow-report")
    spec = load_spec(project)
    generate(spec)
    try:
        records = {r.check: r.to_dict() for r in verify(spec, ["container", "scaling"])}
    finally:
        assert_nothing_left()
    load = records["scaling.loadtest"]
    assert load["status"] == "passed", (load["reason"], load["figures"].get("steps"))
    capacity = load["figures"]["capacity_rps"]
    assert 0 < capacity <= 1 / LOCKED_S * 1.1          # one request at a time through a 20 ms section
    assert load["figures"]["objective_broken"] is True
    assert load["figures"]["cpu_limit"] == 0.5
    steps = load["figures"]["steps"]
    assert all({"p50_ms", "p95_ms", "p99_ms", "app_cpu", "app_memory_mib", "generator_cpu"} <= set(s) for s in steps)
    assert records["scaling.generator"]["status"] == "passed"
    sizing = records["scaling.sizing"]["figures"]["derived"]
    working = capacity / 1.3
    assert sizing["max_replicas"] == math.ceil(60 / working) >= 2
    assert records["scaling.mix"]["status"] == "passed"
    # an impossible peak at run time: max_replicas 1 x the measured capacity is below peak_rps 60, both numbers named
    sized = records["scaling.sizing"]
    assert sized["status"] == "failed"
    assert f"peak_rps 60 needs {math.ceil(60 / capacity)} pods at the measured {capacity:.1f} rps per pod; " \
           f"max_replicas 1 carries only {capacity:.1f} rps" in sized["reason"], sized["reason"]
