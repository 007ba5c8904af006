"""The observability family's cross-system rules (kit/families/observability/rules.py): each passes
on the generated deliverables and fails when the fault it encodes is planted on purpose."""
from __future__ import annotations

import re

import pytest
import yaml

from kit.cli import main
from kit.core.context import VerifyContext
from kit.families import render_all
from kit.families.observability import checks, routing, rules, sources
from kit.families.observability.render import render_observability
from kit.render import write_files
from kit.spec import load_spec


@pytest.fixture
def spec(example):
    return load_spec(example)


@pytest.fixture
def files(spec):
    return render_all(spec)


def _context(files, tmp_path) -> VerifyContext:
    write_files(files, tmp_path / "out")
    return VerifyContext(deliverables=tmp_path / "out", files=files)


def _set_slo(example, text: str) -> None:
    task = example / ".claude" / "task.md"
    task.write_text(task.read_text().replace("slo:\n", "slo:\n" + text, 1))


# ---------------------------------------------------------------- 1. the operator's selectors

def test_operator_objects_carry_kube_prometheus_stacks_default_release_label(spec, files):
    for rel in (rules.SERVICE_MONITORS, "k8s/monitoring/base/servicemonitor-exporters.yaml", rules.PROMETHEUS_RULE):
        for doc in yaml.safe_load_all(files[rel]):
            assert doc["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    record = rules.operator_selector(spec, files)
    assert record.passed and record.figures["selector"] == {"release": "kube-prometheus-stack"}
    assert record.figures["objects"] == ["PrometheusRule/shop-api", "ServiceMonitor/shop-api-exporters",
                                         "ServiceMonitor/shop-api"]


@pytest.mark.parametrize("rel", [rules.SERVICE_MONITORS, "k8s/monitoring/base/servicemonitor-exporters.yaml",
                                 rules.PROMETHEUS_RULE])
def test_an_object_without_the_release_label_fails_the_selector_rule(spec, files, rel):
    files[rel] = files[rel].replace('    release: "kube-prometheus-stack"\n', "")
    record = rules.operator_selector(spec, files)
    assert record.status == "failed" and "lacks release=kube-prometheus-stack" in record.reason


def test_the_release_name_is_set_by_the_task(example):
    _set_slo(example, "  prometheus_release: monitoring\n")
    spec = load_spec(example)
    files = render_observability(spec)
    labels = yaml.safe_load(files[rules.PROMETHEUS_RULE])["metadata"]["labels"]
    assert labels["release"] == "monitoring" and rules.operator_selector(spec, files).passed


def test_operator_labels_name_what_a_custom_prometheus_selects(example):
    _set_slo(example, "  operator_labels: {team: shop}\n")
    spec = load_spec(example)
    files = render_observability(spec)
    assert "release" not in yaml.safe_load(files[rules.PROMETHEUS_RULE])["metadata"]["labels"]
    assert rules.operator_selector(spec, files).figures["selector"] == {"team": "shop"}


def test_operator_labels_without_the_declared_release_are_refused(example, capsys):
    _set_slo(example, "  prometheus_release: prom\n  operator_labels: {team: shop}\n")
    assert main(["generate", str(example)]) == 2
    assert "slo.operator_labels: must include release: prom" in capsys.readouterr().err


# ---------------------------------------------------------------- 2. exported_endpoint

EXPORTED = ',exported_endpoint!~"/healthz|/metrics"'


def test_the_probe_filter_matches_the_route_under_both_names(spec, files):
    for rel in ("monitoring/rules/recording.yml", rules.PROMETHEUS_RULE):
        assert files[rel].count('endpoint!~"/healthz|/metrics",exported_endpoint!~"/healthz|/metrics"') == 35   # 7 windows x 5 selectors
    assert 'honorLabels: false' in files[rules.SERVICE_MONITORS]
    record = rules.exported_labels(spec, files)
    assert record.passed and record.figures["clashing"] == ["endpoint"] and record.figures["matchers_checked"] > 20


def test_a_rule_without_the_exported_name_fails_the_clash_rule(spec, files):
    files[rules.PROMETHEUS_RULE] = files[rules.PROMETHEUS_RULE].replace(EXPORTED, "", 1)
    record = rules.exported_labels(spec, files)
    assert record.status == "failed"
    assert 'slo:sli_error:ratio_rate5m matches endpoint!~"/healthz|/metrics" but not exported_endpoint' in record.reason


@pytest.mark.tools
def test_the_operator_shaped_promtool_case_catches_probes_diluting_errors(spec, files, tmp_path):
    """3% of user requests fail beside 10x as many probes, with the route in exported_endpoint:
    the fast burn pages; matched on endpoint alone, the probes dilute it below every threshold."""
    name = ("AvailabilityErrorBudgetBurnFast fires when 3% of user requests fail, scraped through "
            "prometheus-operator (exported_endpoint) beside 10x as many /healthz probes")
    assert name in [t["name"] for t in yaml.safe_load(files["monitoring/rules/tests.yml"])["tests"]]
    files["monitoring/rules/recording.yml"] = files["monitoring/rules/recording.yml"].replace(EXPORTED, "")
    record = checks.rule_tests(files, _context(files, tmp_path).deliverables)
    assert record.status == "failed" and name in " ".join(record.log.split())


# ---------------------------------------------------------------- 3. Fluent Bit's config vs its image

def test_fluent_bit_is_pinned_to_a_release_that_reads_the_parsers_section(spec, files):
    assert "image: cr.fluentbit.io/fluent/fluent-bit:3.2.10" in files[rules.FLUENT_BIT_DAEMONSET]
    assert "parsers" in yaml.safe_load(files[rules.FLUENT_BIT_CONFIG])
    record = rules.fluent_bit_version(spec, files)
    assert record.passed and record.figures["needs"] == "3.2.0"


@pytest.mark.parametrize("image,reason", [
    ("cr.fluentbit.io/fluent/fluent-bit:3.1.9", "is 3.1.9, but the config's top-level parsers: section needs Fluent Bit 3.2.0"),
    ("cr.fluentbit.io/fluent/fluent-bit:latest", "no version in the tag"),
])
def test_an_image_older_than_the_config_fails_the_version_rule(spec, files, image, reason):
    rel = rules.FLUENT_BIT_DAEMONSET
    files[rel] = files[rel].replace("cr.fluentbit.io/fluent/fluent-bit:3.2.10", image)
    record = rules.fluent_bit_version(spec, files)
    assert record.status == "failed" and reason in record.reason


def test_a_section_no_release_reads_fails_the_version_rule(spec, files):
    files[rules.FLUENT_BIT_CONFIG] = files[rules.FLUENT_BIT_CONFIG].replace("\nparsers:\n", "\nparser:\n")
    record = rules.fluent_bit_version(spec, files)
    assert record.status == "failed" and "unknown top-level section 'parser'" in record.reason


# ---------------------------------------------------------------- 4. routing by environment

@pytest.mark.tools
def test_dev_and_staging_pages_become_tickets_and_prod_pages(spec, files, tmp_path):
    record = routing.env_routing(spec, _context(files, tmp_path))
    assert record.passed, record.reason
    routes = {(r["labels"]["namespace"], r["labels"]["severity"]): r["receivers"] for r in record.figures["routes"]}
    assert routes[("shop-api-dev", "page")] == routes[("shop-api-staging", "page")] == [routing.TICKETS]
    assert routes[("shop-api-prod", "page")] == [routing.PAGER]
    assert routes[("shop-api-prod", "warn")] == [routing.TICKETS]


@pytest.mark.tools
def test_without_the_environment_route_a_dev_page_fails_the_routing_rule(spec, files, tmp_path):
    rel = routing.ALERTMANAGER
    files[rel] = files[rel].replace("""    - matchers: ['namespace=~"shop-api-dev|shop-api-staging"']   # dev and staging never page
      receiver: team-tickets
""", "")
    record = routing.env_routing(spec, _context(files, tmp_path))
    assert record.status == "failed"
    assert "a page alert from namespace shop-api-dev goes to oncall-pager: it should not page" in record.reason


def test_the_rule_tests_expect_a_dev_alert_only_as_a_ticket(files):
    tests = yaml.safe_load(files["monitoring/rules/tests.yml"])["tests"]
    expected = [a["exp_labels"] for t in tests for r in t["alert_rule_test"] for a in r.get("exp_alerts") or []]
    dev = [labels for labels in expected if labels.get("namespace") == "shop-api-dev"]
    assert expected and dev and {labels["severity"] for labels in dev} == {"ticket"}


# ---------------------------------------------------------------- 5. what the dashboard reads has a producer

DASHBOARD = "monitoring/grafana/dashboards/service.json"
EXPORTER_MONITOR = "k8s/monitoring/base/servicemonitor-exporters.yaml"


def test_every_dashboard_metric_has_a_scrape_target_in_every_setup(spec, files):
    record = sources.dashboard_sources(spec, files)
    assert record.passed, record.reason
    for jobs in record.figures["setups"].values():
        assert {"shop-api", "db-exporter", "cache-exporter"} <= set(jobs)
    assert {"pg_up", "redis_up", "shop_http_requests_total"} <= set(record.figures["metrics"])


@pytest.mark.parametrize("rel,old,new,reason", [
    # the fault as reviewed: panels on pg_up with no exporter scraped anywhere
    ("monitoring/prometheus.yml", 'job_name: "db-exporter"', 'job_name: "postgres"',
     "compose (monitoring/prometheus.yml) defines no scrape job db-exporter (for pg_up)"),
    (EXPORTER_MONITOR, "app.kubernetes.io/component: metrics-exporter", "app.kubernetes.io/component: exporter",
     "prometheus-operator (ServiceMonitors) defines no scrape job cache-exporter (for redis_up)"),
    ("monitoring/prometheus-kubernetes.yml", 'regex: "shop-api;metrics-exporter"', 'regex: "shop-api;exporter"',
     "Kubernetes without the operator (prometheus-kubernetes.yml) defines no scrape job db-exporter (for pg_up)"),
    (DASHBOARD, "pg_up{", "pg_stat_activity_count{", "no target of compose (monitoring/prometheus.yml) exports "
     "pg_stat_activity_count (jobs db-exporter)"),
    (DASHBOARD, "slo:sli_error:ratio_rate5m", "slo:sli_error:ratio_rate1m", "slo:sli_error:ratio_rate1m is recorded by no rule"),
])
def test_a_panel_without_a_producer_fails_the_sources_rule(spec, files, rel, old, new, reason):
    assert old in files[rel]
    files[rel] = files[rel].replace(old, new)
    record = sources.dashboard_sources(spec, files)
    assert record.status == "failed" and reason in record.reason, record.reason


def test_the_minimal_service_has_no_exporters_and_no_dependency_panels(minimal):
    spec = load_spec(minimal)
    files = render_all(spec)
    assert not [rel for rel in files if rel.endswith("/exporters.yaml")]
    assert all("exporters.yaml" not in files[f"k8s/monitoring/overlays/{env}/kustomization.yaml"]
               for env in ("dev", "staging", "prod"))
    assert "k8s/monitoring/base/servicemonitor-exporters.yaml" not in files
    assert sources.dashboard_sources(spec, files).passed


# ---------------------------------------------------------------- scrape paths (no metrics path)

def _no_metrics(spec):
    import dataclasses
    return dataclasses.replace(spec, metrics_path="")


def test_scrape_paths_pass_on_the_example_and_on_a_service_without_metrics(spec, files):
    assert rules.scrape_paths(spec, files).status == "passed"
    bare = _no_metrics(spec)
    out = render_all(bare)
    record = rules.scrape_paths(bare, out)
    assert record.status == "passed", record.reason
    # no app scrape, ServiceMonitor, alert or SLO rule; the exporters are still scraped
    assert "k8s/monitoring/base/servicemonitor.yaml" not in out
    assert "servicemonitor.yaml" not in out["k8s/monitoring/base/kustomization.yaml"].replace("servicemonitor-exporters", "")
    assert f'job_name: "{spec.name}"' not in out["monitoring/prometheus.yml"]
    assert yaml.safe_load(out["monitoring/rules/alerts.yml"])["groups"] == []
    assert yaml.safe_load(out["monitoring/rules/recording.yml"])["groups"] == []
    assert 'job_name: "db-exporter"' in out["monitoring/prometheus.yml"]
    assert f'up{{job=\\"{spec.name}\\"' not in out["monitoring/grafana/dashboards/service.json"]


def test_scrape_paths_fail_on_an_app_scraped_at_a_guessed_path(spec, files):
    """The reviewer's fault: no metrics path, yet a scrape at /metrics and TargetDown on it."""
    bare = _no_metrics(spec)
    planted = render_all(bare)
    planted["monitoring/prometheus.yml"] = files["monitoring/prometheus.yml"]
    planted["k8s/monitoring/base/servicemonitor.yaml"] = files["k8s/monitoring/base/servicemonitor.yaml"]
    planted["monitoring/rules/alerts.yml"] = files["monitoring/rules/alerts.yml"]
    record = rules.scrape_paths(bare, planted)
    assert record.status == "failed"
    assert "prometheus.yml job shop-api scrapes shop-api at /metrics, but the service model has no metrics path" in record.reason
    assert "ServiceMonitor shop-api scrapes" in record.reason
    assert "alert TargetDown watches" in record.reason


def test_scrape_paths_fail_on_a_path_the_app_does_not_serve(spec, files):
    planted = dict(files, **{rules.SERVICE_MONITORS: files[rules.SERVICE_MONITORS].replace('path: "/metrics"', 'path: "/stats"')})
    record = rules.scrape_paths(spec, planted)
    assert record.status == "failed" and "at /stats, but it serves metrics at /metrics" in record.reason


def test_target_down_description_names_the_path_without_empty_parentheses(spec):
    from kit.families.observability.promrules import all_alerts
    down = next(a for a in all_alerts(spec, spec.option("slo")) if a.name == "TargetDown")
    assert "()" not in down.description and "/metrics" in down.description
    assert all_alerts(_no_metrics(spec), spec.option("slo")) == []


# ---------------------------------------------------------------- metrics kube-prometheus-stack drops

def test_dropped_metrics_pass_and_memory_reads_kube_state_metrics(spec, files):
    record = rules.dropped_metrics(spec, files)
    assert record.status == "passed", record.reason
    assert "kube_pod_container_resource_limits" in record.figures["metrics_read"]


def test_dropped_metrics_fail_on_cadvisors_container_spec_limit(spec, files):
    """The reviewer's fault: HighMemoryUsage divided by container_spec_memory_limit_bytes."""
    planted = dict(files, **{rules.PROMETHEUS_RULE: files[rules.PROMETHEUS_RULE].replace(
        "kube_pod_container_resource_limits", "container_spec_memory_limit_bytes")})
    record = rules.dropped_metrics(spec, planted)
    assert record.status == "failed"
    assert "HighMemoryUsage reads container_spec_memory_limit_bytes" in record.reason


# ---------------------------------------------------------------- dev and staging never page (Kubernetes)

def test_nonprod_severity_passes_and_pages_only_outside_dev_and_staging(spec, files):
    record = rules.nonprod_severity(spec, files)
    assert record.status == "passed", record.reason
    assert record.figures["severities"]["TargetDown@shop-api-dev"] == "ticket"
    assert rules._severity_in(yaml.safe_load(files["monitoring/rules/alerts.yml"])["groups"][1]["rules"][0]
                              ["labels"]["severity"], "shop-api-prod") == "page"
    tests = yaml.safe_load(files["monitoring/rules/tests.yml"])["tests"]
    dev = next(t for t in tests if t["name"].startswith("TargetDown fires in shop-api-dev"))
    assert dev["alert_rule_test"][0]["exp_alerts"][0]["exp_labels"]["severity"] == "ticket"


def test_nonprod_severity_fails_on_a_static_page(spec, files):
    """The reviewer's fault: severity page in every namespace, only compose's Alertmanager routing by env."""
    text = re.sub(r"severity: '\{\{ if match [^\n]*'", "severity: page", files[rules.PROMETHEUS_RULE])
    record = rules.nonprod_severity(spec, dict(files, **{rules.PROMETHEUS_RULE: text}))
    assert record.status == "failed"
    assert "TargetDown can fire for shop-api-staging with severity page" in record.reason


def test_nonprod_severity_fails_on_a_paging_absent_alert(spec, files):
    doc = yaml.safe_load(files[rules.PROMETHEUS_RULE])
    missing = next(r for g in doc["spec"]["groups"] for r in g["rules"] if r.get("alert") == "TargetMissing")
    missing["labels"]["severity"] = "page"
    record = rules.nonprod_severity(spec, dict(files, **{rules.PROMETHEUS_RULE: yaml.safe_dump(doc)}))
    assert record.status == "failed" and "TargetMissing can fire for (none: absent()" in record.reason


def test_live_exporters_is_skipped_not_failed_without_dependencies(minimal):
    """A service with no dependency has no exporter to prove: skipped with the reason, never failed."""
    from kit.families.observability.evaluate import exporters_up
    from kit.spec import load_spec
    record = exporters_up(load_spec(minimal), {}, prom=None)
    assert record.status == "skipped" and "no dependency with an exporter" in record.reason


@pytest.mark.parametrize("cloud", ["gcp", "azure"])
def test_exporter_secret_keys_follow_the_clouds_store(example, cloud):
    """The exporters' ExternalSecret read the app's secret under the cloud store's name; the
    AWS-style `service/SECRET` key is refused on GCP and Azure."""
    import dataclasses

    from kit.families import render_all
    from kit.families.observability.checks import static_checks
    from kit.spec import load_spec
    spec = load_spec(example)
    spec = dataclasses.replace(spec, options={**spec.options,
                                              "cloud": dataclasses.replace(spec.option("cloud"), provider=cloud)})
    files = render_all(spec)
    assert "key: shop-api-PGPASSWORD" in files["k8s/monitoring/overlays/prod/exporters.yaml"]
    ctx = VerifyContext(example, files)
    assert static_checks(spec, ctx, only="observability.rule.secret_names")[0].passed
    broken = dict(files)
    broken["k8s/monitoring/overlays/prod/exporters.yaml"] = files["k8s/monitoring/overlays/prod/exporters.yaml"].replace(
        "key: shop-api-PGPASSWORD", "key: shop-api/PGPASSWORD")
    record = static_checks(spec, VerifyContext(example, broken), only="observability.rule.secret_names")[0]
    assert record.status == "failed" and "'shop-api/PGPASSWORD' is not a valid secret name" in record.reason


# ---------------------------------------------------------------- one environment per cluster
def test_monitoring_overlays_target_only_their_environments_namespaces(spec, files):
    from kit.families.observability import namespaces
    record = namespaces.monitoring_namespaces(spec, files)
    assert record.passed, record.reason
    assert sorted(record.figures["overlays"]) == ["dev", "prod", "staging"]
    assert record.figures["overlays"]["dev"]["namespaces"] == ["monitoring", "shop-api-dev"]
    objects = namespaces.build(files, "k8s/monitoring/overlays/dev")
    assert {o["metadata"].get("namespace") for _, o in objects if o["kind"] == "NetworkPolicy"} == {"shop-api-dev"}
    assert any(rel == "k8s/monitoring/base/prometheusrule.yaml" for rel, _ in objects)   # the base is built too


def test_a_staging_object_in_the_dev_monitoring_overlay_fails(spec, files):
    """The fault of the single k8s/monitoring for every environment: the dev cluster has no shop-api-staging."""
    from kit.families.observability import namespaces
    rel = "k8s/monitoring/overlays/dev/exporters.yaml"
    files[rel] += files["k8s/monitoring/overlays/staging/exporters.yaml"].split("---", 1)[1].join(["---", ""])
    record = namespaces.monitoring_namespaces(spec, files)
    assert record.status == "failed"
    assert "k8s/monitoring/overlays/dev: NetworkPolicy/db-from-db-exporter" in record.reason
    assert "targets namespace shop-api-staging; a cluster running dev has only monitoring and shop-api-dev" in record.reason
    assert "overlays/staging:" not in record.reason


def test_an_object_without_a_namespace_fails_and_a_kustomization_namespace_counts(spec, files):
    from kit.families.observability import namespaces
    rel = "k8s/monitoring/overlays/prod/extra.yaml"
    files[rel] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: stray\n"
    kustomization = "k8s/monitoring/overlays/prod/kustomization.yaml"
    files[kustomization] += "  - extra.yaml\n"
    record = namespaces.monitoring_namespaces(spec, files)
    assert record.status == "failed" and "ConfigMap/stray (k8s/monitoring/overlays/prod/extra.yaml) targets no namespace" in record.reason
    files[kustomization] += "namespace: shop-api-staging\n"      # kustomize sets it on every namespaced object
    record = namespaces.monitoring_namespaces(spec, files)
    assert record.status == "failed" and "PrometheusRule/shop-api (k8s/monitoring/base/prometheusrule.yaml) " \
        "targets namespace shop-api-staging" in record.reason
    files[kustomization] = files[kustomization].replace("namespace: shop-api-staging\n", "")
    files[rel] = files[rel].replace("  name: stray\n", "  name: stray\n  namespace: monitoring\n")
    assert namespaces.monitoring_namespaces(spec, files).passed


def test_the_monitoring_namespaces_rule_runs_in_the_static_checks(example, spec, files):
    record = checks.static_checks(spec, VerifyContext(example, files), only="observability.rule.monitoring_namespaces")
    assert [r.check for r in record] == ["observability.rule.monitoring_namespaces"] and record[0].passed
