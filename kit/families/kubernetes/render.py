"""Kubernetes family: a Kustomize base and dev/staging/prod overlays, rendered from the Spec."""
from __future__ import annotations

from kit.core.otel import has_sdk, otel_env
from kit.families.kubernetes.secret_names import STORES, cloud_of, remote_key
from kit.model import Dependency, Spec
from kit.render import render_variant

PRE_STOP_S = 5           # endpoints removal reaches the proxies while the pod still serves
SERVER_GRACE_S = 8       # the server's own graceful timeout (gunicorn/uvicorn, see kit/spec.py)
DEP_CPU_M, DEP_MEMORY_MI = (250, 1000), (256, 512)     # requests, limits of one dependency pod
SOLVER_CPU_M, SOLVER_MEMORY_MI = (10, 100), 64         # cert-manager's HTTP-01 solver pod (network_rules)
# the backup family's component (backup/k8s): pgBackRest's TLS server beside PostgreSQL plus one run
# of the backup CronJob; (requests, limits) in millicores and MiB, as its templates declare them
BACKUP_COMPONENT = "../../../backup/k8s"
BACKUP_CPU_M, BACKUP_MEMORY_MI = (50 + 100, 500 + 1000), (64 + 128, 256 + 512)

DIGEST_SKIP = ("CKV_K8S_43", "the image is pinned by digest at deploy time: the pipeline runs "
                             "kustomize edit set image NAME@sha256:DIGEST before kubectl apply")
DEP_DIGEST_SKIP = ("CKV_K8S_43", "an official image by tag: kit has no registry access to resolve its digest; "
                                 "pin it (image@sha256:...) when you mirror it to your registry")
DEP_UID_SKIP = ("CKV_K8S_40", "the official image's own user (999) owns its data directory; "
                              "it still runs as non-root with every capability dropped")
# the postgres and redis images: what a hardened pod of each needs
DEP_RUNTIME = {
    "postgres": {"uid": 999, "writable": ["/var/run/postgresql", "/tmp"], "component": "database"},
    "redis": {"uid": 999, "writable": ["/tmp"], "component": "cache"},
}


def millicores(cores: float) -> str:
    return f"{round(cores * 1000)}m"


def mebibytes(size: int) -> str:
    return f"{size // 2**20}Mi" if size % 2**20 == 0 else str(size)


def app_resources(cpu: float, memory: int, cpu_request: float | None = None) -> dict:
    return {"requests": {"cpu": millicores(cpu / 2 if cpu_request is None else cpu_request), "memory": mebibytes(memory)},
            "limits": {"cpu": millicores(cpu), "memory": mebibytes(memory)}}


def backup_in_cluster(spec: Spec) -> bool:
    """The backup family wires pgBackRest into the in-cluster Postgres: the overlays include its
    Kustomize component (backup/k8s), which adds the TLS server sidecar and the backup CronJob."""
    try:
        b = spec.option("backup")
    except KeyError:
        return False
    managed = dict(spec.option("kubernetes").managed)
    return bool(getattr(b, "enabled", False)) and getattr(b, "storage_kind", "") != "local" and any(
        d.kind == "postgres" and d.name not in managed for d in spec.dependencies)


def quota(spec: Spec, env, deps: int) -> dict[str, str]:
    """Room for the worst case kubernetes.rule.quota checks: the HPA's maximum and one surge pod,
    a canary or idle slot with its own surge pod (a settings change rolls both), all at the
    environment's resources; one run of each CronJob (the service's own resources); the
    dependencies; and cert-manager's HTTP-01 solver pod while a certificate is issued or renewed."""
    k = spec.option("kubernetes")
    app = env.max_replicas + 1 + (0 if k.strategy == "rolling" else 2)
    jobs, solver = len(k.cronjobs), 1 if k.cluster_issuer else 0
    backup = 1 if backup_in_cluster(spec) else 0

    def total(app_each: float, job_each: float, dep_each: int, solver_each: int, backup_each: int) -> int:
        return round(app * app_each + jobs * job_each) + deps * dep_each + solver * solver_each + backup * backup_each
    mib = 2**20
    return {"pods": str(app + jobs + deps + solver + backup),
            "requests.cpu": f"{total(env.cpu * 500 if env.cpu_request is None else env.cpu_request * 1000, spec.cpu * 500, DEP_CPU_M[0], SOLVER_CPU_M[0], BACKUP_CPU_M[0])}m",
            "requests.memory": f"{total(env.memory // mib, spec.memory // mib, DEP_MEMORY_MI[0], SOLVER_MEMORY_MI, BACKUP_MEMORY_MI[0])}Mi",
            "limits.cpu": f"{total(env.cpu * 1000, spec.cpu * 1000, DEP_CPU_M[1], SOLVER_CPU_M[1], BACKUP_CPU_M[1])}m",
            "limits.memory": f"{total(env.memory // mib, spec.memory // mib, DEP_MEMORY_MI[1], SOLVER_MEMORY_MI, BACKUP_MEMORY_MI[1])}Mi",
            "persistentvolumeclaims": str(deps)}


def pod_labels(spec: Spec) -> dict[str, str]:
    return {"app.kubernetes.io/name": spec.name, "app.kubernetes.io/instance": spec.name,
            "app.kubernetes.io/component": "server", "app.kubernetes.io/part-of": spec.name,
            "app.kubernetes.io/managed-by": "kit"}


def selector(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": name}


def probe(spec: Spec) -> dict:
    if spec.health_path:
        return {"httpGet": {"path": spec.health_path, "port": "http"}}
    return {"tcpSocket": {"port": "http"}}


def liveness_probe(spec: Spec) -> dict:
    """The check of the probes that restart the container (liveness, and startup, which the
    Kubernetes docs set to the same check): `kubernetes.liveness` (tcp, or a path the task
    declares dependency-free); by default TCP on the http port when the service has
    dependencies, as the health path reports them and an outage must not restart every pod
    (cluster_rules.liveness_rule), else the health probe."""
    chosen = spec.option("kubernetes").liveness
    if chosen == "tcp" or (not chosen and spec.dependencies):
        return {"tcpSocket": {"port": "http"}}
    if chosen:
        return {"httpGet": {"path": chosen, "port": "http"}}
    return probe(spec)


def probe_text(handler: dict) -> str:
    return handler["httpGet"]["path"] if "httpGet" in handler else "TCP :http"


def config_env(spec: Spec, environment: str) -> list[tuple[str, str]]:
    k = spec.option("kubernetes")
    merged = dict(spec.all_env())
    merged.update(otel_env(spec, f"otel-collector.{k.monitoring_namespace}.svc.cluster.local", environment))
    return sorted(merged.items())


def in_cluster_dep(spec: Spec, dep: Dependency) -> dict:
    runtime = DEP_RUNTIME[dep.kind]
    env = list(dep.env)
    if dep.kind == "postgres":
        env.append(("PGDATA", f"{dep.data_path}/pgdata"))   # the volume's root holds lost+found
        settings = dict(dep.env)
        check = ["pg_isready", "-h", "127.0.0.1", "-U", settings["POSTGRES_USER"], "-d", settings["POSTGRES_DB"]]
    else:
        check = ["redis-cli", "ping"]
    return {"name": dep.name, "kind": dep.kind, "image": dep.image, "port": dep.port,
            "selector": selector(dep.name), "uid": runtime["uid"], "writable": runtime["writable"],
            "labels": {**selector(dep.name), "app.kubernetes.io/component": runtime["component"],
                       "app.kubernetes.io/part-of": spec.name, "app.kubernetes.io/managed-by": "kit"},
            "env": sorted(env), "secret": dep.secret, "data_path": dep.data_path, "probe": check,
            "command": list(dep.command), "storage": "1Gi", "skips": [DEP_DIGEST_SKIP, DEP_UID_SKIP]}


TRACK, SLOT = "kit.dev/track", "kit.dev/slot"


def rollout(spec: Spec) -> dict:
    """The Deployments and Service selectors of the task's strategy; no CRD needed for any."""
    name, strategy = spec.name, spec.option("kubernetes").strategy
    main = {"name": name, "image": name, "main": True, "extra": {}, "note": ""}
    if strategy == "canary":
        note = ("# Canary, no CRD needed: one pod behind the same Service takes about 1/(replicas+1) of the\n"
                f"# traffic. The deploy pins it to the digest it deploys, like {name}; to try a release first:\n"
                f"# kustomize edit set image {name}-canary=IMAGE@DIGEST and apply; promote by running the deploy.")
        return {"slots": [{**main, "extra": {TRACK: "stable"}},
                          {"name": f"{name}-canary", "image": f"{name}-canary", "main": False,
                           "extra": {TRACK: "canary"}, "note": note}], "live": {}, "preview": {}}
    if strategy == "blue-green":
        note = ("# Blue-green, no CRD needed: the idle slot runs beside the live one. The Service selects the\n"
                f"# live slot and {name}-preview the idle one. Deploy to the idle slot (kustomize edit set image\n"
                f"# {name}-green=IMAGE:TAG), test through {name}-preview, then switch:\n"
                f"#   kubectl -n NS patch service {name} -p '{{\"spec\":{{\"selector\":{{\"{SLOT}\":\"green\"}}}}}}'")
        return {"slots": [{**main, "extra": {SLOT: "blue"}},
                          {"name": f"{name}-green", "image": f"{name}-green", "main": False,
                           "extra": {SLOT: "green"}, "note": note}],
                "live": {SLOT: "blue"}, "preview": {SLOT: "green"}}
    return {"slots": [main], "live": {}, "preview": {}}


def autoscaler(spec: Spec) -> dict:
    """What scales the Deployment (scaling.mechanism): the HPA on CPU, the HPA on a per-pod request rate
    (a Pods metric prometheus-adapter serves), or KEDA (the scaling family's ScaledObject in each overlay,
    k8s/overlays/<env>/scaledobject.yaml, creates the HPA, so the base has none: kit/families/scaling/autoscalers.py)."""
    from kit.families.scaling.plan import quantity, rps_metric, target_rps
    scaling = spec.options.get("scaling")
    mechanism = scaling.mechanism if scaling is not None else "hpa-cpu"
    counter = spec.option("slo").metrics.requests if "slo" in spec.options else ""
    target = target_rps(scaling) if scaling is not None else None
    if mechanism == "hpa-rps" and counter and target:
        return {"mechanism": mechanism, "metric": rps_metric(counter), "target": quantity(target), "scaledobject": False}
    if mechanism == "keda":
        from kit.families.scaling.render import overlay_scaledobject
        return {"mechanism": "keda", "scaledobject": overlay_scaledobject(spec)}
    return {"mechanism": "hpa-cpu", "scaledobject": False}


def render_kubernetes(spec: Spec) -> dict[str, str]:
    k = spec.option("kubernetes")
    managed = dict(k.managed)
    deps = [in_cluster_dep(spec, d) for d in spec.dependencies if d.name not in managed]
    prod = k.env("prod")
    files = render_variant("kubernetes", "base", {
        "name": spec.name, "k": k, "labels": pod_labels(spec), "selector": selector(spec.name),
        "port": spec.port, "metrics_port": spec.metrics_port, "metrics_path": spec.metrics_path,
        "probe": probe(spec), "liveness": liveness_probe(spec), "uid": spec.uid, "resources": app_resources(spec.cpu, spec.memory),
        "config": config_env(spec, "base"), "otel": has_sdk(spec), "secrets": list(spec.secrets), "secret_name": f"{spec.name}-secrets",
        "secret_keys": [(s, remote_key(spec.name, s, cloud_of(spec))) for s in spec.secrets],
        "secret_store_kind": STORES[cloud_of(spec)][0],
        "deps": deps, "managed": [(d.name, managed[d.name], d.port) for d in spec.dependencies if d.name in managed],
        "grace": PRE_STOP_S + SERVER_GRACE_S + 2, "pre_stop": PRE_STOP_S,
        "quota": quota(spec, prod, len(deps)), "skips": {"Deployment": [DIGEST_SKIP]}, **rollout(spec),
        "autoscaler": autoscaler(spec),
    })
    files = {path: text for path, text in files.items() if text.strip()}
    for env in k.environments:
        overlay = render_variant("kubernetes", "overlay", {
            "name": spec.name, "image": spec.image, "env": env, "namespace": f"{k.namespace}-{env.name}",
            "resources": app_resources(env.cpu, env.memory, env.cpu_request), "quota": quota(spec, env, len(deps)),
            "autoscaler": autoscaler(spec),
            "images": [slot["image"] for slot in rollout(spec)["slots"]],
            "deployments": [slot["name"] for slot in rollout(spec)["slots"]],
            "config": [kv for kv in config_env(spec, env.name) if kv[0] == "OTEL_RESOURCE_ATTRIBUTES"],
            "components": [BACKUP_COMPONENT] if backup_in_cluster(spec) else [],
        })
        files.update({f"k8s/overlays/{env.name}/{path}": text for path, text in overlay.items()})
    return files


def work_notes(spec: Spec) -> list[str]:
    k = spec.option("kubernetes")
    envs = "; ".join(f"{e.name}: HPA {e.min_replicas}-{e.max_replicas} replicas, `{e.host}`, "
                     f"tag `{e.tag}`" for e in k.environments)
    managed = dict(k.managed)
    deps = ", ".join(f"`{d.name}` ({'managed: ' + managed[d.name] if d.name in managed else 'StatefulSet'})"
                     for d in spec.dependencies) or "none"
    return [
        f"- Kustomize base `k8s/base` and overlays for {envs}. Target Kubernetes {k.version}; validated "
        f"against {', '.join(k.versions)}. The Deployment sets no replicas: the HPA owns the count.",
        "- Pods meet the restricted Pod Security Standard (enforced by the namespace label): numeric non-root "
        "user, read-only root with an `emptyDir` at `/tmp`, no privilege escalation, ALL capabilities dropped, "
        "RuntimeDefault seccomp, no service account token.",
        f"- Readiness (every 10 s) on `{probe_text(probe(spec))}`; startup (every 2 s, 60 s budget) and "
        f"liveness (every 15 s) on `{probe_text(liveness_probe(spec))}`"
        + (" (not the health path: it reports the dependencies, and an outage must not restart every pod)"
           if spec.dependencies and liveness_probe(spec) != probe(spec) and not spec.option("kubernetes").liveness
           else "")
        + f"; rolling updates with maxUnavailable 0; preStop {PRE_STOP_S} s and a grace period "
        f"of {PRE_STOP_S + SERVER_GRACE_S + 2} s around the server's {SERVER_GRACE_S} s graceful timeout.",
        f"- Secrets by reference only ({'ExternalSecret from ' + k.secret_store if k.secrets == 'external' else 'a Secret with names and empty values'}), "
        "mounted as files at `/run/secrets`. Dependencies: " + deps + ".",
        "- NetworkPolicies: default deny, DNS, ingress from the ingress controller and the metrics scraper, "
        "egress to the declared dependencies" + (" and the OpenTelemetry collector" if has_sdk(spec) else "")
        + " only." + ("" if has_sdk(spec) else " No OpenTelemetry SDK in the app's dependencies, so no OTEL_* "
                      "settings and no collector egress."),
        "- Disruptions: the PodDisruptionBudget "
        + (f"allows maxUnavailable {k.pdb_max_unavailable}, so a node drain never blocks (where the HPA floor is "
           "one replica, it takes that pod)" if k.pdb_min_available is None else
           f"keeps minAvailable {k.pdb_min_available}, below every environment's HPA floor")
        + (f"; {', '.join(f'`{d.name}`' for d in spec.dependencies if d.name not in managed)} run as single-replica "
           "StatefulSets with no budget, so a drain takes them down briefly (`kubernetes.managed` for production)"
           if any(d.name not in managed for d in spec.dependencies) else "") + ".",
    ]
