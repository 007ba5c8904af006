"""Recording and alerting rules derived from the SLO (Google SRE workbook, chapter 5:
multi-window, multi-burn-rate alerts), plus target down, restarts and saturation.

Each alert carries the series that make it fire and the series that keep it silent, so its
promtool unit test is generated from the same definition (kit/families/observability/promrules.py)."""
from __future__ import annotations

from dataclasses import dataclass, field

from kit.families.observability.options import Slo
from kit.families.observability.sli import ERROR_RECORD, OPERATOR_TARGET_LABELS, excluded_paths, path_label_names
from kit.model import Spec

# (long window, short window, share of the budget spent, severity, for)
BURN_WINDOWS = (("1h", "5m", 0.02, "page", "2m"), ("6h", "30m", 0.05, "page", "2m"),
                ("1d", "2h", 0.10, "warn", "15m"), ("3d", "6h", 0.10, "warn", "15m"))
HOURS = {"5m": 5 / 60, "30m": 0.5, "1h": 1, "2h": 2, "6h": 6, "1d": 24, "3d": 72}
# kube-state-metrics' per-container limit (Kubernetes). Not cAdvisor's container_spec_memory_limit_bytes:
# kube-prometheus-stack drops container_spec.* by default (rules.dropped_metrics)
MEMORY_LIMIT = "kube_pod_container_resource_limits"
MEMORY_MATCHER = 'resource="memory"'



@dataclass(frozen=True)
class RuleTest:
    firing: dict[str, str]          # series -> promtool values, making the alert fire
    silent: dict[str, str]          # series -> values, keeping it silent
    eval_time: str
    labels: dict[str, str]          # labels the fired alert carries besides the rule's own
    between: dict[str, str] = field(default_factory=dict)   # a slow burn: the ticket fires, the page not
    # further cases: (name suffix, series, labels of the one alert expected, None for silence)
    extra: tuple[tuple[str, dict[str, str], dict[str, str] | None], ...] = ()


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    for_: str
    severity: str                   # page | warn
    summary: str
    description: str
    action: str                     # the runbook's first steps
    test: RuleTest
    group: str


def _num(value: float) -> str:
    return f"{round(value, 10):g}"


def burn_factor(slo: Slo, long: str, share: float) -> float:
    """Burn rate that spends `share` of the budget within `long` (14.4 for 2% in 1h over 30d)."""
    return round(share * slo.window_days * 24 / HOURS[long], 6)


def _burn_alerts(spec: Spec, slo: Slo, kind: str, objective: float, tests: tuple[RuleTest, RuleTest]) -> list[Alert]:
    budget = 1 - objective / 100
    alerts = []
    for severity, speed, test in (("page", "Fast", tests[0]), ("warn", "Slow", tests[1])):
        windows = [w for w in BURN_WINDOWS if w[3] == severity]
        sel = f'service="{spec.name}",slo="{kind}"'
        parts = [f"(\n  {ERROR_RECORD.format(w=long)}{{{sel}}} > {_num(burn_factor(slo, long, share) * budget)}\n"
                 f"and\n  {ERROR_RECORD.format(w=short)}{{{sel}}} > {_num(burn_factor(slo, long, share) * budget)}\n)"
                 for long, short, share, _s, _f in windows]
        spent = " or ".join(f"{int(share * 100)}% in {long}" for long, _s, share, _x, _f in windows)
        label = "failing requests" if kind == "availability" else f"requests slower than {slo.latency_threshold_s:g}s"
        alerts.append(Alert(
            f"{kind.capitalize()}ErrorBudgetBurn{speed}", "\nor\n".join(parts), windows[0][4], severity,
            f"{spec.name}: {kind} error budget burning {speed.lower()}",
            f"{spec.name} is spending its {kind} error budget ({_num(100 - objective)}% of requests over "
            f"{slo.window_days}d may be {label}) fast enough to spend {spent}.",
            "Check recent deploys and the error/latency panels; roll back a bad release; check the "
            "dependencies (db, cache) panels.", test, "slo-alerts"))
    return alerts


def test_namespace(job: str, env: str = "prod") -> str:
    """The namespace the generated promtool series live in (an overlay's, e.g. shop-api-prod)."""
    return f"{job}-{env}"


def _series(job: str, metric: str, extra: str, values: str, env: str = "prod") -> dict[str, str]:
    labels = f'job="{job}",namespace="{test_namespace(job, env)}"' + (f",{extra}" if extra else "")
    return {f"{metric}{{{labels}}}": values}


def slow_burn_errors(slo: Slo, budget: float, total: int = 1000) -> float | None:
    """Failing requests out of `total` burning the budget between the ticket thresholds and the
    page thresholds (4.5x for a 30-day window); None when that burn exceeds every request."""
    errors = round(total * 4.5 * slo.window_days / 30 * budget, 6)
    return errors if errors < total else None


def _between(job: str, metric: str, ok: str, bad: str, errors: float | None) -> dict[str, str]:
    if errors is None:
        return {}
    return {**_series(job, metric, ok, f"0+{_num(1000 - errors)}x200"), **_series(job, metric, bad, f"0+{_num(errors)}x200")}


def slo_alerts(spec: Spec, slo: Slo) -> list[Alert]:
    m, job = slo.metrics, spec.name
    if not m.requests:
        return []
    ok, bad = f'{m.status_label}="200"', f'{m.status_label}="500"'
    labels = {"service": job, "namespace": test_namespace(job)}
    avail = RuleTest(firing={**_series(job, m.requests, ok, "0+10x200"), **_series(job, m.requests, bad, "0+10x200")},
                     silent={**_series(job, m.requests, ok, "0+10x200"), **_series(job, m.requests, bad, "0+0x200")},
                     eval_time="180m", labels={**labels, "slo": "availability"},
                     between=_between(job, m.requests, ok, bad, slow_burn_errors(slo, 1 - slo.availability / 100)),
                     extra=_availability_cases(spec, slo))
    alerts = _burn_alerts(spec, slo, "availability", slo.availability, (avail, avail))
    if m.duration:
        le, inf = f'le="{slo.latency_le}"', 'le="+Inf"'
        slow = {**_series(job, f"{m.duration}_bucket", le, "0+5x200"),
                **_series(job, f"{m.duration}_bucket", inf, "0+10x200"), **_series(job, f"{m.duration}_count", "", "0+10x200")}
        fast = {**_series(job, f"{m.duration}_bucket", le, "0+10x200"),
                **_series(job, f"{m.duration}_bucket", inf, "0+10x200"), **_series(job, f"{m.duration}_count", "", "0+10x200")}
        errors = slow_burn_errors(slo, 1 - slo.latency_objective / 100)
        between = {} if errors is None else {**_series(job, f"{m.duration}_bucket", le, f"0+{_num(1000 - errors)}x200"),
                                             **_series(job, f"{m.duration}_count", "", "0+1000x200")}
        lat = RuleTest(firing=slow, silent=fast, eval_time="180m", labels={**labels, "slo": "latency"},
                       between=between)
        alerts += _burn_alerts(spec, slo, "latency", slo.latency_objective, (lat, lat))
    return alerts


def _availability_cases(spec: Spec, slo: Slo) -> tuple:
    """Errors in one namespace (prod, beside a healthy dev) fire for that namespace only; failing
    health probes do not burn the budget when the counter carries the route. Whether an alert
    pages is Alertmanager's routing (dev and staging never do: routing.env_routing)."""
    m, job = slo.metrics, spec.name
    ok, bad = f'{m.status_label}="200"', f'{m.status_label}="500"'
    cases = [(" for the namespace with errors only (prod, beside a healthy dev)",
              {**_series(job, m.requests, ok, "0+10x200", "dev"), **_series(job, m.requests, ok, "0+10x200"),
               **_series(job, m.requests, bad, "0+10x200")},
              {"service": job, "slo": "availability", "namespace": test_namespace(job)})]
    if excluded_paths(spec, slo) and spec.health_path:
        probe = f'{m.path_label}="{spec.health_path}",{m.status_label}="503"'
        cases.append((f" while {spec.health_path} answers 503",
                      {**_series(job, m.requests, f'{m.path_label}="/items",{ok}', "0+10x200"),
                       **_series(job, m.requests, probe, "0+10x200")}, None))
        operator = _operator_case(spec, slo)
        if operator:
            cases.append(operator)
    return tuple(cases)


def _operator_case(spec: Spec, slo: Slo) -> tuple | None:
    """The series as prometheus-operator shapes them (endpoint = the port name, the app's route in
    exported_endpoint): a user error share that pages, diluted below every page threshold by
    health probes unless those are left out."""
    m, job, label = slo.metrics, spec.name, slo.metrics.path_label
    if len(path_label_names(slo)) < 2 or not OPERATOR_TARGET_LABELS[label]:
        return None
    budget, six_hour = 1 - slo.availability / 100, burn_factor(slo, "6h", 0.05)
    share = max(0.03, 2 * six_hour * budget)               # 3% for 99.9% over 30 days
    dilution = int(2 * share / (six_hour * budget)) + 1    # probes per user request, plus one
    if share > 0.5:
        return None
    target = f'{label}="{OPERATOR_TARGET_LABELS[label]}",service="{job}"'

    def series(path: str, status: str, per_minute: float) -> dict[str, str]:
        extra = f'{target},exported_{label}="{path}",{m.status_label}="{status}"'
        return _series(job, m.requests, extra, f"0+{_num(per_minute)}x200")
    return (f" when {_num(share * 100)}% of user requests fail, scraped through prometheus-operator "
            f"(exported_{label}) beside {dilution - 1}x as many {spec.health_path} probes",
            {**series("/items", "200", 100 * (1 - share)), **series("/items", "500", 100 * share),
             **series(spec.health_path, "200", 100 * (dilution - 1))},
            {"service": job, "slo": "availability", "namespace": test_namespace(job)})


def platform_alerts(spec: Spec, slo: Slo) -> list[Alert]:
    """Target down, restarts (crash loop) and saturation: CPU and memory against the service
    model's limits, and the app's own in-flight gauge against its worker capacity."""
    job = spec.name
    inst = f'instance="{job}:{spec.metrics_port}"'
    sel = f'{{job="{job}"}}'
    labels = {"service": job, "job": job, "instance": f"{job}:{spec.metrics_port}", "namespace": test_namespace(job)}
    dev = f'{spec.option("kubernetes").namespace}-dev'
    down = RuleTest(firing=_series(job, "up", inst, "1 1 0x10"), silent=_series(job, "up", inst, "1x12"),
                    eval_time="10m", labels=labels,
                    extra=((f" in {dev}, as a ticket (dev never pages)", {f'up{{job="{job}",namespace="{dev}",{inst}}}': "1 1 0x10"},
                            {**labels, "namespace": dev}),))
    alerts = [Alert("TargetDown", f"up{sel} == 0", "2m", "page",
                    f"{job}: a metrics target is down",
                    f"Prometheus cannot scrape {job} at {{{{ $labels.instance }}}}{spec.metrics_path or ''}: the "
                    "instance is down, unreachable, or no longer serves metrics.",
                    "Check whether the container or pod runs (docker compose ps / kubectl get pods), its logs, "
                    "and that the metrics path answers.", down, "availability"),
              # warn, not page: absent() carries no namespace, so a missing dev or staging target would page
              Alert("TargetMissing", f"absent({'up' + sel})", "5m", "warn",
                    f"{job}: no metrics target at all",
                    f"Prometheus has had no {job} target for 5 minutes: no pod or container is discovered "
                    "(scaled to zero, deleted, or the scrape configuration or ServiceMonitor no longer "
                    "selects it), so TargetDown cannot fire.",
                    "Check that the service runs (docker compose ps / kubectl get pods -A -l "
                    f"app.kubernetes.io/name={job}) and that Prometheus's targets page lists the job.",
                    RuleTest(firing={'up{job="other"}': "1x20"}, silent=_series(job, "up", inst, "1x20"),
                             eval_time="10m", labels={"service": job, "job": job}), "availability")]
    if not slo.process_metrics:   # no process collector: no restart, CPU or memory alert can be computed
        return alerts + resource_alerts(spec, slo)
    restarts = RuleTest(firing=_series(job, "process_start_time_seconds", inst, "1000+60x30"),
                        silent=_series(job, "process_start_time_seconds", inst, "1000x30"),
                        eval_time="20m", labels=labels)
    alerts.append(Alert("ServiceRestarting", f"changes(process_start_time_seconds{sel}[15m]) > 2", "1m", "page",
                        f"{job}: restarting repeatedly (crash loop)",
                        f"{job} at {{{{ $labels.instance }}}} started more than twice within 15 minutes.",
                        "Read the logs of the previous run (docker compose logs / kubectl logs --previous): a "
                        "failing dependency, a bad setting or an out-of-memory kill.", restarts, "saturation"))
    return alerts + resource_alerts(spec, slo)


def resource_alerts(spec: Spec, slo: Slo) -> list[Alert]:
    """Saturation against the service model's CPU and memory limits and its handler capacity."""
    job = spec.name
    inst = f'instance="{job}:{spec.metrics_port}"'
    sel = f'{{job="{job}"}}'
    labels = {"service": job, "job": job, "instance": f"{job}:{spec.metrics_port}", "namespace": test_namespace(job)}
    alerts = []
    if not slo.process_metrics:
        return alerts + _saturation(spec, slo, job, inst, sel, labels)
    cpu = RuleTest(firing=_series(job, "process_cpu_seconds_total", inst, f"0+{_num(60 * spec.cpu)}x40"),
                   silent=_series(job, "process_cpu_seconds_total", inst, f"0+{_num(6 * spec.cpu)}x40"),
                   eval_time="30m", labels=labels)
    alerts.append(Alert("HighCpuUsage", f"rate(process_cpu_seconds_total{sel}[5m]) / {_num(spec.cpu)} > 0.9", "15m",
                        "warn", f"{job}: CPU above 90% of its limit",
                        f"{job} at {{{{ $labels.instance }}}} uses more than 90% of {_num(spec.cpu)} CPU, the "
                        "base limit (service.resources.cpu); a Kubernetes overlay may set another limit.",
                        "Look at the request rate; scale out or raise the limit (service.resources.cpu).", cpu,
                        "saturation"))
    alerts.append(Alert("HighMemoryUsage", f"{memory_ratio(spec)} > 0.9", "15m",
                        "warn", f"{job}: memory above 90% of its limit",
                        f"{job} at {{{{ $labels.instance }}}} uses more than 90% of its memory limit and will be "
                        f"killed when it reaches it. The limit is the container's own ({MEMORY_LIMIT} from "
                        f"kube-state-metrics, per pod, so each Kubernetes overlay's limit) where Prometheus has it, "
                        f"else the base limit of {spec.memory} bytes (service.resources.memory, the compose limit).",
                        "Look for a leak (memory rising without traffic); raise the overlay's memory limit or "
                        "service.resources.memory.", _memory_test(spec, inst, labels), "saturation"))
    return alerts + _saturation(spec, slo, job, inst, sel, labels)


def _saturation(spec: Spec, slo: Slo, job: str, inst: str, sel: str, labels: dict) -> list[Alert]:
    alerts = []
    if slo.metrics.in_flight:
        cap = capacity(spec)
        busy = RuleTest(firing=_series(job, slo.metrics.in_flight, inst, f"{cap}x40"),
                        silent=_series(job, slo.metrics.in_flight, inst, "0x40"), eval_time="30m", labels=labels)
        alerts.append(Alert("RequestsSaturated", f"avg_over_time({slo.metrics.in_flight}{sel}[5m]) >= {_num(0.8 * cap)}",
                            "10m", "warn", f"{job}: request handlers nearly all busy",
                            f"{job} at {{{{ $labels.instance }}}} had on average 80% or more of its {cap} request "
                            "handlers (workers x threads) busy for 10 minutes; new requests queue.",
                            "Check latency and slow dependencies; scale out or raise workers/threads.", busy,
                            "saturation"))
    return alerts


def memory_ratio(spec: Spec) -> str:
    """Resident memory over the container's limit: kube-state-metrics' per pod where it is scraped
    (Kubernetes, kube-prometheus-stack), else the service model's base limit (compose)."""
    rss = f'process_resident_memory_bytes{{job="{spec.name}"}}'
    limit = f'{MEMORY_LIMIT}{{{MEMORY_MATCHER},container="{spec.name}"}} > 0'
    return (f"(\n  {rss}\n  / on (namespace, pod) group_left ()\n  max by (namespace, pod) ({limit})\nor\n"
            f"  ({rss} unless on (namespace, pod) {limit})\n  / {spec.memory}\n)")


def _memory_test(spec: Spec, inst: str, labels: dict[str, str]) -> RuleTest:
    job, rss, base = spec.name, "process_resident_memory_bytes", spec.memory
    pod = f'{inst},pod="{job}-0"'
    limit = (f'{MEMORY_LIMIT}{{namespace="{test_namespace(job)}",pod="{job}-0",container="{job}",'
             f'{MEMORY_MATCHER},unit="byte"}}')
    return RuleTest(firing=_series(job, rss, inst, f"{int(base * 0.95)}x40"),
                    silent=_series(job, rss, inst, f"{int(base * 0.2)}x40"), eval_time="30m", labels=labels,
                    extra=((" against the pod's own larger limit", {**_series(job, rss, pod, f"{int(base * 0.95)}x40"),
                                                                    limit: f"{base * 2}x40"}, None),
                           (" against the pod's own smaller limit", {**_series(job, rss, pod, f"{int(base * 0.5)}x40"),
                                                                     limit: f"{int(base * 0.5)}x40"},
                            {**labels, "pod": f"{job}-0"})))


def capacity(spec: Spec) -> int:
    """Concurrent requests one instance handles: gunicorn's workers x threads from the command."""
    args = list(spec.command)

    def value(flag: str, default: int) -> int:
        return int(args[args.index(flag) + 1]) if flag in args and args[args.index(flag) + 1].isdigit() else default
    return value("--workers", 1) * value("--threads", 1)


def all_alerts(spec: Spec, slo: Slo) -> list[Alert]:
    """Every alert on the app. None when the service model has no metrics path: the app is not
    scraped (rules.scrape_paths), so `up` would be 0 or absent forever and TargetDown or
    TargetMissing would page on the first deploy; the dependencies' exporters are still scraped."""
    if not spec.metrics_path:
        return []
    return slo_alerts(spec, slo) + platform_alerts(spec, slo)
