"""An honest evidence cache: a family's records are reused from the previous run only when
everything its checks read is unchanged, and a reused record says so ("cached from run R at T").

What a family's checks read (its inputs), recorded by the run that made the records:
- the service model (every field of the Service: name, ports, paths, image, limits...);
- the task sections it read, recorded as it ran (`Tracked` notes each `spec.options` key used);
- its own deliverables, and for a family with sandbox checks the container family's (the image);
- for a family with sandbox checks: the source (every file's content) and the stand-in images' ids;
- the inputs of the families it needs (their recorded digests, so a change ripples);
- kit itself: its version, its tool pins (pyproject.toml, scripts/setup.sh) and its code and templates;
- static or sandbox.
A family whose records include a failure is never reused (the next run tries again), and
`kit run --fresh` (or KIT_FRESH=1, which kit's own test suite sets) reuses nothing.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kit.evidence import Evidence, load_evidence, save_evidence

SKIP_DIRS = {".git", "node_modules", "__pycache__", ".venv", "venv", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
TASK_NOTEBOOK = "00_task"
REPORT_NOTEBOOK = "90_report"


class Tracked(Mapping):
    """spec.options that remembers which task sections were read."""

    def __init__(self, options: Mapping):
        self._options, self.seen = options, set()

    def __getitem__(self, key):
        self.seen.add(key)
        return self._options[key]

    def __iter__(self):
        return iter(self._options)

    def __len__(self):
        return len(self._options)

    def get(self, key, default=None):
        self.seen.add(key)
        return self._options.get(key, default)


def canon(value: Any, depth: int = 0) -> Any:
    """A JSON-able form whose text is the same in every process (no hash-ordered sets, no ids)."""
    if depth > 12:
        return repr(type(value))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: canon(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value)
                if f.name not in ("task", "facts", "options")}
    if isinstance(value, Mapping):
        return {str(k): canon(v, depth + 1) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, set | frozenset):
        return sorted((canon(v, depth + 1) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, list | tuple):
        return [canon(v, depth + 1) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _sha(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def source_digest(source: Path, output: Path) -> str:
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(source):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and Path(root, d) != output)
        for name in sorted(files):
            path = Path(root, name)
            try:
                digest.update(f"{path.relative_to(source)}\0".encode() + _sha(path.read_bytes()).encode())
            except OSError:
                continue
    return digest.hexdigest()


_PINS: list[str] = []


def kit_pins() -> str:
    """kit itself: its version, its tool pins (pyproject.toml, scripts/setup.sh) and its code and
    templates (an edited check or template must not be answered from the cache)."""
    if _PINS:
        return _PINS[0]
    from importlib.metadata import version
    here = Path(__file__).resolve().parent
    root = here.parent
    pins = [f"kit {version('kit')}"]
    for rel in ("pyproject.toml", "scripts/setup.sh"):
        path = root / rel
        if path.is_file():
            pins.append(_sha(path.read_bytes()))
    for folder in (here, root / "templates", here / "_templates"):
        if folder.is_dir():
            pins += [f"{p.relative_to(folder)} {_sha(p.read_bytes())}" for p in sorted(folder.rglob("*"))
                     if p.is_file() and p.suffix in (".py", ".j2", ".yaml", ".json", ".cjs")]
    _PINS.append(_sha("\n".join(pins)))
    return _PINS[0]


def standin_ids() -> str:
    from kit.sandbox.engine import docker
    proc = docker("images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}", check=False, timeout=30)
    rows = sorted(r for r in proc.stdout.splitlines() if r.startswith("kit-standin/"))
    return _sha("\n".join(rows))


def inputs_path(out: Path, name: str) -> Path:
    return Path(out) / "evidence" / f"{name}.inputs.json"


def family_inputs(spec, name: str, accessed: list[str], sandbox: bool, out: Path) -> dict[str, Any]:
    from kit.families import families
    family = families()[name]
    runs_image = sandbox and bool(family.sandbox_checks)
    rendered = dict(family.render(spec))
    if runs_image:
        rendered.update(families()["container"].render(spec))
    mine = {rel: _sha(text) for rel, text in sorted(rendered.items())}
    needs = {}
    for need in family.needs:
        path = inputs_path(out, need)
        needs[need] = json.loads(path.read_text())["digest"] if path.is_file() else "missing"
    return {"kit": kit_pins(), "sandbox": sandbox, "service": canon(spec),
            "options": {key: canon(spec.options[key]) for key in sorted(accessed) if key in spec.options},
            "files": mine, "needs": needs,
            "source": source_digest(spec.source, spec.output) if runs_image else "",
            "standins": standin_ids() if runs_image else ""}


def digest(inputs: dict[str, Any]) -> str:
    return _sha(json.dumps(inputs, sort_keys=True))


def record_inputs(spec, name: str, accessed: set[str], sandbox: bool) -> None:
    """Written beside the family's evidence by the run that made it."""
    from kit.config import run_id
    from kit.fsutil import write_atomic
    inputs = family_inputs(spec, name, sorted(accessed), sandbox, spec.output)
    entry = {"digest": digest(inputs), "accessed": sorted(accessed), "run": run_id(),
             "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "inputs": inputs}
    write_atomic(inputs_path(spec.output, name), json.dumps(entry, indent=1, sort_keys=True) + "\n")


def record_task_inputs(spec) -> None:
    from kit.config import run_id
    from kit.fsutil import write_atomic
    inputs = task_inputs(spec)
    entry = {"digest": digest(inputs), "run": run_id(), "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
             "inputs": inputs}
    write_atomic(inputs_path(spec.output, TASK_NOTEBOOK), json.dumps(entry, indent=1, sort_keys=True) + "\n")


def task_inputs(spec) -> dict[str, Any]:
    from kit.task import OVERRIDES_ENV
    return {"kit": kit_pins(), "task": _sha(spec.task.path.read_bytes()), "overrides": os.environ.get(OVERRIDES_ENV, ""),
            "source": source_digest(spec.source, spec.output), "service": canon(spec)}


def reusable(previous: Path, spec, name: str, sandbox: bool) -> dict | None:
    """The previous run's entry for family `name` (or the task notebook) when nothing it read has
    changed since, its records hold no failure, and its notebook and evidence are there; else None."""
    path = inputs_path(previous, name)
    notebook = Path(previous) / "notebooks" / f"{_notebook(name)}.ipynb"
    if not path.is_file() or not notebook.is_file():
        return None
    entry = json.loads(path.read_text())
    if name == TASK_NOTEBOOK:
        now = digest(task_inputs(spec))
    else:
        evidence = Path(previous) / "evidence" / f"{name}.json"
        if not evidence.is_file() or any(r.status == "failed" for r in load_evidence(evidence)):
            return None
        now = digest(family_inputs(spec, name, entry["accessed"], sandbox, spec.output))
    return entry if now == entry["digest"] else None


def _notebook(name: str) -> str:
    if name == TASK_NOTEBOOK:
        return TASK_NOTEBOOK
    from kit.families import families
    return families()[name].notebook


def restore(previous: Path, out: Path, name: str, entry: dict) -> int:
    """Copy the family's records (each marked as cached from the run that made it), its inputs
    entry and its executed notebook (with a first cell saying it is reused) into `out`."""
    from kit.fsutil import write_atomic
    note = f"run {entry['run']} at {entry['at']}"
    count = 0
    if name != TASK_NOTEBOOK:
        records: list[Evidence] = load_evidence(Path(previous) / "evidence" / f"{name}.json")
        for record in records:
            record.cached_from = record.cached_from or note
        save_evidence(records, Path(out) / "evidence" / f"{name}.json")
        count = len(records)
    write_atomic(inputs_path(out, name), inputs_path(previous, name).read_text())
    nb_name = f"{_notebook(name)}.ipynb"
    notebook = json.loads((Path(previous) / "notebooks" / nb_name).read_text())
    banner = (f"**Reused, not re-run:** nothing this notebook's checks read has changed since {note}, so its "
              "outputs and evidence are that run's (`kit run --fresh` re-proves them).")
    if not any("Reused, not re-run" in "".join(c.get("source", "")) for c in notebook["cells"][:1]):
        notebook["cells"].insert(0, {"cell_type": "markdown", "id": "kit-cached", "metadata": {},
                                     "source": banner})
    write_atomic(Path(out) / "notebooks" / nb_name, json.dumps(notebook, indent=1) + "\n")
    return count
