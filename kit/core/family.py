"""What a deliverable family declares. The registry (kit.families) collects one `FAMILY` from
each package under kit/families/; every per-family fact lives in that declaration, so the
report, the site, the checklist, the schema and `kit doctor` hold no per-family table."""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kit.core.context import VerifyContext
    from kit.evidence import Evidence
    from kit.model import Service, Spec
    from kit.task import TaskDoc

Check = Callable[["Spec", "VerifyContext"], list["Evidence"]]


@dataclass(frozen=True)
class Option:
    """A task section: its key in the front matter, its JSON Schema and its parser into a frozen
    view (`spec.option(key)`); parse errors are TaskErrors naming file, line and field."""
    key: str
    schema: dict[str, Any]
    parse: Callable[[TaskDoc, Service], Any]


@dataclass(frozen=True)
class ChecklistItem:
    """One standard acceptance item, ticked only when every check behind it passed
    (`family.prefix.*` stands for every record with that prefix)."""
    text: str
    checks: tuple[str, ...]


@dataclass(frozen=True)
class Criterion:
    """How a task's acceptance criterion is mapped to checks: the first pattern (lowest
    `priority` across all families) that matches the criterion's wording wins. `judge`, when
    set, decides from the records itself: (state, note), or None to fall back to the plain rule."""
    pattern: str
    checks: tuple[str, ...]
    priority: int
    judge: Callable[[str, re.Match, dict[str, Evidence]], tuple[str, str] | None] | None = None


@dataclass(frozen=True)
class Tool:
    """An external program a family needs: how `kit doctor` finds its version, and the fix."""
    name: str
    version: Callable[[], tuple[bool, str]]
    fix: str


@dataclass(frozen=True)
class Integration:
    """What work.md's Integration Notes say for a family: what must exist before the first
    deploy, what can go wrong with it, and how to undo a bad release."""
    prerequisites: tuple[str, ...] = ()
    risks: tuple[str, ...] = ()
    rollback: tuple[str, ...] = ()


@dataclass(frozen=True)
class Family:
    name: str
    title: str                                      # the site's page title and work.md's heading
    notebook: str                                   # notebooks/<notebook>.ipynb, ordered by number
    template: str                                   # templates/<family>/<variant>
    render: Callable[[Spec], dict[str, str]]
    option: Option | None = None                    # the task section the family reads
    static_checks: tuple[Check, ...] = ()
    sandbox_checks: tuple[Check, ...] = ()
    needs: tuple[str, ...] = ()                     # families whose evidence the checks read
    # how its sandbox runs prove things when it is not running the real program: "emulated" when
    # kit reproduces another system (the pod sandbox is Docker running the pod spec, not a kubelet)
    sandbox_proof: str = ""
    emulation_leaves_out: str = ""                  # what the emulation does not reproduce
    checklist: tuple[ChecklistItem, ...] = ()
    criteria: tuple[Criterion, ...] = ()
    tools: tuple[Tool, ...] = ()
    # work.md: short excerpts ("path" or "path#regex": up to EXCERPT_LINES lines from the first
    # line matching regex), the implementation notes, each file's one-line purpose (fnmatch glob
    # -> text; the first match wins) and the integration notes
    highlights: tuple[str, ...] = field(default=())
    work_notes: Callable[[Spec], list[str]] | None = None
    purposes: tuple[tuple[str, str], ...] = ()
    integration: Callable[[Spec], Integration] | None = None
