"""Helpers for Docker tests: what kit left on the engine."""
from __future__ import annotations

import subprocess


def kit_resources() -> dict[str, list[str]]:
    from kit.sandbox.sweep import sandbox_resources
    return sandbox_resources()


def assert_nothing_left() -> None:
    """Nothing of this test run (or of a kit run it started, now ended) is left on the engine.
    Resources of another live run on the same engine (a second suite) are that run's."""
    from kit.sandbox.sweep import left_behind
    left = left_behind()
    assert not any(left.values()), f"sandbox resources left behind: {left}"


def docker_ps_all() -> str:
    return subprocess.run(["docker", "ps", "-a", "--format", "{{.Names}} {{.Image}} {{.Status}}"],
                          capture_output=True, text=True).stdout
