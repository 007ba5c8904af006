"""Compose checks: compose-spec schema, `docker compose config`, consistency, a live stack."""
from __future__ import annotations

import time

import yaml

from kit.core.context import VerifyContext
from kit.core.tools import tool_version, venv_tool
from kit.errors import SandboxError
from kit.evidence import Evidence, run_tool
from kit.families.container.checks import unhealthy_verdict
from kit.families.container.render import healthcheck_command
from kit.model import Spec
from kit.sandbox.compose_run import leftovers, run_stack
from kit.sandbox.engine import docker_cli
from kit.sandbox.health import http_get, wait_http

DELIVERABLE = "compose.yaml"
PLACEHOLDER = "change-me"


def static_checks(spec: Spec, ctx: VerifyContext) -> list[Evidence]:
    cj = venv_tool("check-jsonschema")
    schema = run_tool("compose.schema", DELIVERABLE, "compose.yaml validates against the compose-spec schema",
                      [cj, "--builtin-schema", "vendor.compose-spec", "compose.yaml"],
                      tool=f"check-jsonschema {tool_version([cj, '--version'])}", cwd=ctx.deliverables)
    config = run_tool("compose.config", DELIVERABLE, "docker compose accepts the file (config --quiet)",
                      [docker_cli(), "compose", "-f", "compose.yaml", "config", "--quiet"],
                      tool="docker compose", cwd=ctx.deliverables)
    return [schema, config, consistency(spec, ctx.files[DELIVERABLE]), env_example(spec, ctx.files[".env.example"])]


def consistency(spec: Spec, text: str) -> Evidence:
    data = yaml.safe_load(text) or {}
    services, problems = data.get("services") or {}, []
    app = services.get(spec.name) or {}
    if (app.get("healthcheck") or {}).get("test") != ["CMD", *healthcheck_command(spec)]:
        problems.append("the app's healthcheck differs from the Dockerfile HEALTHCHECK")
    ports = app.get("ports") or []
    if not any(str(p).endswith(f":{spec.port}") for p in ports):
        problems.append(f"no published port maps to container port {spec.port}")
    if any(not str(p).startswith("127.0.0.1:") for p in ports):
        problems.append("a port is published beyond 127.0.0.1")
    for name, svc in services.items():
        if not (svc or {}).get("healthcheck"):
            problems.append(f"service {name} has no healthcheck")
    for dep in spec.dependencies:
        cond = ((app.get("depends_on") or {}).get(dep.name) or {}).get("condition")
        if cond != "service_healthy":
            problems.append(f"{spec.name} does not wait for {dep.name} to be healthy")
        if not any(str(v).startswith(f"{dep.volume}:") for v in (services.get(dep.name) or {}).get("volumes") or []):
            problems.append(f"{dep.name} keeps no data in the named volume {dep.volume}")
    environment = app.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) if "=" in item else (item, "") for item in environment)
    limits = ((app.get("deploy") or {}).get("resources") or {}).get("limits") or {}
    from kit.resources import compose_memory
    if str(limits.get("cpus")) != f"{spec.cpu:g}" or str(limits.get("memory")) != compose_memory(spec.memory):
        problems.append(f"the app's limits {limits} differ from the service model "
                        f"(cpus {spec.cpu:g}, memory {compose_memory(spec.memory)})")
    from kit.task import URL_PASSWORD
    for key, value in environment.items():
        if URL_PASSWORD.search(str(value)):
            problems.append(f"{key} carries a password inside a URL")
    for secret in spec.secrets:
        if secret in environment:
            problems.append(f"secret {secret} is set as plain environment")
        if secret not in (app.get("secrets") or []):
            problems.append(f"secret {secret} is not mounted into {spec.name}")
    return Evidence("compose.consistency", DELIVERABLE,
                    "healthchecks everywhere, depends_on healthy, ports and health match the Dockerfile, "
                    "secrets only from files", "failed" if problems else "passed", tool="kit",
                    reason="; ".join(problems), figures={"services": sorted(services)})


def env_example(spec: Spec, text: str) -> Evidence:
    from kit.task import SECRET_WORDS, URL_PASSWORD
    problems = []
    for row in text.splitlines():
        if row.startswith("#") or "=" not in row:
            continue
        key, value = row.split("=", 1)
        if key in spec.secrets and value != PLACEHOLDER:
            problems.append(f"{key} has a value other than the placeholder {PLACEHOLDER!r}")
        elif key not in spec.secrets and (URL_PASSWORD.search(value) or (SECRET_WORDS.search(key) and value)):
            problems.append(f"{key} looks like it carries a secret value")
    missing = [s for s in spec.secrets if f"\n{s}={PLACEHOLDER}" not in "\n" + text]
    problems += [f"{s} is not listed" for s in missing]
    return Evidence("compose.env_example", ".env.example", ".env.example lists every secret, with placeholders only",
                    "failed" if problems else "passed", tool="kit", reason="; ".join(problems))


def sandbox_checks(spec: Spec, ctx: VerifyContext) -> list[Evidence]:
    ids = ("compose.up", "compose.health", "compose.cleanup")
    from kit.core.session import existing_image
    if not existing_image(spec, ctx):
        return [Evidence(i, DELIVERABLE, i, "skipped", reason="the image did not build") for i in ids]
    unhealthy = unhealthy_verdict(ctx)
    if unhealthy:
        return [Evidence(i, DELIVERABLE, i, "skipped", reason=f"the container run failed first ({unhealthy}); "
                         "the stack cannot be healthier than its app") for i in ids]
    images = {dep.image: ctx.standin(dep.image) for dep in spec.dependencies}
    standins = {real: used for real, used in images.items() if real != used}
    records: list[Evidence] = []
    project = ""
    start = time.monotonic()
    try:
        with run_stack(spec, ctx.staged, ctx.image, images) as stack:
            project = stack.project
            records.append(_up(spec, stack, standins))
            records.append(_health(spec, stack))
            records += [_dependency_probe(spec, stack, dep) for dep in spec.dependencies]
    except SandboxError as exc:
        project = project or "(unknown)"
        records.append(Evidence("compose.up", DELIVERABLE, "every service in the stack becomes healthy",
                                "failed", tool="testcontainers DockerCompose", reason=str(exc), log=exc.logs,
                                duration_s=round(time.monotonic() - start, 2), standins=standins))
    if project and project != "(unknown)":
        left = leftovers(project)
        ok = not any(left.values())
        records.append(Evidence("compose.cleanup", DELIVERABLE,
                                "compose down -v leaves no container, network or volume behind",
                                "passed" if ok else "failed", tool="docker", figures=left,
                                reason="" if ok else f"left behind: {left}"))
    return records


def _up(spec: Spec, stack, standins) -> Evidence:
    states = {s.get("Service"): s.get("Health") or s.get("State") for s in stack.services}
    ok = bool(states) and all(v == "healthy" for v in states.values())
    return Evidence("compose.up", DELIVERABLE, "every service in the stack becomes healthy (up --wait)",
                    "passed" if ok else "failed", tool="testcontainers DockerCompose",
                    duration_s=stack.up_seconds, reason="" if ok else f"states: {states}",
                    figures={"time_to_healthy_s": stack.up_seconds, "services": states,
                             "override": "compose.kit-sandbox.yaml: stand-in images, loopback port, 1 s health "
                                         "interval, start period = kit's health deadline"},
                    standins=standins)


def _health(spec: Spec, stack) -> Evidence:
    if not spec.health_path:
        import socket
        port = int(stack.url.rsplit(":", 1)[1])
        try:
            socket.create_connection(("127.0.0.1", port), timeout=3).close()
            ok, reason = True, ""
        except OSError as exc:
            ok, reason = False, f"TCP connect to 127.0.0.1:{port} failed: {exc}"
        return Evidence("compose.health", DELIVERABLE, "the app's port accepts TCP connections inside the stack",
                        "passed" if ok else "failed", tool="kit (socket)", reason=reason,
                        fallback=spec.health_fallback)
    status, _, body = http_get(stack.url + spec.health_path)
    ok = status == 200
    return Evidence("compose.health", DELIVERABLE, f"the app's health ({spec.health_path}) passes inside the stack",
                    "passed" if ok else "failed", tool="kit (urllib)", figures={"status": status},
                    reason="" if ok else f"status {status}", log=body[:400])


def _dependency_probe(spec: Spec, stack, dep) -> Evidence:
    """Stop the dependency: the health check must fail, then pass again once it is back.
    That proves the app really talks to it (and that its health check says so)."""
    check, title = f"compose.depends.{dep.name}", f"the app's health reflects {dep.name} ({dep.kind})"
    if not spec.health_path:
        return Evidence(check, DELIVERABLE, title, "skipped", reason="no HTTP health path to observe")
    url = stack.url + spec.health_path
    stack.compose("stop", dep.name)
    went_down, down_s, down_status = wait_http(url, want_ok=False, timeout=20)
    stack.compose("start", dep.name)
    came_back, back_s, _ = wait_http(url, want_ok=True, timeout=60)
    figures = {"unhealthy_after_stop_s": down_s, "status_while_down": down_status,
               "healthy_after_start_s": back_s}
    if not went_down:
        return Evidence(check, DELIVERABLE, title, "skipped", tool="docker compose stop/start",
                        figures=figures, reason=f"{spec.health_path} stayed 200 with {dep.name} stopped: the "
                        "health check does not cover it, so the app's use of it is not proven")
    return Evidence(check, DELIVERABLE, title, "passed" if came_back else "failed",
                    tool="docker compose stop/start", figures=figures, duration_s=round(down_s + back_s, 2),
                    reason="" if came_back else f"the app did not recover after {dep.name} came back")
