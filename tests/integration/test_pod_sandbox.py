"""The pod sandbox runs the image under the Deployment's own pod spec: it must prove the
example, and catch what a restricted pod refuses but plain Docker allows."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from kit.cli import main
from tests.conftest import copy_project
from tests.integration.helpers import assert_nothing_left

pytestmark = [pytest.mark.docker, pytest.mark.slow]
MESSY = Path(__file__).resolve().parent.parent / "fixtures" / "messy"


@pytest.fixture(autouse=True)
def _no_load_test(monkeypatch):
    """The scaling family's load test (about a minute a service) runs on the example and the slow
    fixture (tests/integration/test_scaling_live.py); these services are here for other things."""
    monkeypatch.setenv("KIT_LOADTEST", "off")


def _verify(project: Path) -> tuple[int, dict]:
    assert main(["generate", str(project)]) == 0
    code = main(["verify", str(project)])
    records = json.loads((project / "kit-out" / "evidence.json").read_text())["records"]
    assert_nothing_left()
    return code, {r["check"]: r for r in records}


def test_app_writing_outside_its_emptydirs_fails_the_pod(docker_engine, tmp_path):
    """Plain Docker lets the app write to /var/tmp; the pod has a read-only root and an emptyDir
    at /tmp only."""
    code, records = _verify(copy_project(MESSY / "writes-outside", tmp_path / "w"))
    assert code == 4
    assert records["container.healthy"]["status"] == "passed"      # Docker alone is fooled
    startup = records["kubernetes.pod.startup"]
    assert startup["status"] == "failed"
    assert "exited" in startup["reason"]
    assert "Read-only file system" in startup["log"]
    assert records["kubernetes.pod.readiness"]["status"] == "skipped"


def test_app_needing_root_for_a_low_port_fails_the_pod(docker_engine, tmp_path):
    """Docker lets any user bind port 80 (it lowers the unprivileged-port floor to 0); a
    Kubernetes pod with every capability dropped cannot."""
    code, records = _verify(copy_project(MESSY / "low-port", tmp_path / "p"))
    assert code == 4
    assert records["container.healthy"]["status"] == "passed"
    startup = records["kubernetes.pod.startup"]
    assert startup["status"] == "failed"
    assert "Can't connect to ('0.0.0.0', 80)" in startup["log"]   # gunicorn's bind error
    settings = records["kubernetes.pod.settings"]["figures"]
    assert settings["user"] == "10001:10001" and settings["cap_drop"] == ["ALL"] and settings["read_only"]
