"""A task written as prose only: kit infers the front matter from the source, marks every value as
inferred, `kit init` prints what to paste, and kit never writes task.md."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kit.api import spec_rows
from kit.cli import main
from kit.errors import TaskError
from kit.pipeline import generate
from kit.spec import load_spec

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PROSE = """# Orders service

The orders API needs a container image and Kubernetes manifests before the move to EKS.
It keeps orders in Postgres and caches sessions in Redis. Nobody wrote YAML for it.

## Acceptance criteria
- The image runs as a non-root user
"""


@pytest.fixture
def prose_project(tmp_path) -> Path:
    """A repository as people keep them: the service one folder down, beside its docs and tests."""
    project = tmp_path / "Orders_Service"
    shutil.copytree(FIXTURES / "node" / "express-orders", project / "services" / "orders")
    (project / "docs").mkdir()
    (project / "docs" / "package.json").write_text('{"name": "docs-site", "private": true}\n')   # not the app
    (project / ".claude").mkdir()
    (project / ".claude" / "task.md").write_text(PROSE)
    return project


def test_prose_task_infers_name_source_and_dependencies(prose_project):
    spec = load_spec(prose_project)
    assert spec.task.inferred
    assert spec.name == "orders-service" and spec.stack == "node"
    assert spec.task.data["service"]["source"] == "services/orders"
    assert [d.kind for d in spec.dependencies] == ["postgres"]          # express-orders uses `pg`
    rows = {r["field"]: r["source"] for r in spec_rows(spec)}
    assert rows["name"] == "inferred" and "task.md" not in rows.values()
    assert spec.task.acceptance == ("The image runs as a non-root user",)


def test_prose_task_generates_and_task_md_is_untouched(prose_project):
    before = (prose_project / ".claude" / "task.md").read_bytes()
    files = generate(load_spec(prose_project))
    assert "Dockerfile" in files and "compose.yaml" in files
    assert (prose_project / ".claude" / "task.md").read_bytes() == before
    assert sorted(p.name for p in (prose_project / ".claude").iterdir()) == ["task.md"]


def test_kit_init_prints_front_matter_that_gives_the_same_deliverables(prose_project, tmp_path, capsys):
    assert main(["init", str(prose_project)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("---\n# inferred by kit") and "source: services/orders" in printed
    assert (prose_project / ".claude" / "task.md").read_text() == PROSE        # printed, never written
    inferred = generate(load_spec(prose_project), tmp_path / "a")
    pasted = tmp_path / "pasted"
    shutil.copytree(prose_project, pasted / prose_project.name)
    (pasted / prose_project.name / ".claude" / "task.md").write_text(printed + PROSE)
    explicit = generate(load_spec(pasted / prose_project.name), tmp_path / "b")
    assert explicit == inferred


def test_two_candidate_services_name_the_key_to_add(prose_project):
    shutil.copytree(FIXTURES / "node" / "fastify-sessions", prose_project / "services" / "sessions")
    with pytest.raises(TaskError) as caught:
        load_spec(prose_project)
    err = caught.value
    assert err.field == "service.source" and "services/orders, services/sessions" in str(err)
    assert "source: services/orders" in err.hint


def test_a_secret_in_the_prose_is_still_refused(prose_project):
    task = prose_project / ".claude" / "task.md"
    task.write_text(PROSE + "\nThe database uses DB_PASSWORD=hunter2hunter2 today.\n")
    with pytest.raises(TaskError) as caught:
        load_spec(prose_project)
    assert caught.value.line == 9 and "hunter2" not in str(caught.value)
