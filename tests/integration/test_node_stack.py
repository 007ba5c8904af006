"""The Node.js stack proven in the sandbox: the Express + prom-client + Postgres fixture's image
is built on the Node stand-in (Debian's nodejs 18), its packages served by kit's local npm registry
on 127.0.0.1, then run with its Postgres stand-in: healthy, metrics scraped, SIGTERM clean, not root.
One build and one run (the container family only), to keep the suite's Docker time small."""
from __future__ import annotations

from pathlib import Path

import pytest

from kit.pipeline import generate, verify
from kit.spec import load_spec
from tests.conftest import copy_project
from tests.integration.helpers import assert_nothing_left

pytestmark = [pytest.mark.docker]
NODE = Path(__file__).resolve().parent.parent / "fixtures" / "node"


def test_express_prom_client_postgres_is_proven(tmp_path):
    project = copy_project(NODE / "express-orders", tmp_path / "express-orders")
    spec = load_spec(project)
    generate(spec, spec.output)
    try:
        records = {r.check: r for r in verify(spec, ("container",))}
    finally:
        assert_nothing_left()
    failed = {k: r.reason for k, r in records.items() if r.status == "failed"}
    assert failed == {}
    build = records["container.build"]
    assert build.status == "passed"
    assert build.standins == {"node:18-bookworm-slim": "kit-standin/node:18-bookworm"}
    assert build.figures["npm_registry"].startswith("offline")
    assert build.figures["npm_tarballs_locked"] > 50
    # every locked tarball came from the local registry, unless npm found it in the build's cache
    # mount (/root/.npm, kept by BuildKit from an earlier sandbox build) or BuildKit reused the layer
    assert build.figures["npm_requests_served"] in (0, build.figures["npm_tarballs_locked"])
    for check in ("container.healthy", "container.health_endpoint", "container.route_guard",
                  "container.metrics", "container.nonroot", "container.shutdown", "container.hadolint",
                  "container.consistency"):
        assert records[check].status == "passed", (check, records[check].reason)
    assert "http_request_duration_seconds" in records["container.metrics"].figures["names"]
    assert records["container.nonroot"].figures["uid_gid"] == "10001 10001"
    assert records["container.shutdown"].figures["exit_code"] == 0      # the app's own SIGTERM handler
