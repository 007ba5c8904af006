"""Command line: parse arguments, call one library function per verb, print, exit.

Known errors (KitError) print one clean line and exit with their code; anything else keeps
its traceback."""
from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from rich.console import Console

from kit.errors import CheckFailed, KitError

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


def _sigterm(_signo, _frame):
    raise KeyboardInterrupt("SIGTERM")


def _progress(message: str) -> None:
    err.print(f"[dim]kit:[/dim] {message}")


def cmd_run(args) -> int:
    from kit.run import run_project, summary_line
    result = run_project(Path(args.project), Path(args.out) if args.out else None,
                         sandbox=not args.static, fresh=args.fresh, progress=_progress)
    cached = sum(bool(r.cached_from) for r in result.records)
    reused = f" ({cached} reused from an earlier run: inputs unchanged; --fresh re-proves them)" if cached else ""
    out.print(f"[bold]kit run[/bold] {result.spec.name}: {summary_line(result.records)}{reused}")
    out.print(f"  site:      {result.site / 'index.html'}")
    out.print(f"  work.md:   {result.work_md}")
    out.print(f"  evidence:  {result.evidence}")
    out.print(f"  notebooks: {result.notebooks[0].parent}")
    if getattr(args, "profile", False):
        from kit.profile import report
        out.print(report(result.spec.output, result.records))
    return _gate(result.records)


def _gate(records) -> int:
    failed = [r for r in records if r.status == "failed"]
    if failed:
        raise CheckFailed(f"{len(failed)} check(s) failed: " +
                          "; ".join(f"{r.check} ({r.reason.splitlines()[0] if r.reason else 'failed'})"
                                    for r in failed))
    return 0


def cmd_generate(args) -> int:
    from kit.pipeline import generate
    from kit.spec import load_spec
    spec = load_spec(Path(args.project), Path(args.out) if args.out else None)
    if spec.health_fallback:
        err.print(f"[yellow]kit: note:[/yellow] {spec.health_fallback}")
    if spec.lock_file == "poetry.lock":
        err.print("[yellow]kit: note:[/yellow] poetry.lock is not honoured yet: the image installs from "
                  "pyproject.toml's ranges")
    files = generate(spec)
    for rel in sorted(files):
        out.print(str(spec.output / rel))
    return 0


def cmd_verify(args) -> int:
    from kit import api
    from kit.pipeline import verify, write_evidence_json
    from kit.run import summary_line
    from kit.sandbox.engine import require_engine
    spec = api.load(args.project, args.out or "")
    if not args.static:
        require_engine()
        from kit.run import preflight_images
        preflight_images(spec)
    if spec.health_fallback:
        err.print(f"[yellow]kit: note:[/yellow] {spec.health_fallback}")
    records = verify(spec, sandbox=not args.static, progress=_progress)
    path = write_evidence_json(spec.output)
    for r in records:
        colour = {"passed": "green", "failed": "red", "skipped": "yellow"}[r.status]
        out.print(f"[{colour}]{r.status:7}[/{colour}] {r.check:28} {r.reason or r.title}"
                  + (f" [yellow](fallback: {r.fallback})[/yellow]" if r.fallback else ""))
    out.print(f"{summary_line(records)}; evidence: {path}")
    return _gate(records)


def cmd_diff(args) -> int:
    from kit.diff import diff_deliverables
    from kit.spec import load_spec
    spec = load_spec(Path(args.project), Path(args.out) if args.out else None)
    lines = diff_deliverables(spec)
    sys.stdout.write("".join(lines))
    return 1 if lines else 0


def cmd_publish(args) -> int:
    from kit.notebooks import PIPELINE
    from kit.publish import build_site
    from kit.spec import load_spec
    spec = load_spec(Path(args.project), Path(args.out) if args.out else None)
    notebooks = [spec.output / "notebooks" / f"{name}.ipynb" for name in PIPELINE]
    missing = [str(p) for p in notebooks if not p.is_file()]
    if missing:
        raise KitError(f"no executed notebook at {missing[0]}: run `kit run` first")
    out.print(str(build_site(spec, notebooks) / "index.html"))
    return 0


def cmd_batch(args) -> int:
    """Projects from folders or a batch file (YAML), -j at a time; a fleet page at the end."""
    from kit.batch import jobs_from_folders, read_batch_file, run_batch
    jobs_n = None
    if len(args.projects) == 1 and Path(args.projects[0]).suffix in (".yaml", ".yml") \
            and Path(args.projects[0]).is_file():
        jobs, jobs_n = read_batch_file(Path(args.projects[0]))
    else:
        jobs = jobs_from_folders(args.projects)
    parallel = args.jobs or jobs_n or (os.cpu_count() or 1)
    fleet = Path(args.out or "kit-fleet")
    outcomes = run_batch(jobs, fleet, parallel=parallel, static=args.static, fresh=args.fresh, progress=_progress)
    for o in outcomes:
        counts = ", ".join(f"{v} {k}" for k, v in o.counts.items()) if o.counts else o.message
        kept = " (kept: unchanged)" if o.resumed else ""
        out.print(f"{o.name:24} {o.status:11} {counts}{kept}")
    out.print(f"fleet page: {(fleet / 'index.html').resolve()}")
    return 4 if any(o.status != "passed" for o in outcomes) else 0


def cmd_init(args) -> int:
    """Print the front matter kit would use (inferred for a prose-only task.md); write nothing."""
    from kit.infer import front_matter_text
    from kit.spec import load_spec
    spec = load_spec(Path(args.project))
    data = dict(spec.task.data)
    if spec.task.inferred:      # what the detectors found, so the user sees and can correct it
        data["service"] = {**data["service"], "port": spec.port, **({"health": spec.health_path}
                           if spec.health_path else {}), **({"metrics": spec.metrics_path} if spec.metrics_path else {})}
    out.print(front_matter_text(data, spec.task.inferred), end="", markup=False, highlight=False)
    return 0


def cmd_fleet(args) -> int:
    """The fleet page from output folders made elsewhere (e.g. one CI job per service)."""
    from kit.batch import gather
    outcomes = gather([Path(p) for p in args.outputs], Path(args.out))
    for o in outcomes:
        out.print(f"{o.name:24} {o.status:11} {o.message or ', '.join(f'{v} {k}' for k, v in o.counts.items())}")
    out.print(f"fleet page: {(Path(args.out) / 'index.html').resolve()}")
    return 4 if any(o.status != "passed" for o in outcomes) else 0


def _bundled_example() -> Path:
    return Path(__file__).resolve().parent.parent / "examples" / "shop-api"


def cmd_lab(args) -> int:
    """JupyterLab on 127.0.0.1 over the notebooks with PROJECT's parameters preset, so Run All
    works on that project (the task is validated first: a bad task is reported here, not in a cell)."""
    from kit.notebooks import prepare_lab
    from kit.spec import load_spec
    lab = Path(sys.executable).with_name("jupyter-lab")
    if not lab.exists() and not args.prepare_only:
        raise KitError(f"JupyterLab is not installed in this venv: run bash scripts/setup.sh (or "
                       f"{Path(sys.executable).with_name('pip')} install 'jupyterlab>=4.6,<4.7')")
    project = Path(args.project)
    load_spec(project, Path(args.out) if args.out else None)
    folder = prepare_lab(project, Path(args.out) if args.out else None, sandbox=not args.static, reset=args.reset)
    out.print(f"notebooks for {project.resolve().name}, parameters preset: {folder}")
    if args.prepare_only:
        return 0
    root = ["--allow-root"] if os.geteuid() == 0 else []     # JupyterLab refuses root without it
    os.execv(str(lab), [str(lab), "--ip=127.0.0.1", "--no-browser", *root, f"--ServerApp.root_dir={folder}"])
    return 0


def cmd_doctor(args) -> int:
    from kit.doctor import diagnose
    findings = diagnose()
    for f in findings:
        if args.missing and f.ok:
            continue
        mark = "[green]ok[/green]     " if f.ok else "[red]missing[/red]"
        out.print(f"{mark} {f.name:42} {f.detail}" + ("" if f.ok else f"\n         fix: {f.fix}"))
    return 0 if all(f.ok for f in findings) else 1


def cmd_prepare(args) -> int:
    from kit.sandbox.engine import require_engine
    from kit.sandbox.standins import ensure_all
    require_engine()
    for key, tag in ensure_all(log=_progress).items():
        out.print(f"{key:14} {tag}")
    return 0


def cmd_sweep(args) -> int:
    from kit.sandbox.engine import require_engine
    from kit.sandbox.sweep import sweep
    require_engine()
    removed = sweep(everything=args.all)
    if args.images:
        from kit.sandbox.sweep import sweep_images
        removed["images"] = sweep_images()
    out.print(", ".join(f"{k}: {v} removed" for k, v in removed.items()))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kit", description="Generate infrastructure deliverables and prove them.")
    sub = p.add_subparsers(dest="verb", required=True)
    for verb, fn, text in (("run", cmd_run, "generate, verify, report and publish (the main job)"),
                           ("generate", cmd_generate, "render the deliverables only"),
                           ("verify", cmd_verify, "check the deliverables on disk; non-zero on failure")):
        s = sub.add_parser(verb, help=text)
        s.add_argument("project", help="the folder holding .claude/task.md (or the task file itself)")
        s.add_argument("--out", help="output folder (default: <project>/kit-out)")
        if verb != "generate":
            s.add_argument("--static", action="store_true", help="skip the Docker sandbox runs")
        s.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                       help='override a task value without editing task.md, e.g. --set kubernetes.version="1.31"')
        if verb == "run":
            s.add_argument("--fresh", action="store_true",
                           help="re-prove everything (default: reuse a family whose inputs are all unchanged)")
            s.add_argument("--profile", action="store_true",
                           help="print where the time went: stages, family steps, tools, overhead")
        s.set_defaults(fn=fn)
    init = sub.add_parser("init", help="print the front matter kit would use for PROJECT (inferred when task.md "
                                       "is prose only); writes nothing")
    init.add_argument("project", help="the folder holding .claude/task.md (or the task file itself)")
    init.set_defaults(fn=cmd_init)
    for verb, fn, text in (("diff", cmd_diff, "show what regenerating would change; exit 1 when anything would"),
                           ("publish", cmd_publish, "rebuild the site from the executed notebooks")):
        s = sub.add_parser(verb, help=text)
        s.add_argument("project", help="the folder holding .claude/task.md (or the task file itself)")
        s.add_argument("--out", help="output folder (default: <project>/kit-out)")
        s.set_defaults(fn=fn)
    batch = sub.add_parser("batch", help="`kit run` several projects in parallel, with a fleet page; exit 4 "
                                         "when any failed")
    batch.add_argument("projects", nargs="+", help="project folders, or one batch file (.yaml)")
    batch.add_argument("--static", action="store_true", help="skip the Docker sandbox runs")
    batch.add_argument("-j", "--jobs", type=int, default=0,
                       help="projects run at once (default: the batch file's jobs:, else the core count)")
    batch.add_argument("--out", default="", help="folder for the fleet page and logs (default: ./kit-fleet)")
    batch.add_argument("--fresh", action="store_true",
                       help="run every project again, even those unchanged since the last batch")
    batch.set_defaults(fn=cmd_batch)
    fleet = sub.add_parser("fleet", help="the fleet page from output folders made elsewhere (one CI job per "
                                         "service); exit 4 when any failed")
    fleet.add_argument("outputs", nargs="+", help="output folders, each holding a run's evidence.json")
    fleet.add_argument("--out", default="kit-fleet", help="folder for the fleet page (default: ./kit-fleet)")
    fleet.set_defaults(fn=cmd_fleet)
    for verb, fn, text in (("doctor", cmd_doctor, "list what is present and missing, with fixes"),
                           ("lab", cmd_lab, "open the notebooks in JupyterLab (on 127.0.0.1)"),
                           ("prepare", cmd_prepare, "build the sandbox's local stand-in images"),
                           ("sweep", cmd_sweep, "remove sandbox containers, networks and volumes left behind")):
        verb_parser = sub.add_parser(verb, help=text)
        verb_parser.set_defaults(fn=fn)
        if verb == "doctor":
            verb_parser.add_argument("--missing", action="store_true", help="list only what is missing")
        if verb == "lab":
            verb_parser.add_argument("project", nargs="?", default=str(_bundled_example()),
                                     help="folder holding .claude/task.md (default: the bundled example)")
            verb_parser.add_argument("--out", default="", help="output folder (default: PROJECT/kit-out)")
            verb_parser.add_argument("--static", action="store_true", help="preset sandbox=False (no Docker)")
            verb_parser.add_argument("--reset", action="store_true",
                                     help="copy the notebooks afresh (drops edits made in JupyterLab)")
            verb_parser.add_argument("--prepare-only", action="store_true",
                                     help="prepare the notebooks and print their folder; do not start JupyterLab")
        if verb == "sweep":
            verb_parser.add_argument("--images", action="store_true",
                                     help="also remove the cached sandbox images (kit-sandbox/*)")
            verb_parser.add_argument("--all", action="store_true",
                                     help="also remove resources of kit runs that are still going")
    return p


def _apply_set(args) -> None:
    """--set values reach every kernel of the run through the environment (task.md is never edited)."""
    from kit.task import OVERRIDES_ENV, overrides_from_env, overrides_to_env, parse_set
    if getattr(args, "set", None):
        os.environ[OVERRIDES_ENV] = overrides_to_env(overrides_from_env() + parse_set(args.set))


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    from kit.config import new_run
    new_run()
    try:
        _apply_set(args)
        return args.fn(args)
    except KitError as exc:
        err.print(f"[bold red]kit: error:[/bold red] {exc.user_message()}", markup=True, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("[bold red]kit: interrupted[/bold red]; sandbox resources were removed")
        return 130


if __name__ == "__main__":
    sys.exit(main())
