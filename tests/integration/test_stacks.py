"""The Node.js and Go stacks proven in the sandbox, one build and one run each (the container family
only, to keep the suite's Docker time small):
- the Express + prom-client + Postgres fixture's image, built on the Node stand-in (Debian's nodejs
  18), its packages served by kit's local npm registry on 127.0.0.1, run with its Postgres stand-in;
- the native-checksum fixture (TypeScript with a C addon) and the pnpm fixture, each one build;
- the Go stdlib fixture, built with Debian's Go 1.19 (GOPROXY=off) onto the distroless-static
  stand-in, probed by its static kit-init binary.
Each: healthy, metrics scraped, SIGTERM clean, not root."""
from __future__ import annotations

from pathlib import Path

import pytest

from kit.pipeline import generate, verify
from kit.spec import load_spec
from tests.conftest import copy_project
from tests.integration.helpers import assert_nothing_left

pytestmark = [pytest.mark.docker]
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
NODE, GO = FIXTURES / "node", FIXTURES / "go"


RUNTIME_CHECKS = ("container.healthy", "container.health_endpoint", "container.route_guard",
                  "container.metrics", "container.nonroot", "container.shutdown", "container.consistency")


def proven(fixture: Path, tmp_path: Path) -> dict:
    """The container family's records for a copy of `fixture`, generated and verified (one build,
    one run); nothing failed, and nothing is left on the engine whatever happened."""
    project = copy_project(fixture, tmp_path / fixture.name)
    spec = load_spec(project)
    generate(spec, spec.output)
    try:
        records = {r.check: r for r in verify(spec, ("container",))}
    finally:
        assert_nothing_left()
    failed = {k: r.reason for k, r in records.items() if r.status == "failed"}
    assert failed == {}
    return records


def test_express_prom_client_postgres_is_proven(tmp_path):
    records = proven(NODE / "express-orders", tmp_path)
    build = records["container.build"]
    assert build.status == "passed"
    assert build.standins == {"node:18-bookworm-slim": "kit-standin/node:18-bookworm"}
    assert build.figures["npm_registry"].startswith("offline")
    assert build.figures["npm_tarballs_locked"] > 50
    # each locked tarball came from the local registry unless npm found it in the build's cache
    # mount (/root/.npm, kept by BuildKit and shared by every Node fixture's build: some of the
    # same tarballs) or BuildKit reused the layer; offline, nothing unlocked can be served
    assert 0 <= build.figures["npm_requests_served"] <= build.figures["npm_tarballs_locked"]
    for check in (*RUNTIME_CHECKS, "container.hadolint"):
        assert records[check].status == "passed", (check, records[check].reason)
    assert "http_request_duration_seconds" in records["container.metrics"].figures["names"]
    assert records["container.nonroot"].figures["uid_gid"] == "10001 10001"
    assert records["container.shutdown"].figures["exit_code"] == 0      # the app's own SIGTERM handler


def test_go_stdlib_service_is_proven_on_distroless(tmp_path):
    records = proven(GO / "stdlib-notes", tmp_path)
    build = records["container.build"]
    assert build.standins == {"golang:1.19": "kit-standin/golang:1.19-bookworm",
                              "gcr.io/distroless/static-debian12:nonroot": "kit-standin/distroless-static:nonroot"}
    assert build.figures["goproxy"] == "off" and build.figures["size_mb"] < 40      # a static binary, no OS
    for check in RUNTIME_CHECKS:
        assert records[check].status == "passed", (check, records[check].reason)
    assert records["container.nonroot"].figures["uid_gid"] == "65532 65532"
    assert records["container.shutdown"].figures["exit_code"] == 0
    assert records["container.shellcheck"].status == "skipped"


def test_native_addon_and_typescript_build_in_the_build_stage_only(tmp_path):
    """One build for two things (the suite's Docker time): a `file:` dependency with a binding.gyp
    (C, N-API) that node-gyp compiles against the node binary's own headers (no download from
    nodejs.org), offline, and a TypeScript app: `npm ci` with devDependencies, `npm run build`
    (tsc), `npm prune --omit=dev`. The final image runs `node dist/server.js`, has neither a
    compiler nor typescript, and its health route calls the compiled addon."""
    records = proven(NODE / "native-checksum", tmp_path)
    build = records["container.build"]
    assert build.figures["npm_registry"].startswith("offline")
    assert build.figures["native_modules"] == ["fnv1a-native (packages/fnv1a/binding.gyp)"]
    for check in RUNTIME_CHECKS:
        assert records[check].status == "passed", (check, records[check].reason)
    from kit.sandbox.engine import docker
    probe = docker("run", "--rm", "--entrypoint", "sh", build.figures["image"], "-c",
                   "command -v g++ cc make || echo no-compiler; ls node_modules/typescript || echo no-tsc; "
                   "ls dist/server.js; find /app -name fnv1a.node", check=False)
    # npm 9.0-9.3 (Debian's 9.2 in the stand-in) packs a `file:` folder into node_modules
    # (install-links=true); later npm links it: the addon is compiled in one place or the other
    for text in ("no-compiler", "no-tsc", "dist/server.js", "/build/Release/fnv1a.node"):
        assert text in probe.stdout, probe.stdout + probe.stderr


def test_pnpm_lockfile_installs_frozen_through_the_local_registry(tmp_path):
    """pnpm-lock.yaml: pnpm (the version package.json's packageManager pins) is installed with npm
    from the local registry in the build stage, then `pnpm install --frozen-lockfile --prod`
    reads the same registry (npm_config_registry), which serves only what the lockfile names."""
    records = proven(NODE / "pnpm-koa-ledger", tmp_path)
    build = records["container.build"]
    assert build.figures["npm_registry"].startswith("offline")
    assert build.figures["package_manager"] == "pnpm@9.15.9 (package.json's packageManager)"
    for check in RUNTIME_CHECKS:
        assert records[check].status == "passed", (check, records[check].reason)
    assert "ledger_moves" in records["container.metrics"].figures["names"]     # the parser drops _total
    # how many requests the registry served depends on BuildKit's npm and pnpm cache mounts (warm
    # after the first build), so the count is a figure, not an assertion
