"""What checks share during one verification: the deliverables, the staged repo, the image."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kit.errors import SandboxError
from kit.evidence import Evidence


@dataclass
class VerifyContext:
    deliverables: Path                     # the output folder holding the generated files
    files: dict[str, str]                  # path -> content, as generated
    staged: Path | None = None             # source + deliverables, for builds and compose
    image: str = ""                        # the image the container family built
    standins: dict[str, str] = field(default_factory=dict)   # real image -> stand-in tag
    facts: dict[str, object] = field(default_factory=dict)   # figures later checks reuse
    evidence: dict[str, list[Evidence]] = field(default_factory=dict)  # family -> its records (kit.pipeline.verify)

    def standin(self, real_image: str) -> str:
        """The local stand-in for a real image; built when missing."""
        if real_image in self.standins:
            return self.standins[real_image]
        from kit.sandbox.engine import image_exists
        if image_exists(real_image):       # the real image was loaded into this engine: use it
            self.standins[real_image] = real_image
            return real_image
        from kit.sandbox.standins import ensure_standin, standin_for
        found = standin_for(real_image)
        if found is None:
            raise SandboxError(f"no image {real_image} on this engine and no registry to pull it from; "
                               "kit has no local stand-in for it either. Load the real image "
                               f"(`docker load -i image.tar`, tagged {real_image}) or, for a Python base, set "
                               "service.python: \"3.11\" (the stand-in kit can build)")
        self.standins[real_image] = ensure_standin(found.key, log=lambda *_: None)
        return self.standins[real_image]
