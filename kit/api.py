"""What the notebooks call: one line each, so notebooks stay thin and the logic stays here."""
from __future__ import annotations

from datetime import date
from pathlib import Path

from kit.evidence import Evidence
from kit.fsutil import write_atomic
from kit.pipeline import collect_evidence, generate, write_evidence_json
from kit.pipeline import verify as verify_families
from kit.report.context import append_write_zone, read_context, write_work_md, write_zone_entry
from kit.report.workmd import render_work_md
from kit.spec import Spec, load_spec

WORK_MD = "work.md"
WRITE_ZONE = "write-zone.md"


def load(project: str | Path, out: str | Path = "") -> Spec:
    return load_spec(Path(project), Path(out) if out else None)


def task_figures(spec: Spec) -> list[dict]:
    """What the task gives kit: its acceptance criteria, its Markdown sections (a missing one is
    listed, not fatal) and what detection found. A view, not evidence: the front matter was
    validated when the Spec was built, so a record of it could never fail."""
    from kit.task import SECTIONS
    missing = [name for name in SECTIONS if name not in spec.task.sections]
    facts = spec.facts
    return [{"figure": "acceptance criteria", "value": len(spec.task.acceptance)},
            {"figure": "Markdown sections", "value": len(spec.task.sections)},
            {"figure": "missing sections", "value": ", ".join(missing) or "none"},
            {"figure": "framework", "value": spec.framework},
            {"figure": "requirements", "value": facts.requirements_file},
            {"figure": "routes found in the source", "value": len(facts.routes)},
            {"figure": "health check", "value": spec.health_fallback or f"HTTP {spec.health_path}"}]


def generate_all(spec: Spec) -> dict[str, str]:
    return generate(spec, spec.output)


def verify(spec: Spec, family: str, sandbox: bool = True) -> list[Evidence]:
    """Run one family's checks on the files on disk (kit.pipeline.verify, the one path); save and
    return the evidence."""
    return verify_families(spec, (family,), sandbox=sandbox)


def report(spec: Spec, today: date | None = None) -> tuple[str, str, list[Evidence]]:
    """evidence.json, work.md and the Write Zone entry, written into the output folder."""
    from kit.families import render_all
    records = collect_evidence(spec.output)
    write_evidence_json(spec.output)
    files = render_all(spec)
    text = render_work_md(spec, files, records, read_context(spec))
    entry = write_zone_entry(spec, records, files, today or date.today())
    write_atomic(spec.output / WORK_MD, text)
    write_atomic(spec.output / WRITE_ZONE, entry)
    return text, entry, records


def install_reports(spec: Spec, out: Path | None = None) -> tuple[Path, bool]:
    """Copy work.md into .claude/ and append the Write Zone entry (once)."""
    out = Path(out or spec.output)
    path = write_work_md(spec, (out / WORK_MD).read_text())
    appended = append_write_zone(spec, (out / WRITE_ZONE).read_text())
    return path, appended


def spec_rows(spec: Spec) -> list[dict]:
    """The Spec as (field, value, where it came from) rows."""
    svc = spec.task.data["service"]

    given = "inferred" if spec.task.inferred else "task.md"

    def src(key: str, detected: bool = True) -> str:
        return given if key in svc else ("detected" if detected else "default")
    return [
        {"field": "name", "value": spec.name, "source": given},
        {"field": "source (from the project folder)", "value": _from_project(spec, spec.source),
         "source": src("source", False)},
        {"field": "framework", "value": spec.framework, "source": src("framework")},
        {"field": "entry file" if spec.stack == "node" else "app object", "value": spec.app,
         "source": src("main" if spec.stack == "node" else "app")},
        {"field": "start command", "value": " ".join(spec.command), "source": src("command", False)},
        *([{"field": "node", "value": spec.base_image.split(":")[1].split("-")[0],
            "source": "task.md" if "node" in svc else (spec.facts.node_origin or "default")},
           {"field": "base image", "value": spec.base_image, "source": "from node"},
           {"field": "lockfile", "value": spec.lock_file or "(none: warned)", "source": "detected"}]
          if spec.stack == "node" else
          [{"field": "python", "value": spec.python, "source": src("python", bool(spec.facts.python))},
           {"field": "base image", "value": spec.base_image, "source": "from python"}]),
        {"field": "port", "value": spec.port,
         "source": src("port", spec.stack == "node" and bool(getattr(spec.facts, "port", 0)))},
        {"field": "health", "value": spec.health_path or f"TCP fallback: {spec.health_fallback}",
         "source": src("health")},
        {"field": "metrics", "value": spec.metrics_path or "(none)", "source": src("metrics")},
        {"field": "user", "value": f"{spec.uid}:{spec.uid}", "source": src("uid", False)},
        {"field": "secrets (names only)", "value": ", ".join(spec.secrets) or "(none)", "source": given},
        {"field": "requirements", "value": spec.requirements_file, "source": "detected"},
    ]


def _from_project(spec: Spec, path: Path) -> str:
    """A path as the reader's repository knows it, not this machine's absolute path."""
    try:
        return str(Path(path).relative_to(spec.project)) or "."
    except ValueError:
        return str(path)


def value_origins(spec: Spec) -> dict[str, int]:
    """How many service-model values the task gave, detection found, or kit defaulted."""
    counts: dict[str, int] = {}
    for row in spec_rows(spec):
        counts[row["source"]] = counts.get(row["source"], 0) + 1
    return dict(sorted(counts.items()))


def dependency_rows(spec: Spec) -> list[dict]:
    return [{"name": d.name, "kind": d.kind, "image": d.image, "volume": d.volume,
             "app settings": ", ".join(f"{k}={v}" for k, v in d.app_env), "secret": d.secret or "-"}
            for d in spec.dependencies] or [{"name": "(no dependencies)"}]


def status_counts(records: list[Evidence]) -> list[dict]:
    rows: dict[str, dict] = {}
    for r in records:
        row = rows.setdefault(r.check.split(".")[0], {"family": r.check.split(".")[0], "passed": 0,
                                                      "failed": 0, "skipped": 0})
        row[r.status] += 1
    return list(rows.values())


def checklist_rows(spec: Spec, records: list[Evidence]) -> list[dict]:
    from kit.report.acceptance import standard_items, task_items
    items = [("standard", i) for i in standard_items(records)]
    items += [("task", i) for i in task_items(spec.task.acceptance, records)]
    return [{"from": origin, "item": i.text, "state": i.state, "checks": ", ".join(i.checks), "note": i.note}
            for origin, i in items]
