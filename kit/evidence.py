"""Evidence: every verification result is a record; reports are views of these records."""
from __future__ import annotations

import json
import shlex
import subprocess
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Status = Literal["passed", "failed", "skipped"]
EXCERPT_LINES = 40
# How a record was proven (docs/evidence.md): the real program on the real artifact; a real program
# standing in for the one the deliverable names; kit reproducing another system's behaviour; or
# schemas, linters, policies and cross-file rules only. A summary never rounds one up to another.
PROOFS = ("real", "stand-in", "emulated", "static")


@dataclass
class Evidence:
    """One check's result: what ran, how, and what it showed."""

    check: str                      # stable id, e.g. "container.hadolint"
    deliverable: str                # the file or artifact it is about, e.g. "Dockerfile"
    title: str                      # one line a person reads
    status: Status
    tool: str = ""                  # tool name and version, e.g. "hadolint 2.12.0"
    command: str = ""               # the exact command line, when a tool ran
    duration_s: float = 0.0
    reason: str = ""                # why it failed or was skipped
    figures: dict[str, Any] = field(default_factory=dict)
    log: str = ""                   # an excerpt, never a whole log
    standins: dict[str, str] = field(default_factory=dict)  # real image -> stand-in used
    fallback: str = ""              # e.g. "tcp check: no health path"
    proof: str = ""                 # real | stand-in | emulated | static (PROOFS); "" when it did not run
    # the wall time of the step (one check function) that produced this record, and the step's name:
    # records made by one step share both, so a profile sums steps, never records
    wall_s: float = 0.0
    step: str = ""
    # "run R at T" when this record was reused from an earlier run whose inputs were all the same
    # (kit.cache); "" when this run proved it
    cached_from: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evidence:
        return cls(**data)


def label_proof(records: list[Evidence], *, sandbox: bool, base_standins: dict[str, str],
                emulated: bool = False) -> None:
    """Say how each record was proven, unless its check said so itself (the pod sandbox says
    "emulated"). A static check is "static"; a sandbox run is "stand-in" when any image in it was a
    stand-in, including the base image the app's image was built on (`base_standins`), else
    "real"; a family whose sandbox emulates another system says `emulated`. A skipped record
    proved nothing and gets no level."""
    for record in records:
        if record.status == "skipped":
            record.proof = ""
            continue
        if sandbox:
            record.standins = {**base_standins, **record.standins}
        if not record.proof:
            record.proof = ("static" if not sandbox else "emulated" if emulated
                            else "stand-in" if record.standins else "real")


def excerpt(text: str, lines: int = EXCERPT_LINES) -> str:
    """The last ``lines`` lines of a log: enough to see why, small enough to publish."""
    rows = (text or "").strip().splitlines()
    if len(rows) <= lines:
        return "\n".join(rows)
    return "\n".join([f"... ({len(rows) - lines} earlier lines left out)"] + rows[-lines:])


def run_tool(check: str, deliverable: str, title: str, argv: list[str], *, tool: str,
             cwd: Path | None = None, env: dict[str, str] | None = None,
             ok_codes: Iterable[int] = (0,), timeout: float = 300) -> Evidence:
    """Run a real tool and turn its exit code and output into Evidence."""
    start = time.monotonic()
    try:
        proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except FileNotFoundError:
        return Evidence(check, deliverable, title, "failed", tool=tool, command=shlex.join(argv),
                        reason=f"{argv[0]} is not installed; run scripts/setup.sh or `kit doctor`")
    except subprocess.TimeoutExpired as exc:
        return Evidence(check, deliverable, title, "failed", tool=tool, command=shlex.join(argv),
                        duration_s=round(time.monotonic() - start, 3),
                        reason=f"timed out after {timeout:.0f} s", log=excerpt(str(exc.output or "")))
    output = (proc.stdout or "") + (proc.stderr or "")
    ok = proc.returncode in set(ok_codes)
    return Evidence(check, deliverable, title, "passed" if ok else "failed", tool=tool,
                    command=shlex.join(argv), duration_s=round(time.monotonic() - start, 3),
                    reason="" if ok else f"exit code {proc.returncode}",
                    figures={"exit_code": proc.returncode}, log=excerpt(output))


def save_evidence(records: list[Evidence], path: Path) -> None:
    from kit.fsutil import write_atomic
    payload = {"records": [r.to_dict() for r in records]}
    write_atomic(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def load_evidence(path: Path) -> list[Evidence]:
    data = json.loads(Path(path).read_text())
    return [Evidence.from_dict(r) for r in data["records"]]


def summarize(records: list[Evidence]) -> dict[str, int]:
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    for r in records:
        counts[r.status] += 1
    return counts


def short_figures(record: Evidence, limit: int = 200) -> str:
    """The simple figures as "key=value, ...", cut between items (never mid-value)."""
    parts, size = [], 0
    for key, value in record.figures.items():
        if not isinstance(value, (int, float, str)):
            continue
        item = f"{key}={value}"
        if parts and size + len(item) > limit:
            parts.append("...")
            break
        parts.append(item)
        size += len(item) + 2
    return ", ".join(parts)
