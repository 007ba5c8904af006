"""Execute the parameterized notebooks with papermill's Python API (much cheaper than its CLI)."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from kit.errors import KitError, NotebookFailed


@contextlib.contextmanager
def _kernel_stderr_to(log: Path):
    """The kernel inherits our stderr and chatters on it (transport warnings); send that to a
    log file beside the executed notebooks. Cell errors are in the notebooks themselves."""
    log.parent.mkdir(parents=True, exist_ok=True)
    saved = os.dup(2)
    with open(log, "ab") as fh:
        os.dup2(fh.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)

def _pipeline() -> tuple[str, ...]:
    from kit.families import families
    return ("00_task", *(f.notebook for f in families().values()), "90_report")


PIPELINE = _pipeline()


def notebooks_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "notebooks", here / "_notebooks"):
        if candidate.is_dir():
            return candidate
    raise KitError("the notebooks folder is missing from this installation")


def execute(name: str, output_dir: Path, parameters: dict[str, Any]) -> Path:
    """Run notebooks/<name>.ipynb into output_dir; a failing cell raises NotebookFailed and the
    executed copy (with papermill's error banner) is kept."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError
    source = notebooks_dir() / f"{name}.ipynb"
    target = Path(output_dir) / f"{name}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _kernel_stderr_to(Path(output_dir) / "kernel.log"):
            pm.execute_notebook(str(source), str(target), parameters=parameters, cwd=str(notebooks_dir()),
                                progress_bar=False, kernel_name="python3", log_output=False)
    except PapermillExecutionError as exc:
        raise NotebookFailed(name, exc.exec_count, exc.ename, exc.evalue.splitlines()[0] if exc.evalue else "",
                             str(target)) from None
    return target


def prepare_lab(project: Path, out: Path | None, *, sandbox: bool, reset: bool = False) -> Path:
    """A JupyterLab folder for one project: every pipeline notebook with that project's parameters
    preset (papermill injects them, as for a batch run, without executing). It lives in kit's state
    folder, not in the project or its output (which `kit run` replaces), so edits made in
    JupyterLab survive runs; ``reset`` copies the notebooks afresh."""
    import hashlib

    import papermill as pm

    from kit.config import Settings
    project = Path(project).resolve()
    key = hashlib.sha256(str(project).encode()).hexdigest()[:8]
    lab = Settings.load().state_dir / "lab" / f"{project.name}-{key}"
    lab.mkdir(parents=True, exist_ok=True)
    params = {"project": str(project), "out": str(Path(out).resolve()) if out else "", "sandbox": sandbox}
    for name in PIPELINE:
        target = lab / f"{name}.ipynb"
        if target.exists() and not reset:
            continue
        pm.execute_notebook(str(notebooks_dir() / f"{name}.ipynb"), str(target), parameters=params,
                            prepare_only=True, progress_bar=False, kernel_name="python3")
    return lab
