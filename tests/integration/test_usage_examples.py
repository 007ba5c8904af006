"""work.md's Usage Examples, run as written in a scratch copy of the example: copy the
deliverables, create the secret, build, `docker compose up --wait`, curl the health path.

Only what this machine cannot do is substituted, by a `docker` wrapper first on PATH: the build
gets the stand-in base image and the local package index (no registry is reachable here), and
compose gets kit's sandbox override (stand-in images for the dependencies, kit's labels so
nothing is left behind). The commands themselves are not changed."""
from __future__ import annotations

import os
import re
import subprocess

import pytest

from kit.pipeline import generate
from kit.report.workmd import render_work_md
from kit.sandbox import pkgindex
from kit.sandbox.compose_run import write_override
from kit.sandbox.standins import ensure_standin, standin_for
from kit.spec import load_spec
from tests.conftest import copy_example
from tests.integration.helpers import assert_nothing_left

pytestmark = [pytest.mark.docker, pytest.mark.slow]

WRAPPER = """#!/bin/sh
# test wrapper: the stand-in base and the local index for builds, kit's override for compose
real=$(command -v -p docker || echo /usr/bin/docker)
case "$1" in
  build) shift; exec "$real" build --network host --build-arg "PYTHON_IMAGE=$KIT_BASE" \\
           --build-arg "PIP_INDEX_URL=$KIT_INDEX" "$@" ;;
  compose) shift; exec "$real" compose -f compose.yaml -f "$KIT_OVERRIDE" "$@" ;;
  *) exec "$real" "$@" ;;
esac
"""


def test_usage_examples_run_as_written(tmp_path):
    project = copy_example(tmp_path / "shop-api")
    spec = load_spec(project)
    files = generate(spec)
    text = render_work_md(spec, files, [], {})
    usage = text.split("## Usage Examples", 1)[1].split("## Testing", 1)[0]
    block = re.search(r"```sh\n(.*?)```", usage, re.S).group(1)
    assert "docker compose up -d --wait" in block and "curl -fsS" in block
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "docker").write_text(WRAPPER)
    (bindir / "docker").chmod(0o755)
    base = ensure_standin(standin_for(spec.base_image).key, log=lambda *_: None)
    standins = {d.image: ensure_standin(standin_for(d.image).key, log=lambda *_: None) for d in spec.dependencies}
    compose_project = f"kitsbx-usage-{os.getpid()}"
    override = write_override(tmp_path, spec, f"{spec.name}:dev", standins, compose_project)
    port = pkgindex.free_port()
    wheels = pkgindex.wheelhouse(spec.source, spec.requirements_file, spec.extra_packages, base)
    try:
        with pkgindex.serve_index(wheels) as index_url:
            env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "KIT_BASE": base,
                   "KIT_INDEX": index_url, "KIT_OVERRIDE": str(override), "APP_PORT": str(port)}
            # the override publishes the app on a port Docker picks; the examples curl APP_PORT
            override.write_text(override.read_text().replace(f"127.0.0.1::{spec.port}",
                                                             f"127.0.0.1:{port}:{spec.port}"))
            proc = subprocess.run(["sh", "-ex", "-c", block], cwd=project, env=env, capture_output=True,
                                  text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
        assert '"ok"' in proc.stdout, proc.stdout[-500:]   # the health body: each dependency answered
        assert (project / "app" / "Dockerfile").is_file() and (project / ".github" / "workflows").is_dir()
        assert len((project / "app" / "secrets" / "PGPASSWORD").read_text()) >= 24
    finally:
        subprocess.run(["docker", "compose", "-p", compose_project, "-f", str(project / "app" / "compose.yaml"),
                        "-f", str(override), "down", "-v", "--remove-orphans"], capture_output=True,
                       cwd=project / "app")
        subprocess.run(["docker", "rmi", "-f", f"{spec.name}:dev"], capture_output=True)
    assert_nothing_left()
