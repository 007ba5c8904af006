"""The task's `kubernetes:` section: target version, environments, ingress, secrets, extras."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from kit.errors import TaskError
from kit.resources import parse_cpu, parse_memory

HOST = r"^(\*\.)?[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)+$"
ENVIRONMENTS = ("dev", "staging", "prod")
DEFAULT_VERSION = "1.33"
_DEFAULTS = {"dev": (1, 1, 2), "staging": (2, 2, 4), "prod": (3, 3, 10)}
_NAME = r"^[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?$"

_env_schema = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "replicas": {"type": "integer", "minimum": 1, "maximum": 1000,
                     "description": "default of min_replicas; the Deployment itself sets no replicas, as "
                                    "the HPA owns the count"},
        "min_replicas": {"type": "integer", "minimum": 1, "maximum": 1000,
                         "description": "HPA lower bound (default: replicas)"},
        "max_replicas": {"type": "integer", "minimum": 1, "maximum": 1000, "description": "HPA upper bound"},
        "host": {"type": "string", "description": "Ingress host of this environment"},
        "tag": {"type": "string", "pattern": r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$",
                "description": "image tag deployed in this environment"},
        "cpu": {"type": ["string", "number"], "description": "CPU limit per pod, e.g. 500m"},
        "memory": {"type": ["string", "integer"], "description": "memory limit per pod, e.g. 512Mi"},
    },
}

SCHEMA = {
    "type": "object", "additionalProperties": False,
    "description": "Kubernetes deliverables (k8s/): Kustomize base and dev/staging/prod overlays.",
    "properties": {
        "version": {"type": "string", "pattern": r"^1\.\d+$",
                    "description": "the cluster's Kubernetes minor version, quoted, e.g. \"1.32\"; "
                                   "manifests are validated against it and the two before"},
        "namespace": {"type": "string", "pattern": _NAME, "description": "default: the service name"},
        "ingress": {"type": "object", "additionalProperties": False, "properties": {
            "host": {"type": "string", "description": "public host name, e.g. shop.example.com"},
            "class": {"type": "string", "pattern": _NAME, "description": "IngressClass name (default nginx)"},
            "controller_namespace": {"type": "string", "pattern": _NAME,
                                     "description": "namespace of the ingress controller (default ingress-nginx)"},
            "cluster_issuer": {"type": "string", "pattern": _NAME,
                               "description": "cert-manager ClusterIssuer; adds the cert-manager annotation"}}},
        "secrets": {"enum": ["external", "secret"],
                    "description": "external: an ExternalSecret (external-secrets.io CRD, a prerequisite); "
                                   "secret: a Secret manifest with the names and no values"},
        "secret_store": {"type": "string", "pattern": _NAME,
                         "description": "ClusterSecretStore the ExternalSecret reads from"},
        "monitoring_namespace": {"type": "string", "pattern": _NAME,
                                 "description": "namespace of the Prometheus that scrapes the pods"},
        "pdb": {"type": "object", "additionalProperties": False, "maxProperties": 1,
                "description": "the app's PodDisruptionBudget, one of: max_unavailable (default 1, the "
                               "Kubernetes docs' recommendation: it follows the HPA), or min_available, "
                               "which must stay below every environment's min_replicas or drains block",
                "properties": {
                    "max_unavailable": {"type": "integer", "minimum": 1, "maximum": 1000},
                    "min_available": {"type": "integer", "minimum": 0, "maximum": 1000}}},
        "cpu_utilization": {"type": "integer", "minimum": 10, "maximum": 100,
                            "description": "HPA target average CPU utilization, percent"},
        "environments": {"type": "object", "additionalProperties": False,
                         "properties": dict.fromkeys(ENVIRONMENTS, _env_schema)},
        "managed": {"type": "object", "propertyNames": {"pattern": _NAME},
                    "additionalProperties": {"type": "string"},
                    "description": "dependencies run outside the cluster: dependency name -> host"},
        "api_access": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["resources", "verbs"],
            "properties": {"api_groups": {"type": "array", "items": {"type": "string"}},
                           "resources": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                           "verbs": {"type": "array", "minItems": 1, "items": {"enum": [
                               "get", "list", "watch", "create", "update", "patch", "delete"]}}}},
                       "description": "Kubernetes API rules the app needs (a Role and RoleBinding)"},
        "cronjobs": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["name", "schedule", "command"],
            "properties": {"name": {"type": "string", "pattern": _NAME},
                           "schedule": {"type": "string",
                                        "pattern": r"^(@(hourly|daily|weekly|monthly|yearly)|(\S+\s+){4}\S+)$"},
                           "command": {"type": "array", "items": {"type": "string"}, "minItems": 1}}}},
        "liveness": {"type": "string", "pattern": r"^(tcp|/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)$",
                     "description": "what the startup and liveness probes (which restart the container) "
                                    "check: tcp, or a path that does not check dependencies (e.g. /livez, "
                                    "or the health path when it checks none); default tcp when the service "
                                    "has dependencies, else the health path"},
        "strategy": {"enum": ["rolling", "canary", "blue-green"],
                     "description": "rolling (default); canary: a one-replica canary Deployment behind the "
                                    "same Service; blue-green: two Deployments, the Service selects one"},
    },
}


@dataclass(frozen=True)
class Environment:
    name: str
    replicas: int
    min_replicas: int
    max_replicas: int
    host: str
    tag: str
    cpu: float
    memory: int
    cpu_request: float | None = None     # None: half the limit; else derived from scaling.measured (prod)


@dataclass(frozen=True)
class CronJob:
    name: str
    schedule: str
    command: tuple[str, ...]


@dataclass(frozen=True)
class KubeOptions:
    version: str
    versions: tuple[str, ...]        # the task's version and the two before, newest first
    namespace: str
    host: str
    ingress_class: str
    controller_namespace: str
    cluster_issuer: str
    secrets: str
    secret_store: str
    monitoring_namespace: str
    pdb_min_available: int | None    # the task's minAvailable, or None: maxUnavailable instead
    pdb_max_unavailable: int | None
    cpu_utilization: int
    environments: tuple[Environment, ...]
    managed: tuple[tuple[str, str], ...]
    api_access: tuple[dict, ...]
    cronjobs: tuple[CronJob, ...]
    strategy: str
    liveness: str = ""               # "" (default: tcp with dependencies, else the health path), "tcp", or a path

    @property
    def crd_kinds(self) -> tuple[str, ...]:
        """Kinds from CRDs the task declares (by its choices): named as prerequisites."""
        return ("ExternalSecret",) if self.secrets == "external" else ()

    def env(self, name: str) -> Environment:
        return next(e for e in self.environments if e.name == name)


@lru_cache(maxsize=1)
def supported_versions() -> tuple[str, ...]:
    """Minor versions kubernetes-validate ships schemas for, oldest first."""
    from kubernetes_validate.utils import all_versions
    minors = {".".join(v.split(".")[:2]) for v in all_versions()}
    return tuple(sorted(minors, key=lambda v: tuple(int(p) for p in v.split("."))))


def parse(doc, spec) -> KubeOptions:
    raw = doc.data.get("kubernetes") or {}

    def fail(message: str, *path, hint: str = "") -> TaskError:
        return doc.error(message, "kubernetes", *path, hint=hint or None)

    version = str(raw.get("version", DEFAULT_VERSION))
    known = supported_versions()
    if version not in known or known.index(version) < 2:
        usable = known[2:]
        raise fail(f"unknown Kubernetes version {version}", "version",
                   hint=f"use one of {usable[0]} to {usable[-1]}; kit validates against it and the two before")
    at = known.index(version)
    ingress = raw.get("ingress") or {}
    host = ingress.get("host", f"{spec.name}.example.com")
    _check_host(host, fail, "ingress", "host")
    pdb = raw.get("pdb") or {}
    pdb_min = int(pdb["min_available"]) if "min_available" in pdb else None
    pdb_max = None if pdb_min is not None else int(pdb.get("max_unavailable", 1))
    envs = tuple(_environment(name, (raw.get("environments") or {}).get(name) or {}, spec, host, pdb_min, fail)
                 for name in ENVIRONMENTS)
    # prod from the task's committed scaling.measured where the task states no figure of its own
    from kit.families.scaling.plan import cpu_utilization, prod_environment
    stated = (raw.get("environments") or {}).get("prod") or {}
    envs = tuple(prod_environment(doc, spec, e, stated) if e.name == "prod" else e for e in envs)
    dep_names = {d.name for d in spec.dependencies}
    for name, target in (raw.get("managed") or {}).items():
        if name not in dep_names:
            raise fail(f"{name!r} is not a declared dependency", "managed", name,
                       hint=f"name one of: {', '.join(sorted(dep_names)) or '(no dependencies declared)'}")
        _check_host(target, fail, "managed", name)
    return KubeOptions(
        version=version, versions=tuple(reversed(known[at - 2:at + 1])),
        namespace=raw.get("namespace", spec.name), host=host,
        ingress_class=ingress.get("class", "nginx"),
        controller_namespace=ingress.get("controller_namespace", "ingress-nginx"),
        cluster_issuer=ingress.get("cluster_issuer", ""),
        secrets=raw.get("secrets", "external"), secret_store=raw.get("secret_store", "platform-secrets"),
        monitoring_namespace=raw.get("monitoring_namespace", "monitoring"),
        pdb_min_available=pdb_min, pdb_max_unavailable=pdb_max,
        cpu_utilization=cpu_utilization(doc, spec, raw.get("cpu_utilization"), 70),
        environments=envs, managed=tuple(sorted((raw.get("managed") or {}).items())),
        api_access=tuple(raw.get("api_access", [])),
        cronjobs=tuple(CronJob(c["name"], c["schedule"], tuple(c["command"])) for c in raw.get("cronjobs", [])),
        strategy=raw.get("strategy", "rolling"), liveness=raw.get("liveness", ""))


def _check_host(host: str, fail, *path) -> None:
    if len(host) > 253 or not re.match(HOST, host):
        raise fail(f"{host!r} is not a valid host name", *path,
                   hint="a lower-case DNS name with at least one dot and no scheme, port or path, e.g. shop.example.com")


def _environment(name: str, raw: dict, spec, base_host: str, pdb_min: int | None, fail) -> Environment:
    replicas, low, high = _DEFAULTS[name]
    replicas = int(raw.get("replicas", replicas))
    low = int(raw.get("min_replicas", raw.get("replicas", low)))
    high = int(raw.get("max_replicas", max(high, low)))
    where = ("environments", name)
    if low > high:
        raise fail(f"HPA min_replicas {low} is above max_replicas {high}", *where, "min_replicas",
                   hint="make min_replicas <= max_replicas")
    if not low <= replicas <= high:
        raise fail(f"replicas {replicas} is outside the HPA bounds {low}-{high}", *where, "replicas",
                   hint="keep replicas between min_replicas and max_replicas")
    if pdb_min is not None and low <= pdb_min:
        raise fail(f"{name} may scale down to {low} replica(s), and the PodDisruptionBudget keeps "
                   f"minAvailable {pdb_min}: evictions would be refused and node drains would block",
                   *where, "min_replicas",
                   hint=f"raise min_replicas above {pdb_min}, or use kubernetes.pdb.max_unavailable (default 1)")
    host = raw.get("host", base_host if name == "prod" else f"{name}.{base_host}")
    _check_host(host, fail, *where, "host")
    values = {}
    for key, parser, default in (("cpu", parse_cpu, spec.cpu), ("memory", parse_memory, spec.memory)):
        try:
            values[key] = parser(raw[key]) if key in raw else default
        except ValueError as exc:
            raise fail(str(exc), *where, key) from None
    return Environment(name, replicas, low, high, host, str(raw.get("tag", name)), values["cpu"], values["memory"])
