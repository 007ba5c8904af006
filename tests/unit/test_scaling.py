"""The scaling family without Docker: the task section's errors, the sizing arithmetic, the load
test's per-step summary, the HPA replay, and the rules on the generated files."""
from __future__ import annotations

import math
from itertools import pairwise

import pytest

from kit.cli import main
from kit.families.scaling import loadtest, simulate, sizing
from kit.families.scaling.options import Scaling, check_peak
from tests.conftest import write_task

SERVICE = "service:\n  name: mini\n  source: src\n"

BAD = [
    ("peak-below-baseline", "scaling:\n  baseline_rps: 50\n  peak_rps: 20\n",
     ["task.md:7: scaling.peak_rps: peak_rps 20 is below baseline_rps 50"]),
    ("weight-not-a-number", "scaling:\n  mix:\n    /items: lots\n",
     ["task.md:7: scaling.mix./items: the weight of /items must be a positive number, got 'lots'"]),
    ("weight-zero", "scaling:\n  mix:\n    /items: 0\n", ["scaling.mix./items: the weight of /items"]),
    ("mix-not-a-path", "scaling:\n  mix:\n    items: 1\n", ["task.md:7: scaling.mix.items: 'items' is not a path"]),
    ("peak-negative", "scaling:\n  peak_rps: -3\n", ["task.md:6: scaling.peak_rps: must be a positive number"]),
    ("headroom", "scaling:\n  headroom: lots\n", ["task.md:6: scaling.headroom: must be a percentage"]),
    ("mechanism", "scaling:\n  mechanism: vpa\n", ["scaling.mechanism", "hpa-cpu"]),
    ("replica-bounds", "scaling:\n  min_replicas: 5\n  max_replicas: 2\n",
     ["task.md:6: scaling.min_replicas: min_replicas 5 is above max_replicas 2"]),
    ("impossible-peak", "scaling:\n  peak_rps: 1000\n  max_replicas: 4\n  measured: {capacity_rps: 50, "
     "cpu_at_capacity: 0.4, memory_mib: 80, time_to_healthy_s: 3}\n",
     ["task.md:6: scaling.peak_rps: peak_rps 1000 needs 20 pods at the measured 50 rps per pod; "
      "max_replicas 4 carries only 200 rps"]),
    ("rate-target-not-positive", "scaling:\n  mechanism: keda\n  target_rps_per_pod: 0\n",
     ["task.md:7: scaling.target_rps_per_pod"]),
    ("rate-mechanism-without-target", "scaling:\n  mechanism: hpa-rps\n",
     ["task.md:6: scaling.mechanism: mechanism hpa-rps scales on requests per second per pod, and the task gives "
      "no target for it", "scaling.target_rps_per_pod"]),
    ("measured-missing-figure", "scaling:\n  measured: {capacity_rps: 50}\n",
     ["scaling.measured.cpu_at_capacity: must be a positive number, got None"]),
]


@pytest.mark.parametrize("case_id,front,expected", BAD, ids=[c[0] for c in BAD])
def test_bad_scaling_section(case_id, front, expected, minimal, capsys):
    write_task(minimal, SERVICE + front)
    code = main(["generate", str(minimal)])
    err = capsys.readouterr().err
    assert code == 2, err
    for fragment in expected:
        assert fragment in err, f"{fragment!r} not in {err!r}"


def test_mix_defaults_to_routes_without_health_metrics_or_parameters():
    from kit.spec import load_spec
    from tests.conftest import EXAMPLE
    scaling = load_spec(EXAMPLE).option("scaling")
    assert [p for p, _ in scaling.mix] == ["/", "/items", "/items/count"]
    assert math.isclose(sum(w for _, w in scaling.mix), 1, abs_tol=1e-5)
    assert scaling.mix_source == "detected routes"


CAP = sizing.Capacity(capacity_rps=100, cpu_at_capacity=0.42, cpu_at_working=0.3, memory_mib=70, cpu_limit=0.5)


def test_sizing_formulas():
    s = sizing.size(CAP, 0.25, baseline_rps=30, peak_rps=390, max_replicas=10)
    assert s.figures["working_rps"] == 80
    assert s.figures["cpu_request_m"] == 420
    assert s.figures["cpu_limit_m"] == 500
    assert s.figures["memory_mib"] == 112                      # ceil16(1.5 x 70 = 105)
    assert s.figures["hpa_cpu_utilization"] == 71              # floor(100 x 0.3 / 0.42)
    assert s.figures["min_replicas"] == 2                      # max(2, ceil(30 / 80))
    assert s.figures["max_replicas"] == 5                      # ceil(390 / 80)
    assert not s.problems
    assert all(name in s.formulas for name in s.figures)


def test_impossible_peak_names_both_numbers():
    s = sizing.size(CAP, 0.25, baseline_rps=30, peak_rps=1500, max_replicas=10)
    assert s.problems == ["peak_rps 1500 needs 15 pods at the measured 100.0 rps per pod; max_replicas 10 "
                          "carries only 1000.0 rps"]
    scaling = Scaling(30, 1500, (), "task", 0.3, "hpa-cpu", None, 10, None)
    assert "needs 15 pods" in check_peak(None, scaling, 100, 10)
    assert check_peak(None, scaling, 150, 10) == ""


def test_a_slow_endpoint_lowers_capacity_and_raises_replica_counts():
    fast = sizing.size(CAP, 0.3, 40, 150)
    slow = sizing.size(sizing.Capacity(25, 0.45, 0.33, 70, 0.5), 0.3, 40, 150)
    assert slow.figures["working_rps"] < fast.figures["working_rps"]
    assert slow.figures["max_replicas"] > fast.figures["max_replicas"]
    assert slow.figures["min_replicas"] >= fast.figures["min_replicas"]


def test_nodes_from_allocatable():
    cpu, mem, pods = sizing.allocatable("m6i.large")
    assert (cpu, mem, pods) == (1930, 8192 - (11 * 29 + 255 + 100), 29)
    count, formula = sizing.nodes_for("m6i.large", 10, 500, 768, other_pods=2)
    assert count == math.ceil(13 / 3)                          # min(1730 // 500, 7218 // 768) = 3 per node
    assert "per node" in formula
    assert sizing.nodes_for("n2-standard-4", 3, 100, 100) is None


def _data(step_rates, per_step):
    """Samples as the locustfile writes them: 2 s steps, warm-up 0."""
    marks, samples, t0 = [], [], 1000.0
    for i, (latency, n, bad) in enumerate(per_step):
        marks.append((i, t0 + 2 * i, 0.2 * i))
        for k in range(n):
            samples.append((t0 + 2 * i + 2 * k / n, latency, k < bad, "/items"))
    marks.append((len(per_step), t0 + 2 * len(per_step), 0.2 * len(per_step)))
    return {"marks": marks, "samples": samples}


def test_summary_per_step_and_capacity():
    rates = [10, 20, 40]
    data = _data(rates, [(0.01, 20, 0), (0.02, 40, 0), (0.6, 60, 3)])
    stats = [(1000.5 + i, 0.1 * (i + 1), 60.0 + i) for i in range(6)]
    steps = loadtest.summarise(data, stats, rates, threshold_s=0.25, objective=99, error_budget=0.1, warmup_s=0)
    assert [s.holds for s in steps] == [True, True, False]
    assert steps[1].achieved_rps == 20 and steps[1].p95_ms == 20
    assert steps[2].error_rate == 0.05 and "within the threshold" in steps[2].why
    assert steps[0].generator_cpu == 0.1
    capacity, at, broke = loadtest.capacity_of(steps)
    assert (capacity, at.offered_rps, broke) == (20, 20, True)
    assert loadtest.failures_by_path(data)["/items"] == (120, 3)


def test_a_step_that_falls_behind_the_offer_does_not_hold():
    step = loadtest.Step(100, 60, 120, 5, 9, 10, 1.0, 0.0, 0.5, 60, 0.1)
    assert loadtest.judge(step, 99, 0.1) == (False, "achieved 60 of 100 rps offered: the app fell behind")


def test_docker_stats_arithmetic():
    stat = {"cpu_stats": {"cpu_usage": {"total_usage": 2_500_000_000}, "system_cpu_usage": 20_000_000_000,
                          "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 2_000_000_000}, "system_cpu_usage": 18_000_000_000},
            "memory_stats": {"usage": 100 * 2**20, "stats": {"inactive_file": 20 * 2**20}}}
    assert loadtest.cpu_cores(stat) == 0.5
    assert loadtest.memory_mib(stat) == 80


def test_load_only_goes_to_loopback(tmp_path):
    with pytest.raises(ValueError, match=r"only targets 127\.0\.0\.1"):
        loadtest.run_locust(tmp_path / "locustfile.py", "http://10.0.0.5:8000", 1, [1])


def test_hpa_replay_follows_the_published_algorithm():
    flat = simulate.Profile(tuple([100.0] * 40))
    result = simulate.simulate(flat, capacity_rps=50, target_rps=40, min_replicas=2, max_replicas=10, pod_start_s=5)
    assert result.replicas[0] == 3                             # ceil(2 x 100 / (2 x 40)) = 3
    assert result.replicas[-1] == 3                            # 100 / (3 x 40) = 0.83: outside the tolerance
    within = simulate.Profile(tuple([84.0] * 10))              # 84 / (2 x 40) = 1.05: within 0.1, no change
    assert set(simulate.simulate(within, 50, 40, 2, 10, 5).replicas) == {2}


def test_hpa_replay_scale_down_waits_for_the_window_and_the_policy():
    profile = simulate.Profile(tuple([400.0] * 20 + [40.0] * 60))
    result = simulate.simulate(profile, 50, 40, 1, 20, pod_start_s=5)
    high = max(result.replicas)
    last_high = 19                                             # the last period at 400 rps (t = 285 s)
    kept = result.replicas[last_high:last_high + 300 // 15]
    assert set(kept) == {high}                                 # 300 s window keeps the highest recommendation
    assert result.replicas[last_high + 300 // 15] == high - 1
    later = result.replicas[last_high + 300 // 15:]
    assert all(a - b <= 1 for a, b in pairwise(later))   # 1 pod per 60 s


def test_hpa_replay_reports_lag_when_pods_start_slowly():
    profile = simulate.Profile(tuple([40.0] * 4 + [400.0] * 20))
    fast = simulate.simulate(profile, 50, 40, 1, 20, pod_start_s=5)
    slow = simulate.simulate(profile, 50, 40, 1, 20, pod_start_s=120, node_delay_s=90, pods_per_node=3)
    assert slow.lag and slow.lag[0][0] == 60
    assert sum(b - a for a, b, _ in slow.lag) > sum(b - a for a, b, _ in fast.lag)


def test_daily_profile_has_baseline_peak_and_spike():
    day = simulate.daily_profile(40, 150)
    assert len(day.points) == 24 * 3600 // 15
    assert min(day.points) == 20 and max(day.points) == 225


def test_one_broken_step_followed_by_one_that_holds_is_a_pause_not_the_limit():
    def step(rate, holds):
        return loadtest.Step(rate, rate, 100, 5, 9, 10, 1.0, 0.0, 0.1, 60, 0.01, holds=holds)
    steps = [step(10, True), step(20, False), step(30, True), step(40, False), step(50, False), step(60, True)]
    capacity, at, broke = loadtest.capacity_of(steps)
    assert (capacity, at.offered_rps, broke) == (30, 30, True)


def test_a_small_step_may_have_one_slow_request_but_not_two():
    one = loadtest.Step(10, 10, 40, 5, 9, 300, 39 / 40, 0.0, 0.1, 60, 0.01)
    two = loadtest.Step(10, 10, 40, 5, 9, 300, 38 / 40, 0.0, 0.1, 60, 0.01)
    big = loadtest.Step(100, 100, 400, 5, 9, 300, 395 / 400, 0.0, 0.1, 60, 0.01)
    assert loadtest.judge(one, 99, 0.1)[0] is True          # 40 requests cannot measure a 99th percentile
    assert loadtest.judge(two, 99, 0.1)[0] is False
    assert loadtest.judge(big, 99, 0.1)[0] is False         # 5 slow of 400: 98.75 % < 99 %


def test_views_show_nothing_for_records_without_measurements():
    """A service with nothing to load (or a static run) has skipped or figure-less records; the
    notebook's views return nothing instead of failing the cell (a KeyError stopped 75_scaling)."""
    from kit.evidence import Evidence
    from kit.families.scaling import views
    records = [Evidence(c, "loadtest/", c, "skipped", reason="no HTTP path to load")
               for c in ("scaling.loadtest", "scaling.sizing", "scaling.scaleout")]
    records.append(Evidence("scaling.simulation", "k8s/", "simulation", "failed", reason="no capacity"))
    assert views.step_rows(records) == [] and views.sizing_rows(records) == []
    assert views.scaleout_rows(records) == [] and views.simulation_chart(records) is None
