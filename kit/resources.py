"""CPU and memory quantities, written the Kubernetes way ("500m", "512Mi") and parsed once."""
from __future__ import annotations

import re

MEMORY_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
MEMORY = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|k|M|G)?$")
CPU = re.compile(r"^(\d+(?:\.\d+)?)(m)?$")


def parse_cpu(text: str | int | float) -> float:
    """Cores: "500m" -> 0.5, "2" -> 2.0. ValueError with the accepted forms otherwise."""
    match = CPU.match(str(text).strip())
    if not match or float(match.group(1)) == 0:
        raise ValueError(f"{text!r} is not a CPU quantity: write cores (0.5, 2) or millicores (500m)")
    value = float(match.group(1))
    return value / 1000 if match.group(2) else value


def parse_memory(text: str | int) -> int:
    """Bytes: "512Mi" -> 536870912. ValueError with the accepted forms otherwise."""
    match = MEMORY.match(str(text).strip())
    if not match or float(match.group(1)) == 0:
        raise ValueError(f"{text!r} is not a memory quantity: write e.g. 256Mi, 1Gi or 500M")
    return int(float(match.group(1)) * MEMORY_UNITS[match.group(2) or ""])


def compose_memory(value: int) -> str:
    """Docker's memory syntax (binary units): 536870912 -> "512m"."""
    for unit, size in (("g", 2**30), ("m", 2**20), ("k", 2**10)):
        if value % size == 0:
            return f"{value // size}{unit}"
    return f"{value}b"
