"""Deliverable families. Each registers its renderer, its checks and its notebook in one place,
so adding a family means one module here (found by `families()`, ordered by its notebook's
number), one template folder, a notebook, a docs page and tests; tests/unit/test_consistency.py
checks they all exist."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from kit.evidence import Evidence
    from kit.spec import Spec
    from kit.verify.context import VerifyContext


@dataclass(frozen=True)
class Family:
    name: str
    title: str
    notebook: str                                   # notebooks/<notebook>.ipynb
    template: str                                   # templates/<family>/<variant>
    render: Callable[["Spec"], dict[str, str]]
    static_checks: tuple[Callable[["Spec", "VerifyContext"], list["Evidence"]], ...] = field(default=())
    sandbox_checks: tuple[Callable[["Spec", "VerifyContext"], list["Evidence"]], ...] = field(default=())
    # work.md: the files shown in full (empty: every file) and the family's implementation notes
    highlights: tuple[str, ...] = field(default=())
    work_notes: Callable[["Spec"], list[str]] | None = None


REGISTRY: dict[str, Family] = {}


def lazy(module: str, function: str = "static_checks") -> Callable[["Spec", "VerifyContext"], list["Evidence"]]:
    """A check imported only when it runs: rendering never loads the verification code."""
    def check(spec: "Spec", ctx: "VerifyContext") -> list["Evidence"]:
        import importlib
        return getattr(importlib.import_module(module), function)(spec, ctx)
    check.__name__ = f"{module}.{function}"
    return check


def register(family: Family) -> Family:
    if family.name in REGISTRY:
        raise ValueError(f"family {family.name} registered twice")
    REGISTRY[family.name] = family
    return family


def families() -> dict[str, Family]:
    """Every family, in pipeline order (by notebook name: 10_container, 20_compose, ...)."""
    import importlib
    import pkgutil
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")   # registration side effect
    return dict(sorted(REGISTRY.items(), key=lambda item: item[1].notebook))


def render_all(spec: "Spec") -> dict[str, str]:
    """Every deliverable file, keyed by its path in the output folder."""
    files: dict[str, str] = {}
    for family in families().values():
        files.update(family.render(spec))
    return files
