"""`kit run`: validate, then execute the notebooks, publish the site, install the reports.

The output folder is replaced as a whole: on an error or an interrupt the previous output
is restored, so nothing is left half-written."""
from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kit.config import Settings
from kit.errors import NotebookFailed
from kit.evidence import Evidence, summarize
from kit.notebooks import PIPELINE, execute
from kit.sandbox.engine import require_engine
from kit.spec import Spec, load_spec


@dataclass
class RunResult:
    spec: Spec
    records: list[Evidence]
    work_md: Path
    site: Path
    evidence: Path
    notebooks: list[Path]

    @property
    def failed(self) -> list[Evidence]:
        return [r for r in self.records if r.status == "failed"]


def run_project(project: Path, out: Path | None = None, *, sandbox: bool = True, fresh: bool = False,
                progress: Callable[[str], None] = lambda _m: None) -> RunResult:
    """`fresh`: re-prove everything; otherwise a family whose inputs are all unchanged since the
    previous run in this output folder is reused from it (kit.cache), and says so."""
    spec = load_spec(project, out)           # bad input fails here, before anything is written
    if sandbox:
        require_engine()
        preflight_images(spec)
    from kit.config import run_id
    run_id()                                 # set before the kernels start, so they inherit it
    target = spec.output
    check_output_folder(spec)
    backup = target.with_name(f".{target.name}.previous")
    if backup.exists():
        shutil.rmtree(backup)
    if target.exists():
        os.replace(target, backup)
    fresh = fresh or os.environ.get("KIT_FRESH", "") not in ("", "0")
    try:
        result = _run_into(spec, sandbox, progress, None if fresh or not backup.is_dir() else backup)
    except BaseException:
        if sandbox:
            _sweep_this_run(progress)
        shutil.rmtree(target, ignore_errors=True)
        if backup.exists():
            os.replace(backup, target)
        raise
    shutil.rmtree(backup, ignore_errors=True)
    return result


MARKER = ".kit-output"


def preflight_images(spec: Spec) -> None:
    """Each image the sandbox needs must be on the engine or have a stand-in; say which task field
    chose it, before any notebook runs."""
    from kit.errors import SandboxError
    from kit.sandbox.engine import image_exists
    from kit.sandbox.standins import STANDINS, standin_for
    # a Go builder without a stand-in is a recorded skip of the build (container checks), not a stop
    wanted = [] if spec.stack == "go" else [(spec.base_image, ("service", spec.stack), f"service.{spec.stack}")]
    wanted += [(d.image, ("dependencies", i, "version"), f"dependencies[{i}].version")
               for i, d in enumerate(spec.dependencies)]
    for image, path, field in wanted:
        if standin_for(image) is None and not image_exists(image):
            repo = image.split(":")[0]
            known = sorted({f for s in STANDINS.values() for f in s.stands_for if f.split(":")[0] == repo})
            line = spec.task.line(*path)
            where = f"{spec.task.path}:{line}: " if line else f"{spec.task.path}: "
            raise SandboxError(f"{where}{field}: the sandbox has no {image}: no registry is reachable and "
                               f"kit has no stand-in for it (stand-ins: {', '.join(known) or 'none'}). Choose a "
                               f"version with a stand-in, or `docker load` the real image first")


def check_output_folder(spec: Spec) -> None:
    """kit replaces its output folder as a whole, so it must never be a folder the user owns."""
    out = spec.output
    for protected, what in ((spec.project, "the project folder"), (spec.source, "the source folder"),
                            (spec.project / ".claude", "the .claude folder")):
        if out == protected or protected.is_relative_to(out):
            raise spec.task.error(f"the output folder {out} is or contains {what}", "output",
                                  hint="use a folder of its own, e.g. kit-out")
    if out.exists() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise spec.task.error(f"the output folder {out} exists, is not empty and was not made by kit; kit "
                              "replaces its output as a whole and will not delete it", "output",
                              hint="choose another folder, or empty this one")


def _run_into(spec: Spec, sandbox: bool, progress, previous: Path | None) -> RunResult:
    from kit import api, cache
    from kit.families import families
    from kit.pipeline import generate
    from kit.publish import build_site
    params = {"project": str(spec.project), "out": str(spec.output), "sandbox": sandbox}
    executed = []
    timings: dict[str, float] = {}
    by_notebook = {f.notebook: name for name, f in families().items()}
    by_notebook[cache.TASK_NOTEBOOK] = cache.TASK_NOTEBOOK
    generated, all_reused = False, True
    for name in PIPELINE:
        start = time.monotonic()
        key = by_notebook.get(name)
        if name == cache.REPORT_NOTEBOOK and previous is not None and all_reused \
                and (previous / "notebooks" / f"{name}.ipynb").is_file():
            entry = {"run": "", "at": ""}
        else:
            entry = cache.reusable(previous, spec, key, sandbox) if previous is not None and key else None
        if entry is not None:
            if not generated:          # the deliverables the notebooks would have written
                generate(spec)
                generated = True
            if name == cache.REPORT_NOTEBOOK:
                api.report(spec)
                shutil.copy(previous / "notebooks" / f"{name}.ipynb", spec.output / "notebooks" / f"{name}.ipynb")
            else:
                cache.restore(previous, spec.output, key, entry)
                progress(f"notebook {name}: inputs unchanged since run {entry['run']}, reused")
            executed.append(spec.output / "notebooks" / f"{name}.ipynb")
            timings[f"notebook {name} (reused)"] = round(time.monotonic() - start, 3)
            continue
        all_reused = False
        progress(f"notebook {name}")
        try:
            executed.append(execute(name, spec.output / "notebooks", params))
            timings[f"notebook {name}"] = round(time.monotonic() - start, 3)
            if name == cache.TASK_NOTEBOOK:
                cache.record_task_inputs(spec)
        except NotebookFailed as exc:
            keep = Settings.load().state_dir / "failed-notebooks"
            keep.mkdir(parents=True, exist_ok=True)
            kept = keep / Path(exc.output).name
            shutil.copy(exc.output, kept)
            exc.output = str(kept)
            raise NotebookFailed(exc.notebook, exc.cell_index, exc.ename, exc.evalue, str(kept)) from None
    progress("site")
    start = time.monotonic()
    site = build_site(spec, executed)
    timings["site"] = round(time.monotonic() - start, 3)
    start = time.monotonic()
    work_md, _ = api.install_reports(spec)
    timings["reports"] = round(time.monotonic() - start, 3)
    from kit.pipeline import collect_evidence
    records = collect_evidence(spec.output)
    write_timings(spec.output, timings)
    return RunResult(spec, records, work_md, site, spec.output / "evidence.json", executed)


TIMINGS = "timings.json"


def write_timings(out: Path, stages: dict[str, float]) -> Path:
    """The wall time of each stage of the run (each notebook, the site, the reports)."""
    from kit.fsutil import write_atomic
    path = Path(out) / TIMINGS
    write_atomic(path, json.dumps({"stages": stages}, indent=2) + "\n")
    return path


def summary_line(records: list[Evidence]) -> str:
    counts = summarize(records)
    return f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"


def _sweep_this_run(progress) -> None:
    """A notebook kernel stopped mid-cell cannot run its own clean-up: remove what this run made,
    found by its run label."""
    from kit.config import run_id
    from kit.sandbox.sweep import sweep
    removed = sweep(run_id())
    if any(removed.values()):
        progress(f"removed what the interrupted run left: {removed}")
