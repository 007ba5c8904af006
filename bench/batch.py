"""Benchmark (on demand, never in the tests): `kit batch` over four services, one at a time and then
two at a time, measured side by side in one run, with the ratio; and an unchanged re-run (every
project kept). The issue's goal: -j 2 within 0.7x of the serial time on 2 cores.

    .venv/bin/python bench/batch.py [--static] [--repeat 1]

The four services are the test fixtures (minimal Flask, FastAPI from pyproject, Django, the bundled
example), copied to a temporary folder; one of them is made to fail (an unknown secret reference), as a
fleet always has one.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KIT = [str(Path(sys.executable).with_name("kit"))]
SERVICES = {"minimal": ROOT / "tests" / "fixtures" / "minimal",
            "fastapi-items": ROOT / "tests" / "fixtures" / "messy" / "fastapi-items",
            "django-notes": ROOT / "tests" / "fixtures" / "messy" / "django-notes",
            "shop-api": ROOT / "examples" / "shop-api"}


def batch(folders: list[Path], fleet: Path, jobs: int, static: bool, fresh: bool = True) -> float:
    argv = [*KIT, "batch", "-j", str(jobs), "--out", str(fleet), *map(str, folders)]
    argv += ["--static"] if static else []
    argv += ["--fresh"] if fresh else []
    start = time.monotonic()
    subprocess.run(argv, capture_output=True, text=True)     # exit 4: one service fails on purpose
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--static", action="store_true", help="no Docker sandbox (kit run --static)")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folders = []
        for name, source in SERVICES.items():
            target = Path(tmp) / name
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("kit-out"))
            folders.append(target)
        task = folders[0] / ".claude" / "task.md"        # the failing one: a bad port
        task.write_text(task.read_text().replace("  source: src", "  source: src\n  port: 99999", 1))
        fleet = Path(tmp) / "fleet"
        batch(folders, fleet, 2, args.static)            # warm the images and wheel caches
        serial = statistics.median(batch(folders, fleet, 1, args.static) for _ in range(args.repeat))
        parallel = statistics.median(batch(folders, fleet, 2, args.static) for _ in range(args.repeat))
        kept = batch(folders, fleet, 2, args.static, fresh=False)
    mode = "static" if args.static else "sandbox"
    print(f"kit batch, 4 services ({mode}), warm:")
    print(f"  -j 1 (serial)        median {serial:7.1f} s")
    print(f"  -j 2                 median {parallel:7.1f} s   ratio to serial {parallel / serial:5.2f}x (goal <= 0.70x)")
    print(f"  unchanged, -j 2, kept       {kept:7.1f} s   ratio to serial {kept / serial:5.2f}x")


if __name__ == "__main__":
    main()
