"""The notebooks' key outputs as committed expectations, checked by nbval.

Cells tagged `nbval-check-output` show views that depend only on the task and the generated files
(the Dockerfile, tables of environments, workflows, variables): not on timings or the sandbox.
`refresh()` executes the notebooks on a copy of the bundled example in static mode and keeps only
those cells' outputs in tests/notebooks/expected/. The suite collects those copies with
`pytest --nbval-lax` (pyproject's addopts), which re-runs every cell and compares the tagged ones,
so a change to a view fails until the expectations are refreshed and the diff reviewed:

    .venv/bin/python -m tests.notebooks.expectations
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import nbformat

from kit.notebooks import PIPELINE, execute

EXPECTED = Path(__file__).resolve().parent / "expected"
CHECKED = "nbval-check-output"
# the committed copies read their folders from the environment, which conftest.py beside them sets
ENV_PARAMETERS = ('import os\nproject = os.environ["KIT_NBVAL_PROJECT"]\nout = os.environ["KIT_NBVAL_OUT"]\n'
                  "sandbox = False\n")


def with_parameters(nb, project: Path, out: Path):
    """The notebook with its injected-parameters cell pointing at this run's folders."""
    for cell in nb.cells:
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.source = f'project = "{project}"\nout = "{out}"\nsandbox = False\n'
    return nb


def checked_names() -> list[str]:
    return [n for n in PIPELINE if any(CHECKED in c.metadata.get("tags", [])
                                       for c in nbformat.read(str(Path(__file__).resolve().parents[2]
                                                                  / "notebooks" / f"{n}.ipynb"), as_version=4).cells)]


def refresh(dest: Path = EXPECTED) -> list[Path]:
    from tests.conftest import copy_example
    written = []
    with tempfile.TemporaryDirectory(prefix="kit-expect-") as tmp:
        project = copy_example(Path(tmp) / "shop-api")
        params = {"project": str(project), "out": str(Path(tmp) / "out"), "sandbox": False}
        dest.mkdir(parents=True, exist_ok=True)
        for name in checked_names():
            nb = nbformat.read(str(execute(name, Path(tmp) / "nb", params)), as_version=4)
            for cell in nb.cells:
                if cell.cell_type != "code":
                    continue
                if "injected-parameters" in cell.metadata.get("tags", []):
                    cell.source, cell.id = ENV_PARAMETERS, "injected-parameters"   # a stable diff
                if CHECKED not in cell.metadata.get("tags", []):
                    cell.outputs, cell.execution_count = [], None
            nb.metadata.pop("papermill", None)
            for cell in nb.cells:
                cell.metadata.pop("papermill", None)
                cell.metadata.pop("execution", None)
            target = dest / f"{name}.ipynb"
            nbformat.write(nb, str(target))
            written.append(target)
    return written


if __name__ == "__main__":
    for path in refresh():
        print(path)
    sys.exit(0)
