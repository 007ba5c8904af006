"""`kit batch`: many projects, `-j N` at a time, resumable, with a fleet page.

Each project is a `kit run` in its own process (its own run label, so each one's sandbox
resources are its own and one crash cannot take the others down). A batch file may give each
project its output folder and task values to override, the way papermill parameterizes a
notebook; task.md is never edited. A project whose run completed is skipped on the next batch
when its inputs (task.md, the overrides, the files under the project and kit's version) are
unchanged, unless `--fresh`.
"""
from __future__ import annotations

import hashlib
import html
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kit.errors import TaskError
from kit.task import OVERRIDES_ENV, Override, overrides_to_env
from kit.yamlpos import DuplicateKey, load_with_lines

STATE = "batch-state.json"
SKIP_DIRS = {".git", "node_modules", "__pycache__", ".venv", "kit-out", ".pytest_cache"}
# what `kit run` itself writes into the project (the reports): not an input of the next run
KIT_WRITES = {Path(".claude") / "work.md", Path(".claude") / "tasks"}


@dataclass(frozen=True)
class Job:
    project: Path
    out: Path
    overrides: tuple[Override, ...] = ()
    name: str = ""


@dataclass
class Outcome:
    name: str
    project: str
    out: str
    status: str                 # passed | failed | error | interrupted
    exit_code: int
    seconds: float
    counts: dict[str, int] = field(default_factory=dict)
    failed_checks: list[str] = field(default_factory=list)
    figures: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""           # the run's error line when it stopped before any evidence
    site: str = ""
    log: str = ""
    fingerprint: str = ""
    resumed: bool = False       # taken from an earlier batch, not run now


def read_batch_file(path: Path) -> tuple[list[Job], int | None]:
    """projects: [path | {path, out, set: {field: value}}], jobs: N. Errors name the line."""
    path = Path(path)
    text = path.read_text()
    try:
        data, lines = load_with_lines(text)
    except DuplicateKey as dup:
        raise TaskError(str(dup), file=str(path), line=dup.line, hint="keep one of them") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise TaskError(f"not valid YAML: {getattr(exc, 'problem', exc)}", file=str(path),
                        line=mark.line + 1 if mark else None) from None
    if not isinstance(data, dict) or not isinstance(data.get("projects"), list) or not data["projects"]:
        raise TaskError("a batch file needs a non-empty `projects:` list", file=str(path), line=1,
                        field="projects", hint="projects:\n  - services/shop-api\n  - path: services/billing")
    unknown = sorted(set(data) - {"projects", "jobs"})
    if unknown:
        raise TaskError(f"unknown key {unknown[0]!r}", file=str(path), line=lines.get((unknown[0],)),
                        field=unknown[0], hint="valid keys: jobs, projects")
    jobs_n = data.get("jobs")
    if jobs_n is not None and (not isinstance(jobs_n, int) or jobs_n < 1):
        raise TaskError(f"jobs must be a whole number of at least 1, got {jobs_n!r}", file=str(path),
                        line=lines.get(("jobs",)), field="jobs")
    base = path.parent
    jobs: list[Job] = []
    for index, item in enumerate(data["projects"]):
        where = lines.get(("projects", index))
        if isinstance(item, str):
            item = {"path": item}
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            raise TaskError("each project is a folder, or a mapping with `path:`", file=str(path), line=where,
                            field=f"projects[{index}]", hint="- path: services/billing")
        extra = sorted(set(item) - {"path", "out", "set", "name"})
        if extra:
            raise TaskError(f"unknown key {extra[0]!r}", file=str(path),
                            line=lines.get(("projects", index, extra[0]), where),
                            field=f"projects[{index}].{extra[0]}", hint="valid keys: path, out, set, name")
        project = (base / item["path"]).resolve()
        if not project.exists():
            raise TaskError(f"project folder {project} does not exist", file=str(path),
                            line=lines.get(("projects", index, "path"), where), field=f"projects[{index}].path")
        sets = item.get("set") or {}
        if not isinstance(sets, dict):
            raise TaskError("`set:` maps task fields to values, e.g. kubernetes.version: \"1.33\"", file=str(path),
                            line=lines.get(("projects", index, "set"), where), field=f"projects[{index}].set")
        overrides = tuple(Override(str(key), value, str(path), lines.get(("projects", index, "set", key)))
                          for key, value in sets.items())
        out = (base / item["out"]).resolve() if item.get("out") else project / "kit-out"
        jobs.append(Job(project, out, overrides, str(item.get("name") or project.name)))
    _refuse_shared_outputs(jobs, path)
    return jobs, jobs_n


def jobs_from_folders(folders: list[str]) -> list[Job]:
    jobs = [Job(Path(f).resolve(), Path(f).resolve() / "kit-out", (), Path(f).resolve().name) for f in folders]
    _refuse_shared_outputs(jobs, None)
    return jobs


def _refuse_shared_outputs(jobs: list[Job], path: Path | None) -> None:
    seen: dict[Path, Job] = {}
    for job in jobs:
        if job.out in seen:
            raise TaskError(f"{job.name} and {seen[job.out].name} would write the same output folder {job.out}",
                            file=str(path) if path else "command line", field="out",
                            hint="give each project its own `out:`")
        seen[job.out] = job
    names = [job.name for job in jobs]
    for name in names:
        if names.count(name) > 1:
            raise TaskError(f"two projects are named {name!r}: the fleet page needs one row each",
                            file=str(path) if path else "command line", field="name",
                            hint="give one of them a `name:` in the batch file")


def fingerprint(job: Job) -> str:
    """What a run depends on that the batch can see: every file under the project (path, size,
    modification time; the output and package folders, and the reports kit writes, left out), the
    overrides and kit's version."""
    from importlib.metadata import version
    __version__ = version("kit")
    digest = hashlib.sha256(f"kit {__version__}\n{overrides_to_env(job.overrides)}\n".encode())
    for root, dirs, files in os.walk(job.project):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and Path(root, d) != job.out
                         and Path(root, d).relative_to(job.project) not in KIT_WRITES)
        for name in sorted(files):
            item = Path(root, name)
            if item.relative_to(job.project) in KIT_WRITES:
                continue
            try:
                stat = item.stat()
            except OSError:
                continue
            digest.update(f"{item.relative_to(job.project)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def run_batch(jobs: list[Job], fleet_dir: Path, *, parallel: int = 1, static: bool = False, fresh: bool = False,
              progress: Callable[[str], None] = lambda _m: None) -> list[Outcome]:
    fleet_dir = Path(fleet_dir).resolve()
    (fleet_dir / "logs").mkdir(parents=True, exist_ok=True)
    state_path = fleet_dir / STATE
    state = json.loads(state_path.read_text()) if state_path.is_file() and not fresh else {}
    results: dict[str, Outcome] = {}
    todo: list[tuple[Job, str]] = []
    for job in jobs:
        mark = fingerprint(job)
        before = state.get(job.name)
        if before and before.get("fingerprint") == mark and before.get("status") in ("passed", "failed") \
                and (job.out / "evidence.json").is_file():
            results[job.name] = Outcome(**{**before, "resumed": True})
            progress(f"{job.name}: unchanged since the last batch, kept ({before['status']})")
        else:
            todo.append((job, mark))

    def one(item: tuple[Job, str]) -> Outcome:
        job, mark = item
        progress(f"{job.name}: started")
        outcome = _run_one(job, fleet_dir, static)
        outcome.fingerprint = mark
        progress(f"{job.name}: {outcome.status} in {outcome.seconds:.0f} s")
        return outcome

    try:
        with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
            for outcome in pool.map(one, todo):
                results[outcome.name] = outcome
                state[outcome.name] = {k: v for k, v in asdict(outcome).items() if k != "resumed"}
                _write_json(state_path, state)
    finally:
        ordered = [results[job.name] for job in jobs if job.name in results]
        write_fleet_page(fleet_dir, ordered)
    return ordered


def _run_one(job: Job, fleet_dir: Path, static: bool) -> Outcome:
    env = {**os.environ, OVERRIDES_ENV: overrides_to_env(job.overrides)}
    argv = [sys.executable, "-m", "kit.cli", "run", str(job.project), "--out", str(job.out)]
    argv += ["--static"] if static else []
    log = fleet_dir / "logs" / f"{job.name}.log"
    start = time.monotonic()
    with open(log, "w") as fh:
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=env)
        try:
            code = proc.wait()
        except BaseException:          # the batch is interrupted: the run sweeps its sandbox on SIGTERM
            proc.terminate()
            proc.wait(timeout=120)
            raise
    seconds = round(time.monotonic() - start, 1)
    text = log.read_text(errors="replace")
    outcome = Outcome(job.name, str(job.project), str(job.out), "error", code, seconds, log=str(log))
    if code in (0, 4) and (job.out / "evidence.json").is_file():   # 4: the run completed, a check failed
        read_output(outcome, job.out)
    else:
        outcome.status = "interrupted" if code == 130 else "error"
        errors = [row for row in text.splitlines() if "error" in row.lower()]
        outcome.message = (errors[-1] if errors else (text.strip().splitlines() or [f"exit code {code}"])[-1])[:400]
    return outcome


def read_output(outcome: Outcome, out: Path) -> Outcome:
    """Fill an outcome from a finished run's output folder (its evidence.json and site)."""
    from kit.evidence import load_evidence, summarize
    from kit.publish import key_figures
    records = load_evidence(out / "evidence.json")
    outcome.counts = summarize(records)
    outcome.failed_checks = [r.check for r in records if r.status == "failed"]
    outcome.status = "failed" if outcome.failed_checks else "passed"
    outcome.figures = key_figures(records)
    site = out / "site" / "index.html"
    outcome.site = str(site) if site.is_file() else ""
    return outcome


def gather(outputs: list[Path], fleet_dir: Path) -> list[Outcome]:
    """The fleet page from output folders made elsewhere (one CI job per service, downloaded as
    artifacts): each folder holds a run's evidence.json; a folder without one is listed as an error."""
    outcomes = []
    for out in outputs:
        out = Path(out).resolve()
        outcome = Outcome(out.name, "", str(out), "error", 0, 0.0)
        if (out / "evidence.json").is_file():
            read_output(outcome, out)
        else:
            outcome.message = f"no evidence.json in {out}: the run did not finish"
        outcomes.append(outcome)
    Path(fleet_dir).mkdir(parents=True, exist_ok=True)
    write_fleet_page(Path(fleet_dir).resolve(), outcomes)
    return outcomes


def _write_json(path: Path, data: Any) -> None:
    from kit.fsutil import write_atomic
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def rollup(outcomes: list[Outcome]) -> list[tuple[str, list[str]]]:
    """Which checks fail across the fleet, the most widespread first."""
    failing: dict[str, list[str]] = {}
    for outcome in outcomes:
        for check in outcome.failed_checks:
            failing.setdefault(check, []).append(outcome.name)
    return sorted(failing.items(), key=lambda item: (-len(item[1]), item[0]))


def write_fleet_page(fleet_dir: Path, outcomes: list[Outcome]) -> Path:
    """fleet.json (data) and index.html (one row per service, the roll-up of failing checks)."""
    _write_json(fleet_dir / "fleet.json", {"services": [asdict(o) for o in outcomes],
                                            "failing_checks": dict(rollup(outcomes))})
    esc = html.escape
    rows = []
    for o in outcomes:
        link = os.path.relpath(o.site, fleet_dir) if o.site else ""
        name = f'<a href="{esc(link)}">{esc(o.name)}</a>' if link else esc(o.name)
        counts = (f"{o.counts.get('passed', 0)} passed, {o.counts.get('failed', 0)} failed, "
                  f"{o.counts.get('skipped', 0)} skipped") if o.counts else ""
        figures = "<br>".join(f"{esc(f['label'])}: {esc(str(f['value']))} {esc(f['unit'])}" for f in o.figures)
        detail = "<br>".join(esc(c) for c in o.failed_checks) or esc(o.message)
        when = f"kept from an earlier batch ({o.seconds:.0f} s then)" if o.resumed else f"{o.seconds:.0f} s"
        rows.append(f'<tr class="{esc(o.status)}"><td>{name}</td><td>{esc(o.status)}</td><td>{counts}</td>'
                    f"<td>{detail}</td><td>{figures}</td><td>{when}</td></tr>")
    roll = "".join(f"<tr><td><code>{esc(check)}</code></td><td>{len(names)}</td><td>{esc(', '.join(names))}</td></tr>"
                   for check, names in rollup(outcomes)) or '<tr><td colspan="3">no check fails</td></tr>'
    tally = {s: sum(o.status == s for o in outcomes) for s in ("passed", "failed", "error", "interrupted")}
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>kit fleet</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin-bottom:2em}}
td,th{{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}}
tr.failed td:nth-child(2),tr.error td:nth-child(2),tr.interrupted td:nth-child(2){{color:#b00;font-weight:bold}}
tr.passed td:nth-child(2){{color:#070}}</style></head><body>
<h1>Fleet: {len(outcomes)} services</h1>
<p>{tally['passed']} passed, {tally['failed']} with failing checks, {tally['error']} stopped with an error,
{tally['interrupted']} interrupted. Each row links to the service's own site, where every figure rests on an
evidence record.</p>
<table><tr><th>service</th><th>status</th><th>checks</th><th>failed checks / error</th><th>key figures</th>
<th>time</th></tr>
{''.join(rows)}</table>
<h2>Checks failing across the fleet</h2>
<table><tr><th>check</th><th>services</th><th>which</th></tr>{roll}</table>
</body></html>
"""
    from kit.fsutil import write_atomic
    path = fleet_dir / "index.html"
    write_atomic(path, page)
    return path
