"""The one pass: Spec -> files -> evidence. `generate` renders and writes; `verify` is the one
verification path that `kit run` (through the notebooks), `kit verify` and the tests all call:
family by family in dependency order, each family's needed evidence passed in on the context."""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from kit.cache import Tracked, record_inputs
from kit.core.session import session
from kit.evidence import Evidence, label_proof, load_evidence, save_evidence
from kit.families import families, render_all, with_needs
from kit.model import Spec
from kit.render import write_files

EVIDENCE_DIR = "evidence"
MARKER = ".kit-output"


def generate(spec: Spec, out: Path | None = None, only: tuple[str, ...] = ()) -> dict[str, str]:
    """Render every family in memory first (a render error writes nothing), then write."""
    out = Path(out or spec.output)
    files: dict[str, str] = {}
    for name, family in families().items():
        if not only or name in only:
            files.update(family.render(spec))
    write_files(files, out)
    (out / MARKER).write_text("This folder is written by kit and replaced as a whole by `kit run`.\n")
    return files


def verify(spec: Spec, names: Iterable[str] = (), *, sandbox: bool = True,
           progress: Callable[[str], None] = lambda _m: None) -> list[Evidence]:
    """Run the checks of the families `names` (default: all) on the files on disk, in pipeline
    order. A family's `needs` are read from this pass's records, else from the evidence the
    needed family saved earlier (a notebook verifies one family per kernel). Each family's
    records are saved to evidence/<family>.json and returned."""
    wanted = list(names) or list(families())
    order = [name for name in with_needs(wanted) if name in wanted]
    records: list[Evidence] = []
    with session(spec, spec.output, render_all(spec)) as ctx:
        for name in order:
            family = families()[name]
            for need in family.needs:
                if need not in ctx.evidence:
                    ctx.evidence[need] = saved_evidence(spec.output, need)
            static: list[Evidence] = []
            tracked = Tracked(spec.options)          # which task sections this family's checks read
            seen = dataclasses.replace(spec, options=tracked)
            for check in family.static_checks:
                progress(f"{name}: static checks")
                static += timed(name, check, seen, ctx)
            label_proof(static, sandbox=False, base_standins={})
            ran: list[Evidence] = []
            if sandbox:
                for check in family.sandbox_checks:
                    progress(f"{name}: sandbox run")
                    ran += timed(name, check, seen, ctx)
            label_proof(ran, sandbox=True, base_standins=_base_standins(ctx.evidence, ran),
                        emulated=family.sandbox_proof == "emulated")
            own = static + ran
            ctx.evidence[name] = own
            save_family_evidence(spec.output, name, own)
            record_inputs(spec, name, tracked.seen, sandbox)
            records += own
    return records


def timed(family: str, check: Callable, spec: Spec, ctx) -> list[Evidence]:
    """Run one check function (a step) and stamp its wall time and name on the records it made."""
    start = time.monotonic()
    made = list(check(spec, ctx))
    wall = round(time.monotonic() - start, 3)
    step = f"{family}.{getattr(check, '__name__', 'check')}"
    for record in made:
        record.wall_s, record.step = wall, step
    return made


def _base_standins(evidence: dict[str, list[Evidence]], ran: list[Evidence]) -> dict[str, str]:
    """The stand-in the app's image was built on: everything that ran the image ran on it."""
    builds = [r for r in [*ran, *evidence.get("container", [])] if r.check == "container.build"]
    return dict(builds[0].standins) if builds else {}


def evidence_path(out: Path, family: str) -> Path:
    return Path(out) / EVIDENCE_DIR / f"{family}.json"


def saved_evidence(out: Path, family: str) -> list[Evidence]:
    path = evidence_path(out, family)
    return load_evidence(path) if path.is_file() else []


def save_family_evidence(out: Path, family: str, records: list[Evidence]) -> Path:
    path = evidence_path(out, family)
    save_evidence(records, path)
    return path


def collect_evidence(out: Path) -> list[Evidence]:
    """All records, in pipeline order."""
    records: list[Evidence] = []
    for name in families():
        records += saved_evidence(out, name)
    return records


def write_evidence_json(out: Path) -> Path:
    path = Path(out) / "evidence.json"
    save_evidence(collect_evidence(out), path)
    return path
