"""The security family's sandbox evidence on the example's built image (one build, reused): a
valid CycloneDX SBOM listing every requirement, no secret in any layer or the history, hardening
measured in the running container (no effective capability, NoNewPrivs, read-only root, no
setuid/setgid file), the vulnerability scan skipped with the CI job named; and a secret passed as
a build argument found in the image's history, without the value in the evidence."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from kit.core.session import session
from kit.families import render_all
from kit.families.container.checks import build_evidence
from kit.pipeline import generate, verify
from kit.spec import load_spec
from tests.conftest import copy_example
from tests.integration.helpers import assert_nothing_left

pytestmark = [pytest.mark.docker, pytest.mark.slow]
# a GitHub token in the detect-secrets GitHubTokenDetector format (ghp_ + 36), not a real one
PLANTED = "ghp_" + "Zq8XvT3kLm2Pw9Rb4Nc7Yd1Hf6Js5Ga0Ke3U"


@pytest.fixture(scope="module")
def example(tmp_path_factory, docker_engine):
    root = tmp_path_factory.mktemp("sec")
    project, out = copy_example(root / "shop-api"), root / "out"
    spec = load_spec(project, out)
    generate(spec, out)
    with session(spec, out, render_all(spec)) as ctx:
        build = build_evidence(spec, ctx)
        assert build.passed, build.reason
        image = ctx.image
    records = {r.check: r for r in verify(spec, ["security"]) if r.check.startswith("security.")}
    return spec, image, records


def test_sbom_valid_and_complete(example):
    spec, _image, records = example
    sbom = records["security.sbom"]
    assert sbom.passed, sbom.reason
    assert sbom.figures["spec_version"] == "1.6" and sbom.figures["requirements_missing"] == []
    assert sbom.figures["by_type"]["python"] >= len(spec.facts.dependencies)
    assert sbom.figures["os_packages"] > 50 and sbom.figures["os"].startswith("debian")
    assert (Path(spec.output) / "evidence" / "sbom.cdx.json").is_file()


def test_sbom_missing_requirement_is_named(example):
    from kit.evidence import Evidence
    from kit.families.security.image import sbom_record
    spec, _image, _records = example
    text = (Path(spec.output) / "evidence" / "sbom.cdx.json").read_text()
    record = sbom_record(Evidence("security.sbom", "x", "x", "failed"), text, ["flask", "left-pad-py"])
    assert record.status == "failed" and "requirements missing from the SBOM: left-pad-py" in record.reason


def test_image_has_no_secret_and_hardening_holds(example):
    _spec, _image, records = example
    scan = records["security.secrets.image"]
    assert scan.passed, scan.reason
    assert scan.figures["findings"] == 0 and scan.figures["layers"] >= 4 and scan.figures["history_steps"] >= 10
    hard = records["security.hardening"]
    assert hard.passed, hard.reason
    assert int(hard.figures["CapEff"], 16) == 0 and hard.figures["NoNewPrivs"] == "1"
    assert set(hard.figures["write_attempts"].values()) == {"EROFS"}
    assert hard.figures["setuid_setgid"] == [] and hard.figures["uid"] != "0"
    assert hard.figures["os_packages"] == records["security.sbom"].figures["os_packages"]
    vuln = records["security.vulnerabilities"]
    assert vuln.status == "skipped" and ".github/workflows/ci.yml, job `image`" in vuln.reason
    assert_nothing_left()


def test_build_argument_secret_is_found_in_the_history(example):
    from kit.families.security.image import scan_image
    from kit.sandbox.engine import docker
    _spec, image, _records = example
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
