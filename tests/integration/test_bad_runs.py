"""Runs that must fail clearly: never healthy, crash at start, a broken build, no engine, an
interrupt. Each exits non-zero, says why, and leaves no container behind."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from kit.cli import main
from tests.conftest import write_task
from tests.integration.helpers import assert_nothing_left, kit_resources

pytestmark = pytest.mark.docker
KIT = [sys.executable, "-m", "kit.cli"]


def _records(project):
    return {r["check"]: r for r in json.loads((project / "kit-out" / "evidence.json").read_text())["records"]}


def _verify(project, capsys):
    assert main(["generate", str(project)]) == 0
    code = main(["verify", str(project)])
    return code, capsys.readouterr().err


def test_app_that_never_becomes_healthy(minimal, capsys):
    write_task(minimal, "service:\n  name: mini\n  source: src\n  env:\n    MINI_UNHEALTHY: '1'\n")
    os.environ["KIT_HEALTH_TIMEOUT"] = "20"
    try:
        code, err = _verify(minimal, capsys)
    finally:
        del os.environ["KIT_HEALTH_TIMEOUT"]
    assert code == 4
    rec = _records(minimal)["container.healthy"]
    assert rec["status"] == "failed" and "Docker marked it unhealthy" in rec["reason"], rec["reason"]
    assert "container.healthy" in err
    assert _records(minimal)["compose.up"]["status"] == "skipped"
    assert_nothing_left()


def test_app_that_crashes_at_start(minimal, capsys):
    """The reason names the exception and the frame that raised it, not gunicorn's last line, and,
    as the frame is inside werkzeug (installed, never pinned), the package, its version and a constraint."""
    write_task(minimal, "service:\n  name: mini\n  source: src\n  env:\n    MINI_CRASH: dependency\n")
    code, _err = _verify(minimal, capsys)
    assert code == 4
    rec = _records(minimal)["container.healthy"]
    reason = rec["reason"]
    assert rec["status"] == "failed" and "the container exited (code" in reason, reason
    assert "Root cause: TypeError: normalize() argument 2 must be str, not None" in reason, reason
    assert "werkzeug/utils.py:" in reason and "in secure_filename" in reason, reason
    found = re.search(r"comes from werkzeug (\d+)\.\d+\.\d+, which the requirements do not pin.*"
                      r'service.constraints: \["werkzeug<(\d+)"\]', reason)
    assert found and found.group(1) == found.group(2), reason
    assert "TypeError: normalize()" in rec["log"], "the container's own logs are kept"
    assert_nothing_left()


def test_dockerfile_that_fails_to_build(minimal, capsys):
    assert main(["generate", str(minimal)]) == 0
    dockerfile = minimal / "kit-out" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("WORKDIR /app", "RUN exit 7\nWORKDIR /app"))
    assert main(["verify", str(minimal)]) == 4
    records = _records(minimal)
    assert records["container.build"]["status"] == "failed"
    assert "exit 7" in records["container.build"]["log"] or "exit code: 7" in records["container.build"]["log"]
    assert records["container.healthy"]["status"] == "skipped"
    assert records["compose.up"]["status"] == "skipped"
    assert_nothing_left()


def test_no_docker_engine(minimal, tmp_path):
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-such.sock"}
    proc = subprocess.run([*KIT, "run", str(minimal)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 3
    assert "no Docker engine answers" in proc.stderr and "scripts/setup.sh" in proc.stderr
    assert not (minimal / "kit-out").exists()


def _wait_for_containers_of(proc) -> None:
    """Until the kit process `proc` has started sandbox containers of its own (its pid label), not
    any kit container on the engine: another run's would send the interrupt before kit has started."""
    from kit.sandbox.engine import PID_LABEL
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        mine = subprocess.run(["docker", "ps", "-aq", "--filter", f"label={PID_LABEL}={proc.pid}"],
                              capture_output=True, text=True).stdout.strip()
        if mine:
            return
        time.sleep(0.2)
    raise AssertionError("the sandbox run started no container within 300 s")


def test_interrupt_removes_everything(minimal):
    """Ctrl-C in the middle of the sandbox run: exit 130, nothing left on the engine."""
    subprocess.run([*KIT, "generate", str(minimal)], check=True, capture_output=True)
    proc = subprocess.Popen([*KIT, "verify", str(minimal)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    _wait_for_containers_of(proc)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert_nothing_left()


def test_sweep_after_a_hard_kill(minimal):
    """kill -9 leaves resources; `kit sweep` removes them by their labels."""
    subprocess.run([*KIT, "generate", str(minimal)], check=True, capture_output=True)
    proc = subprocess.Popen([*KIT, "verify", str(minimal)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not kit_resources()["containers"]:
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    assert any(kit_resources().values())
    sweep = subprocess.run([*KIT, "sweep"], capture_output=True, text=True, timeout=120)
    assert sweep.returncode == 0, sweep.stderr
    assert_nothing_left()


def test_interrupted_run_restores_the_previous_output(minimal):
    """`kit run` replaces its output as a whole: Ctrl-C mid-run leaves the previous run intact."""
    first = subprocess.run([*KIT, "run", str(minimal)], capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    out = minimal / "kit-out"
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    proc = subprocess.Popen([*KIT, "run", str(minimal)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_containers_of(proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert not list(minimal.glob(".kit-out*")), "no staging or backup folder is left"
    assert_nothing_left()


def test_sweep_spares_a_run_that_is_still_going():
    """Another kit run on the same engine (its process alive) keeps its containers; --all takes them."""
    from kit.sandbox.engine import LABEL, PID_LABEL
    cid = subprocess.run(["docker", "run", "-d", "--label", f"{LABEL}=true", "--label", f"{PID_LABEL}={os.getpid()}",
                          "kit-standin/redis:7"], capture_output=True, text=True, check=True).stdout.strip()
    try:
        assert subprocess.run([*KIT, "sweep"], capture_output=True, text=True, timeout=120).returncode == 0
        assert cid in subprocess.run(["docker", "ps", "-aq", "--no-trunc"], capture_output=True, text=True).stdout
        assert subprocess.run([*KIT, "sweep", "--all"], capture_output=True, text=True, timeout=120).returncode == 0
        assert cid not in subprocess.run(["docker", "ps", "-aq", "--no-trunc"], capture_output=True, text=True).stdout
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True)
    assert_nothing_left()


@pytest.mark.parametrize("front,field", [
    ("service:\n  name: mini\n  source: src\n  python: '3.12'\n", "task.md:5: service.python"),
    ("service:\n  name: mini\n  source: src\ndependencies:\n  - kind: postgres\n    version: '8'\n",
     "task.md:7: dependencies[0].version"),
])
def test_image_without_a_stand_in_is_named_before_anything_runs(minimal, capsys, front, field):
    write_task(minimal, front)
    assert main(["run", str(minimal)]) == 3
    err = capsys.readouterr().err
    assert field in err and "kit has no stand-in" in err and "stand-ins:" in err
    assert not (minimal / "kit-out").exists()
    assert_nothing_left()
