"""Build the one service model: read and validate task.md against the schema the families
assemble, detect what the source shows, and build the Spec in one step."""
from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from kit.detect import detect_stack
from kit.detect.go import detect_go
from kit.detect.node import NodeFacts, detect_node
from kit.detect.python import PythonFacts, detect_python, health_from_routes
from kit.errors import DetectionError
from kit.families import parse_options
from kit.infer import infer_front_matter
from kit.model import (
    CONSTRAINTS_FILE,
    DEFAULT_GO,
    DEFAULT_NODE,
    DEFAULT_PYTHON,
    GO_NONROOT_UID,
    PLACEHOLDER_REGISTRY,
    SERVER_PINS,
    Dependency,
    Service,
    Spec,
)
from kit.resources import parse_cpu, parse_memory
from kit.task import TaskDoc, overrides_from_env, read_task
from kit.task_schema import task_schema


def find_task(project: Path) -> Path:
    project = Path(project)
    if project.is_file():
        return project
    return project / ".claude" / "task.md"


def load_spec(project: Path, output: Path | None = None) -> Spec:
    """Read and validate task.md, detect what the source shows, and build the Spec."""
    task_path = find_task(project).resolve()
    root = task_path.parent.parent if task_path.parent.name == ".claude" else task_path.parent
    doc = read_task(task_path, task_schema(), overrides_from_env(),
                    infer=lambda path: infer_front_matter(path, root))
    svc = doc.data["service"]
    source = (root / svc.get("source", ".")).resolve()
    if source.exists() and not source.is_dir():
        raise doc.error(f"source {source} is a file, not a folder", "service", "source",
                        hint="give the folder that holds the service's code and requirements")
    if not source.is_dir():
        raise doc.error(f"source folder {source} does not exist", "service", "source",
                        hint="give a folder relative to the project root (the folder holding .claude/)")
    stack = svc.get("stack") or detect_stack(source)
    if stack in ("node", "go"):
        service = (_node_service if stack == "node" else _go_service)(doc, root, source, output)
        values = {f.name: getattr(service, f.name) for f in fields(Service)}
        return Spec(**values, options=parse_options(doc, service))
    facts = detect_python(source, root)
    if not facts.requirements_file:
        raise doc.error(f"cannot detect the stack: no requirements.txt, pyproject.toml or package.json in "
                        f"{source}", "service", "source", kind=DetectionError,
                        hint="point service.source at a Python or Node.js service (or set service.stack)")
    deps = _dependencies(doc)
    secrets = list(svc.get("secrets", []))
    for dep in deps:
        if dep.secret and dep.secret not in secrets:
            secrets.append(dep.secret)
    python = svc.get("python") or facts.python or DEFAULT_PYTHON
    port = int(svc.get("port", 8000))
    framework, app, command, extra = _server(doc, facts, port)
    _check_app_object(doc, source, app)
    _check_env(doc, port, secrets)
    health, fallback = _health(doc, facts)
    metrics = svc.get("metrics") or ("/metrics" if facts.uses_prometheus else "")
    out = Path(output) if output else root / doc.data.get("output", "kit-out")
    service = Service(
        name=svc["name"], title=doc.title or svc["name"], project=root, source=source,
        output=out.resolve(), python=python, base_image=f"python:{python}-slim-bookworm",
        framework=framework, app=app, requirements_file=facts.requirements_file,
        lock_file=facts.lock_file, command=command, extra_packages=extra, port=port,
        health_path=health, health_fallback=fallback, metrics_path=metrics,
        metrics_port=int(svc.get("metrics_port", port)), uid=int(svc.get("uid", 10001)),
        image=svc.get("image") or f"{PLACEHOLDER_REGISTRY}/{svc['name']}",
        cpu=_quantity(doc, "cpu", parse_cpu, "1"), memory=_quantity(doc, "memory", parse_memory, "512Mi"),
        env=tuple(sorted((k, _env_str(v)) for k, v in svc.get("env", {}).items())),
        secrets=tuple(sorted(secrets)), dependencies=deps,
        task=doc, facts=facts, **_constraints(doc, source, facts))
    values = {f.name: getattr(service, f.name) for f in fields(Service)}
    return Spec(**values, options=parse_options(doc, service))


def _constraints(doc: TaskDoc, source: Path, facts: PythonFacts) -> dict:
    """service.constraints: pins kit writes to docker/constraints.txt, or the user's own file."""
    given = doc.data["service"].get("constraints")
    if not given:
        return {}
    if facts.lock_file == "uv.lock" and facts.requirements_file == "pyproject.toml":
        raise doc.error("uv.lock already pins every package exactly; constraints would not apply",
                        "service", "constraints",
                        hint="drop service.constraints and change the lock: uv lock --upgrade-package NAME==VERSION")
    if isinstance(given, str):
        path = (source / given).resolve()
        if not path.is_relative_to(source) or not path.is_file():
            raise doc.error(f"constraints file {given} is not a file inside {source}", "service", "constraints",
                            hint="give a path relative to service.source, e.g. constraints.txt")
        pins = tuple(r.split("#")[0].strip() for r in path.read_text().splitlines()
                     if r.split("#")[0].strip() and not r.startswith("-"))
        return {"constraints_file": str(path.relative_to(source)), "constraints": pins}
    return {"constraints_file": CONSTRAINTS_FILE, "constraints": tuple(given)}

def _quantity(doc: TaskDoc, key: str, parse, default: str):
    raw = doc.data["service"].get("resources", {}).get(key, default)
    try:
        return parse(raw)
    except ValueError as exc:
        raise doc.error(str(exc), "service", "resources", key) from None


def _check_app_object(doc: TaskDoc, source: Path, app: str) -> None:
    """service.app must name a module in the source that defines the attribute."""
    if "app" not in doc.data["service"] or not app:
        return
    module, _, attr = app.partition(":")
    base = source.joinpath(*module.split("."))
    path = base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
    if not path.is_file():
        raise doc.error(f"module {module!r} not found in {source}", "service", "app",
                        hint="give module:attribute relative to service.source, e.g. app:app")
    if not re.search(rf"^(?:{re.escape(attr)}\s*[:=]|def {re.escape(attr)}\b|class {re.escape(attr)}\b|"
                     rf"from\s+\S+\s+import\s+.*\b{re.escape(attr)}\b)", path.read_text(errors="replace"), re.M):
        raise doc.error(f"{path.name} defines no {attr!r}", "service", "app",
                        hint="name the WSGI/ASGI object the module defines, e.g. app:application")


def _check_env(doc: TaskDoc, port: int, secrets: list[str]) -> None:
    for key, value in doc.data["service"].get("env", {}).items():
        if key in secrets:
            raise doc.error(f"{key} is a secret and cannot also be a plain setting", "service", "env", key,
                            hint=f"remove {key} from service.env; its value comes from the secret")
        if key == "PORT" and str(value) != str(port):
            raise doc.error(f"PORT={value} contradicts service.port {port}", "service", "env", key,
                            hint="set service.port instead: kit sets PORT and the server's bind from it")


def _env_str(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _server(doc: TaskDoc, facts: PythonFacts, port: int):
    svc = doc.data["service"]
    framework = svc.get("framework") or facts.framework
    app = svc.get("app") or facts.app
    if svc.get("command"):
        return framework or "custom", app, tuple(svc["command"]), ()
    if not framework or not app:
        if facts.syntax_errors:
            raise doc.error(f"the source does not parse: {facts.syntax_errors[0]}", "service", "source",
                            kind=DetectionError,
                            hint="fix the syntax error in the service's source (kit reads it to find the app)")
        missing = "service.app" if framework else "service.framework and service.app"
        raise doc.error("cannot detect the web framework or the app object "
                        f"(found dependencies: {', '.join(facts.dependencies) or 'none'})",
                        "service", field=missing, kind=DetectionError,
                        hint="set service.app: module:attribute (e.g. app:app) and service.framework, "
                                  "or service.command")
    # prometheus_client keeps metrics per process: with several workers each scrape sees one
    # worker's counters. One worker (threads for concurrency) unless the task says otherwise.
    single = facts.uses_prometheus
    workers = str(svc.get("workers", 1 if single else 2))
    threads = str(svc.get("threads", 4 if single else 1))
    if framework in ("fastapi", "asgi"):
        server = "uvicorn"
        command = ("uvicorn", app, "--host", "0.0.0.0", "--port", str(port), "--workers", workers,
                   "--proxy-headers", "--timeout-graceful-shutdown", "8")
    else:
        server = "gunicorn"
        # no access log: the app owns its log format (e.g. JSON lines); graceful timeout below
        # Docker's 10 s stop timeout, so in-flight requests finish before a SIGKILL could come
        command = ("gunicorn", "--bind", f"0.0.0.0:{port}", "--workers", workers, "--threads", threads,
                   "--graceful-timeout", "8", app)
    extra = () if server in facts.dependencies else (SERVER_PINS[server],)
    return framework, app, command, extra


def _health(doc: TaskDoc, facts: PythonFacts) -> tuple[str, str]:
    svc = doc.data["service"]
    if svc.get("health"):
        return svc["health"], ""
    found = health_from_routes(facts.routes)
    if found:
        return found, ""
    return "", ("no health path in the task and none found in the source: the health check is a "
                "TCP connect to the port (set service.health to check the app itself)")


def _dependencies(doc: TaskDoc) -> tuple[Dependency, ...]:
    out, seen = [], {}
    for index, raw in enumerate(doc.data.get("dependencies", [])):
        kind = raw["kind"]
        name = raw.get("name", kind)
        if name in seen or name == doc.data["service"]["name"]:
            raise doc.error(f"name {name!r} is used twice", "dependencies", index, "name",
                            hint="give each dependency its own name")
        if kind in seen.values():
            raise doc.error(f"a second {kind} dependency is not supported yet", "dependencies", index,
                            field=f"dependencies[{index}].kind", hint="declare one dependency of each kind")
        seen[name] = kind
        out.append(_postgres(raw, name) if kind == "postgres" else _redis(raw, name))
    return tuple(out)


def _postgres(raw: dict, name: str) -> Dependency:
    version = raw.get("version", "15")
    user, database = raw.get("user", "app"), raw.get("database", "app")
    secret = raw.get("password_secret", "PGPASSWORD")
    return Dependency(
        kind="postgres", name=name, version=version, image=f"postgres:{version}-bookworm", port=5432,
        volume=f"{name}-data", data_path="/var/lib/postgresql/data",
        app_env=(("PGHOST", name), ("PGPORT", "5432"), ("PGUSER", user), ("PGDATABASE", database)),
        env=(("POSTGRES_USER", user), ("POSTGRES_DB", database),
             ("POSTGRES_PASSWORD_FILE", f"/run/secrets/{secret}")),
        secret=secret,
        # TCP, not the socket: the image's entrypoint runs initdb's temporary server on the socket only
        # (listen_addresses=''), which a socket check would report healthy before the real server starts
        healthcheck=("CMD-SHELL", 'pg_isready -h 127.0.0.1 -U "$${POSTGRES_USER}" -d "$${POSTGRES_DB}"'))


def _redis(raw: dict, name: str) -> Dependency:
    version = raw.get("version", "7")
    return Dependency(
        kind="redis", name=name, version=version, image=f"redis:{version}-bookworm", port=6379,
        volume=f"{name}-data", data_path="/data",
        app_env=(("REDIS_URL", f"redis://{name}:6379/0"),), env=(),
        healthcheck=("CMD", "redis-cli", "ping"),
        command=("redis-server", "--appendonly", "yes"))


def _node_service(doc: TaskDoc, root: Path, source: Path, output: Path | None) -> Service:
    """The Service of a Node.js web service: kit/detect/node.py's facts, the task overriding them."""
    svc = doc.data["service"]
    try:
        facts = detect_node(source)
    except DetectionError as exc:
        if exc.file is None:
            exc.file = str(source / "package.json")
        raise
    if not facts.requirements_file:
        raise doc.error(f"service.stack is node but {source} has no package.json", "service", "stack",
                        kind=DetectionError, hint="point service.source at the folder holding package.json")
    if facts.lock_problems:
        raise DetectionError(
            f"the lockfile is out of sync with package.json: {'; '.join(facts.lock_problems[:4])}"
            + (f" (and {len(facts.lock_problems) - 4} more)" if len(facts.lock_problems) > 4 else ""),
            file=str(source / facts.lock_file),
            hint=f"run `{_lock_fix(facts)}` and commit the lockfile: the image installs exactly from it, "
                 "and `npm ci` refuses a lockfile that disagrees with package.json")
    deps = _dependencies(doc)
    secrets = list(svc.get("secrets", []))
    for dep in deps:
        if dep.secret and dep.secret not in secrets:
            secrets.append(dep.secret)
    node = str(svc.get("node") or facts.node or DEFAULT_NODE)
    framework = svc.get("framework") or facts.framework or "node"
    entry = svc.get("main") or facts.entry
    if svc.get("command"):
        command = tuple(svc["command"])
    elif not entry:
        raise doc.error("no start entry: package.json has no `start` script running a file, no `main`, and no "
                        f"server file ({', '.join(('server.js', 'app.js', 'index.js', 'src/index.js'))}...) calls "
                        "listen()", "service", field="service.main", kind=DetectionError,
                        hint="add \"start\": \"node server.js\" to package.json, or set service.main (the file node "
                             "runs) or service.command")
    else:
        if "main" in svc and not (source / entry).is_file() and not facts.build_script:
            raise doc.error(f"{entry} not found in {source}", "service", "main",
                            hint="give the file node runs, relative to service.source, e.g. src/server.js")
        command = ("node", entry)
    if facts.binds_loopback and "command" not in svc:
        raise DetectionError("the server listens on 127.0.0.1/localhost only (fastify's listen() does unless "
                             "`host` is given), so nothing outside the container can reach it",
                             file=str(source / (entry or "package.json")),
                             hint="listen on host '0.0.0.0' (e.g. listen({ port, host: '0.0.0.0' }))")
    port = int(svc.get("port", facts.port or 3000))
    if "port" in svc and facts.port and not facts.reads_port_env and port != facts.port:
        raise doc.error(f"service.port {port} but the code listens on {facts.port} and does not read PORT",
                        "service", "port", hint=f"set service.port: {facts.port}, or make the app read "
                                                "process.env.PORT")
    _check_env(doc, port, secrets)
    health, fallback = _health(doc, facts)
    metrics = svc.get("metrics") or facts.metrics_path
    out = Path(output) if output else root / doc.data.get("output", "kit-out")
    return Service(
        name=svc["name"], title=doc.title or svc["name"], project=root, source=source,
        output=out.resolve(), python="", base_image=f"node:{node}-bookworm-slim",
        framework=framework, app=entry, requirements_file="package.json",
        lock_file=facts.lock_file, command=command, extra_packages=(), port=port,
        health_path=health, health_fallback=fallback, metrics_path=metrics,
        metrics_port=int(svc.get("metrics_port", port)), uid=int(svc.get("uid", 10001)),
        image=svc.get("image") or f"{PLACEHOLDER_REGISTRY}/{svc['name']}",
        cpu=_quantity(doc, "cpu", parse_cpu, "1"), memory=_quantity(doc, "memory", parse_memory, "512Mi"),
        env=tuple(sorted((k, _env_str(v)) for k, v in svc.get("env", {}).items())),
        secrets=tuple(sorted(secrets)), dependencies=deps,
        task=doc, facts=facts, stack="node")


def _lock_fix(facts: NodeFacts) -> str:
    return {"yarn": "yarn install", "pnpm": "pnpm install"}.get(facts.package_manager, "npm install")


def _go_service(doc: TaskDoc, root: Path, source: Path, output: Path | None) -> Service:
    """The Service of a Go web service: kit/detect/go.py's facts, the task overriding them."""
    svc = doc.data["service"]
    facts = detect_go(source)
    if not facts.requirements_file:
        raise doc.error(f"service.stack is go but {source} has no go.mod", "service", "stack",
                        kind=DetectionError, hint="point service.source at the folder holding go.mod")
    main = svc.get("main", "")
    if main:
        main = main.strip("/").removeprefix("./") or "."
        if main not in facts.mains:
            raise doc.error(f"{main} is not a main package (package main with func main) in {source}; main "
                            f"packages: {', '.join(facts.mains) or 'none'}", "service", "main",
                            hint="give the folder of the main package, relative to service.source, e.g. cmd/api")
    elif not facts.mains:
        raise DetectionError("no main package: no folder holds `package main` with `func main()` (a library "
                             "module cannot be served)", file=str(source / "go.mod"),
                             hint="point service.source at the module holding the server's main package")
    elif len(facts.mains) > 1:
        raise doc.error(f"several main packages: {', '.join(facts.mains)}; kit builds one server per service",
                        "service", field="service.main", kind=DetectionError,
                        hint=f"set service.main to one of them, e.g. service.main: {facts.mains[0]}")
    else:
        main = facts.mains[0]
    deps = _dependencies(doc)
    secrets = list(svc.get("secrets", []))
    for dep in deps:
        if dep.secret and dep.secret not in secrets:
            secrets.append(dep.secret)
    if facts.loopback_at and "command" not in svc:
        file, _, line = facts.loopback_at.rpartition(":")
        raise DetectionError("the server listens on 127.0.0.1/localhost only, so nothing outside the container "
                             "can reach it (and the HEALTHCHECK, probing 127.0.0.1 inside, would still pass)",
                             file=str(source / file), line=int(line),
                             hint='listen on all interfaces, e.g. Addr: ":" + port (or a host from an env variable)')
    port = int(svc.get("port", facts.port or 8080))
    if "port" in svc and facts.port and not facts.reads_port_env and port != facts.port:
        raise doc.error(f"service.port {port} but the code listens on {facts.port} and does not read PORT",
                        "service", "port", hint=f"set service.port: {facts.port}, or read os.Getenv(\"PORT\")")
    _check_env(doc, port, secrets)
    health, fallback = _health(doc, facts)
    out = Path(output) if output else root / doc.data.get("output", "kit-out")
    return Service(
        name=svc["name"], title=doc.title or svc["name"], project=root, source=source,
        output=out.resolve(), python="", base_image=f"golang:{facts.go or DEFAULT_GO}",
        framework=svc.get("framework") or facts.framework, app=main, requirements_file="go.mod",
        lock_file=facts.lock_file, command=tuple(svc.get("command") or ("/app/server",)), extra_packages=(),
        port=port, health_path=health, health_fallback=fallback, metrics_path=svc.get("metrics") or facts.metrics_path,
        metrics_port=int(svc.get("metrics_port", port)), uid=int(svc.get("uid", GO_NONROOT_UID)),
        image=svc.get("image") or f"{PLACEHOLDER_REGISTRY}/{svc['name']}",
        cpu=_quantity(doc, "cpu", parse_cpu, "1"), memory=_quantity(doc, "memory", parse_memory, "512Mi"),
        env=tuple(sorted((k, _env_str(v)) for k, v in svc.get("env", {}).items())),
        secrets=tuple(sorted(secrets)), dependencies=deps,
        task=doc, facts=facts, stack="go")
