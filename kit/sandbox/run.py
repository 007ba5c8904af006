"""Run the built image with its dependencies (stand-ins) through testcontainers.

Every container and network is labelled and removed on the way out, also after an error
or Ctrl-C."""
from __future__ import annotations

import secrets as pysecrets
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

from kit.config import Settings, testcontainers_environment
from kit.errors import SandboxError
from kit.evidence import excerpt
from kit.model import Spec
from kit.sandbox.engine import run_labels
from kit.sandbox.health import HealthResult, wait_healthy

FAST_HEALTH = {"interval": 500_000_000, "timeout": 5_000_000_000, "retries": 3}
NS = 1_000_000_000


def placeholder_secrets(spec: Spec) -> dict[str, str]:
    """Sandbox-only values for the declared secrets; never written to the output."""
    return {name: "kit-sandbox-" + pysecrets.token_hex(8) for name in spec.secrets}


@dataclass
class Running:
    app: object                                  # testcontainers DockerContainer
    url: str                                     # http://127.0.0.1:<mapped port>
    metrics_url: str
    health: HealthResult
    deps: dict[str, HealthResult] = field(default_factory=dict)
    standins: dict[str, str] = field(default_factory=dict)
    health_override: str = ""


def _container(image: str, labels: dict[str, str], **kwargs):
    from testcontainers.core.container import DockerContainer
    return DockerContainer(image, labels=labels, **kwargs)


def _publish_loopback(container, port: int) -> None:
    container.ports[f"{port}/tcp"] = ("127.0.0.1",)   # random host port, loopback only


def _logs(container, full: bool = False) -> str:
    """The container's log: an excerpt for the record, or `full` (to find a crash's root cause)."""
    try:
        out, err = container.get_logs()
        text = (out or b"").decode(errors="replace") + (err or b"").decode(errors="replace")
        return text if full else excerpt(text)
    except Exception as exc:  # the container may be gone; say so rather than hide it
        return f"(logs unavailable: {exc})"


def start_dependencies(spec: Spec, standins: dict[str, str], network, stack: ExitStack,
                       values: dict[str, str], skip: tuple[str, ...] = ()) -> dict[str, HealthResult]:
    """Start each dependency's stand-in on the network under its service name; wait until healthy.
    Each container's removal is registered on `stack` before it starts."""
    settings, labels, dep_health = Settings.load(), run_labels(), {}
    for dep in spec.dependencies:
        if dep.name in skip:
            continue
        container = _container(standins[dep.image], labels, healthcheck=FAST_HEALTH)
        container.with_network(network).with_network_aliases(dep.name)
        for key, value in dep.env:
            if key == "POSTGRES_PASSWORD_FILE":
                container.with_env("POSTGRES_PASSWORD", values[dep.secret])
            else:
                container.with_env(key, value)
        if dep.command:
            container.with_command(list(dep.command))
        stack.callback(container.stop)     # registered first: a failed start still cleans up
        container.start()
        result = wait_healthy(container.get_wrapped_container().id, settings.health_timeout_s, dep.name)
        if result.status != "healthy":
            raise SandboxError(f"dependency {dep.name} ({standins[dep.image]}) did not become healthy: "
                               f"{result.explain()}", logs=_logs(container))
        dep_health[dep.name] = result
    return dep_health


@contextmanager
def run_service(spec: Spec, image: str, standins: dict[str, str]) -> Iterator[Running]:
    """Start dependencies, wait until healthy, start the app, wait until Docker says healthy."""
    from testcontainers.core.network import Network
    testcontainers_environment()
    settings, labels = Settings.load(), run_labels()
    values = placeholder_secrets(spec)
    with ExitStack() as stack:
        network = Network(docker_network_kw={"labels": labels})
        network.create()
        stack.callback(network.remove)
        dep_health = start_dependencies(spec, standins, network, stack, values)
        # failing probes count only after the start period: end it with kit's own deadline, so a
        # service that never becomes healthy turns 'unhealthy' instead of staying 'starting'
        grace = int(settings.health_timeout_s * NS)
        # the app runs under the Spec's limits, as it will in compose and on a cluster
        app = _container(image, labels, healthcheck={**FAST_HEALTH, "start_period": grace},
                         mem_limit=spec.memory, nano_cpus=int(spec.cpu * NS))
        app.with_network(network)
        for key, value in spec.all_env():
            app.with_env(key, value)
        for key, value in values.items():
            app.with_env(key, value)
        _publish_loopback(app, spec.port)
        if spec.metrics_port != spec.port:
            _publish_loopback(app, spec.metrics_port)
        stack.callback(app.stop)
        try:
            app.start()
        except TimeoutError:   # testcontainers' "did not become running": it exited at once
            if app._container is None:
                raise
        health = wait_healthy(app.get_wrapped_container().id, settings.health_timeout_s + 10, spec.name)
        url = murl = ""   # an exited container has no published ports
        if health.status != "exited":
            url = f"http://127.0.0.1:{app.get_exposed_port(spec.port)}"
            murl = f"http://127.0.0.1:{app.get_exposed_port(spec.metrics_port)}"
        yield Running(app=app, url=url, metrics_url=murl, health=health, deps=dep_health,
                      health_override=f"sandbox health interval 0.5 s, start period {settings.health_timeout_s:g} s "
                                      "(image: 15 s, 30 s); the test command is the image's own")
