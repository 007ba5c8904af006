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
        rows[env] = (deploy["metadata"]["namespace"], deploy["spec"].get("replicas", "HPA"),
                     (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]),
                     _find(objs, "Ingress")["spec"]["rules"][0]["host"],
                     deploy["spec"]["template"]["spec"]["containers"][0]["image"])
    assert rows["dev"] == ("shop-api-dev", "HPA", (1, 2), "dev.shop.example.com", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop-api:dev")
    assert rows["prod"] == ("shop-api-prod", "HPA", (3, 10), "shop.example.com", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop-api:prod")
    assert rows["staging"][1:3] == ("HPA", (2, 4))
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
    # the backup family's component brings cert-manager's Issuer and Certificate (pgBackRest's TLS)
    assert records["kubernetes.validate.1.33"].figures["crd_kinds_not_validated"] == \
        ["Certificate (cert-manager.io/v1)", "ExternalSecret (external-secrets.io/v1)", "Issuer (cert-manager.io/v1)"]


@pytest.mark.tools
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
    ("probe-path", lambda o, d, p, c: c["readinessProbe"]["httpGet"].update(path="/health"),
     "readinessProbe probes '/health', not the health path /healthz"),
    ("liveness-not-tcp", lambda o, d, p, c: c.update(livenessProbe={"httpGet": {"path": "/", "port": "http"}}),
     "livenessProbe probes '/', not tcp (the health path reports the dependencies)"),
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
    assert run.env["PGHOST"] == "db" and "OTEL_SERVICE_NAME" not in run.env   # no OpenTelemetry SDK in the app
    assert "PGPASSWORD" not in run.env
    kinds = {p.kind: (p.path, p.port, p.period, p.failure_threshold) for p in run.probes}
    assert kinds == {"startupProbe": ("", 8000, 2, 30), "readinessProbe": ("/healthz", 8000, 10, 3),
                     "livenessProbe": ("", 8000, 15, 3)}


@pytest.mark.tools
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
     ["kubernetes.environments.dev.min_replicas: dev may scale down to 1 replica(s), and the PodDisruptionBudget "
      "keeps minAvailable 2: evictions would be refused and node drains would block", "raise min_replicas above 2"]),
    ("pdb-equal-to-replicas", "kubernetes:\n  pdb: {min_available: 1}\n",
     ["kubernetes.environments.dev.min_replicas: dev may scale down to 1 replica(s), and the PodDisruptionBudget "
      "keeps minAvailable 1", "or use kubernetes.pdb.max_unavailable (default 1)"]),
    ("pdb-max-unavailable-zero", "kubernetes:\n  pdb: {max_unavailable: 0}\n",
     ["kubernetes.pdb.max_unavailable: must be 1-1000, got 0"]),
    ("pdb-both", "kubernetes:\n  pdb: {min_available: 1, max_unavailable: 1}\n", ["kubernetes.pdb: ", "has too many properties"]),
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
    monitor = yaml.safe_load((out / "k8s" / "monitoring" / "base" / "servicemonitor.yaml").read_text())
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


def test_readme_says_why_liveness_is_tcp(built):
    _spec, out, _objects = built
    text = (out / "k8s" / "README.md").read_text()
    assert "`/healthz` reports the dependencies, so startup and liveness do not probe it" in text


PDB_BREAKS = [("prod", {"minAvailable": 3}, "minAvailable 3 with 3 replica(s) at the lowest"),
              ("prod", {"minAvailable": "100%"}, "minAvailable 100%"),
              ("prod", {"maxUnavailable": 0}, "maxUnavailable 0 with 3 replica(s)"),
              ("prod", {"maxUnavailable": "0%"}, "maxUnavailable 0%"),
              ("dev", {"minAvailable": 1}, "minAvailable 1 with 1 replica(s) at the lowest (Deployment/shop-api)")]


@pytest.mark.parametrize("env,budget,expected", PDB_BREAKS, ids=[f"{b[0]}-{b[1]}" for b in PDB_BREAKS])
def test_pdb_rule_fails_a_budget_that_blocks_drains(built, env, budget, expected):
    spec, _out, objects = built
    pdb = _find(objects[env], "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1 and "minAvailable" not in pdb["spec"]
    assert _rule("pdb").check(spec, objects[env]) == []

    def swap(o, d, p, c):
        pdb = _find(o, "PodDisruptionBudget")["spec"]
        pdb.pop("maxUnavailable")
        pdb.update(budget)
    _rule_fails(spec, _break(objects[env], swap), "pdb", expected)


def test_pdb_rule_accepts_min_available_below_the_hpa_floor_and_the_readme_owns_the_single_replicas(built):
    spec, out, objects = built
    fine = _break(objects["prod"], lambda o, d, p, c: _find(o, "PodDisruptionBudget")["spec"].update(
        {"minAvailable": "50%"}) or _find(o, "PodDisruptionBudget")["spec"].pop("maxUnavailable"))
    assert _rule("pdb").check(spec, fine) == []
    assert not [o for o in objects["prod"] if o["kind"] == "PodDisruptionBudget" and o["metadata"]["name"] in ("db", "cache")]
    readme = (out / "k8s" / "README.md").read_text()
    assert "`db`, `cache`: single-replica StatefulSets with **no**\n  PodDisruptionBudget, on purpose" in readme
    assert "`kubernetes.managed: { db: HOST, cache: HOST }`" in readme


def test_hpa_rule_fails_replicas_beside_the_hpa(built):
    spec, _out, objects = built
    assert _rule("hpa").check(spec, objects["prod"]) == []
    _rule_fails(spec, _break(objects["prod"], lambda o, d, p, c: d["spec"].update(replicas=3)), "hpa",
                "Deployment/shop-api sets spec.replicas 3 beside HorizontalPodAutoscaler/shop-api: every kubectl "
                "apply resets the HPA's count")


def test_hpa_rule_fails_a_container_without_a_cpu_request(built):
    spec, _out, objects = built

    def no_request(o, d, p, c):
        c["resources"]["requests"].pop("cpu")
        p["containers"].append({"name": "sidecar", "image": "busybox", "resources": {}})
    broken = _break(objects["prod"], no_request)
    assert _rule("hpa").check(spec, broken) == []        # the namespace's LimitRange gives each a CPU request
    broken = [o for o in broken if o["kind"] != "LimitRange"]
    problems = _rule("hpa").check(spec, broken)
    assert [p.split(" has")[0] for p in problems] == ["Deployment/shop-api container shop-api",
                                                      "Deployment/shop-api container sidecar"]
    _rule_fails(spec, broken, "hpa", "has no CPU request: the pod's CPU utilization is undefined and "
                                     "HorizontalPodAutoscaler/shop-api never scales it")


ACME_BREAKS = [
    ("no-policy", lambda o, d, p, c: o.remove(_find(o, "NetworkPolicy", "acme-http01-solver"))),
    ("wrong-port", lambda o, d, p, c: _find(o, "NetworkPolicy", "acme-http01-solver")["spec"]["ingress"][0].update(
        ports=[{"port": 80, "protocol": "TCP"}])),
    ("wrong-namespace", lambda o, d, p, c: _find(o, "NetworkPolicy", "acme-http01-solver")["spec"]["ingress"][0][
        "from"][0]["namespaceSelector"].update(matchLabels={"kubernetes.io/metadata.name": "kube-system"})),
    ("wrong-pods", lambda o, d, p, c: _find(o, "NetworkPolicy", "acme-http01-solver")["spec"].update(
        podSelector={"matchLabels": {"app": "cm-acme-http-solver"}})),
]


@pytest.mark.parametrize("case,how", ACME_BREAKS, ids=[b[0] for b in ACME_BREAKS])
def test_acme_solver_rule_fails_when_default_deny_drops_the_http01_challenge(built, case, how):
    spec, _out, objects = built
    assert _find(objects["dev"], "Ingress")["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": "letsencrypt-prod"}
    assert _rule("acme-solver").check(spec, objects["dev"]) == []
    _rule_fails(spec, _break(objects["dev"], how), "acme-solver",
                "Ingress/shop-api asks cert-manager for a certificate, but no NetworkPolicy admits its HTTP-01 solver "
                "pod (acme.cert-manager.io/http01-solver=true, TCP 8089) from the ingress controller's namespace ingress-nginx")


def test_acme_solver_rule_applies_only_with_cert_manager_and_default_deny(built):
    spec, _out, objects = built
    no_policy = _break(objects["dev"], ACME_BREAKS[0][1])
    no_issuer = _break(no_policy, lambda o, d, p, c: _find(o, "Ingress")["metadata"].pop("annotations"))
    assert _rule("acme-solver").check(spec, no_issuer) == []
    issuer = _break(no_policy, lambda o, d, p, c: _find(o, "Ingress")["metadata"].update(
        annotations={"cert-manager.io/issuer": "local"}))
    assert _rule("acme-solver").check(spec, issuer) != []
    no_deny = [o for o in no_policy if o["metadata"]["name"] != "default-deny-all"]
    assert _rule("acme-solver").check(spec, no_deny) == []       # nothing isolates the solver pod


def _policy(o, name):
    return _find(o, "NetworkPolicy", name)["spec"]


NETWORK_BREAKS = [
    ("no-dns", lambda o, d, p, c: o.remove(_find(o, "NetworkPolicy", "allow-dns")),
     "Deployment/shop-api cannot resolve names (kube-dns) on UDP 53: the source's egress policies do not allow it"),
    ("dns-udp-only", lambda o, d, p, c: _policy(o, "allow-dns")["egress"][0]["ports"].pop(),
     "StatefulSet/db cannot resolve names (kube-dns) on TCP 53"),
    ("egress-port", lambda o, d, p, c: _policy(o, "shop-api-egress")["egress"][0]["ports"][0].update(port=5433),
     "Deployment/shop-api cannot reach StatefulSet/db on TCP 5432: the source's egress policies do not allow it"),
    ("dependency-ingress", lambda o, d, p, c: _policy(o, "cache-ingress")["ingress"][0]["from"][0].update(
        podSelector={"matchLabels": {"app.kubernetes.io/name": "shop"}}),
     "Deployment/shop-api cannot reach StatefulSet/cache on TCP 6379: the destination's ingress policies do not admit it"),
    ("ingress-controller", lambda o, d, p, c: _policy(o, "shop-api-ingress")["ingress"][0]["from"][0][
        "namespaceSelector"].update(matchLabels={"kubernetes.io/metadata.name": "nginx"}),
     "the ingress controller (ingress-nginx) cannot reach Deployment/shop-api for Ingress/shop-api on TCP 8000"),
    ("scraper", lambda o, d, p, c: _policy(o, "shop-api-ingress")["ingress"].pop(),
     "the metrics scraper (monitoring) cannot reach Deployment/shop-api on TCP 8000"),
]


@pytest.mark.parametrize("case,how,expected", NETWORK_BREAKS, ids=[b[0] for b in NETWORK_BREAKS])
def test_network_rule_fails_a_policy_that_cuts_a_needed_connection(built, case, how, expected):
    spec, _out, objects = built
    assert _rule("network").check(spec, objects["staging"]) == []
    _rule_fails(spec, _break(objects["staging"], how), "network", expected)


@pytest.mark.tools
def test_network_rule_checks_a_managed_dependency_and_cronjobs(minimal):
    write_task(minimal, GOOD + "dependencies:\n  - {kind: postgres, name: db}\nkubernetes:\n"
               "  managed: {db: db.internal.example.com}\n"
               "  cronjobs: [{name: cleanup, schedule: \"@daily\", command: [python, -c, pass]}]\n")
    spec = load_spec(minimal)
    generate(spec)
    objects = build_overlay(spec.output, "prod")[1]
    assert _rule("network").check(spec, objects) == []
    _policy(objects, "mini-egress")["egress"][0]["ports"][0]["port"] = 6432
    problems = _rule("network").check(spec, objects)
    assert sorted(problems) == [
        "CronJob/mini-cleanup cannot reach the managed db (db.internal.example.com) on TCP 5432: the source's egress "
        "policies do not allow it",
        "Deployment/mini cannot reach the managed db (db.internal.example.com) on TCP 5432: the source's egress "
        "policies do not allow it"]


QUOTA_BREAKS = [
    ("pods", lambda o, d, p, c: _find(o, "ResourceQuota")["spec"]["hard"].update(pods="13"),
     "ResourceQuota/shop-api-quota is below the worst case (pods 13 < 15) of Deployment/shop-api 10+1, "
     "StatefulSet/cache 1, StatefulSet/db 1, CronJob/shop-api-db-full 1, cert-manager's HTTP-01 solver 1"),
    ("requests-cpu", lambda o, d, p, c: _find(o, "ResourceQuota")["spec"]["hard"].update({"requests.cpu": "6"}),
     "(requests.cpu 6 < 6160m)"),
    ("limits-memory", lambda o, d, p, c: c["resources"]["limits"].update(memory="1Gi"), "(limits.memory 10304Mi < 13120Mi)"),
    ("surge", lambda o, d, p, c: d["spec"]["strategy"]["rollingUpdate"].update(maxSurge="50%"), "pods 15 < 19; requests.cpu 6160m < 8160m; requests.memory 9216Mi < 12288Mi) of Deployment/shop-api 10+5"),
    ("no-request", lambda o, d, p, c: (c["resources"].pop("requests"), c["resources"].pop("limits"),
                                       o.remove(_find(o, "LimitRange"))),
     "Deployment/shop-api container shop-api has no requests.cpu, and no LimitRange gives a default"),
]


@pytest.mark.parametrize("case,how,expected", QUOTA_BREAKS, ids=[b[0] for b in QUOTA_BREAKS])
def test_quota_rule_fails_a_quota_short_of_the_worst_case(built, case, how, expected):
    spec, _out, objects = built
    for env in ("dev", "staging", "prod"):
        assert _rule("quota").check(spec, objects[env]) == [], env
    _rule_fails(spec, _break(objects["prod"], how), "quota", expected)


def test_quota_rule_asks_only_for_what_a_quota_counts(built):
    spec, _out, objects = built

    def requests_cpu_only(o, d, p, c):
        c["resources"].pop("limits")
        o.remove(_find(o, "LimitRange"))
        _find(o, "ResourceQuota")["spec"]["hard"] = {"requests.cpu": "100"}
    assert _rule("quota").check(spec, _break(objects["prod"], requests_cpu_only)) == []


@pytest.mark.tools
def test_canary_cronjob_and_small_dev_fit_their_quota(minimal):
    """The canary runs with the environment's resources, and each quota has room for both rollouts'
    surge pods, a CronJob run at the service's own resources, and the solver pod."""
    write_task(minimal, GOOD + "kubernetes:\n  strategy: canary\n  ingress: {cluster_issuer: letsencrypt}\n"
               "  cronjobs: [{name: cleanup, schedule: \"@daily\", command: [python, -c, pass]}]\n"
               "  environments:\n    dev: {cpu: 250m, memory: 256Mi}\n    prod: {memory: 1Gi}\n")
    spec = load_spec(minimal)
    generate(spec)
    for env in ("dev", "prod"):
        objects = build_overlay(spec.output, env)[1]
        assert _rule("quota").check(spec, objects) == [], env
        resources = {o["metadata"]["name"]: o["spec"]["template"]["spec"]["containers"][0]["resources"]
                     for o in objects if o["kind"] == "Deployment"}
        assert resources["mini"] == resources["mini-canary"], env
    assert resources["mini"]["limits"]["memory"] == "1024Mi"
    assert _find(objects, "ResourceQuota")["spec"]["hard"]["pods"] == "15"     # 10+1, canary 1+1, 1 job, 1 solver


def test_no_cert_manager_no_solver_policy(minimal):
    files = render_kubernetes(load_spec(minimal))
    assert "acme-http01-solver" not in files["k8s/base/networkpolicy.yaml"]


def _rule(rule_id):
    from kit.families.kubernetes.rulebook import RULES
    return next(r for r in RULES if r.id == rule_id)


def _rule_fails(spec, objects, rule_id, expected):
    """The rule passes on the generated overlay, fails on the broken one, and its evidence record fails."""
    from kit.families.kubernetes.checks import rule_evidence
    rule = _rule(rule_id)
    record = rule_evidence(rule, spec, {"prod": objects})
    assert record.check == f"kubernetes.rule.{rule_id}" and record.status == "failed", record
    assert any(expected in p for p in rule.check(spec, objects)), record.log
    assert record.figures["source"].startswith("https://")


@pytest.mark.parametrize("probe", ["livenessProbe", "startupProbe"])
def test_liveness_rule_fails_a_restart_probe_on_the_dependency_checking_path(built, probe):
    spec, _out, objects = built
    assert _rule("liveness").check(spec, objects["prod"]) == []
    broken = _break(objects["prod"], lambda o, d, p, c: c.update({probe: {"httpGet": {"path": "/healthz", "port": "http"}}}))
    _rule_fails(spec, broken, "liveness", f"{probe} probes /healthz, the readiness path, which checks the "
                                          "dependencies (db, cache)")


def test_liveness_rule_accepts_the_health_path_the_task_declares_dependency_free(minimal):
    write_task(minimal, GOOD + "  health: /healthz\ndependencies:\n  - {kind: redis, name: cache}\n"
               "kubernetes:\n  liveness: /healthz\n")
    spec = load_spec(minimal)
    objects = [d for path, text in render_kubernetes(spec).items() if path.startswith("k8s/base/")
               and path.endswith(".yaml") for d in yaml.safe_load_all(text) if isinstance(d, dict) and "kind" in d]
    container = _find(objects, "Deployment", "mini")["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert _rule("liveness").check(spec, objects) == []


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


def test_network_policy_semantics():
    """The evaluator the network rules use, on the cases the Kubernetes docs spell out."""
    from kit.families.kubernetes.netpol import Endpoint, Port, connection, policy_types, selects

    def policy(name, pods, types=None, **rules):
        spec = {"podSelector": {"matchLabels": pods}, **rules}
        if types:
            spec["policyTypes"] = types
        return {"kind": "NetworkPolicy", "metadata": {"name": name, "namespace": "app"}, "spec": spec}
    web, db = {"role": "web"}, {"role": "db"}
    pg = Port(5432, "postgres")
    assert connection([], Endpoint(labels=web), Endpoint(labels=db), pg).allowed     # nothing isolates
    deny = [policy("deny", {}, ["Ingress", "Egress"])]
    verdict = connection(deny, Endpoint(labels=web), Endpoint(labels=db), pg)
    assert not verdict.allowed and len(verdict.why) == 2
    both_ns_and_pod = policy("in", db, ingress=[{"from": [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "other"}}, "podSelector": {"matchLabels": web}}], "ports": [{"port": "postgres"}]}])
    assert connection(deny + [both_ns_and_pod], Endpoint("other", web), Endpoint(labels=db), pg).allowed
    assert not connection(deny + [both_ns_and_pod], Endpoint("other", {"role": "x"}), Endpoint(labels=db), pg).allowed
    assert not connection(deny + [both_ns_and_pod], Endpoint(labels=web), Endpoint(labels=db), pg).allowed  # own ns
    assert not connection(deny + [both_ns_and_pod], Endpoint("other", web), Endpoint(labels=db), Port(5432)).allowed
    egress = policy("out", web, egress=[{"to": [{"podSelector": {"matchLabels": db}}],
                                         "ports": [{"port": 5000, "endPort": 6000, "protocol": "TCP"}]}])
    assert policy_types(egress) == ["Ingress", "Egress"]     # no policyTypes: Egress too, as it has egress rules
    assert connection([egress], Endpoint(labels=web), Endpoint(labels=db), pg).allowed
    assert not connection([egress], Endpoint(labels=web), Endpoint(labels=db), Port(53, "", "UDP")).allowed
    assert not connection([egress], Endpoint(labels=web), Endpoint(external=True), pg).allowed
    assert selects({}, None) and not selects({"matchLabels": {"a": "b"}}, None)
    assert selects({"matchExpressions": [{"key": "a", "operator": "In", "values": ["b"]}]}, {"a": "b"})
    assert not selects({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": "b"})


@pytest.mark.tools
def test_an_app_with_an_opentelemetry_sdk_gets_its_settings_and_its_egress(example, tmp_path):
    """With opentelemetry-sdk in the requirements the pods get OTEL_* and may reach the collector;
    the network rule then fails a policy that cuts that connection (without the SDK neither exists)."""
    requirements = example / "app" / "requirements.txt"
    requirements.write_text(requirements.read_text() + "opentelemetry-sdk==1.29.0\n")
    spec = load_spec(example, tmp_path / "out")
    generate(spec)
    objects = build_overlay(spec.output, "staging")[1]
    run = translate(objects, "shop-api")
    assert run.env["OTEL_SERVICE_NAME"] == "shop-api"
    assert _rule("network").check(spec, objects) == []
    _rule_fails(spec, _break(objects, lambda o, d, p, c: _policy(o, "shop-api-egress")["egress"].pop()), "network",
                "Deployment/shop-api cannot export telemetry to "
                "http://otel-collector.monitoring.svc.cluster.local:4318 on TCP 4318")


@pytest.mark.parametrize("cloud,key", [("aws", "shop-api/PGPASSWORD"), ("gcp", "shop-api-PGPASSWORD"),
                                       ("azure", "shop-api-PGPASSWORD")])
def test_secret_names_rule_fails_a_key_the_clouds_store_cannot_hold(cloud, key):
    """GCP Secret Manager IDs take letters, digits, - and _; Key Vault names letters, digits and -:
    the old `<service>/<SECRET>` key is never found there, the Secret is never created and the
    rollout times out. Each cloud gets a key its store can hold, the README lists it, and the old
    key (or an underscore on Azure) fails the rule."""
    from tests.unit.test_iac import on_cloud
    spec = on_cloud(load_spec(EXAMPLE), cloud)
    files = render_kubernetes(spec)
    objects = [d for d in yaml.safe_load_all(files["k8s/base/secrets.yaml"]) if d]
    keys = [d["remoteRef"]["key"] for o in objects if o["kind"] == "ExternalSecret" for d in o["spec"]["data"]]
    assert key in keys
    assert f"`{key}`" in files["k8s/README.md"]
    assert _rule("secret-names").check(spec, objects) == []
    bad = "shop-api/PGPASSWORD" if cloud != "aws" else "shop-api/PG PASSWORD"
    broken = copy.deepcopy(objects)
    _find(broken, "ExternalSecret")["spec"]["data"][0]["remoteRef"]["key"] = bad
    _rule_fails(spec, broken, "secret-names", f"remoteRef key {bad!r} is not a valid secret name")
    if cloud == "azure":
        _find(broken, "ExternalSecret")["spec"]["data"][0]["remoteRef"]["key"] = "shop-api-PG_PASSWORD"
        _rule_fails(spec, broken, "secret-names", "in Azure Key Vault")


def test_pdb_selector_rule_fails_a_budget_over_the_stable_and_canary_deployments(tmp_path):
    """The disruption controller sums the scale of every controller a PDB matches: over the stable
    Deployment and its canary, one unready canary pod leaves no disruption allowed. The stable
    Deployment's budget selects the stable track only."""
    import dataclasses
    spec = load_spec(EXAMPLE)
    k8s = dataclasses.replace(spec.option("kubernetes"), strategy="canary")
    spec = dataclasses.replace(spec, options={**spec.options, "kubernetes": k8s})
    files = render_kubernetes(spec)
    objects = [d for path in ("k8s/base/deployment.yaml", "k8s/base/autoscaling.yaml")
               for d in yaml.safe_load_all(files[path]) if d]
    pdb = _find(objects, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"]["kit.dev/track"] == "stable"
    assert _rule("pdb-selector").check(spec, objects) == []
    broken = copy.deepcopy(objects)
    del _find(broken, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"]["kit.dev/track"]
    _rule_fails(spec, broken, "pdb-selector", "selects the pods of 2 controllers (Deployment/shop-api, "
                                              "Deployment/shop-api-canary)")
