"""Container image: what work.md's Integration Notes say (prerequisites, risks, rollback)."""
from __future__ import annotations

from kit.core.family import Integration
from kit.model import Spec


def integration(spec: Spec) -> Integration:
    prereq = (f"A registry the build can push to (`{spec.image}`) and the base image `{spec.base_image}` "
              "reachable from the build (or a mirror through the build arguments).",)
    risks = ("The sandbox built on a local stand-in of the base image (no registry is reachable here): the first "
             "build on the real base may differ in size and OS packages.",)
    rollback = ("Images are immutable and deployed by digest: roll back by deploying the previous digest.",)
    return Integration(prereq, risks, rollback)
