"""Kubernetes family: rendering, the task section's errors, and every consistency rule broken
on purpose. Needs kubectl (kustomize) and checkov, no Docker."""
from __future__ import annotations

import copy
import subprocess

import pytest
import yaml

from kit.cli import main
from kit.core.k8s import build_overlay
from kit.families.kubernetes.checks import validate
from kit.families.kubernetes.pod import translate
from kit.families.kubernetes.render import render_kubernetes
from kit.families.kubernetes.rules import consistency_problems
from kit.pipeline import generate, verify
from kit.spec import load_spec
from tests.conftest import EXAMPLE, write_task

GOOD = "service:\n  name: mini\n  source: src\n"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The example generated once; each overlay built by kubectl kustomize."""
    out = tmp_path_factory.mktemp("k8s") / "out"
    spec = load_spec(EXAMPLE, output=out)
    generate(spec)
    objects = {}
    for env in ("dev", "staging", "prod"):
        text = subprocess.run(["kubectl", "kustomize", f"k8s/overlays/{env}"], cwd=out, check=True,
                              capture_output=True, text=True).stdout
        objects[env] = [d for d in yaml.safe_load_all(text) if d]
    return spec, out, objects


def _find(objects, kind, name=None):
    return next(o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name))


@pytest.mark.tools
def test_overlays_differ_where_they_should(built):
    _spec, _out, objects = built
    rows = {}
    for env, objs in objects.items():
        deploy, hpa = _find(objs, "Deployment", "shop-api"), _find(objs, "HorizontalPodAutoscaler")
        rows[env] = (deploy["metadata"]["namespace"], deploy["spec"]["replicas"],
                     (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]),
                     _find(objs, "Ingress")["spec"]["rules"][0]["host"],
                     deploy["spec"]["template"]["spec"]["containers"][0]["image"])
    assert rows["dev"] == ("shop-api-dev", 1, (1, 2), "dev.shop.example.com", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop-api:dev")
    assert rows["prod"] == ("shop-api-prod", 3, (3, 10), "shop.example.com", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop-api:prod")
    assert rows["staging"][1:3] == (2, (2, 4))
    assert _find(objects["prod"], "Namespace")["metadata"]["name"] == "shop-api-prod"


@pytest.mark.tools
def test_static_checks_pass_on_the_example(built):
    spec, _out, _objects = built
    records = {r.check: r for r in verify(spec, ["kubernetes"], sandbox=False)}
    failed = {k: (r.reason, r.log[:500]) for k, r in records.items() if not r.passed}
    assert failed == {}
    assert set(records) >= {"kubernetes.kustomize.dev", "kubernetes.kustomize.prod", "kubernetes.checkov",
                            "kubernetes.validate.1.33", "kubernetes.validate.1.31", "kubernetes.consistency"}
    assert records["kubernetes.checkov"].figures["failed"] == 0 and records["kubernetes.checkov"].figures["passed"] > 100
    assert all("CKV_K8S_" in s and ":" in s for s in records["kubernetes.checkov"].figures["skips"])
    assert records["kubernetes.validate.1.33"].figures["crd_kinds_not_validated"] == \
        ["ExternalSecret (external-secrets.io/v1)"]


def test_strict_validation_fails_unknown_fields_and_undeclared_kinds(built):
    _spec, _out, objects = built
    dev = copy.deepcopy(objects["dev"])
    _find(dev, "Deployment", "shop-api")["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}
    record = validate({"dev": dev}, "1.33", ("ExternalSecret",))
    assert record.status == "failed" and "livenessprobe" in record.log
    undeclared = validate({"dev": objects["dev"]}, "1.33", ())
    assert undeclared.status == "failed" and "no schema for external-secrets.io/v1 ExternalSecret" in undeclared.log


@pytest.mark.tools
def test_checkov_fails_an_unhardened_pod(built, tmp_path):
    from kit.core.checkov import run_checkov
    dev = copy.deepcopy(objects := built[2]["dev"])
    container = _find(dev, "Deployment", "shop-api")["spec"]["template"]["spec"]["containers"][0]
    del container["securityContext"]
    (tmp_path / "dev.yaml").write_text(yaml.safe_dump_all(dev))
    record = run_checkov("k", "k8s/", "t", tmp_path, "kubernetes")
    assert record.status == "failed" and "CKV_K8S_20" in record.reason, record.reason
    assert objects is not dev


def _break(objects, how):
    objs = copy.deepcopy(objects)
    deploy = _find(objs, "Deployment", "shop-api")
    pod = deploy["spec"]["template"]["spec"]
    c = pod["containers"][0]
    how(objs, deploy, pod, c)
    return objs


BROKEN = [
    ("service-selector", lambda o, d, p, c: _find(o, "Service", "shop-api")["spec"].update(selector={"app": "shop-api"}),
     "Service/shop-api: selects {'app': 'shop-api'}, which no pod carries"),
    ("pdb-selector", lambda o, d, p, c: _find(o, "PodDisruptionBudget")["spec"]["selector"].update(
        matchLabels={"app.kubernetes.io/name": "shop"}), "PodDisruptionBudget/shop-api: selects"),
    ("netpol-selector", lambda o, d, p, c: _find(o, "NetworkPolicy", "shop-api-ingress")["spec"]["podSelector"].update(
        matchLabels={"tier": "web"}), "NetworkPolicy/shop-api-ingress: selects {'tier': 'web'}"),
    ("hpa-target", lambda o, d, p, c: _find(o, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"].update(name="shop"),
     "scales Deployment/shop, which does not exist"),
    ("deployment-selector", lambda o, d, p, c: d["spec"]["selector"]["matchLabels"].update({"tier": "x"}),
     "Deployment/shop-api: its selector does not match its own pod labels"),
    ("target-port", lambda o, d, p, c: _find(o, "Service", "shop-api")["spec"]["ports"][0].update(targetPort="web"),
     "targets 'web', which the container does not expose"),
    ("container-port", lambda o, d, p, c: c["ports"][0].update(containerPort=8080),
     "containerPort http=8080 is not the Dockerfile's EXPOSE [8000]"),
    ("probe-path", lambda o, d, p, c: c["livenessProbe"]["httpGet"].update(path="/health"),
     "livenessProbe probes '/health', not the health path /healthz"),
    ("probe-port", lambda o, d, p, c: c["readinessProbe"]["httpGet"].update(port=9000),
     "readinessProbe probes port 9000"),
    ("probe-missing", lambda o, d, p, c: c.pop("startupProbe"), "the container has no startupProbe"),
    ("ingress-service", lambda o, d, p, c: _find(o, "Ingress")["spec"]["rules"][0]["http"]["paths"][0]["backend"][
        "service"].update(name="web"), "routes to Service/web, which does not exist"),
    ("ingress-port", lambda o, d, p, c: _find(o, "Ingress")["spec"]["rules"][0]["http"]["paths"][0]["backend"][
        "service"].update(port={"name": "https"}), "routes to port {'name': 'https'}"),
    ("configmap-ref", lambda o, d, p, c: c["envFrom"][0]["configMapRef"].update(name="settings"),
     "reads ConfigMap settings, which does not exist"),
    ("secret-ref", lambda o, d, p, c: next(v for v in p["volumes"] if "secret" in v)["secret"].update(secretName="creds"),
     "mounts Secret creds, which nothing creates"),
    ("service-account", lambda o, d, p, c: p.update(serviceAccountName="robot"), "service account robot does not exist"),
    ("run-as-root", lambda o, d, p, c: (c["securityContext"].update(runAsUser=0)),
     "runAsUser must be a numeric non-root id, got 0"),
    ("non-root-flag", lambda o, d, p, c: (c["securityContext"].pop("runAsNonRoot"), p["securityContext"].pop("runAsNonRoot")),
     "runAsNonRoot is not true"),
    ("escalation", lambda o, d, p, c: c["securityContext"].update(allowPrivilegeEscalation=True),
     "allowPrivilegeEscalation is not false"),
    ("writable-root", lambda o, d, p, c: c["securityContext"].update(readOnlyRootFilesystem=False),
     "the root filesystem is writable"),
    ("capabilities", lambda o, d, p, c: c["securityContext"].update(capabilities={"add": ["NET_ADMIN"]}),
     "does not drop ALL capabilities"),
    ("seccomp", lambda o, d, p, c: (c["securityContext"].pop("seccompProfile"), p["securityContext"].pop("seccompProfile")),
     "seccomp profile is None"),
    ("host-network", lambda o, d, p, c: p.update(hostNetwork=True), "hostNetwork is set"),
    ("labels", lambda o, d, p, c: d["metadata"]["labels"].pop("app.kubernetes.io/name"),
     "Deployment/shop-api: lacks the app.kubernetes.io/name label"),
    ("image", lambda o, d, p, c: c.update(image="docker.io/someone/else:1"), "is not 123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop-api"),
]


@pytest.mark.parametrize("case,how,expected", BROKEN, ids=[b[0] for b in BROKEN])
def test_each_consistency_rule_fails_a_broken_manifest(built, case, how, expected):
    spec, out, objects = built
    dockerfile = (out / "Dockerfile").read_text()
    assert consistency_problems(spec, objects["prod"], dockerfile) == []
    problems = consistency_problems(spec, _break(objects["prod"], how), dockerfile)
    assert any(expected in p for p in problems), problems


def test_pod_spec_translates_to_docker_settings(built):
    spec, _out, objects = built
    run = translate(objects["dev"], spec.name)
    assert run.user == "10001:10001" and run.read_only and run.cap_drop == ("ALL",)
    assert run.no_new_privileges and run.seccomp == "RuntimeDefault"
    assert list(run.tmpfs) == ["/tmp"] and "size=67108864" in run.tmpfs["/tmp"]
    assert run.mem_limit == 512 * 2**20 and run.nano_cpus == 10**9
    assert run.secret_mounts == (("/run/secrets", "shop-api-secrets"),)
    assert run.env["PGHOST"] == "db" and run.env["OTEL_SERVICE_NAME"] == "shop-api"
    assert "PGPASSWORD" not in run.env
    kinds = {p.kind: (p.path, p.port, p.period, p.failure_threshold) for p in run.probes}
    assert kinds == {"startupProbe": ("/healthz", 8000, 2, 30), "readinessProbe": ("/healthz", 8000, 10, 3),
                     "livenessProbe": ("/healthz", 8000, 15, 3)}


def test_no_secret_value_in_any_manifest(example, tmp_path):
    """A developer's real values sit beside the source (.env, secrets/NAME): none reaches a file kit writes."""
    planted = "hunter2-planted-value"
    (example / "app" / ".env").write_text(f"PGPASSWORD={planted}\nREDIS_URL=redis://:{planted}@cache:6379/0\n")
    (example / "app" / "secrets").mkdir()
    (example / "app" / "secrets" / "PGPASSWORD").write_text(planted)
    spec = load_spec(example, tmp_path / "out")
    files = generate(spec)
    assert files and not [rel for rel, text in files.items() if planted in text]
    for env in ("dev", "prod"):
        record, objects = build_overlay(spec.output, env)
        assert record.passed
        for o in objects:
            assert o["kind"] != "Secret" or not any((o.get("stringData") or {}).values())


def test_extras_render_when_asked(minimal):
    write_task(minimal, GOOD + "dependencies:\n  - {kind: postgres, name: db}\n  - {kind: redis, name: cache}\n"
               "kubernetes:\n  version: \"1.32\"\n  secrets: secret\n  managed: {db: db.internal.example.com}\n"
               "  ingress: {host: mini.example.org, cluster_issuer: letsencrypt}\n"
               "  api_access: [{resources: [configmaps], verbs: [get, list]}]\n"
               "  cronjobs: [{name: cleanup, schedule: \"0 3 * * *\", command: [python, cleanup.py]}]\n")
    spec = load_spec(minimal)
    files = render_kubernetes(spec)
    objects = [d for path, text in files.items() if path.endswith(".yaml")
               for d in yaml.safe_load_all(text) if isinstance(d, dict) and "kind" in d]
    kinds = {o["kind"] for o in objects}
    assert {"Role", "RoleBinding", "CronJob", "Secret", "StatefulSet"} <= kinds and "ExternalSecret" not in kinds
    assert _find(objects, "Service", "db")["spec"] == {"type": "ExternalName", "externalName": "db.internal.example.com",
                                                       "ports": [{"port": 5432}]}
    assert [o["metadata"]["name"] for o in objects if o["kind"] == "StatefulSet"] == ["cache"]
    assert _find(objects, "Ingress")["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": "letsencrypt"}
    cron = _find(objects, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert cron["containers"][0]["args"] == ["python", "cleanup.py"] and cron["securityContext"]["runAsNonRoot"]
    assert spec.option("kubernetes").versions == ("1.32", "1.31", "1.30")


K8S_CASES = [
    ("pdb-above-replicas", "kubernetes:\n  pdb: {min_available: 2}\n",
     ["kubernetes.environments.dev.min_replicas: dev may scale down to 1 replica(s), below the PodDisruptionBudget "
      "minimum 2", "raise min_replicas to at least 2"]),
    ("hpa-min-above-max", "kubernetes:\n  environments:\n    prod: {min_replicas: 5, max_replicas: 3}\n",
     ["task.md:7: kubernetes.environments.prod.min_replicas: HPA min_replicas 5 is above max_replicas 3"]),
    ("replicas-outside-hpa", "kubernetes:\n  environments:\n    staging: {replicas: 1, min_replicas: 2}\n",
     ["kubernetes.environments.staging.replicas: replicas 1 is outside the HPA bounds 2-4"]),
    ("invalid-host", "kubernetes:\n  ingress:\n    host: https://shop.example.com/\n",
     ["task.md:7: kubernetes.ingress.host: 'https://shop.example.com/' is not a valid host name", "no scheme"]),
    ("invalid-env-host", "kubernetes:\n  environments:\n    dev: {host: localhost}\n",
     ["kubernetes.environments.dev.host: 'localhost' is not a valid host name"]),
    ("unknown-version", "kubernetes:\n  version: \"1.12\"\n",
     ["task.md:6: kubernetes.version: unknown Kubernetes version 1.12", "use one of"]),
    ("version-float", "kubernetes:\n  version: 1.30\n", ["kubernetes.version: must be of type string"]),
    ("memory-does-not-parse", "kubernetes:\n  environments:\n    prod: {memory: lots}\n",
     ["task.md:7: kubernetes.environments.prod.memory: 'lots' is not a memory quantity"]),
    ("cpu-does-not-parse", "kubernetes:\n  environments:\n    prod: {cpu: fast}\n",
     ["kubernetes.environments.prod.cpu: 'fast' is not a CPU quantity"]),
    ("managed-unknown", "kubernetes:\n  managed: {db: db.example.com}\n",
     ["kubernetes.managed.db: 'db' is not a declared dependency"]),
    ("strategy", "kubernetes:\n  strategy: yolo\n", ["kubernetes.strategy: got 'yolo'; valid values: rolling"]),
]


@pytest.mark.parametrize("case_id,front,expected", K8S_CASES, ids=[c[0] for c in K8S_CASES])
def test_bad_kubernetes_section(case_id, front, expected, minimal, capsys):
    write_task(minimal, GOOD + front)
    assert main(["generate", str(minimal)]) == 2
    err = capsys.readouterr().err
    for fragment in expected:
        assert fragment in err, f"{fragment!r} not in {err!r}"
    assert not (minimal / "kit-out").exists()


@pytest.mark.tools
def test_extras_pass_every_static_check(minimal):
    """Managed database, plain Secret, API access, a CronJob: still valid, policy-clean, consistent."""
    write_task(minimal, GOOD + "dependencies:\n  - {kind: postgres, name: db}\n  - {kind: redis, name: cache}\n"
               "kubernetes:\n  secrets: secret\n  managed: {db: db.internal.example.com}\n"
               "  api_access: [{resources: [configmaps], verbs: [get]}]\n"
               "  cronjobs: [{name: cleanup, schedule: \"@daily\", command: [python, -c, pass]}]\n")
    spec = load_spec(minimal)
    generate(spec)
    records = verify(spec, ["kubernetes"], sandbox=False)
    assert {r.check: r.reason for r in records if not r.passed} == {}
    assert all(r.figures.get("crd_kinds_not_validated") == [] for r in records if ".validate." in r.check)


@pytest.mark.tools
@pytest.mark.parametrize("strategy", ["canary", "blue-green"])
def test_canary_and_blue_green_need_no_crd_and_pass_every_check(minimal, strategy):
    write_task(minimal, GOOD + f"kubernetes:\n  strategy: {strategy}\n")
    spec = load_spec(minimal)
    generate(spec)
    records = verify(spec, ["kubernetes"], sandbox=False)
    prod = build_overlay(spec.output, "prod")[1]
    assert {r.check: r.reason for r in records if not r.passed} == {}
    deployments = {o["metadata"]["name"]: o for o in prod if o["kind"] == "Deployment"}
    service = _find(prod, "Service", "mini")["spec"]["selector"]
    if strategy == "canary":
        assert set(deployments) == {"mini", "mini-canary"}
        assert deployments["mini-canary"]["spec"]["selector"]["matchLabels"]["kit.dev/track"] == "canary"
        assert "kit.dev/track" not in service          # the Service sends traffic to both tracks
    else:
        assert set(deployments) == {"mini", "mini-green"}
        assert service["kit.dev/slot"] == "blue"
        assert _find(prod, "Service", "mini-preview")["spec"]["selector"]["kit.dev/slot"] == "green"
    images = {c["image"] for d in deployments.values() for c in d["spec"]["template"]["spec"]["containers"]}
    assert images == {"registry.example.com/mini:prod"}
    assert not any(o["apiVersion"].startswith("argoproj.io") for o in prod)


@pytest.mark.tools
def test_monitoring_objects_reach_the_overlays(built):
    """The ServiceMonitor (observability family) selects the app's Service in every overlay's
    namespace on a port it has, and the app's NetworkPolicy admits the scraper's namespace."""
    spec, out, objects = built
    monitor = yaml.safe_load((out / "k8s" / "monitoring" / "servicemonitor.yaml").read_text())
    k = spec.option("kubernetes")
    assert monitor["metadata"]["namespace"] == k.monitoring_namespace
    for env, objs in objects.items():
        service = _find(objs, "Service", spec.name)
        assert service["metadata"]["namespace"] in monitor["spec"]["namespaceSelector"]["matchNames"], env
        assert all(service["metadata"]["labels"].get(key) == value
                   for key, value in monitor["spec"]["selector"]["matchLabels"].items())
        assert {e["port"] for e in monitor["spec"]["endpoints"]} <= {p["name"] for p in service["spec"]["ports"]}
        policy = _find(objs, "NetworkPolicy", f"{spec.name}-ingress")
        sources = [peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                   for rule in policy["spec"]["ingress"] for peer in rule["from"]]
        assert k.monitoring_namespace in sources


@pytest.mark.tools
@pytest.mark.parametrize("liveness,handler", [("tcp", {"tcpSocket": {"port": "http"}}),
                                              ("/livez", {"httpGet": {"path": "/livez", "port": "http"}})])
def test_liveness_can_leave_the_dependencies_out(minimal, liveness, handler):
    write_task(minimal, GOOD + "  health: /healthz\ndependencies:\n  - {kind: redis, name: cache}\n"
               f"kubernetes:\n  liveness: \"{liveness}\"\n")
    spec = load_spec(minimal)
    generate(spec)
    records = verify(spec, ["kubernetes"], sandbox=False)
    dev = build_overlay(spec.output, "dev")[1]
    assert {r.check: r.reason for r in records if not r.passed} == {}
    container = _find(dev, "Deployment", "mini")["spec"]["template"]["spec"]["containers"][0]
    assert {k: v for k, v in container["livenessProbe"].items() if k in ("httpGet", "tcpSocket")} == handler
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert translate(dev, "mini").probes[2].path == ("" if liveness == "tcp" else "/livez")
    assert "Check before production" not in (spec.output / "k8s" / "README.md").read_text()
    broken = copy.deepcopy(dev)
    _find(broken, "Deployment", "mini")["spec"]["template"]["spec"]["containers"][0]["livenessProbe"] = {
        "httpGet": {"path": "/x", "port": "http"}, "periodSeconds": 15}
    problems = consistency_problems(spec, broken, (spec.output / "Dockerfile").read_text())
    assert any("not kubernetes.liveness" in p for p in problems), problems


def test_readme_warns_when_liveness_checks_the_dependencies(built):
    _spec, out, _objects = built
    assert "Check before production" in (out / "k8s" / "README.md").read_text()


@pytest.mark.tools
def test_checkov_fails_a_skip_without_a_reason(built, tmp_path):
    from kit.core.checkov import run_checkov
    dev = copy.deepcopy(built[2]["dev"])
    annotations = _find(dev, "Deployment", "shop-api")["metadata"]["annotations"]
    annotations["checkov.io/skip1"] = "CKV_K8S_43"
    (tmp_path / "dev.yaml").write_text(yaml.safe_dump_all(dev))
    record = run_checkov("k", "k8s/", "t", tmp_path, "kubernetes")
    assert record.status == "failed" and "CKV_K8S_43" in record.reason and "without a reason" in record.log


def test_translate_raises_a_kit_error_for_what_it_cannot_run(built):
    """An unknown probe port or a missing Deployment is a failed pod-sandbox record, not a traceback."""
    from kit.errors import KitError
    _spec, _out, objects = built
    with pytest.raises(KitError, match="no Deployment 'nope'"):
        translate(objects["dev"], "nope")
    broken = copy.deepcopy(objects["dev"])
    deploy = _find(broken, "Deployment", "shop-api")
    deploy["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = "admin"
    with pytest.raises(KitError, match="probe port 'admin' is not a port"):
        translate(broken, "shop-api")
    deploy["spec"]["template"]["spec"]["containers"][0]["name"] = "other"
    with pytest.raises(KitError, match="no container named 'shop-api'"):
        translate(broken, "shop-api")
