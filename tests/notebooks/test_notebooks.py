"""Notebooks: committed clean, one parameters cell, thin, and they execute: each once, in static
mode, as JupyterLab's Run All does on a project `kit lab` prepared (papermill executes them in
the Docker run of tests/integration/test_run_example.py)."""
from __future__ import annotations

import json
import re

import nbformat
import pytest

from kit.notebooks import PIPELINE, notebooks_dir

PARAM_LINE = re.compile(r"^\w+: (str|int|float|bool) = .+  # .+$")


@pytest.mark.parametrize("name", PIPELINE)
def test_committed_clean_with_one_parameters_cell(name):
    nb = json.loads((notebooks_dir() / f"{name}.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)
    tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    for line in "".join(tagged[0]["source"]).splitlines():
        assert PARAM_LINE.match(line), line
    assert nb["cells"][0]["cell_type"] == "markdown" and "".join(nb["cells"][0]["source"]).startswith("# ")
    for cell in code:   # thin: no function or class definitions, the logic lives in kit/
        assert not re.search(r"^\s*(def|class) ", "".join(cell["source"]), re.M)


@pytest.mark.tools
def test_run_all_in_the_lab_folder_of_another_project(tmp_path, monkeypatch):
    """`kit lab PROJECT` presets the parameters; executing every cell of every notebook in a
    kernel started in that folder (what JupyterLab's Run All does) works on a project other than
    the bundled example."""
    from nbclient import NotebookClient

    from kit.cli import main
    from tests.conftest import MINIMAL, copy_project
    monkeypatch.setenv("KIT_STATE_DIR", str(tmp_path / "state"))
    project = copy_project(MINIMAL, tmp_path / "other-service")
    assert main(["lab", str(project), "--static", "--prepare-only"]) == 0
    folder = next((tmp_path / "state" / "lab").iterdir())
    assert sorted(p.stem for p in folder.glob("*.ipynb")) == sorted(PIPELINE)
    for name in PIPELINE:
        nb = nbformat.read(str(folder / f"{name}.ipynb"), as_version=4)
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                  if o.get("output_type") == "error"]
        assert not errors, (name, errors)
        if name == "90_report":
            assert any("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
                       for o in c.get("outputs", [])), "the report notebook shows a chart"
    assert (project / "kit-out" / "work.md").is_file(), "Run All of the report notebook wrote that project's report"
    assert (project / "kit-out" / "evidence.json").is_file()


def test_lab_refuses_a_broken_task_before_starting(tmp_path, monkeypatch, capsys):
    from kit.cli import main
    from tests.conftest import MINIMAL, copy_project
    monkeypatch.setenv("KIT_STATE_DIR", str(tmp_path / "state"))
    project = copy_project(MINIMAL, tmp_path / "broken")
    task = project / ".claude" / "task.md"
    task.write_text(task.read_text().replace("service:", "service:\n  port: not-a-port", 1))
    assert main(["lab", str(project), "--prepare-only"]) != 0
    err = capsys.readouterr()
    assert "task.md" in err.out + err.err and not (tmp_path / "state" / "lab").exists()


@pytest.mark.tools
def test_jupyterlab_starts_on_a_second_project(tmp_path):
    """The real server: `kit lab PROJECT` starts JupyterLab on 127.0.0.1 and it serves that
    project's prepared notebooks."""
    import os
    import socket
    import subprocess
    import sys
    import time

    import requests

    from tests.conftest import MINIMAL, copy_project
    project = copy_project(MINIMAL, tmp_path / "second")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "KIT_STATE_DIR": str(tmp_path / "state"), "JUPYTER_TOKEN": "kit-test",
           "JUPYTER_PORT": str(port), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "config")}
    proc = subprocess.Popen([sys.executable, "-m", "kit.cli", "lab", str(project), "--static"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        names, deadline = [], time.monotonic() + 120
        while time.monotonic() < deadline and not names:
            try:
                r = requests.get(f"http://127.0.0.1:{port}/api/contents", params={"token": "kit-test"}, timeout=2)
                names = [c["name"] for c in r.json()["content"]] if r.ok else []
            except requests.RequestException:
                time.sleep(0.5)
        assert "10_container.ipynb" in names, proc.stdout.read() if proc.poll() is not None else names
        nb = requests.get(f"http://127.0.0.1:{port}/api/contents/10_container.ipynb",
                          params={"token": "kit-test"}, timeout=5).json()["content"]
        injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
        assert str(project.resolve()) in "".join(injected[0]["source"])
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _nbval(folder, *names, cwd):
    import subprocess
    import sys
    return subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q",
                           *[str(folder / f"{n}.ipynb") for n in names]],
                          capture_output=True, text=True, cwd=cwd, timeout=900)


def _expected_copies(tmp_path, names):
    from tests.conftest import copy_example
    from tests.notebooks.expectations import EXPECTED, with_parameters
    project = copy_example(tmp_path / "shop-api")
    folder = tmp_path / "nbval"
    folder.mkdir()
    for name in names:
        nb = with_parameters(nbformat.read(str(EXPECTED / f"{name}.ipynb"), as_version=4), project, tmp_path / "out")
        nbformat.write(nb, str(folder / f"{name}.ipynb"))
    return folder


def test_the_committed_expectations_hold_the_checked_outputs():
    """tests/notebooks/expected/ (collected by `pytest --nbval-lax`) carries an output for every
    cell the notebooks tag nbval-check-output, and no machine path."""
    from tests.notebooks.expectations import CHECKED, EXPECTED, checked_names
    names = checked_names()
    assert len(names) >= 6 and sorted(p.stem for p in EXPECTED.glob("*.ipynb")) == sorted(names)
    for name in names:
        text = (EXPECTED / f"{name}.ipynb").read_text()
        nb = nbformat.reads(text, as_version=4)
        source = nbformat.read(str(notebooks_dir() / f"{name}.ipynb"), as_version=4)
        tagged = [c for c in nb.cells if CHECKED in c.metadata.get("tags", [])]
        assert len(tagged) == sum(CHECKED in c.metadata.get("tags", []) for c in source.cells), name
        assert all(c.outputs for c in tagged), name
        assert "/tmp/kit-" not in text and "/work/" not in text and ".cache/kit" not in text, name


@pytest.mark.tools
def test_nbval_fails_when_a_view_changes(tmp_path):
    from tests.notebooks.expectations import CHECKED
    folder = _expected_copies(tmp_path, ["10_container"])
    path = folder / "10_container.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    cell = next(c for c in nb.cells if CHECKED in c.metadata.get("tags", []))
    data = cell.outputs[0]["data"]
    data["text/markdown"] = data["text/markdown"].replace("USER ", "USER root # planted ", 1)
    nbformat.write(nb, str(path))
    proc = _nbval(folder, "10_container", cwd=tmp_path)
    assert proc.returncode != 0 and "planted" in proc.stdout
