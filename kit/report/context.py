"""Context kit carries into its report: the session context file and an earlier work.md."""
from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from kit.evidence import Evidence, summarize
from kit.fsutil import write_atomic
from kit.model import Spec
from kit.report.proof import by_level, family_proofs

CONTEXT_FILE = Path(".claude/tasks/context_session_1.md")
WORK_FILE = Path(".claude/work.md")
EXCERPT = 8


def read_context(spec: Spec) -> dict[str, str]:
    """Short excerpts (never whole files) of what earlier sessions left."""
    found = {}
    session = spec.project / CONTEXT_FILE
    if session.is_file():
        entries = re.split(r"(?m)^(?=## )", session.read_text(errors="replace"))
        others = [e.strip() for e in entries if e.startswith("## ") and not e.startswith("## DevOps Architect")]
        if others:   # the latest entry by someone else, with its heading (kit's own are not quoted)
            found[str(CONTEXT_FILE)] = "\n".join(others[-1].splitlines()[:EXCERPT])
    work = spec.project / WORK_FILE
    if work.is_file():
        text = work.read_text(errors="replace")
        match = re.search(r"## Summary & Intent\n(.*?)(?=\n## )", text, re.S)
        summary = (match.group(1) if match else text[:600]).strip()
        found[f"{WORK_FILE} (previous run)"] = "\n".join(summary.splitlines()[:EXCERPT])
    return found


def write_zone_entry(spec: Spec, records: list[Evidence], files: dict[str, str], today: date) -> str:
    """3 to 8 lines: what was built, where the key files are, the tests with how they were proven,
    the checks that really were skipped (by name), and the next step."""
    counts = summarize(records)
    failed = [r.check for r in records if r.status == "failed"]
    skipped = [r.check for r in records if r.status == "skipped"]
    proofs = family_proofs(records)
    out = spec.output.relative_to(spec.project) if spec.output.is_relative_to(spec.project) else spec.output
    key_files = ", ".join(f"{out}/{f}" for f in ("Dockerfile", "compose.yaml", "evidence.json") if
                          f == "evidence.json" or f in files)
    nxt = (f"fix failing checks: {', '.join(failed)}" if failed else
           "review the criteria marked 'needs human review' in work.md")
    lines = [
        f"## DevOps Architect - {today.isoformat()}",
        f"- Implemented: {len(files)} deliverables for {spec.name} ({', '.join(p.title.lower() for p in proofs)}), "
        "generated from .claude/task.md.",
        f"- Key files: {key_files}, .claude/work.md",
        f"- Tests: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped; "
        f"{by_level(proofs)}.",
    ]
    if skipped:
        lines.append(f"- Skipped: {', '.join(skipped)} (reasons in work.md's Testing section).")
    lines.append(f"- Next steps: {nxt}.")
    return "\n".join(lines) + "\n"


def append_write_zone(spec: Spec, entry: str) -> bool:
    """Append the entry unless the file already ends with the identical entry."""
    path = spec.project / CONTEXT_FILE
    old = path.read_text() if path.is_file() else "# Session context\n"
    if old.rstrip().endswith(entry.rstrip()):
        return False
    sep = "" if old.endswith("\n\n") else ("\n" if old.endswith("\n") else "\n\n")
    write_atomic(path, old + sep + entry)
    return True


def write_work_md(spec: Spec, text: str) -> Path:
    path = spec.project / WORK_FILE
    write_atomic(path, text)
    return path
