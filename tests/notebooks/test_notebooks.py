"""Notebooks: committed clean, one parameters cell, thin, and they execute (static mode here;
the Docker run executes them in tests/integration/test_run_example.py)."""
from __future__ import annotations

import json
import re

import nbformat
import pytest

from kit.notebooks import PIPELINE, execute, notebooks_dir

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
@pytest.mark.parametrize("name", PIPELINE)
def test_executes_in_static_mode(name, minimal, tmp_path):
    out = tmp_path / "out"
    params = {"project": str(minimal), "out": str(out), "sandbox": False}
    for step in PIPELINE[: PIPELINE.index(name) + 1]:
        executed = execute(step, tmp_path / "nb", params)
    nb = nbformat.read(str(executed), as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]
    if name == "90_report":
        assert images, "the report notebook shows a chart"
        assert (out / "work.md").is_file() and (out / "evidence.json").is_file()
