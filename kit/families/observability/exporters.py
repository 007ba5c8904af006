"""Prometheus exporters for the service's dependencies (postgres_exporter, redis_exporter): the
compose services beside them, their scrape jobs, and on Kubernetes one exporter per dependency and
overlay in the monitoring namespace. The dashboard's dependency panels read what they export."""
from __future__ import annotations

from dataclasses import dataclass

from kit.model import Dependency, Spec

TARGET_NAMESPACE = "kit.dev/target-namespace"   # the exporter's label naming the namespace it watches
COMPONENT = "metrics-exporter"
SECRETS_DIR = "/run/secrets"


@dataclass(frozen=True)
class ExporterKind:
    program: str
    image: str
    port: int
    metrics: tuple[str, ...]   # what the dashboard may read, from the exporter's default collectors
    source: str                # where those names are defined


KINDS = {
    "postgres": ExporterKind(
        "postgres_exporter", "quay.io/prometheuscommunity/postgres-exporter:v0.17.1", 9187,
        ("pg_up", "pg_stat_database_numbackends"),
        "prometheus-community/postgres_exporter @ v0.17.1: cmd/postgres_exporter/postgres_exporter.go:551 "
        "(namespace pg, name up), collector/pg_stat_database.go:30 (registered defaultEnabled) and :38-50 "
        "(pg_stat_database_numbackends)"),
    "redis": ExporterKind(
        "redis_exporter", "oliver006/redis_exporter:v1.67.0", 9121,
        ("redis_up", "redis_memory_used_bytes"),
        "oliver006/redis_exporter @ v1.67.0: main.go:64 (namespace redis), exporter/exporter.go:481 and "
        ":553 (up), :162 (used_memory -> memory_used_bytes)"),
}


def job(dep: Dependency) -> str:
    """The scrape job of a dependency's exporter, the same in compose and on Kubernetes."""
    return f"{dep.name}-exporter"


def watched(spec: Spec) -> list[Dependency]:
    return [d for d in spec.dependencies if d.kind in KINDS]


def settings(dep: Dependency, host: str, sslmode: str = "disable") -> list[tuple[str, str]]:
    """The exporter's environment: where the dependency is and, for postgres, the app's role with
    its password read from the shared secret file (postgres_exporter's DATA_SOURCE_PASS_FILE)."""
    if dep.kind == "postgres":
        env = dict(dep.env)
        return [("DATA_SOURCE_URI", f"{host}:{dep.port}/{env['POSTGRES_DB']}?sslmode={sslmode}"),
                ("DATA_SOURCE_USER", env["POSTGRES_USER"]),
                ("DATA_SOURCE_PASS_FILE", f"{SECRETS_DIR}/{dep.secret}")]
    return [("REDIS_ADDR", f"redis://{host}:{dep.port}")]


def compose_exporters(spec: Spec) -> list[dict]:
    """One service per dependency in compose.monitoring.yaml, scraped as job <dep>-exporter."""
    return [{"service": job(dep), "job": job(dep), "dep": dep.name, "program": KINDS[dep.kind].program,
             "image": KINDS[dep.kind].image, "port": KINDS[dep.kind].port, "env": settings(dep, dep.name),
             "secrets": [dep.secret] if dep.secret else []} for dep in watched(spec)]


def k8s_exporters(spec: Spec) -> list[dict]:
    """One exporter per dependency and overlay, in the monitoring namespace, watching the
    overlay's Service (or the managed host the task names, over TLS)."""
    from kit.families.kubernetes.render import selector
    k8s = spec.option("kubernetes")
    managed = dict(k8s.managed)
    out = []
    for dep in watched(spec):
        kind = KINDS[dep.kind]
        for env in k8s.environments:
            namespace = f"{k8s.namespace}-{env.name}"
            host = managed.get(dep.name) or f"{dep.name}.{namespace}.svc"
            name = f"{spec.name}-{dep.name}-exporter-{env.name}"
            labels = {"app.kubernetes.io/name": job(dep), "app.kubernetes.io/instance": name,
                      "app.kubernetes.io/component": COMPONENT, "app.kubernetes.io/part-of": spec.name,
                      "app.kubernetes.io/managed-by": "kit", TARGET_NAMESPACE: namespace}
            out.append({"name": name, "job": job(dep), "dep": dep.name, "program": kind.program, "labels": labels,
                        "image": kind.image, "port": kind.port, "target_namespace": namespace,
                        "env": settings(dep, host, "require" if dep.name in managed else "disable"),
                        "secret": dep.secret, "managed": dep.name in managed, "dep_port": dep.port,
                        "dep_selector": selector(dep.name)})
    return out


def secret_name(spec: Spec) -> str:
    return f"{spec.name}-exporter-secrets"
