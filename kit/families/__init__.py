"""The registry of deliverable families. Each package under kit/families/ declares one
`FAMILY` (kit.core.family.Family) in its __init__; this module finds them, orders them by their
notebook's number, and answers every question about families: the task sections and their
schemas, the renderers, the checks and what each needs. Adding a family is one package here,
one template folder, one notebook, one docs page and its tests
(tests/unit/test_family_layout.py shows it)."""
from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from kit.core.family import Family

if TYPE_CHECKING:
    from kit.model import Service, Spec
    from kit.task import TaskDoc


@lru_cache(maxsize=1)
def _discover() -> tuple[Family, ...]:
    found: dict[str, Family] = {}
    for info in pkgutil.iter_modules(__path__):
        if not info.ispkg:
            continue
        family = getattr(importlib.import_module(f"{__name__}.{info.name}"), "FAMILY", None)
        if not isinstance(family, Family):
            raise TypeError(f"kit/families/{info.name}/__init__.py declares no FAMILY")
        if family.name != info.name:
            raise TypeError(f"kit/families/{info.name} declares the family {family.name!r}")
        found[family.name] = family
    for family in found.values():
        unknown = [n for n in family.needs if n not in found]
        if unknown:
            raise TypeError(f"family {family.name} needs unknown families: {', '.join(unknown)}")
        later = [n for n in family.needs if found[n].notebook >= family.notebook]
        if later:
            raise TypeError(f"family {family.name} needs {', '.join(later)}, whose notebook runs after its own")
    return tuple(sorted(found.values(), key=lambda f: f.notebook))


def families() -> dict[str, Family]:
    """Every family, in pipeline order (by notebook name: 10_container, 20_compose, ...)."""
    return {f.name: f for f in _discover()}


def family(name: str) -> Family:
    found = families()
    if name not in found:
        raise KeyError(f"no family {name!r}; families: {', '.join(found)}")
    return found[name]


def option_schemas() -> dict[str, Any]:
    """Each family's task section schema under its option key (merged into the task schema)."""
    return {f.option.key: f.option.schema for f in _discover() if f.option is not None}


def parse_options(doc: TaskDoc, service: Service) -> dict[str, Any]:
    """Every family's task section parsed (present in the task or not: defaults apply)."""
    return {f.option.key: f.option.parse(doc, service) for f in _discover() if f.option is not None}


def render_all(spec: Spec) -> dict[str, str]:
    """Every deliverable file, keyed by its path in the output folder."""
    files: dict[str, str] = {}
    for fam in _discover():
        files.update(fam.render(spec))
    return files


def with_needs(names: list[str] | tuple[str, ...]) -> list[str]:
    """`names` and every family they need, in dependency order (then pipeline order)."""
    wanted: list[str] = []

    def visit(name: str) -> None:
        if name in wanted:
            return
        for need in family(name).needs:
            visit(need)
        wanted.append(name)
    for name in names:
        visit(name)
    order = list(families())
    return sorted(wanted, key=order.index)
