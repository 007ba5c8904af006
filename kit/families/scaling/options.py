"""The `scaling` task section: expected load (baseline and peak requests per second), the request
mix the load test offers, headroom, the autoscaling mechanism, replica bounds, and the measured
capacity a user feeds back from an earlier run (`measured`, see docs/families/scaling.md)."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kit.model import Service
    from kit.task import TaskDoc

MECHANISMS = ("hpa-cpu", "hpa-rps", "keda")
DEFAULT_HEADROOM = 30.0          # percent of spare capacity at the working point
PARAM = re.compile(r"[<{:]")     # /items/<int:id>, /items/{id}, /items/:id: not loadable without a value

SCHEMA = {
    "type": "object", "additionalProperties": False,
    "description": "Capacity and autoscaling: kit load-tests the image in the sandbox, derives requests, "
                   "limits, HPA target and replica counts from the measurement and checks the generated "
                   "manifests against them (docs/families/scaling.md).",
    "properties": {
        "baseline_rps": {"type": "number", "description": "typical load, requests per second (sizes min replicas)"},
        "peak_rps": {"type": "number", "description": "expected peak load, requests per second (sizes max replicas)"},
        "mix": {"type": "object", "additionalProperties": {"type": ["number", "string"]},
                "description": "path -> relative weight of GET requests the load test offers; default: "
                               "every detected route without parameters, minus the health and metrics paths"},
        "headroom": {"type": ["number", "string"], "description": "spare capacity kept at the working point, "
                     f"percent (e.g. 30 or \"30%\"; default {DEFAULT_HEADROOM:g})"},
        "mechanism": {"type": "string", "enum": list(MECHANISMS),
                      "description": "hpa-cpu (HPA on CPU utilisation, default), hpa-rps (HPA on requests per "
                                     "second through prometheus-adapter) or keda (ScaledObject, Prometheus trigger)"},
        "target_rps_per_pod": {"type": "number", "exclusiveMinimum": 0,
                               "description": "requests per second per pod the hpa-rps / keda autoscaler holds "
                                              "(default: the working point of scaling.measured, capacity / (1 + "
                                              "headroom)); one of the two is needed for those mechanisms"},
        "min_replicas": {"type": "integer", "minimum": 1, "maximum": 1000,
                         "description": "replica floor the sizing is checked against (default: the prod overlay's)"},
        "max_replicas": {"type": "integer", "minimum": 1, "maximum": 1000,
                         "description": "replica ceiling (default: the prod overlay's); a peak above what it "
                                        "carries at the measured capacity is an error"},
        "measured": {"type": "object", "additionalProperties": False,
                     "description": "figures from an earlier kit run's load test (its scaling.loadtest record "
                                    "prints this block); kit sizes from them at generation time",
                     "properties": {
                         "capacity_rps": {"type": "number", "description": "per-pod capacity within the objective"},
                         "cpu_at_capacity": {"type": "number", "description": "cores one pod used at capacity"},
                         "memory_mib": {"type": "number", "description": "the highest memory one pod used, MiB"},
                         "time_to_healthy_s": {"type": "number", "description": "pod start to healthy, seconds"}}},
    },
}


@dataclass(frozen=True)
class Measured:
    capacity_rps: float
    cpu_at_capacity: float
    memory_mib: float
    time_to_healthy_s: float


@dataclass(frozen=True)
class Scaling:
    baseline_rps: float | None       # None: the task states no load (replica counts are not sized)
    peak_rps: float | None
    mix: tuple[tuple[str, float], ...]   # (path, weight), weights summing to 1
    mix_source: str                  # "task" or "detected routes"
    headroom: float                  # fraction, 0.3 = 30 %
    mechanism: str
    min_replicas: int | None         # None: the prod overlay's bounds are used
    max_replicas: int | None
    measured: Measured | None
    target_rps_per_pod: float | None = None   # hpa-rps / keda: the task's per-pod target (else from measured)


def _positive(doc: TaskDoc, raw: dict, key: str) -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise doc.error(f"must be a positive number of requests per second, got {value!r}", "scaling", key,
                        hint="e.g. 120")
    return float(value)


def _weight(doc: TaskDoc, path: str, value: object) -> float:
    text = str(value).strip()
    try:
        weight = float(text)
    except ValueError:
        weight = float("nan")
    if isinstance(value, bool) or not math.isfinite(weight) or weight <= 0:
        raise doc.error(f"the weight of {path} must be a positive number, got {value!r}", "scaling", "mix", path,
                        hint="relative weights such as 3 and 1 (they need not add up to anything)")
    return weight


def _mix(doc: TaskDoc, raw: dict, service: Service) -> tuple[tuple[tuple[str, float], ...], str]:
    given = raw.get("mix")
    if given is not None:
        if not given:
            raise doc.error("the request mix is empty", "scaling", "mix", hint="name at least one path: {/items: 1}")
        pairs = []
        for path, value in given.items():
            if not str(path).startswith("/"):
                raise doc.error(f"{path!r} is not a path", "scaling", "mix", path, hint="paths start with /")
            pairs.append((str(path), _weight(doc, str(path), value)))
        source = "task"
    else:
        skip = {service.health_path, service.metrics_path, ""}
        pairs = [(r, 1.0) for r in service.facts.routes if r not in skip and not PARAM.search(r)]
        source = "detected routes"
    total = sum(w for _, w in pairs)
    return tuple((p, round(w / total, 6)) for p, w in sorted(pairs)), source


def _headroom(doc: TaskDoc, raw: dict) -> float:
    value = raw.get("headroom", DEFAULT_HEADROOM)
    try:
        percent = float(str(value).strip().rstrip("%"))
    except ValueError:
        percent = float("nan")
    if isinstance(value, bool) or not 0 <= percent <= 300:
        raise doc.error(f"must be a percentage between 0 and 300, got {value!r}", "scaling", "headroom",
                        hint="spare capacity at the working point, e.g. 30 (pods run at 1/1.3 of their capacity)")
    return percent / 100


def _measured(doc: TaskDoc, raw: dict) -> Measured | None:
    given = raw.get("measured")
    if given is None:
        return None
    values = {}
    for key in ("capacity_rps", "cpu_at_capacity", "memory_mib", "time_to_healthy_s"):
        value = given.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise doc.error(f"must be a positive number, got {value!r}", "scaling", "measured", key,
                            hint="copy the block the scaling.loadtest record of a kit run prints")
        values[key] = float(value)
    return Measured(**values)


def parse(doc: TaskDoc, service: Service) -> Scaling:
    raw = doc.data.get("scaling") or {}
    baseline, peak = _positive(doc, raw, "baseline_rps"), _positive(doc, raw, "peak_rps")
    if baseline is not None and peak is not None and peak < baseline:
        raise doc.error(f"peak_rps {peak:g} is below baseline_rps {baseline:g}", "scaling", "peak_rps",
                        hint="the peak is the highest load you expect; it cannot be lower than the baseline")
    low, high = raw.get("min_replicas"), raw.get("max_replicas")
    if low is not None and high is not None and low > high:
        raise doc.error(f"min_replicas {low} is above max_replicas {high}", "scaling", "min_replicas",
                        hint="make min_replicas <= max_replicas")
    mix, source = _mix(doc, raw, service)
    mechanism = raw.get("mechanism", "hpa-cpu")
    target = _positive(doc, raw, "target_rps_per_pod")
    result = Scaling(baseline, peak, mix, source, _headroom(doc, raw), mechanism, low, high, _measured(doc, raw),
                     target)
    if mechanism != "hpa-cpu" and target is None and result.measured is None:
        raise doc.error(f"mechanism {mechanism} scales on requests per second per pod, and the task gives no "
                        "target for it", "scaling", "mechanism",
                        hint="add scaling.measured (the block a kit run's scaling.loadtest record prints; "
                             "run once with mechanism hpa-cpu to get it) or scaling.target_rps_per_pod")
    if result.measured and peak is not None and high is not None:
        check_peak(doc, result, result.measured.capacity_rps, high)
    return result


def check_peak(doc: TaskDoc | None, scaling: Scaling, capacity_rps: float, max_replicas: int) -> str:
    """"" when max_replicas pods carry the peak at this capacity, else the problem with both
    numbers (raised as a TaskError when `doc` is given)."""
    if scaling.peak_rps is None or capacity_rps * max_replicas >= scaling.peak_rps:
        return ""
    needed = math.ceil(scaling.peak_rps / capacity_rps)
    message = (f"peak_rps {scaling.peak_rps:g} needs {needed} pods at the measured {capacity_rps:g} rps per pod; "
               f"max_replicas {max_replicas} carries only {capacity_rps * max_replicas:g} rps")
    if doc is not None:
        raise doc.error(message, "scaling", "peak_rps",
                        hint=f"raise max_replicas to at least {needed} (plus headroom), or make each pod faster")
    return message
