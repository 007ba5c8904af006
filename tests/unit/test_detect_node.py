"""The Node.js stack: detection from the source, the Service it builds, the image it renders, and
the errors for bad input (named file and line, nothing written)."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from kit.cli import main
from kit.detect import detect_stack
from kit.detect.node import detect_node
from kit.errors import DetectionError
from kit.families import render_all
from kit.families.container.checks import consistency
from kit.spec import load_spec
from tests.conftest import copy_project

NODE = Path(__file__).resolve().parent.parent / "fixtures" / "node"
TASK = "---\nservice:\n  name: svc\n---\n# Svc\n\nA service.\n"


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _pkg(**extra) -> str:
    return json.dumps({"name": "svc", "version": "1.0.0", **extra}, indent=2)


SERVER = "const app = require('express')()\napp.get('/health', (q, r) => r.send('ok'))\napp.listen(process.env.PORT || 4000)\n"


def test_express_fixture_facts():
    facts = detect_node(NODE / "express-orders")
    assert (facts.lock_file, facts.lock_kind, facts.lock_problems) == ("package-lock.json", "npm-v3", ())
    assert (facts.node, facts.node_origin) == ("18", ".nvmrc")
    assert facts.framework == "express" and facts.module_type == "commonjs"
    assert (facts.entry, facts.entry_origin) == ("src/server.js", "start script")
    assert "nodemon" in facts.entry_note and "node src/server.js" in facts.entry_note
    assert (facts.port, facts.port_origin) == (8080, "process.env.PORT default")
    assert "/healthz" in facts.routes and facts.metrics_path == "/metrics"
    assert facts.metrics_library == "prom-client" and facts.handles_sigterm
    assert facts.native_modules == () and facts.warnings == ()


def test_fastify_esm_without_lockfile_is_warned_and_recorded():
    facts = detect_node(NODE / "fastify-sessions")
    assert facts.lock_file == "" and "no lockfile" in facts.warnings[0]
    assert facts.module_type == "esm" and facts.framework == "fastify"
    assert (facts.node, facts.node_origin) == ("20", ".node-version")
    assert facts.routes == ("/health",) and facts.port == 3000 and not facts.binds_loopback
    spec = load_spec(NODE / "fastify-sessions", output=Path("/nonexistent"))
    dockerfile = render_all(spec)["Dockerfile"]
    assert "npm install --no-package-lock --omit=dev" in dockerfile and "npm ci" not in dockerfile


def test_stack_seam_python_first():
    assert detect_stack(NODE / "express-orders") == "node"
    assert detect_stack(Path(__file__).resolve().parent.parent / "fixtures" / "minimal" / "src") == "python"


def test_express_spec_and_image():
    spec = load_spec(NODE / "express-orders", output=Path("/nonexistent"))
    assert spec.stack == "node" and spec.base_image == "node:18-bookworm-slim"
    assert spec.command == ("node", "src/server.js") and spec.port == 8080
    assert (spec.health_path, spec.metrics_path) == ("/healthz", "/metrics")
    files = render_all(spec)
    df = files["Dockerfile"]
    assert "ARG NODE_IMAGE=node:18-bookworm-slim" in df and "ARG NPM_CONFIG_REGISTRY=" in df
    assert "--mount=type=cache,target=/root/.npm" in df and "npm ci --omit=dev" in df
    assert "COPY package.json package-lock.json ./" in df and "USER 10001:10001" in df
    assert 'CMD ["node", "src/server.js"]' in df and "curl" not in df and "apt-get" not in df
    assert consistency(spec, df).status == "passed"
    assert "http://127.0.0.1:8080/healthz" in files["compose.yaml"] and "python3" not in files["compose.yaml"]
    assert "NPM_CONFIG_REGISTRY: ${NPM_CONFIG_REGISTRY:-https://registry.npmjs.org/}" in files["compose.yaml"]
    assert "PIP_INDEX_URL" not in files["compose.yaml"] + files[".env.example"]
    broken = df.replace('PORT="8080"', 'PORT="9090"')
    assert "ENV does not set PORT=8080" in consistency(spec, broken).reason


def test_hadolint_passes_the_node_images(tmp_path):
    from kit.core.tools import venv_tool
    for name in ("express-orders", "fastify-sessions", "native-checksum", "pnpm-koa-ledger", "yarn-classic-notifier",
                 "ts-fastify-quotes"):
        spec = load_spec(NODE / name, output=tmp_path)
        path = tmp_path / f"{name}.Dockerfile"
        path.write_text(render_all(spec)["Dockerfile"])
        proc = subprocess.run([venv_tool("hadolint"), "--failure-threshold", "warning", str(path)],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout


test_hadolint_passes_the_node_images = pytest.mark.tools(test_hadolint_passes_the_node_images)


@pytest.mark.parametrize("files, kind", [
    ({"package-lock.json": json.dumps({"lockfileVersion": 1, "dependencies": {"express": {"version": "4.0.0"}}})},
     "npm-v1"),
    ({"yarn.lock": '# yarn lockfile v1\n\n"express@^4.21.2":\n  version "4.21.2"\n'}, "yarn-classic"),
    ({"yarn.lock": '__metadata:\n  version: 8\n\n"express@npm:^4.21.2":\n  version: 4.21.2\n'}, "yarn-berry"),
    ({"pnpm-lock.yaml": "lockfileVersion: '9.0'\nimporters:\n  .:\n    dependencies:\n      express:\n"
                        "        specifier: ^4.21.2\n        version: 4.21.2\n"}, "pnpm"),
])
def test_lockfile_kinds(tmp_path, files, kind):
    _write(tmp_path, {"package.json": _pkg(dependencies={"express": "^4.21.2"}), "server.js": SERVER, **files})
    facts = detect_node(tmp_path)
    assert facts.lock_kind == kind and facts.lock_problems == ()
    assert facts.package_manager == {"npm-v1": "npm", "pnpm": "pnpm"}.get(kind, "yarn")
    assert (facts.entry, facts.entry_origin, facts.port) == ("server.js", "server file", 4000)


def test_koa_main_engines_and_native_module(tmp_path):
    _write(tmp_path, {"package.json": _pkg(main="lib/app.js", engines={"node": "^20.10 || ^22"},
                                           dependencies={"koa": "^2.15.0", "bcrypt": "^5.1.1"}),
                      "lib/app.js": "const Koa = require('koa')\nnew Koa().listen(5005)\n"})
    facts = detect_node(tmp_path)
    assert (facts.framework, facts.entry, facts.entry_origin) == ("koa", "lib/app.js", "main")
    assert (facts.node, facts.node_origin, facts.port) == ("20", "engines.node", 5005)
    assert facts.native_modules == ("bcrypt",)
    _write(tmp_path, {".claude/task.md": TASK, "package-lock.json": json.dumps({
        "lockfileVersion": 3, "packages": {"": {"dependencies": {"koa": "^2.15.0", "bcrypt": "^5.1.1"}}}})})
    df = render_all(load_spec(tmp_path, output=tmp_path / "out"))["Dockerfile"]
    build, runtime = df.split("AS runtime")
    assert "g++" in build and "g++" not in runtime           # the compiler stays in the build stage


def test_nest_builds_then_runs_dist(tmp_path):
    _write(tmp_path, {".claude/task.md": TASK,
                      "package.json": _pkg(scripts={"build": "nest build", "start": "nest start",
                                                    "start:prod": "node dist/main"},
                                           dependencies={"@nestjs/core": "^10.0.0"},
                                           devDependencies={"@nestjs/cli": "^10.0.0"}),
                      "src/main.ts": "const app = await NestFactory.create(AppModule)\n"
                                     "app.enableShutdownHooks()\nawait app.listen(process.env.PORT ?? 3000)\n",
                      "src/health.controller.ts": "@Controller('health')\nexport class H {\n  @Get()\n  ok() {}\n}\n"})
    facts = detect_node(tmp_path)
    assert (facts.framework, facts.entry, facts.build_script) == ("nest", "dist/main.js", True)
    assert "/health" in facts.routes and "Nest CLI" in facts.entry_note
    df = render_all(load_spec(tmp_path, output=tmp_path / "out"))["Dockerfile"]
    assert "RUN npm run build" in df and "npm prune --omit=dev" in df
    assert "npm install --no-package-lock --no-audit" in df      # devDependencies for the build


def test_fastify_listening_on_localhost_is_an_error(tmp_path):
    _write(tmp_path, {".claude/task.md": TASK, "package.json": _pkg(dependencies={"fastify": "^4.0.0"}),
                      "server.js": "const f = require('fastify')()\nf.get('/health', async () => 'ok')\n"
                                   "f.listen({ port: 3000 })\n"})
    with pytest.raises(DetectionError, match=r"127\.0\.0\.1/localhost only"):
        load_spec(tmp_path)


# ---------------------------------------------------------------- bad input: clear error, nothing written

def _generate_fails(tmp_path, files, capsys) -> str:
    project = _write(tmp_path / "p", {".claude/task.md": TASK, **files})
    assert main(["generate", str(project)]) == 2
    assert not (project / "kit-out").exists()
    return capsys.readouterr().err


def test_unparsable_package_json_names_file_and_line(tmp_path, capsys):
    err = _generate_fails(tmp_path, {"package.json": '{\n  "name": "svc",\n  "dependencies": {\n'
                                                     '    "express": "^4",\n  }\n}\n'}, capsys)
    assert "package.json:5: is not valid JSON" in err


def test_out_of_sync_lockfile_is_an_error(tmp_path, capsys):
    project = copy_project(NODE / "express-orders", tmp_path / "p")
    pkg = json.loads((project / "package.json").read_text())
    pkg["dependencies"]["ioredis"] = "^5.4.1"
    pkg["dependencies"]["pg"] = "^8.0.0"
    (project / "package.json").write_text(json.dumps(pkg))
    assert main(["generate", str(project)]) == 2
    err = capsys.readouterr().err
    assert "package-lock.json: the lockfile is out of sync" in err
    assert "ioredis@^5.4.1 is in package.json but not in package-lock.json" in err
    assert "pg: package.json wants ^8.0.0, package-lock.json records ^8.13.1" in err
    assert not (project / "kit-out").exists()


def test_no_start_entry_is_an_error(tmp_path, capsys):
    err = _generate_fails(tmp_path, {"package.json": _pkg(dependencies={"express": "^4"},
                                                          scripts={"test": "jest"}),
                                     "lib/routes.js": "module.exports = {}\n"}, capsys)
    assert "service.main: no start entry" in err and "service.command" in err


# ---------------------------------------------------------------- downstream: CI and observability follow the stack

def test_ci_runs_npm_for_a_node_service():
    files = render_all(load_spec(NODE / "express-orders", output=Path("/nonexistent")))
    ci = files[".github/workflows/ci.yml"]
    assert "actions/setup-node@49933ea5288caeca8642d1e84afbd3f7d6820020 # v4.4.0" in ci
    assert 'node-version: "18"' in ci and 'run: "npm ci"' in ci and 'run: "npm run lint"' in ci
    assert 'run: "npm test"' in ci and "setup-python" not in ci and "ruff" not in ci
    gitlab = render_all(load_spec(_ci_gitlab(NODE / "fastify-sessions"), output=Path("/nonexistent")))
    lab = gitlab[".gitlab-ci.yml"]
    assert "image: node:20-bookworm-slim" in lab and '"npm install"' in lab and "pip install" not in lab
    assert '"node --check index.js"' in lab        # "test" is npm's placeholder that fails: not run


def _ci_gitlab(fixture: Path) -> Path:
    import tempfile
    project = copy_project(fixture, Path(tempfile.mkdtemp()) / fixture.name)
    task = project / ".claude" / "task.md"
    task.write_text(task.read_text().replace("---\n#", "ci:\n  provider: gitlab\n---\n#", 1))
    return project


def test_slo_metrics_of_prom_client_and_express_prom_bundle(tmp_path):
    spec = load_spec(NODE / "express-orders", output=Path("/nonexistent"))
    slo = spec.option("slo")
    m = slo.metrics
    # the fixture declares a prom-client Histogram (labels method, route, code; buckets up to 3 s) and no counter
    assert (m.requests, m.duration, m.status_label, m.path_label) == (
        "http_request_duration_seconds_count", "http_request_duration_seconds", "code", "route")
    assert slo.latency_threshold_s == 0.3 and slo.latency_le == "0.3"   # 250ms is no bucket of it
    assert slo.process_metrics      # collectDefaultMetrics() registers process_cpu_seconds_total etc.
    _write(tmp_path, {".claude/task.md": TASK, "package-lock.json": "{}",
                      "package.json": _pkg(dependencies={"express": "^4", "express-prom-bundle": "^8"}),
                      "app.js": "const app = require('express')()\napp.use(require('express-prom-bundle')({}))\n"
                                "app.get('/healthz', (q, r) => r.send('ok'))\napp.listen(process.env.PORT || 3000)\n"})
    (tmp_path / "package-lock.json").write_text(json.dumps({"lockfileVersion": 3, "packages": {"": {
        "dependencies": {"express": "^4", "express-prom-bundle": "^8"}}}}))
    spec = load_spec(tmp_path, output=tmp_path / "out")
    assert spec.metrics_path == "/metrics"
    m = spec.option("slo").metrics
    assert (m.requests, m.duration, m.status_label) == (
        "http_request_duration_seconds_count", "http_request_duration_seconds", "status_code")
    assert spec.option("slo").latency_threshold_s == 0.3
    rules = render_all(spec)["monitoring/rules/recording.yml"]
    assert 'status_code=~"5.."' in rules and 'le="0.3"' in rules


def test_js_le_label_format():
    from dataclasses import replace
    slo = load_spec(NODE / "express-orders", output=Path("/nonexistent")).option("slo")
    assert replace(slo, latency_threshold_s=1.0).latency_le == "1"                       # prom-client
    assert replace(slo, latency_threshold_s=1.0, le_style="python").latency_le == "1.0"  # prometheus_client


def test_native_file_dependency_is_copied_before_the_install_and_compiled_there(tmp_path):
    """A `file:` folder with a binding.gyp: detected as native; the build stage copies it before
    `npm ci` (npm links or packs it from there) and points node-gyp at the image's own headers;
    the final stage has no compiler and takes the compiled folder from the build stage."""
    project = copy_project(NODE / "native-checksum", tmp_path / "native")
    facts = detect_node(project)
    assert facts.local_packages == ("packages/fnv1a",)
    assert facts.native_modules == ("fnv1a-native (packages/fnv1a/binding.gyp)",)
    assert (facts.entry, facts.port, facts.metrics_library) == ("dist/server.js", 8088, "prom-client")
    assert facts.build_script                                        # TypeScript: tsc in the build stage
    df = render_all(load_spec(project))["Dockerfile"]
    build, runtime = df.split("AS runtime")
    assert build.index("COPY packages/fnv1a ./packages/fnv1a") < build.index("npm ci --no-audit")
    assert 'export npm_config_nodedir="$prefix"' in build and "g++" in build
    assert "g++" not in runtime and "nodedir" not in runtime
    assert "COPY --from=build /app ./" in runtime                    # dist/ and the compiled addon

    # a JavaScript service without a build step takes the compiled folder back after its source
    pkg = json.loads((project / "package.json").read_text())
    pkg["scripts"] = {"start": "node server.js"}
    pkg.pop("main")
    (project / "package.json").write_text(json.dumps(pkg))
    (project / "server.js").write_text("require('fnv1a-native')\nrequire('express')().listen(process.env.PORT || 8088)\n")
    (project / "tsconfig.json").unlink()
    runtime = render_all(load_spec(project))["Dockerfile"].split("AS runtime")[1]
    assert "COPY --from=build /app/packages/fnv1a ./packages/fnv1a" in runtime
    assert runtime.index("COPY . .") < runtime.index("COPY --from=build /app/packages/fnv1a")


def test_a_lockfiles_link_target_is_not_fetched_from_the_registry(tmp_path):
    """package-lock.json names a `file:` folder twice: node_modules/<name> (link) and the folder
    itself ("packages/fnv1a", no `resolved`); neither is a registry tarball, and the lockfile is
    still complete enough for the offline registry."""
    from kit.sandbox.npmregistry import locked_tarballs
    lock = NODE / "native-checksum" / "package-lock.json"
    rels = [rel for rel, _ in locked_tarballs(lock)]
    assert rels and all(rel.endswith(".tgz") for rel in rels)
    assert not any("fnv1a" in rel for rel in rels)


def test_a_file_dependency_outside_the_service_is_warned(tmp_path):
    _write(tmp_path / "svc", {"package.json": _pkg(dependencies={"shared": "file:../shared", "gone": "file:./nope"}),
                              "server.js": SERVER})
    (tmp_path / "shared").mkdir()
    facts = detect_node(tmp_path / "svc")
    assert facts.local_packages == ()
    assert any("outside the service's folder" in w for w in facts.warnings)
    assert any("nope does not exist" in w for w in facts.warnings)


def test_pnpm_and_yarn_classic_fixtures_install_frozen_with_a_pinned_tool():
    """pnpm (the version packageManager pins) and yarn 1 (kit's pin) are installed with npm from
    the one registry argument, in the build stage only; the install is frozen to the lockfile."""
    pnpm = load_spec(NODE / "pnpm-koa-ledger")
    assert (pnpm.facts.lock_kind, pnpm.facts.manager_version, pnpm.facts.framework) == ("pnpm", "9.15.9", "koa")
    assert (pnpm.health_path, pnpm.metrics_path, pnpm.port) == ("/livez", "/metrics", 7070)
    df = render_all(pnpm)["Dockerfile"]
    build, runtime = df.split("AS runtime")
    assert "npm install --prefix /opt/pnpm --no-audit --no-fund --no-save pnpm@9.15.9" in build
    assert "pnpm install --frozen-lockfile --store-dir /root/.pnpm-store --prod" in build
    assert "ARG NPM_CONFIG_REGISTRY=" in build and "pnpm" not in runtime.replace("pnpm-koa", "")
    yarn = load_spec(NODE / "yarn-classic-notifier")
    assert (yarn.facts.lock_kind, yarn.facts.manager_version, yarn.facts.metrics_library) == \
        ("yarn-classic", "", "express-prom-bundle")
    df = render_all(yarn)["Dockerfile"]
    assert "yarn@1.22.22" in df and "(kit's pin)" in df
    assert "yarn install --frozen-lockfile --non-interactive --registry \"$NPM_CONFIG_REGISTRY\"" in df
    assert 's#https://registry.yarnpkg.com/#${NPM_CONFIG_REGISTRY%/}/#g' in df     # yarn 1 ignores --registry for resolved URLs


@pytest.mark.parametrize("yarnrc, release, expect, absent", [
    ("nodeLinker: node-modules\nyarnPath: .yarn/releases/yarn-4.5.3.cjs\n", ".yarn/releases/yarn-4.5.3.cjs",
     ["COPY .yarn/releases/yarn-4.5.3.cjs ./.yarn/releases/yarn-4.5.3.cjs",
      "node .yarn/releases/yarn-4.5.3.cjs workspaces focus --all --production"], ["/opt/yarn", "YARN_NODE_LINKER"]),
    ("enableTelemetry: false\n", "", ["@yarnpkg/cli-dist@4.1.0", "YARN_NODE_LINKER=node-modules",
                                      "yarn workspaces focus --all --production"], ["node .yarn"]),
])
def test_yarn_berry_image(tmp_path, yarnrc, release, expect, absent):
    _write(tmp_path, {".claude/task.md": TASK, ".yarnrc.yml": yarnrc, "server.js": SERVER,
                      "package.json": _pkg(dependencies={"express": "^4.21.2"}, packageManager="yarn@4.1.0"),
                      "yarn.lock": '__metadata:\n  version: 8\n\n"express@npm:^4.21.2":\n  version: 4.21.2\n'})
    if release:
        _write(tmp_path, {release: "// yarn release\n"})
    df = render_all(load_spec(tmp_path, output=tmp_path / "out"))["Dockerfile"]
    assert "ENV YARN_NPM_REGISTRY_SERVER=${NPM_CONFIG_REGISTRY}" in df and "COPY .yarnrc.yml ./.yarnrc.yml" in df
    for text in expect:
        assert text in df, text
    for text in absent:
        assert text not in df, text


def test_package_manager_field_naming_another_manager_is_warned(tmp_path):
    _write(tmp_path, {"package.json": _pkg(dependencies={"express": "^4.21.2"}, packageManager="yarn@4.1.0"),
                      "server.js": SERVER, "pnpm-lock.yaml": "lockfileVersion: '9.0'\nimporters:\n  .:\n"
                      "    dependencies:\n      express:\n        specifier: ^4.21.2\n        version: 4.21.2\n"})
    facts = detect_node(tmp_path)
    assert facts.package_manager == "pnpm" and facts.manager_version == ""
    assert any("packageManager is yarn@4.1.0 but the lockfile is pnpm-lock.yaml" in w for w in facts.warnings)


@pytest.mark.parametrize("fixture, lock, change, message", [
    ("pnpm-koa-ledger", "pnpm-lock.yaml", ("koa", "^3.0.0"),
     "koa: package.json wants ^3.0.0, pnpm-lock.yaml records ^2.15.3"),
    ("yarn-classic-notifier", "yarn.lock", ("pino", "^9.5.0"), "pino@^9.5.0 is in package.json but not in yarn.lock"),
])
def test_yarn_and_pnpm_lockfiles_out_of_sync_are_errors(tmp_path, capsys, fixture, lock, change, message):
    project = copy_project(NODE / fixture, tmp_path / "p")
    pkg = json.loads((project / "package.json").read_text())
    pkg["dependencies"][change[0]] = change[1]
    (project / "package.json").write_text(json.dumps(pkg))
    assert main(["generate", str(project)]) == 2
    err = capsys.readouterr().err
    assert f"{lock}: the lockfile is out of sync" in err and message in err
    assert not (project / "kit-out").exists()


def test_the_local_registry_reads_pnpm_and_yarn_lockfiles():
    from kit.sandbox.npmregistry import pnpm_locked_tarballs, yarn_locked_tarballs
    pnpm = dict(pnpm_locked_tarballs(NODE / "pnpm-koa-ledger" / "pnpm-lock.yaml"))
    assert pnpm["@koa/router/-/router-13.1.1.tgz"].startswith("sha512-")
    assert all(rel.endswith(".tgz") and integrity for rel, integrity in pnpm.items())
    yarn = dict(yarn_locked_tarballs(NODE / "yarn-classic-notifier" / "yarn.lock"))
    assert any(rel.startswith("express/-/express-4.") for rel in yarn)
    assert all(integrity.startswith("sha512-") for integrity in yarn.values())


def test_typescript_start_script_on_dist_runs_the_build_first():
    """`"start": "node dist/main.js"` with a `build` script (tsc): dist/ is build output, so the
    image installs devDependencies, builds, prunes them and runs node dist/main.js."""
    spec = load_spec(NODE / "ts-fastify-quotes")
    facts = spec.facts
    assert (facts.entry, facts.entry_origin, facts.build_script) == ("dist/main.js", "start script", True)
    assert (facts.framework, spec.port, spec.health_path, spec.metrics_path) == \
        ("fastify", 8800, "/health/ready", "/metrics")
    assert not facts.binds_loopback and facts.handles_sigterm        # host: '0.0.0.0' given
    df = render_all(spec)["Dockerfile"]
    build, runtime = df.split("AS runtime")
    assert "npm ci --no-audit --no-fund" in build and "--omit=dev --no-audit --no-fund\n" not in build.split("npm run build")[0]
    assert "RUN npm run build \\\n    && npm prune --omit=dev" in build
    assert 'CMD ["node", "dist/main.js"]' in runtime


@pytest.mark.parametrize("files, main, built", [
    ({"src/index.ts": "", "tsconfig.json": "{}"}, "lib/index.js", True),       # lib/ from tsc, not in the source
    ({"lib/index.js": "require('http').createServer().listen(3000)\n"}, "lib/index.js", False),
])
def test_main_from_a_build_step(tmp_path, files, main, built):
    _write(tmp_path, {"package.json": _pkg(main=main, scripts={"build": "tsc"}), **files})
    facts = detect_node(tmp_path)
    assert (facts.entry, facts.build_script) == (main, built)


def test_an_app_without_a_sigterm_handler_gets_the_minimal_init(tmp_path):
    """Found on a real public Express service: no SIGTERM handler, so node as PID 1 ignored
    `docker stop` (exit 137 after 10 s). kit preloads docker/sigterm.cjs then; an app with its own
    handler (express-orders) gets neither the file nor the flag."""
    _write(tmp_path, {".claude/task.md": TASK, "server.js": SERVER,
                      "package.json": _pkg(scripts={"start": "node server.js"}, dependencies={"express": "^4.21.2"})})
    spec = load_spec(tmp_path, output=tmp_path / "out")
    assert not spec.facts.handles_sigterm
    files = render_all(spec)
    assert 'CMD ["node", "--require", "/usr/local/lib/kit/sigterm.cjs", "server.js"]' in files["Dockerfile"]
    assert "COPY --chmod=0644 docker/sigterm.cjs /usr/local/lib/kit/sigterm.cjs" in files["Dockerfile"]
    assert "process.exit(143)" in files["docker/sigterm.cjs"]
    node = subprocess.run(["node", "--check", "-"], input=files["docker/sigterm.cjs"], capture_output=True, text=True)
    assert node.returncode == 0, node.stderr
    files = render_all(load_spec(NODE / "express-orders", output=tmp_path / "o2"))
    assert "docker/sigterm.cjs" not in files and "sigterm.cjs" not in files["Dockerfile"]


def test_ci_installs_with_the_pinned_manager_through_npx():
    from kit.families.container.render import node_ci_install
    assert node_ci_install(load_spec(NODE / "pnpm-koa-ledger")) == \
        "npx --yes --package pnpm@9.15.9 -- pnpm install --frozen-lockfile"
    assert node_ci_install(load_spec(NODE / "yarn-classic-notifier")) == \
        "npx --yes --package yarn@1.22.22 -- yarn install --frozen-lockfile --non-interactive"
    assert node_ci_install(load_spec(NODE / "express-orders")) == "npm ci"
