"""The pod sandbox: run the built image under the Deployment's own pod spec, translated to
Docker, and probe it the way the kubelet would (startup, then readiness and liveness, each
with its own path, period, timeout and thresholds). There is no cluster here; this is the
closest honest stand-in, and the evidence says what was translated and what was not."""
from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from kit.config import testcontainers_environment
from kit.errors import SandboxError
from kit.model import Spec
from kit.resources import parse_cpu, parse_memory
from kit.sandbox.engine import run_labels
from kit.sandbox.health import http_get
from kit.sandbox.run import NS, _container, _logs, _publish_loopback, placeholder_secrets, start_dependencies

# what Kubernetes does that Docker does not by default: unprivileged ports start at 1024
# (Docker sets 0 in each container), and Docker's own HEALTHCHECK does not exist for the kubelet
POD_SYSCTLS = {"net.ipv4.ip_unprivileged_port_start": "1024"}


@dataclass(frozen=True)
class Probe:
    kind: str                 # startupProbe | readinessProbe | livenessProbe
    path: str                 # "" for a tcpSocket probe
    port: int
    period: int
    timeout: int
    failure_threshold: int
    success_threshold: int


@dataclass(frozen=True)
class PodRun:
    """Docker settings equivalent to one container of a pod spec."""
    user: str
    read_only: bool
    tmpfs: dict[str, str]
    cap_drop: tuple[str, ...]
    cap_add: tuple[str, ...]
    no_new_privileges: bool
    seccomp: str
    mem_limit: int
    nano_cpus: int
    env: dict[str, str]
    secret_mounts: tuple[tuple[str, str], ...]   # (mount path, Secret name)
    port: int
    probes: tuple[Probe, ...]
    not_translated: tuple[str, ...] = ()


def _port(container: dict, ref) -> int:
    from kit.core.k8s import container_port
    port = container_port(container, ref)
    if port is None:
        raise SandboxError(f"probe port {ref!r} is not a port of container {container['name']}: the kubelet "
                           "could not probe it either (name the port in the container's ports)")
    return int(port)


def translate(objects: list[dict], name: str) -> PodRun:
    """The Deployment `name`'s pod spec as Docker settings (pure: no engine needed)."""
    deploy = next((o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == name), None)
    if deploy is None:
        raise SandboxError(f"the built overlay has no Deployment {name!r} to run in the pod sandbox")
    pod = deploy["spec"]["template"]["spec"]
    container = next((c for c in pod["containers"] if c["name"] == name), None)
    if container is None:
        raise SandboxError(f"Deployment {name!r} has no container named {name!r} to run in the pod sandbox "
                           f"(containers: {', '.join(c['name'] for c in pod['containers'])})")
    psc, csc = pod.get("securityContext", {}), container.get("securityContext", {})
    uid = csc.get("runAsUser", psc.get("runAsUser"))
    gid = csc.get("runAsGroup", psc.get("runAsGroup", uid))
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    tmpfs, secrets = {}, []
    for mount in container.get("volumeMounts", []):
        vol = volumes[mount["name"]]
        if "emptyDir" in vol:
            size = vol["emptyDir"].get("sizeLimit")
            tmpfs[mount["mountPath"]] = f"rw,nosuid,nodev,mode=1777{',size=' + str(parse_memory(size)) if size else ''}"
        elif "secret" in vol:
            secrets.append((mount["mountPath"], vol["secret"]["secretName"]))
    configmaps = {o["metadata"]["name"]: o.get("data", {}) for o in objects if o["kind"] == "ConfigMap"}
    env: dict[str, str] = {}
    for src in container.get("envFrom", []):
        env.update(configmaps[src["configMapRef"]["name"]])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
    limits = container.get("resources", {}).get("limits", {})
    probes = []
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        raw = container.get(kind)
        if raw:
            handler = raw.get("httpGet") or raw.get("tcpSocket")
            probes.append(Probe(kind, (raw.get("httpGet") or {}).get("path", ""), _port(container, handler["port"]),
                                raw.get("periodSeconds", 10), raw.get("timeoutSeconds", 1),
                                raw.get("failureThreshold", 3), raw.get("successThreshold", 1)))
    caps = csc.get("capabilities") or {}
    return PodRun(
        user=f"{uid}:{gid}" if uid is not None else "", read_only=bool(csc.get("readOnlyRootFilesystem")),
        tmpfs=tmpfs, cap_drop=tuple(caps.get("drop", [])), cap_add=tuple(caps.get("add", [])),
        no_new_privileges=csc.get("allowPrivilegeEscalation") is False,
        seccomp=(csc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type", ""),
        mem_limit=parse_memory(limits["memory"]) if "memory" in limits else 0,
        nano_cpus=int(parse_cpu(limits["cpu"]) * NS) if "cpu" in limits else 0,
        env=env, secret_mounts=tuple(secrets), port=_port(container, "http"), probes=tuple(probes),
        not_translated=("fsGroup (Docker has no equivalent: secret files are made readable by the run "
                        "group instead)", "preStop hook and terminationGracePeriodSeconds",
                        "NetworkPolicies, ServiceAccount, HPA and PDB (cluster objects)"))


def probe_once(base_url: str, probe: Probe) -> tuple[bool, str]:
    """One kubelet-style probe: HTTP 200-399 within the timeout, or a TCP connect."""
    if probe.path:
        status, _ctype, body = http_get(base_url + probe.path, timeout=probe.timeout)
        return 200 <= status < 400, f"HTTP {status}" if status else f"no answer ({body[:80]})"
    import socket
    host, port = base_url.removeprefix("http://").split(":")
    try:
        socket.create_connection((host, int(port)), timeout=probe.timeout).close()
        return True, "TCP connect"
    except OSError as exc:
        return False, f"TCP connect failed: {exc}"


@dataclass
class PodSandbox:
    app: object
    url: str
    run: PodRun
    started: float
    inspect: dict = field(default_factory=dict)
    standins: dict[str, str] = field(default_factory=dict)
    shell_less: bool = False      # a distroless image (Go): nothing to exec inside

    def running(self) -> tuple[bool, int | None]:
        wrapped = self.app.get_wrapped_container()
        wrapped.reload()
        return wrapped.status == "running", wrapped.attrs["State"].get("ExitCode")

    def logs(self) -> str:
        return _logs(self.app)


def _secret_dir(stack: ExitStack, values: dict[str, str], gid: int) -> str:
    """Placeholder secret files, owned by the pod's group and mode 0440, as the kubelet mounts them."""
    folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="kit-pod-secrets-"))
    os.chmod(folder, 0o755)
    for key, value in values.items():
        path = Path(folder) / key
        path.write_text(value)
        os.chown(path, 0, gid)
        path.chmod(0o440)
    return folder


@contextmanager
def run_pod(spec: Spec, image: str, run: PodRun, standins: dict[str, str]) -> Iterator[PodSandbox]:
    from testcontainers.core.network import Network
    testcontainers_environment()
    labels, values = run_labels(), placeholder_secrets(spec)
    with ExitStack() as stack:
        network = Network(docker_network_kw={"labels": labels})
        network.create()
        stack.callback(network.remove)
        managed = dict(spec.option("kubernetes").managed)
        start_dependencies(spec, standins, network, stack, values, skip=tuple(managed))
        gid = int(run.user.split(":")[1]) if run.user else 0
        security = (["no-new-privileges:true"] if run.no_new_privileges else []) + \
                   ([] if run.seccomp in ("RuntimeDefault", "") else ["seccomp=unconfined"])
        app = _container(image, labels, user=run.user or None, read_only=run.read_only,
                         cap_drop=list(run.cap_drop) or None, cap_add=list(run.cap_add) or None,
                         security_opt=security, mem_limit=run.mem_limit or None,
                         nano_cpus=run.nano_cpus or None, sysctls=POD_SYSCTLS,
                         healthcheck={"test": ["NONE"]})
        for path, options in run.tmpfs.items():
            app.with_tmpfs_mount(path, options)
        for path, _secret in run.secret_mounts:
            app.with_volume_mapping(_secret_dir(stack, values, gid), path, "ro")
        app.with_network(network)
        for key, value in run.env.items():
            app.with_env(key, value)
        _publish_loopback(app, run.port)
        stack.callback(app.stop)
        started = time.monotonic()
        try:
            app.start()
        except TimeoutError:       # exited at once; the probes will find it dead
            if app._container is None:
                raise
        sandbox = PodSandbox(app=app, url="", run=run, started=started,
                             inspect=app.get_wrapped_container().attrs.get("HostConfig", {}),
                             shell_less=spec.stack == "go")
        alive, _code = sandbox.running()
        if alive:
            sandbox.url = f"http://127.0.0.1:{app.get_exposed_port(run.port)}"
        yield sandbox
