"""Run the generated locustfile (Locust, headless, its own process) against the app container of the
compose stack, published on 127.0.0.1, while Docker's stats stream records the app's CPU and memory.
Bounded: the steps are fixed, each step is a few seconds, Locust gets a run-time cap (-t) and kit a
timeout; the locustfile's shape stops after the first step that breaks the objective."""
from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

from kit.evidence import excerpt
from kit.families.scaling.render import LEAD_IN_S

GENERATOR_CPU_LIMIT = 0.8      # cores: one Locust process (gevent, one core at most) above this is the bottleneck
TIMEOUT_MARGIN_S = 30


@dataclass
class Step:
    offered_rps: float
    achieved_rps: float
    requests: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    within_threshold: float     # fraction of requests within the latency threshold
    error_rate: float
    app_cpu: float              # cores, mean of Docker's stats samples in the step
    app_memory_mib: float       # the highest in the step
    generator_cpu: float        # cores the Locust process used in the step
    holds: bool = False
    why: str = ""

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class StatsRecorder:
    """Docker's stats stream (the engine's /containers/ID/stats, what `docker stats` shows) in a thread:
    (time, CPU cores, memory MiB) about once a second."""
    container_id: str
    samples: list[tuple[float, float, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    error: str = ""

    def __enter__(self) -> StatsRecorder:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        import docker
        client = docker.from_env()
        try:
            stream = client.api.stats(self.container_id, stream=True, decode=True)
            for stat in stream:
                if self._stop.is_set():
                    break
                self.samples.append((time.time(), cpu_cores(stat), memory_mib(stat)))
        except Exception as exc:    # the stream ends with the container; keep what came, say why
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            client.close()


def cpu_cores(stat: dict) -> float:
    """Cores used between two samples, as `docker stats` computes it (usage delta / system delta x CPUs)."""
    cpu, pre = stat.get("cpu_stats") or {}, stat.get("precpu_stats") or {}
    used = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (pre.get("cpu_usage") or {}).get("total_usage", 0)
    system = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    online = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1
    return round(used / system * online, 4) if system > 0 and used >= 0 else 0.0


def memory_mib(stat: dict) -> float:
    """Memory in use without the page cache (cgroup v2 inactive_file, v1 cache), as `docker stats`."""
    mem = stat.get("memory_stats") or {}
    stats = mem.get("stats") or {}
    cache = stats.get("inactive_file", stats.get("total_inactive_file", stats.get("cache", 0)))
    return round(max(0, mem.get("usage", 0) - cache) / 2**20, 2)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def run_locust(locustfile: Path, url: str, step_s: float, steps: list[float],
               env_extra: dict[str, str] | None = None) -> tuple[dict, str, list[str]]:
    """Run Locust headless; (its samples file, its output excerpt, the command)."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"the load test only targets 127.0.0.1, got {url}")
    locust = str(Path(sys.executable).with_name("locust"))
    budget = math.ceil(step_s * len(steps)) + LEAD_IN_S + 2
    with tempfile.TemporaryDirectory(prefix="kit-locust-") as tmp:
        samples = Path(tmp) / "samples.json"
        argv = [locust, "-f", str(locustfile), "--headless", "--host", url, "-u", "1", "-r", "1",
                "-t", f"{budget}s", "--stop-timeout", "2", "--csv", str(Path(tmp) / "stats"),
                "--only-summary", "--loglevel", "WARNING", "--exit-code-on-error", "0"]
        import os
        env = {**os.environ, "LOAD_SAMPLES": str(samples), "LOAD_STEP_SECONDS": f"{step_s:g}",
               "LOAD_STEPS": ",".join(f"{s:g}" for s in steps), **(env_extra or {})}
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=budget + TIMEOUT_MARGIN_S,
                              cwd=tmp)
        output = excerpt(proc.stdout + proc.stderr, 30)
        if not samples.is_file():
            raise RuntimeError(f"locust wrote no samples (exit {proc.returncode}): {output[-600:]}")
        data = json.loads(samples.read_text())
        data["csv"] = (Path(tmp) / "stats_stats.csv").read_text() if (Path(tmp) / "stats_stats.csv").is_file() else ""
    return data, output, argv


def summarise(data: dict, stats: list[tuple[float, float, float]], steps: list[float], threshold_s: float,
              objective: float, error_budget: float, warmup_s: float) -> list[Step]:
    """Per step: the requests after its warm-up, Docker's samples in it, the generator's CPU."""
    marks, samples = data["marks"], data["samples"]
    out = []
    for (index, start, cpu0), (_, end, cpu1) in pairwise(marks):
        judged = [(t, s, bad) for t, s, bad, _ in samples if start + warmup_s <= t < end]
        span = max(end - start - warmup_s, 1e-6)
        took = [s for _, s, _ in judged]
        errors = sum(1 for *_, bad in judged if bad)
        in_step = [(c, m) for t, c, m in stats if start + warmup_s <= t <= end + 0.5]
        step = Step(offered_rps=steps[index], achieved_rps=round((len(judged) - errors) / span, 1),
                    requests=len(judged),
                    p50_ms=round(percentile(took, 50) * 1000, 1), p95_ms=round(percentile(took, 95) * 1000, 1),
                    p99_ms=round(percentile(took, 99) * 1000, 1),
                    within_threshold=round(sum(1 for s in took if s <= threshold_s) / len(took), 4) if took else 0.0,
                    error_rate=round(errors / len(judged), 4) if judged else 0.0,
                    app_cpu=round(sum(c for c, _ in in_step) / len(in_step), 3) if in_step else 0.0,
                    app_memory_mib=round(max((m for _, m in in_step), default=0.0), 1),
                    generator_cpu=round((cpu1 - cpu0) / max(end - start, 1e-6), 3))
        step.holds, step.why = judge(step, objective, error_budget)
        out.append(step)
    return out


def failures_by_path(data: dict) -> dict[str, tuple[int, int]]:
    """path -> (requests, failed) over the whole run."""
    out: dict[str, list[int]] = {}
    for _, _, bad, name in data["samples"]:
        row = out.setdefault(name, [0, 0])
        row[0] += 1
        row[1] += 1 if bad else 0
    return {k: (v[0], v[1]) for k, v in sorted(out.items())}


def judge(step: Step, objective: float, error_budget: float) -> tuple[bool, str]:
    """A step holds when enough requests are fast, few fail, and the app kept up with the offer."""
    if not step.requests:
        return False, "no request completed"
    slow = round((1 - step.within_threshold) * step.requests)
    # a step of fewer than 100 / (100 - objective) requests cannot measure that quantile: it may have one
    # slow request (the locustfile's shape applies the same rule)
    if slow > max(1.0, (100 - objective) / 100 * step.requests):
        return False, f"{step.within_threshold:.1%} within the threshold, below the objective {objective:g} %"
    if step.error_rate * 100 > error_budget:
        return False, f"{step.error_rate:.2%} of requests failed (budget {error_budget:g} %)"
    # a few requests either side of a short step are sampling, not saturation: 15 % and 2 rps behind
    if step.achieved_rps < 0.85 * step.offered_rps - 2:
        return False, f"achieved {step.achieved_rps:g} of {step.offered_rps:g} rps offered: the app fell behind"
    return True, ""


def capacity_of(steps: list[Step]) -> tuple[float, Step | None, bool]:
    """(capacity, the step giving it, whether the objective broke): the highest achieved rate among
    the steps that held, up to the first of two broken steps in a row (a single broken step followed
    by one that holds was a pause of the machine, not the app's limit; the record lists it)."""
    best, at = 0.0, None
    for i, step in enumerate(steps):
        if not step.holds and (i + 1 >= len(steps) or not steps[i + 1].holds):
            return best, at, True
        if step.holds and step.achieved_rps > best:
            best, at = step.achieved_rps, step
    return best, at, False
