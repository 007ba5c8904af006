"""Benchmark (on demand, never in the tests): `kit run` on the bundled example, cold and warm,
against the floor of a plain `docker build` + `docker run` until the health endpoint answers, for
the same Dockerfile; and `kit generate` alone. Prints times and ratios measured in one run.

    .venv/bin/python bench/run.py [--repeat 3]

"cold" = the bench's own images (kit-bench/floor, kit-sandbox/shop-api) removed first, and, with
--prune-build-cache, the engine's whole BuildKit cache too (opt-in: it affects other projects);
"warm" = run again as is.
The floor builds the same staged context with the same build args (stand-in base, local index).
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
sys.path.insert(0, str(ROOT))

from kit.families import render_all  # noqa: E402
from kit.sandbox import pkgindex  # noqa: E402
from kit.sandbox.build import staged_repo  # noqa: E402
from kit.sandbox.engine import LABEL, docker  # noqa: E402
from kit.sandbox.health import wait_http  # noqa: E402
from kit.sandbox.standins import ensure_standin, standin_for  # noqa: E402
from kit.spec import load_spec  # noqa: E402

KIT = [str(Path(sys.executable).with_name("kit"))]


def timed(argv: list[str]) -> float:
    start = time.monotonic()
    subprocess.run(argv, check=True, capture_output=True)
    return time.monotonic() - start


def floor(project: Path) -> float:
    """Plain docker build + docker run (with the dependencies up) until the health path answers 200."""
    spec = load_spec(project)
    base = ensure_standin(standin_for(spec.base_image).key)
    wheels = pkgindex.wheelhouse(spec.source, spec.requirements_file, spec.extra_packages, base)
    net = f"bench-{int(time.time())}"
    with staged_repo(spec.source, render_all(spec)) as ctx, pkgindex.serve_index(wheels) as index:
        docker("network", "create", "--label", f"{LABEL}=true", net)
        names = []
        try:
            for dep in spec.dependencies:
                name = f"{net}-{dep.name}"
                env = [a for k, v in dep.env for a in ("-e", f"{k}={v}") if k != "POSTGRES_PASSWORD_FILE"]
                if dep.secret:
                    env += ["-e", "POSTGRES_PASSWORD=bench"]
                docker("run", "-d", "--label", f"{LABEL}=true", "--name", name, "--network", net, "--network-alias", dep.name, *env,
                       ensure_standin(standin_for(dep.image).key), *dep.command)
                names.append(name)
            start = time.monotonic()
            docker("build", "--network", "host", "--build-arg", f"PYTHON_IMAGE={base}",
                   "--build-arg", f"PIP_INDEX_URL={index}", "-t", "kit-bench/floor:latest", str(ctx))
            env = [a for k, v in spec.all_env() for a in ("-e", f"{k}={v}")]
            env += [a for s in spec.secrets for a in ("-e", f"{s}=bench")]
            name = f"{net}-app"
            docker("run", "-d", "--label", f"{LABEL}=true", "--name", name, "--network", net, "-p", f"127.0.0.1::{spec.port}", *env,
                   "kit-bench/floor:latest")
            names.append(name)
            port = docker("port", name, f"{spec.port}/tcp").stdout.split(":")[-1].strip()
            ok, _, _ = wait_http(f"http://127.0.0.1:{port}{spec.health_path}", True, 120)
            elapsed = time.monotonic() - start
            assert ok, "the floor's container never answered"
            return elapsed
        finally:
            docker("rm", "-f", *names, check=False)
            docker("network", "rm", net, check=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--prune-build-cache", action="store_true",
                        help="make 'cold' truly cold: runs `docker builder prune -af`, which empties the "
                             "engine's WHOLE BuildKit cache (other projects' too)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "shop-api"
        shutil.copytree(ROOT / "examples" / "shop-api", project, ignore=shutil.ignore_patterns("kit-out"))
        gen = [timed([*KIT, "generate", str(project)]) for _ in range(args.repeat)]
        docker("image", "rm", "-f", "kit-bench/floor:latest", check=False)
        if args.prune_build_cache:
            subprocess.run(["docker", "builder", "prune", "-af"], capture_output=True)
        floor_cold = floor(project)
        floor_warm = statistics.median(floor(project) for _ in range(args.repeat))
        if args.prune_build_cache:
            subprocess.run(["docker", "builder", "prune", "-af"], capture_output=True)
        for line in docker("images", "-q", "kit-sandbox/shop-api").stdout.split():
            docker("rmi", "-f", line, check=False)
        cold = timed([*KIT, "run", str(project)])
        warm = statistics.median(timed([*KIT, "run", str(project)]) for _ in range(args.repeat))
    print(f"kit generate          median {statistics.median(gen):6.2f} s")
    print(f"floor build+run cold         {floor_cold:6.2f} s")
    print(f"floor build+run warm  median {floor_warm:6.2f} s")
    print(f"kit run cold                 {cold:6.2f} s   ratio to floor cold {cold / floor_cold:5.2f}x")
    print(f"kit run warm          median {warm:6.2f} s   ratio to floor warm {warm / floor_warm:5.2f}x")


if __name__ == "__main__":
    main()
