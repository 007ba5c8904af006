"""Detect a Node.js web service: package.json, the lockfile, the Node version, the framework, the
entry file, the port, health and metrics routes, ESM or CommonJS, and native modules."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from kit.detect.common import read_utf8, source_files
from kit.errors import DetectionError

SKIP_DIRS = {".git", "node_modules", "dist", "build", "coverage", "test", "tests", "__tests__", ".next",
             "public", "static"}
SOURCE_SUFFIXES = (".js", ".mjs", ".cjs", ".ts", ".mts", ".cts")
FRAMEWORKS = (("@nestjs/core", "nest"), ("fastify", "fastify"), ("koa", "koa"), ("express", "express"))
LOCKFILES = (("package-lock.json", "npm"), ("npm-shrinkwrap.json", "npm"), ("yarn.lock", "yarn"),
             ("pnpm-lock.yaml", "pnpm"))
SERVER_FILES = ("server.js", "app.js", "index.js", "main.js", "server.mjs", "index.mjs", "app.mjs",
                "src/server.js", "src/index.js", "src/app.js", "src/main.js", "src/server.mjs",
                "src/index.mjs", "lib/server.js", "bin/www")
# Packages that compile C/C++ with node-gyp on install (no prebuilt binary for every platform), so
# the build stage needs python3, make and g++. A lockfile's "hasInstallScript" also marks them.
NATIVE = {"bcrypt", "argon2", "better-sqlite3", "sqlite3", "canvas", "node-rdkafka", "leveldown",
          "bufferutil", "utf-8-validate", "re2", "microtime", "cpu-features", "libxmljs", "libxmljs2",
          "node-sass", "@mapbox/node-pre-gyp", "node-gyp-build", "isolated-vm", "zeromq", "kerberos"}
DEV_RUNNERS = {"nodemon", "ts-node", "ts-node-dev", "tsx", "node-dev", "supervisor", "forever", "pm2",
               "babel-node", "concurrently"}
ROUTE = re.compile(r"""\.(?:get|all|route|head)\(\s*['"`](/[^'"`]*)['"`]""")
FASTIFY_URL = re.compile(r"""\burl\s*:\s*['"`](/[^'"`]*)['"`]""")
NEST_CONTROLLER = re.compile(r"""@Controller\(\s*['"`]([^'"`]*)['"`]""")
NEST_ROUTE = re.compile(r"""@(?:Get|All)\(\s*(?:['"`]([^'"`]*)['"`])?\s*\)""")
PORT_ENV = re.compile(r"""process\.env\.PORT\s*(?:\|\||\?\?)\s*['"]?(\d{2,5})""")
PORT_ENV_ANY = re.compile(r"process\.env(?:\.PORT\b|\[\s*['\"]PORT['\"]\s*\])")
LISTEN_LITERAL = re.compile(r"""\.listen\(\s*(?:\{\s*port\s*:\s*)?(\d{2,5})\b""")
PORT_CONST = re.compile(r"""\b(?:const|let|var)\s+(?:PORT|port)\s*=\s*(?:Number\(|parseInt\()?\s*(\d{2,5})\b""")
LOOPBACK = re.compile(r"""\.listen\([^)]*['"`](?:127\.0\.0\.1|localhost)['"`]""")
FASTIFY_LISTEN = re.compile(r"""\.listen\(\s*(\{[^}]*\}|[^)]*)\)""")


@dataclass(frozen=True)
class NodeFacts:
    """What a Node.js service's source shows. Empty values mean 'not shown'."""

    requirements_file: str = ""          # package.json when there is one
    lock_file: str = ""                  # package-lock.json | yarn.lock | pnpm-lock.yaml | ""
    lock_kind: str = ""                  # npm-v1..v3 | yarn-classic | yarn-berry | pnpm
    package_manager: str = "npm"         # npm | yarn | pnpm
    lock_problems: tuple[str, ...] = ()  # how the lockfile disagrees with package.json
    manager_version: str = ""            # package.json's packageManager version ("9.15.9"), or ""
    yarn_path: str = ""                  # yarn berry: .yarnrc.yml's yarnPath (the committed release)
    yarn_node_linker: str = ""           # yarn berry: .yarnrc.yml's nodeLinker ("" = pnp, berry's default)
    dependencies: tuple[str, ...] = ()
    dev_dependencies: tuple[str, ...] = ()
    node: str = ""                       # major version when the source states one
    node_origin: str = ""                # engines.node | .nvmrc | .node-version
    framework: str = ""                  # express | fastify | koa | nest
    entry: str = ""                      # the file `node` runs, relative to the source
    entry_origin: str = ""               # start script | main | server file | nest build
    entry_note: str = ""                 # why kit does not use the start script as written
    build_script: bool = False           # `npm run build` is needed before the entry exists
    module_type: str = "commonjs"        # commonjs | esm
    port: int = 0
    port_origin: str = ""
    reads_port_env: bool = False
    binds_loopback: bool = False
    routes: tuple[str, ...] = ()
    metrics_path: str = ""
    metrics_library: str = ""            # prom-client | express-prom-bundle | fastify-metrics
    native_modules: tuple[str, ...] = ()
    local_packages: tuple[str, ...] = ()  # folders of `file:` dependencies, copied before the install
    handles_sigterm: bool = False
    has_lint: bool = False
    has_test: bool = False
    warnings: tuple[str, ...] = ()

    # the Python model's names, so the views and reports that read them work for every stack
    @property
    def uses_prometheus(self) -> bool:
        return bool(self.metrics_library)

    @property
    def app(self) -> str:
        return self.entry

    @property
    def python(self) -> str:
        return ""

    @property
    def syntax_errors(self) -> tuple[str, ...]:
        return ()


def read_package_json(path: Path) -> dict:
    """package.json as a dict; one that does not parse is an error naming the file and line."""
    text = read_utf8(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DetectionError(f"is not valid JSON: {exc.msg} (column {exc.colno})", file=str(path),
                             line=exc.lineno,
                             hint="fix the JSON syntax (no comments or trailing commas in package.json): "
                                  "kit reads it for the dependencies, scripts and Node version") from None
    if not isinstance(data, dict):
        raise DetectionError("is not a JSON object", file=str(path), line=1,
                             hint="package.json must be an object with name, dependencies and scripts")
    return data


def detect_node(source: Path) -> NodeFacts:
    source = Path(source)
    pkg_path = source / "package.json"
    if not pkg_path.is_file():
        return NodeFacts()
    pkg = read_package_json(pkg_path)
    deps = _names(pkg.get("dependencies"))
    dev = _names(pkg.get("devDependencies"))
    warnings: list[str] = []
    lock_file, manager = next(((n, m) for n, m in LOCKFILES if (source / n).is_file()), ("", "npm"))
    lock_kind, problems, lock_native = "", (), set()
    if lock_file:
        lock_kind, problems, lock_native = _check_lock(source / lock_file, pkg)
    else:
        warnings.append("no lockfile (package-lock.json, yarn.lock or pnpm-lock.yaml): the image resolves "
                        "package.json's ranges at build time, so two builds may install different versions; "
                        "commit a lockfile")
    manager_version = _manager_version(pkg, manager, lock_file, warnings)
    yarnrc = _yarnrc(source) if manager == "yarn" else {}
    node, node_origin = _node_version(source, pkg)
    framework = next((fw for dep, fw in FRAMEWORKS if dep in deps), "")
    scripts = pkg.get("scripts") if isinstance(pkg.get("scripts"), dict) else {}
    entry, origin, note, build = _entry(source, pkg, scripts, set(dev), framework)
    files = list(_source_files(source))
    texts = {p: p.read_text(errors="replace") for p in files}
    code = "\n".join(texts.values())
    module_type = "esm" if pkg.get("type") == "module" or entry.endswith(".mjs") else "commonjs"
    port, port_origin = _port(code)
    routes = tuple(sorted(set(_routes(texts.values()))))
    metrics_lib, metrics_path = _metrics(deps, code, routes)
    native = sorted((NATIVE & set(deps)) | (lock_native & set(_all_names(source, lock_file, deps))))
    if (source / "binding.gyp").is_file():
        native.append("(this package: binding.gyp)")
    local = _local_packages(source, pkg, warnings)
    native += [f"{name} ({folder}/binding.gyp)" for name, folder in local.items()
               if (source / folder / "binding.gyp").is_file() and name not in native]
    loopback = bool(LOOPBACK.search(code))
    if framework == "fastify" and not loopback:
        # fastify.listen({port}) binds 127.0.0.1 unless host is given (fastify docs, "listen")
        for match in FASTIFY_LISTEN.finditer(code):
            if "host" not in match.group(1) and "0.0.0.0" not in match.group(1) and "::" not in match.group(1):
                loopback = True
    return NodeFacts(
        requirements_file="package.json", lock_file=lock_file, lock_kind=lock_kind, package_manager=manager,
        lock_problems=problems, manager_version=manager_version, yarn_path=str(yarnrc.get("yarnPath", "")),
        yarn_node_linker=str(yarnrc.get("nodeLinker", "")), dependencies=tuple(sorted(deps)), dev_dependencies=tuple(sorted(dev)),
        node=node, node_origin=node_origin, framework=framework, entry=entry, entry_origin=origin,
        entry_note=note, build_script=build, module_type=module_type, port=port, port_origin=port_origin,
        reads_port_env=bool(PORT_ENV_ANY.search(code)), binds_loopback=loopback, routes=routes,
        metrics_path=metrics_path, metrics_library=metrics_lib, native_modules=tuple(native),
        local_packages=tuple(sorted(set(local.values()))),
        handles_sigterm=bool(re.search(r"""process\.(?:on|once)\(\s*['"]SIGTERM['"]""", code))
        or "enableShutdownHooks" in code,
        has_lint="lint" in scripts, has_test="test" in scripts and "no test specified" not in scripts["test"],
        warnings=tuple(warnings))


def _manager_version(pkg: dict, manager: str, lock_file: str, warnings: list[str]) -> str:
    """The version package.json's `packageManager` field pins ("pnpm@9.15.9+sha512..." -> 9.15.9)
    when it names the lockfile's manager; corepack reads the same field."""
    field = pkg.get("packageManager")
    if not isinstance(field, str) or "@" not in field:
        return ""
    name, _, version = field.partition("@")
    version = version.split("+", 1)[0]
    if not re.fullmatch(r"\d+\.\d+\.\d+(-[\w.]+)?", version):
        warnings.append(f"package.json's packageManager {field!r} is not name@x.y.z: kit uses its own pinned {manager}")
        return ""
    if lock_file and name != manager:
        warnings.append(f"package.json's packageManager is {name}@{version} but the lockfile is {lock_file} "
                        f"({manager}): kit installs with {manager}, as the lockfile says")
        return ""
    return version


def _yarnrc(source: Path) -> dict:
    path = source / ".yarnrc.yml"
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(errors="replace"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise DetectionError(f"is not valid YAML: {getattr(exc, 'problem', exc)}", file=str(path),
                             line=mark.line + 1 if mark else None) from None
    return data if isinstance(data, dict) else {}


def _local_packages(source: Path, pkg: dict, warnings: list[str]) -> dict[str, str]:
    """name -> folder (relative to the source) of every `file:` dependency that is a folder of the
    source: npm links it, so the build must have it before the install (and a binding.gyp in it
    is compiled then). A `file:` tarball is a file the install reads, also copied."""
    out = {}
    for section in ("dependencies", "optionalDependencies", "devDependencies"):
        for name, spec in (pkg.get(section) or {}).items() if isinstance(pkg.get(section), dict) else ():
            if not isinstance(spec, str) or not spec.startswith(("file:", "link:")):
                continue
            target = (source / spec.split(":", 1)[1]).resolve()
            try:
                rel = target.relative_to(source.resolve()).as_posix()
            except ValueError:
                warnings.append(f"{name} is `{spec}`, outside the service's folder: the image build cannot see it "
                                "(the build context is the service's folder); publish it or move it inside")
                continue
            if target.exists():
                out[name] = rel
            else:
                warnings.append(f"{name} is `{spec}`, but {rel} does not exist: the install will fail")
    return out


def _names(section) -> set[str]:
    return set(section) if isinstance(section, dict) else set()


def _node_version(source: Path, pkg: dict) -> tuple[str, str]:
    for name in (".nvmrc", ".node-version"):
        path = source / name
        if path.is_file():
            match = re.match(r"\s*v?(\d+)", path.read_text())
            if match:
                return match.group(1), name
    engines = pkg.get("engines") if isinstance(pkg.get("engines"), dict) else {}
    match = re.search(r"(\d+)", str(engines.get("node", "")))
    if match:
        return match.group(1), "engines.node"
    return "", ""


def _entry(source: Path, pkg: dict, scripts: dict, dev: set[str], framework: str):
    """The file `node` runs: the start script's file, main, or a server file found in the source."""
    start = str(scripts.get("start", "")).strip()
    build = "build" in scripts
    if start:
        words = start.replace("&&", " ").split()
        runner = words[0] if words else ""
        files = [w for w in words[1:] if not w.startswith("-") and re.search(r"\.(c|m)?[jt]s$|/", w)]
        if runner == "node" and files:
            # `node dist/main.js` after `tsc`: the entry is build output (never in the source or the
            # build context), so the image runs the build script first
            return _norm(files[0]), "start script", "", build and _built(source, _norm(files[0]))
        if runner == "nest" or (framework == "nest" and "start" in words):
            return "dist/main.js", "nest build", (f"the start script `{start}` runs the Nest CLI, a development "
                                                  "tool: kit builds with `npm run build` and runs "
                                                  "`node dist/main.js`"), build
        if runner in DEV_RUNNERS and files:
            why = "a devDependency" if runner in dev else "a development tool"
            target = files[0]
            if target.endswith(".ts") and build:
                target = "dist/" + Path(target).with_suffix(".js").name
            return _norm(target), "start script", (
                f"the start script `{start}` needs {runner}, {why} that the production image does not install: "
                f"kit runs `node {_norm(target)}` instead"), target.startswith("dist/")
    main = pkg.get("main")
    if isinstance(main, str) and main and ((source / main).is_file() or (build and _built(source, _norm(main)))):
        return _norm(main), "main", "", build and _built(source, _norm(main))
    for name in SERVER_FILES:
        path = source / name
        if path.is_file() and ".listen(" in path.read_text(errors="replace"):
            return name, "server file", "", False
    return "", "", "", False


def _built(source: Path, entry: str) -> bool:
    """The entry is output of the build script: under an output folder (dist, build, out, lib
    from TypeScript), or a .js whose .ts twin is in the source and whose own file is not."""
    if entry.split("/", 1)[0] in ("dist", "build", "out", ".output"):
        return True
    twin = (source / entry).with_suffix(".ts")
    return not (source / entry).is_file() and (twin.is_file() or (source / "tsconfig.json").is_file())


def _norm(path: str) -> str:
    return path[2:] if path.startswith("./") else path


def _source_files(source: Path):
    yield from source_files(source, SOURCE_SUFFIXES, SKIP_DIRS,
                            lambda rel: rel.name.endswith((".test.js", ".spec.js", ".spec.ts", ".test.ts", ".d.ts")))
    if (source / "bin" / "www").is_file():
        yield source / "bin" / "www"


def _port(code: str) -> tuple[int, str]:
    for pattern, origin in ((PORT_ENV, "process.env.PORT default"), (LISTEN_LITERAL, "listen()"),
                            (PORT_CONST, "PORT constant")):
        match = pattern.search(code)
        if match:
            return int(match.group(1)), origin
    return 0, ""


def _routes(texts):
    for text in texts:
        yield from ROUTE.findall(text)
        yield from FASTIFY_URL.findall(text)
        prefix = NEST_CONTROLLER.search(text)
        if prefix or "@nestjs" in text:
            base = "/" + (prefix.group(1).strip("/") if prefix else "")
            for sub in NEST_ROUTE.findall(text):
                yield (base.rstrip("/") + "/" + sub.strip("/")).rstrip("/") or "/"


def _metrics(deps: set[str], code: str, routes: tuple[str, ...]) -> tuple[str, str]:
    if "express-prom-bundle" in deps:
        custom = re.search(r"""metricsPath\s*:\s*['"`](/[^'"`]*)""", code)
        return "express-prom-bundle", custom.group(1) if custom else "/metrics"   # its default path
    if "fastify-metrics" in deps:
        custom = re.search(r"""endpoint\s*:\s*['"`](/[^'"`]*)""", code)
        return "fastify-metrics", custom.group(1) if custom else "/metrics"
    if "prom-client" in deps:
        path = next((r for r in routes if "metric" in r), "")
        return "prom-client", path
    return "", ""


def _all_names(source: Path, lock_file: str, deps) -> set[str]:
    return set(deps) | set(_lock_names(source, lock_file))


def _lock_names(source: Path, lock_file: str):
    if lock_file in ("package-lock.json", "npm-shrinkwrap.json"):
        data = json.loads((source / lock_file).read_text())
        for key in data.get("packages", {}):
            if key:
                yield key.rsplit("node_modules/", 1)[-1]
        yield from data.get("dependencies", {})


def _check_lock(path: Path, pkg: dict) -> tuple[str, tuple[str, ...], set[str]]:
    """The lockfile's kind, how it disagrees with package.json, and packages it marks as running
    an install script (npm's hasInstallScript)."""
    wanted = {}
    for section in ("dependencies", "devDependencies", "optionalDependencies"):
        if isinstance(pkg.get(section), dict):
            wanted.update({k: str(v) for k, v in pkg[section].items()})
    text = path.read_text(errors="replace")
    problems: list[str] = []
    native: set[str] = set()
    if path.name in ("package-lock.json", "npm-shrinkwrap.json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DetectionError(f"is not valid JSON: {exc.msg}", file=str(path), line=exc.lineno,
                                 hint="regenerate it with `npm install --package-lock-only`") from None
        version = data.get("lockfileVersion", 1)
        kind = f"npm-v{version}"
        root = data.get("packages", {}).get("")
        if root is not None:       # v2/v3: the root package's own ranges, compared exactly
            locked = {}
            for section in ("dependencies", "devDependencies", "optionalDependencies"):
                locked.update({k: str(v) for k, v in (root.get(section) or {}).items()})
            for name, rng in sorted(wanted.items()):
                if name not in locked:
                    problems.append(f"{name}@{rng} is in package.json but not in {path.name}")
                elif locked[name] != rng:
                    problems.append(f"{name}: package.json wants {rng}, {path.name} records {locked[name]}")
            for name in sorted(set(locked) - set(wanted)):
                problems.append(f"{name} is in {path.name} but no longer in package.json")
            for key, meta in data.get("packages", {}).items():
                if key and isinstance(meta, dict) and meta.get("hasInstallScript"):
                    native.add(key.rsplit("node_modules/", 1)[-1])
        else:                       # v1: every direct dependency must be locked
            locked = data.get("dependencies", {})
            problems += [f"{n}@{r} is in package.json but not in {path.name}" for n, r in sorted(wanted.items())
                         if n not in locked]
        return kind, tuple(problems), native
    if path.name == "yarn.lock":
        berry = "__metadata:" in text
        keys = set()
        for row in text.splitlines():
            if row and not row[0].isspace() and row.rstrip().endswith(":") and not row.startswith("#"):
                for part in row.rstrip(":").split(","):
                    keys.add(part.strip().strip('"'))
        for name, rng in sorted(wanted.items()):
            options = {f"{name}@{rng}", f"{name}@npm:{rng}"}
            if not options & keys:
                problems.append(f"{name}@{rng} is in package.json but not in yarn.lock")
        return ("yarn-berry" if berry else "yarn-classic"), tuple(problems), native
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise DetectionError(f"is not valid YAML: {getattr(exc, 'problem', exc)}", file=str(path),
                             line=mark.line + 1 if mark else None,
                             hint="regenerate it with `pnpm install --lockfile-only`") from None
    importer = (data.get("importers") or {}).get(".")
    locked = {}
    if importer:
        for section in ("dependencies", "devDependencies", "optionalDependencies"):
            for name, meta in (importer.get(section) or {}).items():
                locked[name] = str(meta.get("specifier", "")) if isinstance(meta, dict) else str(meta)
    else:
        locked = {k: str(v) for k, v in (data.get("specifiers") or {}).items()}
    for name, rng in sorted(wanted.items()):
        if locked.get(name) != rng:
            problems.append(f"{name}: package.json wants {rng}, pnpm-lock.yaml records "
                            f"{locked.get(name, 'nothing')}")
    return "pnpm", tuple(problems), native
