"""Observability: rendering, the SLO section's bad input, and every static check failing on a
deliberately broken deliverable (promtool and amtool run for real)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from kit.cli import main
from kit.core.context import VerifyContext
from kit.families import render_all
from kit.families.observability import checks as obs
from kit.families.observability.crd import validate_crd_object
from kit.families.observability.promql import metric_names
from kit.families.observability.promrules import burn_factor
from kit.families.observability.render import render_observability
from kit.render import write_files
from kit.spec import load_spec
from tests.conftest import write_task

GOOD_SERVICE = "service:\n  name: mini\n  source: src\n"


@pytest.fixture
def spec(example):
    return load_spec(example)


@pytest.fixture
def ctx(spec, tmp_path):
    files = render_all(spec)
    out = tmp_path / "out"
    write_files(files, out)
    return VerifyContext(deliverables=out, files=files)


def broken(ctx: VerifyContext, rel: str, old: str, new: str) -> VerifyContext:
    assert old in ctx.files[rel], old
    ctx.files[rel] = ctx.files[rel].replace(old, new, 1)
    (ctx.deliverables / rel).write_text(ctx.files[rel])
    return ctx


def test_render_is_deterministic_and_complete(spec):
    first, second = render_observability(spec), render_observability(spec)
    assert first == second
    for rel in ("monitoring/prometheus.yml", "monitoring/rules/alerts.yml", "monitoring/rules/tests.yml",
                "monitoring/alertmanager.yml", "monitoring/grafana/dashboards/service.json",
                "monitoring/otel-collector.yaml", "k8s/monitoring/base/kustomization.yaml",
                "monitoring/runbooks/TargetDown.md"):
        assert rel in first
    assert not any(rel.startswith("k8s/base") for rel in first)


def test_burn_rates_follow_the_sre_workbook(spec):
    slo = spec.option("slo")
    assert [burn_factor(slo, w, s) for w, s in (("1h", .02), ("6h", .05), ("1d", .1), ("3d", .1))] == [14.4, 6, 3, 1]
    alerts = yaml.safe_load(render_observability(spec)["monitoring/rules/alerts.yml"])
    names = {r["alert"] for g in alerts["groups"] for r in g["rules"]}
    assert {"AvailabilityErrorBudgetBurnFast", "LatencyErrorBudgetBurnSlow", "TargetDown", "ServiceRestarting",
            "HighCpuUsage", "HighMemoryUsage", "RequestsSaturated"} <= names


def test_metric_names():
    assert metric_names('histogram_quantile(0.9, sum by (le) (rate(a_bucket{job="x",le="0.25"}[5m])))') == {"a_bucket"}
    assert metric_names('(sum(rate(r_total{s=~"5.."}[5m])) or vector(0)) / on (job) up > 1e-3') == {"r_total", "up"}


@pytest.mark.tools
def test_static_checks_pass_on_the_example(spec, ctx):
    records = obs.static_checks(spec, ctx)
    # the example's task names where its site is published: the runbook links are absolute
    assert [r.check for r in records if not r.passed] == []
    assert next(r for r in records if r.check == "observability.runbook_base").figures["from"] == "slo.site_url"
    test = next(r for r in records if r.check == "observability.promtool_test")
    assert test.figures["alerts"] == 10
    # fires, silent; slow burns (ticket yes, page no); per alert of the pair: errors in prod fire for prod
    # only, /healthz 503s stay silent, 3% user errors beside probes scraped through the operator fire;
    # memory against a pod's larger and smaller limit
    assert test.figures["test_cases"] == 2 * 10 + 4 + 2 * 3 + 2 + 1   # + TargetDown as a ticket in dev


def _check(spec, ctx, check):
    return next(r for r in obs.static_checks(spec, ctx, only=check) if r.check == check)


@pytest.mark.tools
@pytest.mark.parametrize("rel,old,new,check,reason", [
    # a deliberately wrong rule: the generated unit tests catch it
    ("monitoring/rules/alerts.yml", "/ 1 > 0.9", "/ 1 > 5", "observability.promtool_test", "exit code 1"),
    ("monitoring/rules/alerts.yml", "up{job=\"shop-api\"} == 0", "up{job=\"shop-api\"} == ", "observability.promtool_rules", "exit code 1"),
    ("monitoring/prometheus.yml", "scrape_timeout: 10s", "scrape_timeout: 10 seconds", "observability.promtool_config", "exit code 1"),
    ("monitoring/alertmanager.yml", "receiver: team-tickets\n  group_by", "receiver: nobody\n  group_by", "observability.amtool", "exit code 1"),
    ("monitoring/alertmanager.yml", "target_matchers: ['severity=\"warn\"']", "target_matchers: ['severity=\"info\"']",
     "observability.alertmanager_policy", "no inhibition of warn by page"),
    ("monitoring/alertmanager.yml", "        send_resolved: true\n  - name: team-tickets",
     "        send_resolved: true\n        http_config: {authorization: {credentials: hunter2}}\n  - name: team-tickets",
     "observability.alertmanager_policy", "sets credentials"),
    ("monitoring/rules/alerts.yml", "      runbook_url: https://platform.shop.example.com/shop-api/runbooks/TargetDown.html\n", "",
     "observability.annotations", "TargetDown lacks runbook_url"),
    ("monitoring/grafana/dashboards/service.json", '"id": 2,', '"id": 1,', "observability.dashboard", "panel id 1 is used 2 times"),
    ("monitoring/grafana/dashboards/service.json", '"uid": "prometheus"', '"uid": "promethus"', "observability.dashboard",
     "references datasource 'promethus'"),
    ("monitoring/grafana/dashboards/service.json", '"expr": "up{job=\\"shop-api\\",namespace=~\\"$namespace\\"}"', '"expr": ""',
     "observability.dashboard", "target A has no expr"),
    ("monitoring/grafana/dashboards/service.json", '"expr": "up{job=\\"shop-api\\",namespace=~\\"$namespace\\"}"', '"expr": "up{job=}"',
     "observability.dashboard_promql", "exit code 1"),
    ("monitoring/prometheus.yml", 'metrics_path: "/metrics"', 'metrics_path: "/stats"', "observability.consistency",
     "scrape path /stats != service metrics path /metrics"),
    ("k8s/monitoring/base/servicemonitor.yaml", "app.kubernetes.io/name: shop-api\n  namespaceSelector",
     "app: shop-api\n  namespaceSelector", "observability.consistency", "ServiceMonitor selects"),
    ("k8s/monitoring/base/prometheusrule.yaml", "for: 2m", "for: 3m", "observability.prometheusrule", "differ"),
    ("k8s/monitoring/base/prometheusrule.yaml", "for: 2m", "for: soon", "observability.crd.prometheusrule", "for"),
    ("k8s/monitoring/base/servicemonitor.yaml", "scrapeTimeout: 10s", "scrape_timeout: 10s", "observability.crd.servicemonitor",
     "scrape_timeout"),
    ("k8s/monitoring/base/fluent-bit.yaml", "kind: DaemonSet", "kind: DaemonSett", "observability.k8s_schema", ""),
    ("k8s/monitoring/overlays/staging/exporters.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: yes please",
     "observability.k8s_schema", ""),
    ("monitoring/fluent-bit/fluent-bit.yaml", "    - name: kubernetes\n", "    - name: modify\n",
     "observability.fluent_bit", "no kubernetes filter"),
    ("compose.yaml", "    logging: *logging\n", "", "observability.log_rotation", "db does not rotate"),
    ("monitoring/fluent-bit/fluent-bit.yaml", "merge_parser: app_json", "merge_parser: cri",
     "observability.fluent_bit", "is not a JSON parser"),
    ("monitoring/fluent-bit/fluent-bit.yaml", "_shop-api-prod_", "_shop-api_",
     "observability.fluent_bit", "the prod overlay's namespace shop-api-prod"),
    ("monitoring/otel-collector.yaml", "processors: [memory_limiter, batch]\n      exporters: [otlphttp]\n    metrics",
     "processors: [memory_limiter]\n      exporters: [otlphttp]\n    metrics", "observability.otel_collector",
     "pipeline traces has no batch processor"),
    ("monitoring/otel-collector.yaml", "endpoint: 0.0.0.0:4318", "endpoint: 0.0.0.0:4319", "observability.otel_collector",
     "OTLP http does not listen on 4318"),
    ("monitoring/compose.monitoring.yaml", '"127.0.0.1:${GRAFANA_PORT:-3000}:3000"', '"3000:3000"',
     "observability.compose_consistency", "grafana publishes 3000:3000 beyond 127.0.0.1"),
    ("monitoring/compose.monitoring.yaml", "./monitoring/rules:", "./monitoring/rule:",
     "observability.compose_consistency", "mounts ./monitoring/rule, which kit does not generate"),
    ("monitoring/compose.monitoring.yaml", "    networks: [backend]\n\n  alertmanager",
     "    networks: [frontend]\n\n  alertmanager",
     "observability.compose_config", "exit code"),
])
def test_each_check_fails_on_a_broken_deliverable(spec, ctx, rel, old, new, check, reason):
    record = _check(spec, broken(ctx, rel, old, new), check)
    assert record.status == "failed" and reason in record.reason, (record.reason, record.log)


def test_rules_that_do_not_use_the_request_metric_fail(spec, ctx):
    rel = "monitoring/rules/recording.yml"
    ctx.files[rel] = ctx.files[rel].replace("shop_http_requests_total", "shop_http_calls_total")
    record = _check(spec, ctx, "observability.slo_rules")
    assert record.status == "failed" and "do not use shop_http_requests_total" in record.reason


@pytest.mark.tools
def test_a_page_that_fires_on_a_slow_burn_fails_the_unit_tests(spec, ctx):
    """Lower the 6h/30m page threshold below a 4.5x burn: the slow-burn case catches it."""
    rel = "monitoring/rules/alerts.yml"
    assert ctx.files[rel].count("> 0.006\n") == 2
    ctx.files[rel] = ctx.files[rel].replace("> 0.006\n", "> 0.004\n")
    (ctx.deliverables / rel).write_text(ctx.files[rel])
    record = _check(spec, ctx, "observability.promtool_test")
    assert record.status == "failed" and "AvailabilityErrorBudgetBurnFast stays silent on a slow burn" in record.log


@pytest.mark.tools
def test_a_missing_silent_case_fails_the_coverage_rule(spec, ctx):
    tests = yaml.safe_load(ctx.files["monitoring/rules/tests.yml"])
    tests["tests"] = [t for t in tests["tests"] if t["name"] != "TargetDown stays silent"]
    rel = "monitoring/rules/tests.yml"
    ctx.files[rel] = yaml.safe_dump(tests, sort_keys=False)
    (ctx.deliverables / rel).write_text(ctx.files[rel])
    record = _check(spec, ctx, "observability.promtool_test")
    assert record.status == "failed" and "TargetDown has no test where it stays silent" in record.reason


def test_crd_schema_requires_the_selector(ctx):
    text = ctx.files["k8s/monitoring/base/servicemonitor.yaml"]
    doc = next(yaml.safe_load_all(text))
    del doc["spec"]["selector"]
    assert any("'selector' is a required property" in p for p in validate_crd_object("ServiceMonitor", yaml.safe_dump(doc)))


def test_dependency_panels_read_the_exporters_kit_deploys(ctx):
    panels = json.loads(ctx.files["monitoring/grafana/dashboards/service.json"])["panels"]
    marked = {p["title"]: p["targets"][0]["expr"] for p in panels if p.get("description", "").startswith("From ")}
    assert marked == {"db: PostgreSQL up": 'pg_up{job="db-exporter",namespace=~"$namespace"}',
                      "db: PostgreSQL connections":
                          'sum by (namespace) (pg_stat_database_numbackends{job="db-exporter",namespace=~"$namespace"})',
                      "cache: Redis up": 'redis_up{job="cache-exporter",namespace=~"$namespace"}',
                      "cache: Redis memory used": 'redis_memory_used_bytes{job="cache-exporter",namespace=~"$namespace"}'}
    override = yaml.safe_load(ctx.files["monitoring/compose.monitoring.yaml"])["services"]
    assert override["db-exporter"]["environment"] == {"DATA_SOURCE_URI": "db:5432/app?sslmode=disable",
                                                      "DATA_SOURCE_USER": "app",
                                                      "DATA_SOURCE_PASS_FILE": "/run/secrets/PGPASSWORD"}
    assert override["cache-exporter"]["environment"] == {"REDIS_ADDR": "redis://cache:6379"}
    for env in ("dev", "staging", "prod"):      # each environment's overlay has only its own exporters
        k8s = [d for d in yaml.safe_load_all(ctx.files[f"k8s/monitoring/overlays/{env}/exporters.yaml"]) if d]
        assert sorted(d["metadata"]["name"] for d in k8s if d["kind"] == "Deployment") == [
            f"shop-api-{dep}-exporter-{env}" for dep in ("cache", "db")]
        assert {d["metadata"]["namespace"] for d in k8s if d["kind"] == "NetworkPolicy"} == {f"shop-api-{env}"}


def test_no_request_metrics_means_no_slo_rules_and_says_so(minimal):
    spec = load_spec(minimal)
    record = obs.slo_source(spec, render_observability(spec))
    assert record.status == "skipped" and "no request counter" in record.reason
    alerts = yaml.safe_load(render_observability(spec)["monitoring/rules/alerts.yml"])
    assert {r["alert"] for g in alerts["groups"] for r in g["rules"]} == {
        "TargetDown", "TargetMissing", "ServiceRestarting", "HighCpuUsage", "HighMemoryUsage"}


@pytest.mark.parametrize("front,expected", [
    ("slo:\n  availability: 100\n", "task.md:6: slo.availability: must be a percentage strictly between 0 and 100, got 100"),
    ("slo:\n  availability: 0\n", "slo.availability: must be a percentage strictly between 0 and 100, got 0"),
    ("slo:\n  latency: {threshold: fast, objective: 99}\n", "task.md:6: slo.latency.threshold: cannot parse 'fast' as a duration"),
    ("slo:\n  latency:\n    objective: 120\n", "task.md:7: slo.latency.objective: must be a percentage"),
    ("slo:\n  window: 4w\n", "task.md:6: slo.window: must be a number of days such as 30d, got '4w'"),
    ("slo:\n  availability: high\n", "slo.availability"),
])
def test_bad_slo_input(minimal, capsys, front, expected):
    write_task(minimal, GOOD_SERVICE + front)
    assert main(["generate", str(minimal)]) == 2
    err = capsys.readouterr().err
    assert expected in err, err
    assert not (minimal / "kit-out").exists()


def test_sandbox_copy_shortens_for_and_intervals(spec, ctx, tmp_path):
    from kit.families.observability.live import sandbox_config
    ctx.staged = tmp_path / "staged"
    ctx.staged.mkdir()
    folder = sandbox_config(spec, ctx)
    config = yaml.safe_load((folder / "prometheus.yml").read_text())
    assert config["global"]["scrape_interval"] == "1s" and config["alerting"]   # Alertmanager runs too
    app = next(job for job in config["scrape_configs"] if job["job_name"] == "shop-api")
    assert [c.get("labels", {}).get("namespace") for c in app["static_configs"]] == [
        "compose", "shop-api-dev", "shop-api-prod"]
    alerts = (folder / "rules" / "alerts.yml").read_text()
    assert "for: 5s" in alerts and "for: 2m" not in alerts
    assert "KitSandboxInhibitedWarn" in (folder / "rules" / "kit-sandbox.yml").read_text()
    alertmanager = yaml.safe_load((folder / "alertmanager.yml").read_text())
    assert {h["url"] for r in alertmanager["receivers"] for h in r["webhook_configs"]} == {
        "http://kit-webhook:8080/oncall-pager", "http://kit-webhook:8080/team-tickets"}
    assert alertmanager["route"]["group_wait"] == "1s" and alertmanager["route"]["routes"][1]["group_wait"] == "1s"
    assert Path(ctx.deliverables / "monitoring/rules/alerts.yml").read_text().count("for: 2m") >= 1


def test_sli_rules_aggregate_per_namespace_and_leave_out_probes(ctx):
    recording = yaml.safe_load(ctx.files["monitoring/rules/recording.yml"])["groups"][0]["rules"]
    for rule in recording:
        assert rule["expr"].count("sum by (namespace) (") == (3 if rule["labels"]["slo"] == "availability" else 2)
        assert 'endpoint!~"/healthz|/metrics"' in rule["expr"]   # shop-api's counter label, read from its source
    assert "namespace: compose" in ctx.files["monitoring/prometheus.yml"]
    alertmanager = yaml.safe_load(ctx.files["monitoring/alertmanager.yml"])
    assert "namespace" in alertmanager["route"]["group_by"] and "namespace" in alertmanager["inhibit_rules"][0]["equal"]
    dashboard = json.loads(ctx.files["monitoring/grafana/dashboards/service.json"])
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["namespace"]
    assert all('namespace=~\\"$namespace\\"' in json.dumps(t["expr"]) for p in dashboard["panels"]
               if not p.get("description") for t in p["targets"])


@pytest.mark.tools
@pytest.mark.parametrize("old,new,case", [
    ("sum by (namespace) (", "sum(", ""),   # every expected alert names its namespace
    (',endpoint!~"/healthz|/metrics"', "", "AvailabilityErrorBudgetBurnFast stays silent while /healthz answers 503"),
])
def test_mixed_namespaces_or_probe_errors_fail_the_unit_tests(spec, ctx, old, new, case):
    rel = "monitoring/rules/recording.yml"
    ctx.files[rel] = ctx.files[rel].replace(old, new)
    (ctx.deliverables / rel).write_text(ctx.files[rel])
    record = _check(spec, ctx, "observability.promtool_test")
    assert record.status == "failed" and case in record.log


def test_memory_uses_the_containers_limit_and_no_target_at_all_alerts(ctx):
    rules = {r["alert"]: r for r in yaml.safe_load(ctx.files["monitoring/rules/alerts.yml"])["groups"][1]["rules"]}
    assert rules["TargetMissing"]["expr"] == 'absent(up{job="shop-api"})'
    tests = [t["name"] for t in yaml.safe_load(ctx.files["monitoring/rules/tests.yml"])["tests"]]
    assert {"TargetMissing fires", "TargetMissing stays silent",
            "HighMemoryUsage stays silent against the pod's own larger limit"} <= set(tests)
    memory = next(r for g in yaml.safe_load(ctx.files["monitoring/rules/alerts.yml"])["groups"] for r in g["rules"]
                  if r["alert"] == "HighMemoryUsage")
    assert 'kube_pod_container_resource_limits{resource="memory"' in memory["expr"] and "536870912" in memory["annotations"]["description"]


def test_operator_labels_reach_the_servicemonitor_and_the_prometheusrule(example):
    task = example / ".claude" / "task.md"
    task.write_text(task.read_text().replace("slo:\n", "slo:\n  operator_labels: {release: prom}\n", 1))
    files = render_observability(load_spec(example))
    for rel in ("k8s/monitoring/base/servicemonitor.yaml", "k8s/monitoring/base/prometheusrule.yaml"):
        assert all(d["metadata"]["labels"]["release"] == "prom" for d in yaml.safe_load_all(files[rel]))


def test_opentelemetry_settings_follow_the_sdk(example, tmp_path):
    """No SDK: no OTEL_* anywhere, and a planted setting fails the rule. With opentelemetry-sdk in
    the requirements the compose override gives the app its settings, and dropping them fails."""
    from kit.families.observability import compose_checks
    from kit.families.observability.checks import static_checks as obs_checks
    spec = load_spec(example)
    files = render_all(spec)
    assert not [rel for rel, text in files.items() if "OTEL_EXPORTER_OTLP_ENDPOINT" in text and not rel.endswith(".md")]
    planted = dict(files)
    planted["k8s/base/config.env"] += "OTEL_EXPORTER_OTLP_ENDPOINT=http://otel-collector.monitoring:4318\n"
    record = obs_checks(spec, VerifyContext(tmp_path, planted), only="observability.rule.otel_sdk")[0]
    assert record.status == "failed" and "k8s/base/config.env sets OTEL_*" in record.reason
    requirements = example / "app" / "requirements.txt"
    requirements.write_text(requirements.read_text() + "opentelemetry-distro==0.50b0\n")
    spec = load_spec(example)
    files = render_all(spec)
    ctx = VerifyContext(tmp_path, files)
    assert obs_checks(spec, ctx, only="observability.rule.otel_sdk")[0].passed
    assert compose_checks.consistency(spec, files).passed
    broken = dict(files)
    broken["monitoring/compose.monitoring.yaml"] = files["monitoring/compose.monitoring.yaml"].replace(
        '"http://otel-collector:4318"', '"http://collector:4318"')
    record = compose_checks.consistency(spec, broken)
    assert record.status == "failed" and "differ from kit/core/otel.py::otel_env" in record.reason
    broken["monitoring/compose.monitoring.yaml"] = broken["monitoring/compose.monitoring.yaml"].replace(
        "OTEL_EXPORTER_OTLP_ENDPOINT", "X_ENDPOINT")
    record = obs_checks(spec, VerifyContext(tmp_path, broken), only="observability.rule.otel_sdk")[0]
    assert record.status == "failed" and "does not give the app its OTEL_* settings" in record.reason
