"""The `slo` task section: availability and latency objectives, the window, and the app's
request metrics the rules and dashboards are built on (monitoring/)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kit.errors import TaskError

if TYPE_CHECKING:
    from kit.model import Spec
    from kit.task import TaskDoc

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)\s*$")
WINDOW = re.compile(r"^(\d+)d$")
UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0}
PATH_LABELS = ("endpoint", "path", "route", "handler")   # a request counter's route label, by preference
# kube-prometheus-stack's Prometheus selects ServiceMonitors and PrometheusRules by release: <helm release>
# (charts/kube-prometheus-stack/templates/prometheus/prometheus.yaml); this is the release name its docs use
DEFAULT_RELEASE = "kube-prometheus-stack"

SCHEMA = {
    "type": "object", "additionalProperties": False,
    "description": "Service level objectives: kit derives recording rules, multi-window multi-burn-rate "
                   "alerts, dashboards and runbooks from them (monitoring/).",
    "properties": {
        "availability": {"type": "number", "description": "percent of requests that must not fail (5xx), "
                         "strictly between 0 and 100, e.g. 99.9"},
        "latency": {"type": "object", "additionalProperties": False, "properties": {
            "threshold": {"type": ["string", "number"], "description": "a request is fast when it finishes "
                          "within this, e.g. 250ms or 0.5s; must be a bucket boundary of the duration histogram"},
            "objective": {"type": "number", "description": "percent of requests that must be fast, e.g. 99"}}},
        "window": {"type": "string", "description": "the SLO window in days, e.g. 30d"},
        "site_url": {"type": "string", "pattern": "^https?://[^\\s/]+(/\\S*)?$",
                     "description": "the address where your team publishes kit's site (kit publish); alerts "
                     "link to <site_url>/runbooks/<Alert>.html, the page the site holds for each alert. "
                     "Unset: the links are site-relative (runbooks/<Alert>.html) and the evidence record "
                     "observability.runbook_base is skipped saying so"},
        "runbook_url": {"type": "string", "pattern": "^https?://[^\\s/]+(/\\S*)?$",
                        "description": "instead of site_url: where you publish the runbook pages yourself "
                        "(monitoring/runbooks/*.md built as HTML); alerts link to <runbook_url>/<Alert>.html"},
        "metrics": {"type": "object", "additionalProperties": False, "properties": {
            "requests": {"type": "string", "description": "counter of handled requests, e.g. shop_http_requests_total"},
            "duration": {"type": "string", "description": "histogram of request durations in seconds "
                         "(without _bucket), e.g. shop_http_request_duration_seconds"},
            "in_flight": {"type": "string", "description": "gauge of requests being handled (optional)"},
            "status_label": {"type": "string", "description": "label on the counter holding the HTTP status"},
            "path_label": {"type": "string", "description": "label on the counter holding the route or path; "
                           "the health and metrics paths are left out of the SLIs (detected from the "
                           "counter's labels: endpoint, path, route or handler)"}}},
        "prometheus_release": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                               "description": "the helm release name of your kube-prometheus-stack, whose "
                               "Prometheus selects ServiceMonitors and PrometheusRules labelled release: <it> "
                               f"(default {DEFAULT_RELEASE})"},
        "operator_labels": {"type": "object", "additionalProperties": {"type": "string"},
                            "description": "the labels your Prometheus's serviceMonitorSelector and "
                            "ruleSelector match, put on the ServiceMonitors and the PrometheusRule "
                            "(default release: <prometheus_release>); with prometheus_release set they "
                            "must include release: <prometheus_release>"},
    },
}


@dataclass(frozen=True)
class SloMetrics:
    requests: str          # "" when the app exports none (SLO rules are then not generated)
    duration: str
    in_flight: str
    status_label: str
    detected: bool         # True when read from the source rather than the task
    path_label: str = ""   # the counter's route label ("" when it has none)


@dataclass(frozen=True)
class Slo:
    availability: float    # percent
    latency_threshold_s: float
    latency_objective: float  # percent
    window_days: int
    runbook_url: str       # the base of the alerts' runbook links: <base>/<Alert>.html (runbooks.runbook_link)
    metrics: SloMetrics
    operator_labels: tuple[tuple[str, str], ...] = ()     # put on the ServiceMonitors and the PrometheusRule
    prometheus_selector: tuple[tuple[str, str], ...] = ()  # what the declared Prometheus's selectors match
    selector_source: str = ""                                # where prometheus_selector comes from
    runbook_source: str = ""      # slo.site_url, slo.runbook_url, or "" (unknown: site-relative links)
    le_style: str = "python"                                 # python | js: how the client writes `le`
    process_metrics: bool = True     # the app exports process_cpu_seconds_total, process_start_time_seconds...

    @property
    def latency_le(self) -> str:
        """The bucket's `le` label as the client writes it: Python's prometheus_client 0.25, 1.0;
        prom-client (JavaScript's number to string) 0.25, 1 (prom-client lib/histogram.js, `le: upperBound`)."""
        if self.le_style in ("js", "go"):    # Go's strconv.FormatFloat(v, 'g', -1, 64): 0.25, 1
            value = float(self.latency_threshold_s)
            return str(int(value)) if value.is_integer() else repr(value)
        return repr(float(self.latency_threshold_s))


def _error(doc: TaskDoc, message: str, path: tuple, hint: str) -> TaskError:
    return doc.error(message, "slo", *path, hint=hint)


def _percent(doc: TaskDoc, value: object, path: tuple) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < float(value) < 100:
        raise _error(doc, f"must be a percentage strictly between 0 and 100, got {value!r}", path,
                     "e.g. 99.9 (100 leaves no error budget; 0 is no objective)")
    return float(value)


def parse_duration(value: object) -> float:
    """Seconds from 250ms, 0.5s, 1m or a bare number of seconds; ValueError otherwise."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    match = DURATION.match(str(value))
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"cannot parse {value!r} as a duration")
    return round(float(match.group(1)) * UNIT_SECONDS[match.group(2)], 6)


def detect_metrics(source: Path) -> SloMetrics:
    """The app's request counter, duration histogram and in-flight gauge, read from the
    prometheus_client declarations in its Python source."""
    found: dict[str, list] = {"Counter": [], "Histogram": [], "Gauge": []}
    decl = re.compile(r"\b(Counter|Histogram|Gauge)\(\s*[\"']([a-zA-Z_:][a-zA-Z0-9_:]*)[\"']([^)]*)\)")
    for path in sorted(Path(source).rglob("*.py")):
        for kind, name, rest in decl.findall(path.read_text(errors="replace")):
            found[kind].append((name, re.findall(r"[\"']([a-zA-Z_][a-zA-Z0-9_]*)[\"']", rest)))
    counter = next(((n, labels) for n, labels in found["Counter"] if "request" in n), ("", []))
    found = {kind: [n for n, _ in names] for kind, names in found.items()}
    requests = counter[0]
    if requests and not requests.endswith("_total"):
        requests += "_total"
    duration = next((n for n in found["Histogram"] if "duration" in n or "latency" in n), "")
    in_flight = next((n for n in found["Gauge"] if "in_flight" in n or "inprogress" in n), "")
    path_label = next((label for label in PATH_LABELS if label in counter[1]), "")
    return SloMetrics(requests, duration, in_flight, "status", True, path_label)


# prom-client 15.1.3 lib/histogram.js: the default buckets of a Histogram
PROM_CLIENT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# express-prom-bundle 8.0.0 src/index.js: httpDurationMetricName 'http_request_duration_seconds', a
# histogram with the label status_code (method and path only with includeMethod/includePath), buckets
# [0.003, 0.03, 0.1, 0.3, 1.5, 10]; no request counter: its _count series counts the requests
BUNDLE_METRIC, BUNDLE_BUCKETS = "http_request_duration_seconds", (0.003, 0.03, 0.1, 0.3, 1.5, 10)
JS_DECL = re.compile(r"new\s+(?:[\w.]+\.)?(Counter|Histogram|Gauge|Summary)\(\s*\{(.*?)\}\s*\)", re.S)


def detect_node_metrics(source: Path, facts) -> tuple[SloMetrics, tuple[float, ...]]:
    """The request metrics of a Node service: express-prom-bundle's, or the prom-client Counter,
    Histogram and Gauge it declares (`new client.Histogram({ name, labelNames, buckets })`); and the
    duration histogram's buckets (the latency threshold must be one of them)."""
    if facts.metrics_library == "express-prom-bundle":
        return SloMetrics(f"{BUNDLE_METRIC}_count", BUNDLE_METRIC, "", "status_code", True,
                          "path"), BUNDLE_BUCKETS
    found: dict[str, list] = {"Counter": [], "Histogram": [], "Gauge": [], "Summary": []}
    for path in sorted(Path(source).rglob("*")):
        if path.suffix not in (".js", ".mjs", ".cjs", ".ts") or "node_modules" in path.parts or not path.is_file():
            continue
        for kind, body in JS_DECL.findall(path.read_text(errors="replace")):
            name = re.search(r"""\bname\s*:\s*['"`]([a-zA-Z_:][a-zA-Z0-9_:]*)['"`]""", body)
            if not name:
                continue
            labels = re.search(r"labelNames\s*:\s*\[([^\]]*)\]", body)
            buckets = re.search(r"buckets\s*:\s*\[([^\]]*)\]", body)
            found[kind].append((name.group(1), re.findall(r"""['"`](\w+)['"`]""", labels.group(1)) if labels else [],
                                tuple(float(b) for b in re.findall(r"[\d.]+(?:e-?\d+)?", buckets.group(1)))
                                if buckets else PROM_CLIENT_BUCKETS))
    counter = next((c for c in found["Counter"] if "request" in c[0]), None)
    histogram = next((h for h in found["Histogram"] if "duration" in h[0] or "latency" in h[0]), None)
    in_flight = next((g[0] for g in found["Gauge"] if "in_flight" in g[0] or "inprogress" in g[0]), "")
    labelled = counter or histogram
    if counter:          # prom-client appends no suffix: the name is exported as written
        requests = counter[0]
    elif histogram:      # no counter: the histogram's _count series counts the requests
        requests = f"{histogram[0]}_count"
    else:
        requests = ""
    labels = labelled[1] if labelled else []
    status = next((label for label in ("status_code", "status", "code") if label in labels), "")
    if requests and not status:
        requests = ""     # no status label: no error ratio, so no availability SLO from these metrics
    path_label = next((label for label in PATH_LABELS if label in labels), "")
    return (SloMetrics(requests, histogram[0] if histogram else "", in_flight, status or "status", True, path_label),
            histogram[2] if histogram else PROM_CLIENT_BUCKETS)


GO_DECL = re.compile(r"prometheus\.New(Counter|Histogram|Gauge)(?:Vec)?\(\s*prometheus\.\w+Opts\{(.*?)\}\s*(?:,\s*\[\]string\{([^}]*)\})?",
                     re.S)
GO_HANDWRITTEN = re.compile(r"# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|histogram|gauge)")


def detect_go_metrics(source: Path) -> SloMetrics:
    """A Go service's request metrics: client_golang's `prometheus.NewCounterVec(prometheus.CounterOpts{
    Namespace, Subsystem, Name}, []string{labels})` (the name is Namespace_Subsystem_Name), or a
    hand-written exposition (`# TYPE name counter` and a `{code=` label) for stdlib-only services."""
    found: dict[str, list] = {"Counter": [], "Histogram": [], "Gauge": []}
    for path in sorted(Path(source).rglob("*.go")):
        if "vendor" in path.parts or path.name.endswith("_test.go"):
            continue
        text = path.read_text(errors="replace")
        for kind, opts, labels in GO_DECL.findall(text):
            parts = [re.search(rf'\b{key}\s*:\s*"([^"]*)"', opts) for key in ("Namespace", "Subsystem", "Name")]
            name = "_".join(p.group(1) for p in parts if p and p.group(1))
            if parts[2]:
                found[kind].append((name, re.findall(r'"(\w+)"', labels)))
        for name, kind in GO_HANDWRITTEN.findall(text):
            labels = re.findall(rf"{re.escape(name)}(?:_bucket)?\{{(\w+)=", text)
            found[kind.capitalize()].append((name, labels))
    counter = next((c for c in found["Counter"] if "request" in c[0]), None)
    histogram = next((h for h in found["Histogram"] if "duration" in h[0] or "latency" in h[0]), None)
    in_flight = next((g[0] for g in found["Gauge"] if "in_flight" in g[0] or "inprogress" in g[0]), "")
    labelled = counter or histogram
    requests = counter[0] if counter else (f"{histogram[0]}_count" if histogram else "")
    labels = labelled[1] if labelled else []
    status = next((label for label in ("code", "status_code", "status") if label in labels), "")
    path_label = next((label for label in PATH_LABELS if label in labels), "")
    return SloMetrics(requests if status else "", histogram[0] if histogram else "", in_flight, status or "status",
                      True, path_label)


def exports_process_metrics(spec: Spec) -> bool:
    """Whether the app's metrics include the process collector's process_cpu_seconds_total,
    process_resident_memory_bytes and process_start_time_seconds, which the CPU, memory and restart
    alerts and panels read: prometheus_client registers it by default; prom-client only after
    collectDefaultMetrics() (prom-client lib/defaultMetrics.js; express-prom-bundle passes its
    promClient.collectDefaultMetrics option to it); client_golang's default registry has it
    (prometheus/registry.go: init registers NewProcessCollector); a hand-written exposition only if
    it writes them."""
    stack = getattr(spec, "stack", "python")
    if stack == "python":
        return True
    suffixes = (".go",) if stack == "go" else (".js", ".mjs", ".cjs", ".ts")
    code = "\n".join(p.read_text(errors="replace") for p in sorted(Path(spec.source).rglob("*"))
                     if p.suffix in suffixes and p.is_file() and "node_modules" not in p.parts
                     and "vendor" not in p.parts)
    if "process_cpu_seconds_total" in code:
        return True
    if stack == "node":
        return "collectDefaultMetrics" in code
    return "promhttp.Handler()" in code


def parse(doc: TaskDoc, spec: Spec) -> Slo:
    raw = doc.data.get("slo") or {}
    latency = raw.get("latency") or {}
    node = getattr(spec, "stack", "python") == "node"
    buckets: tuple[float, ...] = ()
    if node and spec.metrics_path:
        node_metrics, buckets = detect_node_metrics(spec.source, spec.facts)
    default_threshold: object = "250ms"
    if node and buckets and 0.25 not in buckets:
        # the threshold must be a bucket boundary: the first one at or above 250ms
        default_threshold = next((b for b in sorted(buckets) if b >= 0.25), max(buckets))
    try:
        threshold = parse_duration(latency.get("threshold", default_threshold))
    except ValueError as exc:
        raise _error(doc, str(exc), ("latency", "threshold"),
                     "give a duration such as 250ms, 0.5s or 1s (a bucket boundary of the histogram)") from None
    window = str(raw.get("window", "30d"))
    match = WINDOW.match(window)
    if not match or not 1 <= int(match.group(1)) <= 365:
        raise _error(doc, f"must be a number of days such as 30d, got {window!r}", ("window",),
                     "the burn-rate factors assume a window in days, e.g. 28d or 30d")
    given = raw.get("metrics") or {}
    if node and spec.metrics_path:
        metrics = node_metrics
    elif getattr(spec, "stack", "python") == "go" and spec.metrics_path:
        metrics = detect_go_metrics(spec.source)
    else:
        metrics = detect_metrics(spec.source) if spec.metrics_path else SloMetrics("", "", "", "status", True)
    if given:
        metrics = SloMetrics(given.get("requests", metrics.requests), given.get("duration", metrics.duration),
                             given.get("in_flight", metrics.in_flight),
                             given.get("status_label", metrics.status_label), False,
                             given.get("path_label", metrics.path_label))
    return Slo(availability=_percent(doc, raw.get("availability", 99.9), ("availability",)),
               latency_threshold_s=threshold,
               latency_objective=_percent(doc, latency.get("objective", 99), ("latency", "objective")),
               window_days=int(match.group(1)),
               metrics=metrics, **_runbook_base(doc, raw), **_operator(doc, raw),
               le_style="js" if node else ("go" if getattr(spec, "stack", "") == "go" else "python"),
               process_metrics=exports_process_metrics(spec) if spec.metrics_path else True)


SITE_RUNBOOKS = "runbooks"     # the folder kit's site publishes monitoring/runbooks/ as (kit/publish.py)
URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")


def _runbook_base(doc: TaskDoc, raw: dict) -> dict:
    """Where the alerts' runbook links point: <site_url>/runbooks (kit's site, published by the
    team), or runbook_url (pages published elsewhere), or, with neither, the site-relative
    `runbooks`: no invented domain; observability.runbook_base records the gap."""
    site, own = raw.get("site_url"), raw.get("runbook_url")
    if site is not None and own is not None:
        raise _error(doc, "give site_url or runbook_url, not both", ("runbook_url",),
                     "site_url: where kit's site is published (alerts link to <site_url>/runbooks/<Alert>.html); "
                     "runbook_url: where you publish the runbook pages yourself")
    for key, value in (("site_url", site), ("runbook_url", own)):
        if value is not None and not URL.match(str(value)):
            raise _error(doc, f"must be an http(s) URL, got {value!r}", (key,),
                         "e.g. https://docs.acme.internal/shop-api (no trailing page name)")
    if site is not None:
        return {"runbook_url": f"{str(site).rstrip('/')}/{SITE_RUNBOOKS}", "runbook_source": "slo.site_url"}
    if own is not None:
        return {"runbook_url": str(own).rstrip("/"), "runbook_source": "slo.runbook_url"}
    return {"runbook_url": SITE_RUNBOOKS, "runbook_source": ""}


def _operator(doc: TaskDoc, raw: dict) -> dict:
    """The labels the declared Prometheus selects (kube-prometheus-stack's default: release: <helm
    release>) and the labels kit puts on the operator objects."""
    release, given = raw.get("prometheus_release"), raw.get("operator_labels")
    labels = {str(k): str(v) for k, v in (given or {}).items()} if given is not None else \
        {"release": release or DEFAULT_RELEASE}
    if release and labels.get("release") != release:
        raise _error(doc, f"must include release: {release} (slo.prometheus_release), got {labels}",
                     ("operator_labels",), "kube-prometheus-stack's Prometheus selects ServiceMonitors and "
                     "PrometheusRules by release: <helm release name>; add it or drop prometheus_release")
    if release or given is None:
        selector = {"release": release or DEFAULT_RELEASE}
        source = "slo.prometheus_release" if release else "the default helm release name; set slo.prometheus_release to yours"
    else:
        selector, source = dict(labels), "slo.operator_labels"
    return {"operator_labels": tuple(sorted(labels.items())),
            "prometheus_selector": tuple(sorted(selector.items())), "selector_source": source}
