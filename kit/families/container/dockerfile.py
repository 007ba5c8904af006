"""Read facts back out of a Dockerfile, for consistency checks."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class DockerfileFacts:
    expose: tuple[int, ...]
    user: str
    healthcheck: list[str]
    cmd: list[str]
    stages: int


def _joined_lines(text: str) -> list[str]:
    out, buf = [], ""
    for row in text.splitlines():
        if row.strip().startswith("#") and not buf:
            continue
        if row.rstrip().endswith("\\"):
            buf += row.rstrip()[:-1] + " "
            continue
        out.append((buf + row).strip())
        buf = ""
    return [r for r in out if r]


def dockerfile_facts(text: str) -> DockerfileFacts:
    expose, user, health, cmd, stages = [], "", [], [], 0
    for row in _joined_lines(text):
        word, _, rest = row.partition(" ")
        word = word.upper()
        if word == "FROM":
            stages += 1
        elif word == "EXPOSE":
            expose += [int(p.split("/")[0]) for p in rest.split() if p.split("/")[0].isdigit()]
        elif word == "USER":
            user = rest.strip()
        elif word == "HEALTHCHECK":
            match = re.search(r"\bCMD\s+(\[.*\])\s*$", rest)
            health = json.loads(match.group(1)) if match else []
        elif word == "CMD":
            cmd = json.loads(rest) if rest.strip().startswith("[") else ["/bin/sh", "-c", rest]
    return DockerfileFacts(tuple(expose), user, health, cmd, stages)
