"""service.constraints: pins or a constraints file, applied with `pip install -c` in the image (and
in the sandbox's package download), never by editing the app's requirements."""
from __future__ import annotations

from pathlib import Path

import pytest

from kit.cli import main
from kit.errors import TaskError
from kit.pipeline import generate
from kit.spec import load_spec
from tests.conftest import copy_project, write_task

MESSY = Path(__file__).resolve().parents[1] / "fixtures" / "messy"


def test_pins_are_written_and_installed_with_c(minimal):
    write_task(minimal, "service:\n  name: mini\n  source: src\n  constraints: [\"werkzeug<3.2\", \"click==8.1.8\"]\n")
    files = generate(load_spec(minimal))
    assert files["docker/constraints.txt"].splitlines()[-2:] == ["werkzeug<3.2", "click==8.1.8"]
    docker = files["Dockerfile"]
    assert "COPY docker/constraints.txt /tmp/constraints.txt" in docker
    assert '--index-url "${PIP_INDEX_URL}" -c /tmp/constraints.txt -r requirements.txt' in docker


def test_a_constraints_file_in_the_source_is_used_as_is(minimal):
    (minimal / "src" / "constraints.txt").write_text("# held back\nwerkzeug<3.2  # drift\n")
    write_task(minimal, "service:\n  name: mini\n  source: src\n  constraints: constraints.txt\n")
    spec = load_spec(minimal)
    assert spec.constraints == ("werkzeug<3.2",) and spec.constraints_file == "constraints.txt"
    files = generate(spec)
    assert "docker/constraints.txt" not in files and "COPY constraints.txt /tmp/constraints.txt" in files["Dockerfile"]


def test_no_constraints_no_change(minimal):
    files = generate(load_spec(minimal))
    assert "constraints" not in files["Dockerfile"] and "docker/constraints.txt" not in files


@pytest.mark.parametrize("value, words", [
    ('["werkzeug"]', "a pip constraint: a package and a version specifier"),
    ("missing.txt", "is not a file inside"),
    ("../../etc/passwd.txt", "is not a file inside"),
])
def test_bad_constraints_name_the_field(minimal, capsys, value, words):
    write_task(minimal, f"service:\n  name: mini\n  source: src\n  constraints: {value}\n")
    assert main(["generate", str(minimal)]) == 2
    err = capsys.readouterr().err
    assert "task.md:5: service.constraints" in err and words in err, err
    assert not (minimal / "kit-out").exists()


def test_uv_lock_refuses_constraints(tmp_path):
    project = copy_project(MESSY / "uv-locked", tmp_path / "uv")
    task = project / ".claude" / "task.md"
    task.write_text(task.read_text().replace("service:\n", "service:\n  constraints: [\"anyio<4\"]\n", 1))
    with pytest.raises(TaskError) as caught:
        load_spec(project)
    assert caught.value.field == "service.constraints" and "uv lock --upgrade-package" in caught.value.hint
