"""Compose: what work.md's Integration Notes say (prerequisites, risks, rollback)."""
from __future__ import annotations

from kit.core.family import Integration
from kit.model import Spec


def integration(spec: Spec) -> Integration:
    prereq: tuple[str, ...] = ()
    if spec.secrets:
        prereq += ("Docker Engine with compose v2; one file per secret under `secrets/` (" + ", ".join(f"`secrets/{s}`" for s in spec.secrets)
                   + "), never committed.",)
    risks = ((", ".join(f"`{d.name}` keeps its data in the volume `{d.volume}`" for d in spec.dependencies)
              + ": `docker compose down -v` deletes them."),) if spec.dependencies else ()
    rollback = (f"Rebuild or retag the previous image as `{spec.name}:dev` and `docker compose up -d --wait`.",)
    return Integration(prereq, risks, rollback)
