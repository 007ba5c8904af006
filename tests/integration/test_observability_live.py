"""The live observability check on the example: the compose stack with its monitoring override on
stand-ins (Prometheus, Alertmanager, the postgres and redis exporters) loading the generated
configs; TargetDown goes pending then firing; Alertmanager pages for prod, files dev as a ticket
and inhibits the warning; the dependency panels have data; a metrics path the app does not serve
fails with a clear message."""
from __future__ import annotations

import pytest

from kit.core.session import session
from kit.families import render_all
from kit.families.container.checks import build_evidence
from kit.pipeline import generate, verify
from kit.spec import load_spec
from tests.conftest import copy_example

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def live(project, out):
    spec = load_spec(project, out)
    generate(spec, out)
    with session(spec, out, render_all(spec)) as ctx:
        assert build_evidence(spec, ctx).passed          # the image the live stack runs
    return {r.check: r for r in verify(spec, ["observability"]) if r.check.startswith("observability.live")}


@pytest.fixture(scope="module")
def example_live(tmp_path_factory, docker_engine):
    root = tmp_path_factory.mktemp("obs")
    return live(copy_example(root / "shop-api"), root / "out")


def test_every_live_check_passes(example_live):
    from kit.config import run_id
    from kit.sandbox.sweep import sandbox_resources
    assert not any(sandbox_resources(run_id()).values()), "Prometheus or the stack was left behind"
    assert {c: r.reason for c, r in example_live.items() if not r.passed} == {}
    assert set(example_live) == {"observability.live.up", "observability.live.metrics", "observability.live.rules",
                                 "observability.live.queries", "observability.live.exporters",
                                 "observability.live.json_logs", "observability.live.target_down",
                                 "observability.live.alert_routing", "observability.live.inhibition",
                                 "observability.live.cleanup"}
    standins = {"prom/prometheus:v2.53.0": "kit-standin/prometheus:2",
                "prom/alertmanager:v0.27.0": "kit-standin/alertmanager:0",
                "quay.io/prometheuscommunity/postgres-exporter:v0.17.1": "kit-standin/postgres-exporter:0",
                "oliver006/redis_exporter:v1.67.0": "kit-standin/redis-exporter:1"}
    for check, record in example_live.items():
        if check != "observability.live.cleanup":
            assert standins.items() <= record.standins.items(), check


def test_target_down_goes_pending_then_firing(example_live):
    record = example_live["observability.live.target_down"]
    states = [s for _, s in record.figures["timeline"]]
    assert states.index("pending") < states.index("firing")
    assert record.figures["pending_after_s"] < record.figures["firing_after_s"]
    assert "for:` 5s" in record.figures["sandbox"]


def test_queries_and_metrics_are_real(example_live):
    queries = example_live["observability.live.queries"].figures
    assert queries["errors"] == 0 and queries["with_samples"] >= queries["expected_samples"] > 10
    assert any(queries["series"]["request rate (req/s)"])
    metrics = example_live["observability.live.metrics"].figures
    assert "shop_http_requests_total" in metrics["used"]
    assert metrics["exporter_metrics"] == {"db-exporter": ["pg_stat_database_numbackends", "pg_up"],
                                           "cache-exporter": ["redis_memory_used_bytes", "redis_up"]}
    assert example_live["observability.live.rules"].figures["rules"] == 25   # 14 recording, 10 alerts, the sandbox's


def test_the_exporters_reach_their_dependencies_and_feed_the_panels(example_live):
    figures = example_live["observability.live.exporters"].figures
    assert figures["up"] == {"db-exporter": {"pg_up": 1.0}, "cache-exporter": {"redis_up": 1.0}}
    assert len(figures["panel_samples"]) == 4 and all(figures["panel_samples"].values())


def test_alertmanager_pages_for_prod_files_dev_and_inhibits_the_warning(example_live):
    delivered = example_live["observability.live.alert_routing"].figures["delivered"]
    assert ["oncall-pager", "TargetDown", "shop-api-prod"] in delivered
    assert ["team-tickets", "TargetDown", "shop-api-dev"] in delivered
    assert ["oncall-pager", "TargetDown", "shop-api-dev"] not in delivered
    inhibited = example_live["observability.live.inhibition"].figures
    assert inhibited["delivered"] == [] and {"shop-api-prod", "shop-api-dev"} <= set(inhibited["inhibited"])
    assert all(s["state"] == "suppressed" and s["inhibitedBy"] for s in inhibited["inhibited"].values())


def test_a_metrics_path_the_app_does_not_serve_fails_clearly(tmp_path, docker_engine):
    project = copy_example(tmp_path / "shop-api")
    task = project / ".claude" / "task.md"
    task.write_text(task.read_text().replace("  metrics: /metrics\n", "  metrics: /nope\n"))
    records = live(project, tmp_path / "out")
    up = records["observability.live.up"]
    assert up.status == "failed"
    assert "the app does not serve metrics at /nope: Prometheus got HTTP 404" in up.reason
    assert records["observability.live.target_down"].status == "skipped"
    assert records["observability.live.cleanup"].passed
    from kit.config import run_id
    from kit.sandbox.sweep import sandbox_resources
    assert not any(sandbox_resources(run_id()).values())   # this run's only: the engine is shared
