"""Container checks: hadolint, consistency, a BuildKit build, and a real run."""
from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

from kit.core.context import VerifyContext
from kit.core.tools import tool_version, venv_tool
from kit.errors import SandboxError
from kit.evidence import Evidence, run_tool
from kit.families.container.dockerfile import dockerfile_facts
from kit.families.container.render import node_tool
from kit.model import Spec
from kit.sandbox import pkgindex
from kit.sandbox.build import build_image
from kit.sandbox.health import http_get
from kit.sandbox.run import run_service

DELIVERABLE = "Dockerfile"


def static_checks(spec: Spec, ctx: VerifyContext) -> list[Evidence]:
    hadolint = venv_tool("hadolint")
    lint = run_tool("container.hadolint", DELIVERABLE, "hadolint finds nothing at warning level or above",
                    [hadolint, "--failure-threshold", "warning", "--no-color", "Dockerfile"],
                    tool=f"hadolint {tool_version([hadolint, '--version'])}", cwd=ctx.deliverables)
    if spec.stack == "go":       # no shell in the final image: the entrypoint is kit-init, a static Go binary
        shell = Evidence("container.shellcheck", "docker/entrypoint.sh", "shellcheck passes the entrypoint",
                         "skipped", reason="no shell script: a Go image's entrypoint is docker/kit-init/main.go, "
                                           "a static binary built in the image (its build is container.build)")
        return [lint, shell, consistency(spec, ctx.files[DELIVERABLE], ctx.files)]
    shell = run_tool("container.shellcheck", "docker/entrypoint.sh", "shellcheck passes the entrypoint",
                     ["shellcheck", "--severity=style", "docker/entrypoint.sh"],
                     tool=f"shellcheck {tool_version(['shellcheck', '--version'])}", cwd=ctx.deliverables)
    return [lint, shell, consistency(spec, ctx.files[DELIVERABLE])]


def consistency(spec: Spec, dockerfile: str, files: dict[str, str] | None = None) -> Evidence:
    """EXPOSE = the Spec's port = the port in CMD and HEALTHCHECK; the user is numeric non-root."""
    facts = dockerfile_facts(dockerfile)
    problems = []
    if facts.expose != (spec.port,):
        problems.append(f"EXPOSE {facts.expose} != service port {spec.port}")
    health = " ".join(facts.healthcheck)
    if spec.stack == "go":       # the probe's URL is compiled into kit-init: read it from its source
        init = (files or {}).get("docker/kit-init/main.go", "")
        if facts.healthcheck != ["/app/kit-init", "health"]:
            problems.append(f"HEALTHCHECK is not the static probe /app/kit-init health: {facts.healthcheck}")
        health = " ".join(re.findall(r'health(?:URL|Addr)\s*=\s*("[^"]*")', init))
        for flag in ("CGO_ENABLED=0", '-trimpath -ldflags "-s -w"'):
            if flag not in dockerfile:
                problems.append(f"the build does not use {flag}")
    if not re.search(rf"127\.0\.0\.1\D{{1,4}}{spec.port}\b", health):
        problems.append(f"HEALTHCHECK does not probe port {spec.port}: {health!r}")
    if spec.health_path and spec.health_path not in health:
        problems.append(f"HEALTHCHECK does not probe {spec.health_path}")
    if spec.stack in ("node", "go"):   # the port comes from the code: PORT in ENV, or the literal it listens on
        if f'PORT="{spec.port}"' not in dockerfile:
            problems.append(f"ENV does not set PORT={spec.port}")
    elif not any(part in (str(spec.port), f"0.0.0.0:{spec.port}", f"[::]:{spec.port}") for part in facts.cmd):
        problems.append(f"CMD does not bind port {spec.port}: {facts.cmd}")
    uid = facts.user.split(":")[0]
    if not uid.isdigit() or int(uid) == 0:
        problems.append(f"USER must be a numeric non-root id, got {facts.user!r}")
    if facts.stages < 2:
        problems.append("the build is not multi-stage")
    return Evidence("container.consistency", DELIVERABLE,
                    "EXPOSE, CMD and HEALTHCHECK use the service's port and health path; USER is numeric non-root",
                    "failed" if problems else "passed", tool="kit", reason="; ".join(problems),
                    figures={"expose": list(facts.expose), "user": facts.user, "stages": facts.stages})


def sandbox_checks(spec: Spec, ctx: VerifyContext) -> list[Evidence]:
    if spec.stack == "go":
        why = go_sandbox_skip(spec)
        if why:
            return [Evidence("container.build", DELIVERABLE, "the image builds with BuildKit", "skipped", reason=why),
                    *_skipped_run(spec, why)]
    build = build_evidence(spec, ctx)
    if not build.passed:
        return [build, *_skipped_run(spec, "the image did not build")]
    return [build, *run_evidence(spec, ctx)]


def build_evidence(spec: Spec, ctx: VerifyContext) -> Evidence:
    base = ctx.standin(spec.base_image)
    from kit.core.session import image_tag
    tag = image_tag(spec, ctx)
    if spec.stack == "node":
        return _node_build(spec, ctx, base, tag)
    if spec.stack == "go":
        return _go_build(spec, ctx, tag)
    command = f"docker build --network host --build-arg PYTHON_IMAGE={base} --build-arg PIP_INDEX_URL=<local index> -t {tag} ."

    def build():
        wheels = pkgindex.wheelhouse(spec.source, spec.requirements_file, spec.extra_packages, base,
                                     spec.constraints)
        with pkgindex.serve_index(wheels) as index_url:
            return build_image(ctx.staged, tag, {"PYTHON_IMAGE": base, "PIP_INDEX_URL": index_url}), {}
    return _build_record(ctx, tag, command, {spec.base_image: base}, build)


def _build_record(ctx: VerifyContext, tag: str, command: str, images: dict[str, str], build) -> Evidence:
    """container.build for every stack: `build()` returns (the built image, the stack's own
    figures) or raises SandboxError; `images` maps each real base image to what the build used."""
    title = "the image builds with BuildKit"
    start = time.monotonic()
    try:
        built, figures = build()
    except SandboxError as exc:
        return Evidence("container.build", DELIVERABLE, title, "failed", tool="docker buildx (BuildKit)",
                        command=command, duration_s=round(time.monotonic() - start, 2), reason=str(exc),
                        log=exc.logs, standins=_substituted(images))
    ctx.image = tag
    ctx.facts["layers"] = built.layers
    return Evidence("container.build", DELIVERABLE, title, "passed", tool="docker buildx (BuildKit)",
                    command=command, duration_s=built.seconds,
                    figures={"image": tag, "size_mb": round(built.size_bytes / 1e6, 1),
                             "layers": len(built.layers), "build_s": built.seconds,
                             "layer_sizes": built.layers, **figures},
                    log=built.log, standins=_substituted(images))


def _node_build(spec: Spec, ctx: VerifyContext, base: str, tag: str) -> Evidence:
    """The Node image, its packages served by kit's local npm registry on 127.0.0.1
    (kit.sandbox.npmregistry), passed as the NPM_CONFIG_REGISTRY build argument."""
    from kit.sandbox import npmregistry
    command = (f"docker build --network host --build-arg NODE_IMAGE={base} "
               f"--build-arg NPM_CONFIG_REGISTRY=<local npm registry> -t {tag} .")

    def build():
        omit_dev = not getattr(spec.facts, "build_script", False)
        tool = node_tool(spec)
        with npmregistry.serve_registry(spec.source, spec.lock_file, omit_dev=omit_dev,
                                        tools=(tool["package"],) if tool else ()) as (url, registry):
            built = build_image(ctx.staged, tag, {"NODE_IMAGE": base, "NPM_CONFIG_REGISTRY": url})
        return built, {"npm_registry": registry["mode"], "npm_tarballs_locked": registry["tarballs_locked"],
                       "native_modules": list(getattr(spec.facts, "native_modules", ())),
                       "package_manager": (f"{tool['package']}@{tool['version']} ({tool['origin']})" if tool
                                           else spec.facts.package_manager),
                       "npm_requests_served": len(registry["served"]),
                       "npm_install_cached": _step_cached(built.log, "--mount=type=cache,target=/root/.npm")}
    return _build_record(ctx, tag, command, {spec.base_image: base}, build)


GO_TOOLCHAIN_STANDIN = "1.19"     # Debian bookworm's golang-go: the only Go toolchain here


def go_sandbox_skip(spec: Spec) -> str:
    """Why the sandbox cannot build this Go service ("" when it can): the module proxy is not
    reachable here, and Debian's toolchain is Go 1.19 (SANDBOX.md)."""
    facts = spec.facts
    directive = getattr(facts, "go", "") or "1.22"
    reasons = []
    if tuple(int(x) for x in directive.split(".")[:2]) > tuple(int(x) for x in GO_TOOLCHAIN_STANDIN.split(".")):
        reasons.append(f"go.mod's go directive {directive} is newer than the Go toolchain kit can use here "
                       f"({GO_TOOLCHAIN_STANDIN}, Debian bookworm's golang-go; no golang:{directive} image can be pulled)")
    if facts.requires and not facts.vendored:
        reasons.append(f"the module needs {len(facts.requires)} external module(s) ({', '.join(facts.requires[:3])}) "
                       "and the Go module proxy is not reachable here; vendor them (`go mod vendor`) to have the "
                       "build proven")
    return "; ".join(reasons) + (": the build and the runtime checks are not run; the static checks are"
                                 if reasons else "")


def _go_build(spec: Spec, ctx: VerifyContext, tag: str) -> Evidence:
    """The Go image on the stand-in builder (Debian's Go 1.19) and the stand-in distroless static
    image, with GOPROXY=off: only the standard library and vendored modules can be used."""
    from kit.model import GO_RUNTIME_IMAGE
    # the go directive is at most 1.19 here (go_sandbox_skip): Debian's Go 1.19 builds it
    base, runtime = ctx.standin(f"golang:{GO_TOOLCHAIN_STANDIN}"), ctx.standin(GO_RUNTIME_IMAGE)
    command = (f"docker build --network host --build-arg GO_IMAGE={base} --build-arg RUNTIME_IMAGE={runtime} "
               f"--build-arg GOPROXY=off -t {tag} .")

    def build():
        built = build_image(ctx.staged, tag, {"GO_IMAGE": base, "RUNTIME_IMAGE": runtime, "GOPROXY": "off"})
        return built, {"goproxy": "off", "vendored": spec.facts.vendored,
                       "toolchain": f"go {GO_TOOLCHAIN_STANDIN} (stand-in for {spec.base_image})"}
    return _build_record(ctx, tag, command, {spec.base_image: base, GO_RUNTIME_IMAGE: runtime}, build)


def _step_cached(log: str, marker: str) -> bool:
    """BuildKit reused the layer of the step whose line holds `marker` (plain progress: `#N [...] RUN
    ...` then `#N CACHED`): the registry then served nothing, and that is why."""
    for match in re.finditer(r"^#(\d+) \[[^\]]*\] RUN (.*)$", log, re.M):
        if marker in match.group(2):
            return re.search(rf"^#{match.group(1)} CACHED\s*$", log, re.M) is not None
    return False


def _substituted(images: dict[str, str]) -> dict[str, str]:
    """Only real substitutions are recorded as stand-ins (a loaded real image is not one)."""
    return {real: used for real, used in images.items() if real != used}


def _skipped_run(spec: Spec, why: str) -> list[Evidence]:
    ids = ["container.healthy", "container.health_endpoint", "container.route_guard",
           "container.metrics", "container.nonroot", "container.shutdown"]
    return [Evidence(i, DELIVERABLE, i.split(".")[1].replace("_", " "), "skipped", reason=why) for i in ids]


def run_evidence(spec: Spec, ctx: VerifyContext) -> list[Evidence]:
    images = {dep.image: ctx.standin(dep.image) for dep in spec.dependencies}
    standins = _substituted(images)
    start = time.monotonic()
    try:
        with run_service(spec, ctx.image, images) as running:
            records = [_healthy(spec, running, standins)]
            if running.health.status != "healthy":
                from kit.evidence import excerpt
                from kit.sandbox.run import _logs
                full = _logs(running.app, full=True)
                records[0].log = excerpt(full)
                records[0].reason += _diagnosis(spec, full, running.health, ctx.image)
                return records + _skipped_run(spec, "the container never became healthy")[1:]
            records += [_health_endpoint(spec, running), _route_guard(spec, running),
                        _metrics(spec, running), _nonroot(spec, running)]
            records.append(_shutdown(spec, running))
            return records
    except SandboxError as exc:
        failed = Evidence("container.healthy", DELIVERABLE, "Docker reports the container healthy",
                          "failed", tool="testcontainers", reason=str(exc), log=exc.logs,
                          duration_s=round(time.monotonic() - start, 2), standins=standins)
        return [failed, *_skipped_run(spec, "the sandbox run failed")[1:]]


def _diagnosis(spec: Spec, log: str, health, image: str = "") -> str:
    """The most useful line for a person: a known cause, else the exception that killed the app and
    the frame that raised it (kit.sandbox.crash), else the app's last error line."""
    probe = " ".join(p["output"] for p in health.probes[-2:])
    if spec.framework == "django" and "400" in probe:
        return (". Django answered 400 Bad Request: its ALLOWED_HOSTS rejects the probe's Host header "
                "(127.0.0.1); allow 127.0.0.1 and localhost, e.g. through service.env")
    from kit.sandbox.crash import hint, installed_python_distribution, normalize, root_cause
    cause = root_cause(log)
    if cause is not None:
        advice = ""
        if cause.package and spec.stack == "python" and image:
            pinned = {normalize(d) for d in getattr(spec.facts, "dependencies", ())} | {
                normalize(re.split(r"[<>=!~ ]", c, maxsplit=1)[0]) for c in spec.constraints}
            dist, version = installed_python_distribution(image, cause.package)
            advice = hint(dist, version, pinned) if dist else ""
        return f". Root cause: {cause}" + (f"; {advice}" if advice else "")
    rows = [r.strip() for r in log.splitlines() if r.strip() and not r.startswith("...")]
    errors = [r for r in rows if re.search(r"error|exception|failed|refus", r, re.I)]
    last = (errors or rows or [""])[-1][:240]
    return f". App log: {last}" if last else ""


def _healthy(spec: Spec, running, standins) -> Evidence:
    health = running.health
    return Evidence("container.healthy", DELIVERABLE,
                    "Docker's own health status becomes healthy (with dependencies running)",
                    "passed" if health.status == "healthy" else "failed", tool="testcontainers",
                    duration_s=health.seconds,
                    reason="" if health.status == "healthy" else health.explain(),
                    figures={"time_to_healthy_s": health.seconds, "status": health.status,
                             "limits": f"{spec.cpu:g} CPU, {spec.memory // 2**20} MiB",
                             "probe_override": running.health_override,
                             "dependencies_healthy_s": {k: v.seconds for k, v in running.deps.items()}},
                    log="\n".join(p["output"] for p in health.probes[-3:]), standins=standins,
                    fallback=spec.health_fallback)


def _health_endpoint(spec: Spec, running) -> Evidence:
    if not spec.health_path:
        import socket
        port = int(running.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=3):
            pass
        return Evidence("container.health_endpoint", DELIVERABLE, "the port accepts TCP connections",
                        "passed", tool="kit", fallback=spec.health_fallback,
                        figures={"url": f"tcp://127.0.0.1:{port}"})
    status, _, body = http_get(running.url + spec.health_path)
    return Evidence("container.health_endpoint", DELIVERABLE, f"GET {spec.health_path} answers 200",
                    "passed" if status == 200 else "failed", tool="kit (urllib)",
                    reason="" if status == 200 else f"status {status}",
                    figures={"status": status}, log=body[:500])


def _route_guard(spec: Spec, running) -> Evidence:
    """A 200 on an invented path means the app answers anything: a health 200 proves nothing."""
    path = f"/kit-invented-{uuid.uuid4().hex[:8]}"
    status = http_get(running.url + path)[0]
    ok = 400 <= status < 500          # a clean "not found"; 0 (no answer) or 5xx prove nothing
    return Evidence("container.route_guard", DELIVERABLE,
                    "an invented path does not answer 200 (no catch-all fooling the health check)",
                    "passed" if ok else "failed", tool="kit (urllib)", figures={"path": path, "status": status},
                    reason="" if ok else ("the app answers 200 on any path; its health check cannot be trusted"
                                         if status == 200 else f"an invented path got {status or 'no answer'}, "
                                         "not a 4xx: the app is not answering routes cleanly"))


def _metrics(spec: Spec, running) -> Evidence:
    title = f"GET {spec.metrics_path or '(none)'} parses as Prometheus text with samples"
    if not spec.metrics_path:
        return Evidence("container.metrics", DELIVERABLE, title, "skipped",
                        reason="the service exposes no metrics (no prometheus_client, no service.metrics)")
    from prometheus_client.parser import text_string_to_metric_families
    status, ctype, body = http_get(running.metrics_url + spec.metrics_path)
    if status != 200:
        return Evidence("container.metrics", DELIVERABLE, title, "failed", tool="prometheus_client",
                        reason=f"status {status} from {spec.metrics_path}", log=body[:500])
    try:
        families = list(text_string_to_metric_families(body))
    except ValueError as exc:
        return Evidence("container.metrics", DELIVERABLE, title, "failed", tool="prometheus_client",
                        reason=f"not Prometheus text: {exc}", log=body[:500])
    samples = sum(len(f.samples) for f in families)
    return Evidence("container.metrics", DELIVERABLE, title, "passed" if samples else "failed",
                    tool="prometheus_client parser", reason="" if samples else "no samples",
                    figures={"families": len(families), "samples": samples, "content_type": ctype,
                             "names": sorted(f.name for f in families)[:60]})


def _nonroot(spec: Spec, running) -> Evidence:
    if spec.stack == "go":       # no shell or interpreter in the image: the engine's view of PID 1's user
        attrs = running.app.get_wrapped_container().attrs
        pid = attrs["State"]["Pid"]
        status = Path(f"/proc/{pid}/status").read_text() if Path(f"/proc/{pid}/status").is_file() else ""
        uid_row = next((r.split()[1:3] for r in status.splitlines() if r.startswith("Uid:")), [])
        gid_row = next((r.split()[1:3] for r in status.splitlines() if r.startswith("Gid:")), [])
        text = f"{uid_row[0]} {gid_row[0]}" if uid_row and gid_row else attrs["Config"].get("User", "")
        code, out = 0, text.replace(":", " ").encode()
    else:
        probe = (["node", "-e", "console.log(process.getuid(), process.getgid())"] if spec.stack == "node"
                 else ["python3", "-c", "import os; print(os.getuid(), os.getgid())"])
        code, out = running.app.exec(probe)
    text = out.decode().strip()
    uid = int(text.split()[0]) if code == 0 and text.split() and text.split()[0].isdigit() else -1
    ok = uid > 0
    return Evidence("container.nonroot", DELIVERABLE, "the effective user inside the container is not root",
                    "passed" if ok else "failed", tool="docker exec",
                    reason="" if ok else f"uid {uid} ({text})", figures={"uid_gid": text})


def _shutdown(spec: Spec, running) -> Evidence:
    """docker stop sends SIGTERM; exit code 137 means it had to SIGKILL after the grace period."""
    container = running.app.get_wrapped_container()
    start = time.monotonic()
    container.stop(timeout=10)
    seconds = round(time.monotonic() - start, 2)
    container.reload()
    code = container.attrs["State"]["ExitCode"]
    ok = code in (0, 143)             # exited by itself, or ended by SIGTERM; 137 = SIGKILL
    return Evidence("container.shutdown", DELIVERABLE, "SIGTERM stops the server cleanly (no SIGKILL)",
                    "passed" if ok else "failed", tool="docker stop",
                    reason="" if ok else ("killed after the 10 s grace period: PID 1 ignores SIGTERM" if code == 137
                                          else f"the server exited with code {code} on SIGTERM"),
                    figures={"stop_s": seconds, "exit_code": code})


def unhealthy_verdict(ctx: VerifyContext) -> str:
    """This family's verdict on the image in `ctx`, when it already ran it and it failed: the
    families that need the container family (compose, observability) say so instead of
    waiting out a second failure. The orchestrator passes the records in `ctx.evidence`."""
    records = {r.check: r for r in ctx.evidence.get("container", [])}
    build, healthy = records.get("container.build"), records.get("container.healthy")
    if not build or not healthy or build.figures.get("image") != ctx.image:
        return ""
    return healthy.reason if healthy.status == "failed" else ""
