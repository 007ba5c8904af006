"""The request-rate autoscalers (hpa-rps: an HPA on a Pods metric and the prometheus-adapter rule;
keda: a ScaledObject with a Prometheus trigger), each rule the other system enforces broken on
purpose, and scaling.measured feeding the prod overlay and the Terraform node pool."""
from __future__ import annotations

import re

import pytest
import yaml

from kit.cli import main
from kit.families import render_all
from kit.families.scaling import autoscalers, rules
from kit.spec import load_spec
from tests.conftest import copy_example

COUNTER = "shop_http_requests_total"
MEASURED = "  measured: {capacity_rps: 20, cpu_at_capacity: 0.3, memory_mib: 100, time_to_healthy_s: 2}\n"


def project(tmp_path, scaling: str, *, own_prod: bool = True, own_pool: bool = True):
    """The example with its scaling mechanism line replaced by `scaling`, optionally without the
    prod figures and node pool bounds the example's task states."""
    path = copy_example(tmp_path / "shop-api")
    task = path / ".claude" / "task.md"
    text = task.read_text().replace("  mechanism: hpa-cpu\n", scaling)
    if not own_prod:
        text = text.replace("  environments:\n    prod: {replicas: 3, min_replicas: 3, max_replicas: 10, memory: 768Mi}\n", "")
    if not own_pool:
        text = text.replace("node_pool: {instance_type: m6i.large, min: 2, max: 5}", "node_pool: {instance_type: m6i.large}")
    task.write_text(text)
    return path


def built(tmp_path, scaling: str, **kw):
    spec = load_spec(project(tmp_path, scaling, **kw))
    return spec, render_all(spec)


def edit(files: dict[str, str], rel: str, old: str, new: str) -> dict[str, str]:
    assert old in files[rel], (old, files[rel])
    return {**files, rel: files[rel].replace(old, new)}


# --- hpa-rps -------------------------------------------------------------------------------------

RPS = "  mechanism: hpa-rps\n  target_rps_per_pod: 40\n"


def test_hpa_rps_renders_a_pods_metric_and_the_adapter_rule_for_the_apps_counter(tmp_path):
    _, files = built(tmp_path, RPS)
    hpa = next(d for d in yaml.safe_load_all(files["k8s/base/autoscaling.yaml"]) if d["kind"] == "HorizontalPodAutoscaler")
    assert hpa["spec"]["metrics"] == [{"type": "Pods", "pods": {"metric": {"name": "shop_http_requests_per_second"},
                                                                 "target": {"type": "AverageValue", "averageValue": "40000m"}}}]
    rule = yaml.safe_load(files[autoscalers.ADAPTER])["rules"][0]
    assert rule["name"] == {"matches": f"^{COUNTER}$", "as": "shop_http_requests_per_second"}
    assert autoscalers.rule_selects(rule) == COUNTER
    assert autoscalers.adapter_problems(files, COUNTER) == []
    assert autoscalers.scaledobject_files(files) == {}


@pytest.mark.parametrize("case,rel,old,new,expected", [
    ("adapter-name-differs", autoscalers.ADAPTER, 'as: "shop_http_requests_per_second"', 'as: "shop_rps"',
     "the HPA asks for shop_http_requests_per_second, the adapter serves shop_rps: the names must be equal"),
    ("hpa-metric-not-pods", "k8s/base/autoscaling.yaml", "    - type: Pods ", "    - type: Object ",
     "no HPA metric of type Pods (found Object)"),
    ("pods-target-not-average", "k8s/base/autoscaling.yaml", "type: AverageValue", "type: Value",
     "a Pods metric needs type AverageValue"),
    ("wrong-counter", autoscalers.ADAPTER, '{__name__="shop_http_requests_total"', '{__name__="http_requests_total"',
     "seriesQuery selects http_requests_total, the app exports shop_http_requests_total"),
    ("no-pod-resource", autoscalers.ADAPTER, "pod: {resource: pod}", "pod: {resource: service}",
     "resources maps no label to the pod resource"),
    ("unknown-field", autoscalers.ADAPTER, "    metricsQuery:", "    metricQuery:", "unknown field(s) ['metricQuery']"),
])
def test_each_adapter_rule_broken(tmp_path, case, rel, old, new, expected):
    _, files = built(tmp_path, RPS)
    problems = autoscalers.adapter_problems(edit(files, rel, old, new), COUNTER)
    assert any(expected in p for p in problems), problems


def test_rate_mechanisms_need_a_target(capsys, tmp_path):
    path = project(tmp_path, "  mechanism: hpa-rps\n")
    assert main(["generate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "scaling.mechanism: mechanism hpa-rps scales on requests per second per pod, and the task gives no target" in err


# --- keda ----------------------------------------------------------------------------------------

KEDA = "  mechanism: keda\n  target_rps_per_pod: 40\n"
PROD_SO = "k8s/overlays/prod/scaledobject.yaml"


def test_keda_renders_a_scaledobject_valid_against_the_crd_and_no_plain_hpa(tmp_path):
    _, files = built(tmp_path, KEDA)
    objects = [d for d in yaml.safe_load_all(autoscalers.scaledobject_text(files)) if d]
    assert list(autoscalers.scaledobject_files(files)) == [f"k8s/overlays/{e}/scaledobject.yaml" for e in ("dev", "prod", "staging")]
    assert "k8s/scaling/scaledobject.yaml" not in files
    assert [o["metadata"]["namespace"] for o in objects] == ["shop-api-dev", "shop-api-prod", "shop-api-staging"]
    assert [(o["spec"]["minReplicaCount"], o["spec"]["maxReplicaCount"]) for o in objects] == [(1, 2), (3, 10), (2, 4)]
    so = objects[1]
    assert so["spec"]["triggers"][0]["metadata"] == {
        "serverAddress": "http://prometheus-operated.monitoring.svc:9090",
        "query": 'sum(rate(shop_http_requests_total{namespace="shop-api-prod"}[2m]))', "threshold": "40",
        "ignoreNullValues": "false"}
    assert so["spec"]["fallback"] == {"failureThreshold": 3, "replicas": 10}
    for env in ("dev", "staging", "prod"):
        assert "  - scaledobject.yaml" in files[f"k8s/overlays/{env}/kustomization.yaml"]
    assert autoscalers.hpas(files) == []
    assert "HorizontalPodAutoscaler" not in files["k8s/overlays/prod/kustomization.yaml"]
    assert autoscalers.keda_problems(files, COUNTER) == []
    assert rules.hpa_behavior(autoscalers.scaledobject_text(files), keda=True).status == "passed"


def test_the_shipped_crd_schema_names_its_source():
    text = autoscalers.CRD_SCHEMA.read_text()
    assert "kedacore/keda/blob/v2.20.1/config/crd/bases/keda.sh_scaledobjects.yaml" in text


@pytest.mark.parametrize("case,old,new,expected", [
    ("unknown-field", "  maxReplicaCount:", "  maxReplicas:", "CRD schema: spec: Additional properties are not allowed"),
    ("wrong-type", "  pollingInterval: 15", "  pollingInterval: often", "CRD schema: spec.pollingInterval: 'often' is not of type 'integer'"),
    ("no-threshold", "        threshold: \"40\"\n", "\n", "the prometheus trigger needs threshold"),
    ("query-other-counter", "sum(rate(shop_http_requests_total", "sum(rate(http_requests_total",
     "the query selects http_requests_total, the app exports shop_http_requests_total"),
])
def test_each_keda_rule_broken(tmp_path, case, old, new, expected):
    _, files = built(tmp_path, KEDA)
    problems = autoscalers.keda_problems(edit(files, PROD_SO, old, new), COUNTER)
    assert any(expected in p for p in problems), problems


def test_keda_and_a_plain_hpa_on_the_same_deployment_fail(tmp_path):
    _, files = built(tmp_path, KEDA)
    _, cpu = built(tmp_path / "cpu", "  mechanism: hpa-cpu\n")
    both = {**files, "k8s/base/autoscaling.yaml": cpu["k8s/base/autoscaling.yaml"]}
    problems = autoscalers.keda_problems(both, COUNTER)
    assert any("HorizontalPodAutoscaler/shop-api scales Deployment/shop-api, which the ScaledObject scales" in p
               for p in problems), problems


# --- PromQL through promtool ---------------------------------------------------------------------

@pytest.mark.tools
@pytest.mark.parametrize("mechanism", [RPS, KEDA], ids=["hpa-rps", "keda"])
def test_promql_parses_and_selects_the_counter(tmp_path, mechanism):
    _, files = built(tmp_path, mechanism)
    record = autoscalers.promql_record(files, COUNTER)
    assert record.status == "passed", record.reason + record.log
    assert all(COUNTER in q for q in record.figures["queries"])


@pytest.mark.tools
def test_promql_broken_on_purpose(tmp_path):
    _, files = built(tmp_path, KEDA)
    broken = edit(files, PROD_SO, "[2m]))", "[2m])")
    record = autoscalers.promql_record(broken, COUNTER)
    assert record.status == "failed" and "promtool" in record.tool
    _, rps = built(tmp_path / "rps", RPS)
    record = autoscalers.promql_record(edit(rps, autoscalers.ADAPTER, "[2m])) by", "[2m] by"), COUNTER)
    assert record.status == "failed"
    other = autoscalers.promql_record(edit(files, PROD_SO, "rate(shop_http_requests_total",
                                           "rate(other_total"), COUNTER)
    assert other.status == "failed" and "selects other_total, not shop_http_requests_total" in other.reason


# --- scaling.measured feeds the prod overlay and the node pool -----------------------------------

def test_measured_feeds_the_prod_overlay_and_the_node_pool(tmp_path):
    spec, files = built(tmp_path, "  mechanism: hpa-cpu\n" + MEASURED, own_prod=False, own_pool=False)
    # W = 20 / 1.3 = 15.4: min max(2, ceil(10 / 15.4)) = 2, max ceil(60 / 15.4) = 4; CPU 300m; memory ceil16(150) = 160Mi
    kust = files["k8s/overlays/prod/kustomization.yaml"]
    assert "/spec/minReplicas, value: 2}" in kust and "/spec/maxReplicas, value: 4}" in kust
    patch = yaml.safe_load(files["k8s/overlays/prod/patch-deployment.yaml"])
    res = patch["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert res == {"requests": {"cpu": "300m", "memory": "160Mi"}, "limits": {"cpu": "1000m", "memory": "160Mi"}}
    # 5 pods per m6i.large (1730m free / 300m); 4 + 1 surge + 2 dependency pods -> 2 nodes
    assert re.search(r'variable "node_max_size" \{[^}]*default\s*=\s*2\b', files[rules.TERRAFORM_PROD], re.S)
    staging = files["k8s/overlays/staging/patch-deployment.yaml"]
    assert '"500m"' in staging                       # only prod is sized from the measurement
    record = rules.measured_record(spec, files)
    assert record.status == "passed", record.reason
    assert record.figures["expected"]["maxReplicas"] == 4 and not record.figures["warnings"]


def test_the_tasks_own_figures_win_with_a_warning(tmp_path):
    spec, files = built(tmp_path, "  mechanism: hpa-cpu\n" + MEASURED)
    assert "/spec/maxReplicas, value: 10}" in files["k8s/overlays/prod/kustomization.yaml"]
    record = rules.measured_record(spec, files)
    assert record.status == "passed", record.reason
    assert "warning: maxReplicas: the task states 10 (kubernetes.environments.prod.max_replicas), the measurement " \
           "gives 4" in record.reason
    assert "warning: node_max_size: the task states 5 (cloud.node_pool.max)" in record.reason


@pytest.mark.parametrize("rel,old,new,expected", [
    ("k8s/overlays/prod/kustomization.yaml", "/spec/maxReplicas, value: 4}", "/spec/maxReplicas, value: 9}",
     "maxReplicas: the files carry 9, expected 4"),
    ("k8s/overlays/prod/patch-deployment.yaml", 'cpu: "300m"', 'cpu: "500m"', "cpu_request_m: the files carry 500, expected 300"),
    (rules.TERRAFORM_PROD, "default     = 2\n\n  validation {\n    condition     = var.node_max_size",
     "default     = 7\n\n  validation {\n    condition     = var.node_max_size", "node_max_size: the files carry 7, expected 2"),
])
def test_measured_consistency_broken(tmp_path, rel, old, new, expected):
    spec, files = built(tmp_path, "  mechanism: hpa-cpu\n" + MEASURED, own_prod=False, own_pool=False)
    record = rules.measured_record(spec, edit(files, rel, old, new))
    assert record.status == "failed" and expected in record.reason, record.reason


def test_measured_feeds_the_rate_target(tmp_path):
    spec, files = built(tmp_path, "  mechanism: hpa-rps\n" + MEASURED, own_prod=False, own_pool=False)
    assert "averageValue: 15400m" in files["k8s/base/autoscaling.yaml"]      # W = 20 / 1.3
    assert rules.measured_record(spec, files).status == "passed"
    record = rules.measured_record(spec, edit(files, "k8s/base/autoscaling.yaml", "15400m", "30000m"))
    assert record.status == "failed" and "rps_per_pod: the files carry 30.0, expected 15.4" in record.reason


def test_without_measured_the_record_is_skipped_with_its_reason(tmp_path):
    spec, files = built(tmp_path, "  mechanism: hpa-cpu\n")
    record = rules.measured_record(spec, files)
    assert record.status == "skipped" and "commits no scaling.measured" in record.reason


def test_the_notebook_views_show_the_autoscaler_and_the_measured_figures(tmp_path):
    from kit.families.scaling import views
    spec, files = built(tmp_path, "  mechanism: keda\n" + MEASURED, own_prod=False, own_pool=False)
    assert [p for p, _ in views.autoscaler_files(files)] == list(autoscalers.scaledobject_files(files))
    rows = views.measured_rows([rules.measured_record(spec, files)])
    assert {"figure": "maxReplicas", "generation used": 4, "from": rows[1]["from"], "the files carry": 4} in rows
    assert {r["figure"] for r in rows} >= {"minReplicas", "cpu_request_m", "memory_request_mib", "rps_per_pod",
                                           "node_max_size"}


@pytest.mark.tools
@pytest.mark.parametrize("mechanism", [RPS, KEDA + MEASURED], ids=["hpa-rps", "keda-measured"])
def test_the_overlays_still_build_and_validate(tmp_path, mechanism):
    """kubectl kustomize builds every overlay without the HPA patch (keda) or with the Pods metric
    (hpa-rps), and the built objects validate against Kubernetes' schemas (strict)."""
    from kit.core.k8s import OVERLAYS, build_overlay
    from kit.families.kubernetes.checks import validate
    spec, files = built(tmp_path, mechanism)
    out = tmp_path / "out"
    for rel, text in files.items():
        if rel.startswith(("k8s/", "backup/")):          # the overlays include the backup component
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / rel).write_text(text)
    objects = {}
    for env in OVERLAYS:
        record, objects[env] = build_overlay(out, env)
        assert record.status == "passed", record.reason + record.log
    kinds = {o["kind"] for o in objects["prod"]}
    assert ("HorizontalPodAutoscaler" in kinds) == (spec.option("scaling").mechanism != "keda")
    k = spec.option("kubernetes")
    record = validate(objects, k.version, k.crd_kinds + ("Issuer", "Certificate"))
    assert record.status == "passed", record.log
    from kit.families.kubernetes.cluster_rules import keda_rule
    keda = spec.option("scaling").mechanism == "keda"
    for env in OVERLAYS:
        scaled = [o for o in objects[env] if o["kind"] == "ScaledObject"]
        assert [o["metadata"]["namespace"] for o in scaled] == ([f"shop-api-{env}"] if keda else [])
        assert keda_rule(spec, objects[env]) == []
    assert record.figures["crd_kinds_validated_against_their_crd"] == (["ScaledObject (keda.sh/v1alpha1)"] if keda else [])


def _built_overlay(tmp_path, mechanism: str, env: str = "prod"):
    from kit.core.k8s import build_overlay
    spec, files = built(tmp_path, mechanism)
    out = tmp_path / "out"
    for rel, text in files.items():
        if rel.startswith(("k8s/", "backup/")):
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / rel).write_text(text)
    record, objects = build_overlay(out, env)
    assert record.status == "passed", record.reason + record.log
    return spec, objects


@pytest.mark.tools
def test_keda_overlay_rule_broken(tmp_path):
    """The overlay CI applies must carry exactly one ScaledObject for the Deployment in its namespace
    and no HPA: each fault planted in the built prod overlay."""
    from kit.families.kubernetes.cluster_rules import keda_rule
    spec, objects = _built_overlay(tmp_path, KEDA)
    assert keda_rule(spec, objects) == []
    from kit.families.kubernetes.cluster_rules import replica_bounds
    from kit.families.kubernetes.rulebook import RULES
    deployment = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "shop-api")
    assert replica_bounds(objects, deployment) == (3, 10)          # the quota and PDB rules see KEDA's bounds
    assert {r.id: r.check(spec, objects) for r in RULES if r.check(spec, objects)} == {}
    without = [o for o in objects if o["kind"] != "ScaledObject"]          # the old k8s/scaling/ layout
    assert any("0 ScaledObject(s) scale Deployment/shop-api" in p for p in keda_rule(spec, without))
    so = next(o for o in objects if o["kind"] == "ScaledObject")
    twice = objects + [so]
    assert any("2 ScaledObject(s)" in p for p in keda_rule(spec, twice))
    moved = [{**o, "metadata": {**o["metadata"], "namespace": "shop-api-dev"}} if o["kind"] == "ScaledObject" else o
             for o in objects]
    assert any("is in namespace shop-api-dev, the Deployment in shop-api-prod" in p for p in keda_rule(spec, moved))
    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "shop-api"},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "shop-api"}}}
    assert any("HorizontalPodAutoscaler/shop-api: with KEDA no other HPA" in p for p in keda_rule(spec, objects + [hpa]))


@pytest.mark.tools
def test_kubernetes_validate_checks_the_scaledobject_against_kedas_crd(tmp_path):
    from kit.families.kubernetes.checks import validate
    spec, objects = _built_overlay(tmp_path, KEDA)
    k = spec.option("kubernetes")
    extras = ("Issuer", "Certificate")
    broken = [{**o, "spec": {**o["spec"], "maxReplicas": 3}} if o["kind"] == "ScaledObject" else o for o in objects]
    record = validate({"prod": broken}, k.version, k.crd_kinds + extras)
    assert record.status == "failed" and "ScaledObject/shop-api" in record.log and "KEDA's CRD schema" in record.log


def test_keda_trigger_reads_a_missing_metric_as_an_error_with_a_fallback(tmp_path):
    _, files = built(tmp_path, KEDA)
    for case, old, new, expected in [
        ("null-as-zero", '        ignoreNullValues: "false"\n', "", 'ignoreNullValues is not "false"'),
        ("no-fallback", "  fallback:\n    failureThreshold: 3\n    replicas: 10\n", "", "no spec.fallback"),
        ("fallback-below-max", "    replicas: 10\n", "    replicas: 1\n", "fallback replicas 1"),
    ]:
        problems = autoscalers.keda_problems(edit(files, PROD_SO, old, new), COUNTER)
        assert any(expected in p for p in problems), (case, problems)


@pytest.mark.parametrize("mechanism", [RPS, KEDA, "  mechanism: hpa-cpu\n"], ids=["hpa-rps", "keda", "hpa-cpu"])
def test_the_readmes_pin_staging_to_one_pod_and_name_the_add_ons(tmp_path, mechanism):
    """The load test README pins staging to one pod (its floor is 2) the way the mechanism allows; the
    k8s README names the add-on the mechanism needs and, for KEDA, deletes the old HPA first."""
    _, files = built(tmp_path, mechanism)
    keda = "keda" in mechanism
    loadtest, k8s = files["loadtest/README.md"], files["k8s/README.md"]
    assert "LOAD_SAMPLES=" in loadtest and "top pod -l app.kubernetes.io/name=shop-api" in loadtest
    assert ('annotate scaledobject shop-api autoscaling.keda.sh/paused-replicas="1"' in loadtest) == keda
    assert ("patch hpa shop-api -p '{\"spec\":{\"minReplicas\":1,\"maxReplicas\":1}}'" in loadtest) != keda
    assert "-n shop-api-staging" in loadtest and "keeps 2 or more pods (its floor)" in " ".join(loadtest.split())
    assert ("metrics-server, for the HorizontalPodAutoscaler" in k8s) != keda
    assert ("kubectl -n shop-api-ENV delete hpa shop-api" in k8s) == keda
    assert ("kedacore/keda --version 2.20.1" in k8s) == keda
    assert ("rules.default: false" in k8s) == ("hpa-rps" in mechanism)
    assert "the HPA raises it" not in k8s or not keda
