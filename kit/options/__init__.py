"""Task sections beyond `service` and `dependencies` (kubernetes, ci, cloud, slo).

Each section that kit generates from has a module here, `kit/options/<key>.py`, defining:

- `SCHEMA`: the JSON Schema of the section (merged into the task schema);
- `parse(doc, spec) -> object`: a frozen, validated view of the section built from the task
  and the base Spec; errors are TaskError naming the field and line.

A key with no module is accepted as an object and listed as "not yet generated".
"""
from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kit.spec import Spec
    from kit.task import TaskDoc

OPTION_KEYS = ("kubernetes", "ci", "cloud", "slo")


def module(key: str) -> ModuleType | None:
    if importlib.util.find_spec(f"kit.options.{key}") is None:
        return None
    return importlib.import_module(f"kit.options.{key}")


def section_schema(key: str) -> dict[str, Any]:
    mod = module(key)
    if mod is None:
        return {"type": "object",
                "description": f"Reserved for the {key} deliverables (later releases); "
                               "accepted, listed as not yet generated."}
    return mod.SCHEMA


def parse_options(doc: "TaskDoc", spec: "Spec") -> dict[str, Any]:
    """Every section kit generates from, parsed (present in the task or not: defaults apply)."""
    out: dict[str, Any] = {}
    for key in OPTION_KEYS:
        mod = module(key)
        if mod is not None:
            out[key] = mod.parse(doc, spec)
    return out


def reserved(doc: "TaskDoc") -> tuple[str, ...]:
    return tuple(k for k in OPTION_KEYS if k in doc.data and module(k) is None)
