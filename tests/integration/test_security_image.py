"""The security family's sandbox checks failing when they should, on the example's built image (one
build, reused): a secret passed as a build argument is found in the image's history without the
value in the evidence, and the hardening probe fails a run without the security settings. The
example's own evidence (SBOM, clean image, hardening) is asserted on the full run."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from kit.core.session import session
from kit.families import render_all
from kit.families.container.checks import build_evidence
from kit.pipeline import generate
from kit.spec import load_spec
from tests.conftest import copy_example
from tests.integration.helpers import assert_nothing_left

pytestmark = [pytest.mark.docker, pytest.mark.slow]
# a GitHub token in the detect-secrets GitHubTokenDetector format (ghp_ + 36), not a real one
PLANTED = "ghp_" + "Zq8XvT3kLm2Pw9Rb4Nc7Yd1Hf6Js5Ga0Ke3U"


@pytest.fixture(scope="module")
def example(tmp_path_factory, docker_engine):
    """The example's image, built once (reused when the full run's build of the same context exists);
    the example's own security evidence is asserted on the full run (test_run_example.py)."""
    root = tmp_path_factory.mktemp("sec")
    project, out = copy_example(root / "shop-api"), root / "out"
    spec = load_spec(project, out)
    generate(spec, out)
    with session(spec, out, render_all(spec)) as ctx:
        build = build_evidence(spec, ctx)
        assert build.passed, build.reason
        return spec, ctx.image


def test_hardening_probe_fails_a_container_run_without_the_settings(example):
    """The probe is not a constant: the same image run without cap_drop, no-new-privileges and a
    read-only root shows capabilities, NoNewPrivs 0 and a write that succeeds."""
    from kit.families.security import hardening
    spec, image = example
    saved = hardening.SETTINGS
    hardening.SETTINGS = ["--user", "0"]
    try:
        record = hardening.measure(image, spec)
    finally:
        hardening.SETTINGS = saved
    assert record.status == "failed"
    assert "effective capabilities" in record.reason and "NoNewPrivs is 0" in record.reason
    assert "took a write" in record.reason and "runs as root" in record.reason
    assert_nothing_left()


def test_build_argument_secret_is_found_in_the_history(example):
    from kit.families.security.image import scan_image
    from kit.sandbox.engine import docker
    _spec, image = example
    tag = f"{image.split(':')[0]}-planted:{image.split(':')[1]}"
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "Dockerfile").write_text(f"FROM {image}\nARG DEPLOY_TOKEN\nRUN test -n \"$DEPLOY_TOKEN\"\n")
        docker("build", "-q", "--build-arg", f"DEPLOY_TOKEN={PLANTED}", "-t", tag, tmp)
    try:
        record = scan_image(tag, "/app")
    finally:
        docker("rmi", "-f", tag, check=False)
    assert record.status == "failed"
    assert any(f["where"].startswith(f"{tag} history step") and f["detector"] == "GitHub Token"
               for f in record.figures["found"]), record.figures["found"]
    assert "history step" in record.reason and PLANTED not in repr(record.to_dict())
    assert_nothing_left()
