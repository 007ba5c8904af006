"""Shared fixtures. Docker tests never skip in CI: when CI=true and no engine answers, they fail."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "shop-api"
MINIMAL = Path(__file__).resolve().parent / "fixtures" / "minimal"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def docker_engine() -> str:
    from kit.sandbox.engine import engine_version
    version = engine_version()
    if version is None:
        if in_ci():
            pytest.fail("CI=true but no Docker engine answers: Docker tests must run in CI "
                        "(the README's test command starts one)")
        pytest.skip("no Docker engine answers; run scripts/setup.sh to start one")
    return version


def pytest_collection_modifyitems(config, items):
    for item in items:
        if str(item.path).endswith(".ipynb"):     # nbval's cells run kit's tools in a kernel
            item.add_marker(pytest.mark.tools)
        if item.get_closest_marker("docker") and "docker_engine" not in getattr(item, "fixturenames", ()):
            item.fixturenames.append("docker_engine")


def copy_project(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("kit-out", ".kit-out.*", "__pycache__"))
    return dest


@pytest.fixture
def minimal(tmp_path) -> Path:
    return copy_project(MINIMAL, tmp_path / "minimal")


def copy_example(dest: Path) -> Path:
    """The bundled example as committed: running the README's main job in place appends a Write
    Zone entry and writes work.md there; a test copy starts without them."""
    import re
    project = copy_project(EXAMPLE, dest)
    (project / ".claude" / "work.md").unlink(missing_ok=True)
    context = project / ".claude" / "tasks" / "context_session_1.md"
    entries = re.split(r"(?m)^(?=## )", context.read_text())
    context.write_text("".join(e for e in entries if not e.startswith("## DevOps Architect")).rstrip() + "\n")
    return project


@pytest.fixture
def example(tmp_path) -> Path:
    return copy_example(tmp_path / "shop-api")


def write_task(project: Path, front: str, body: str = "# T\n## Acceptance criteria\n- it runs\n") -> Path:
    task = project / ".claude" / "task.md"
    task.parent.mkdir(parents=True, exist_ok=True)
    task.write_text(f"---\n{front}---\n{body}")
    return task
