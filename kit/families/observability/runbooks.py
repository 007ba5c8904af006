"""Runbook pages, one per alert: what the on-call person sees, who is affected, the dashboard panels
and PromQL to look at, numbered diagnosis steps for compose and Kubernetes, mitigation, rollback,
escalation and the rule itself, all written from the service model (its dependencies, the
overlays' namespaces, the SLO figures) so that every command and query names real objects.

The site publishes `monitoring/runbooks/<Alert>.md` as `runbooks/<Alert>.html` (kit/publish.py,
`use_directory_urls: false`); alerts link there (`runbook_link`)."""
from __future__ import annotations

from dataclasses import dataclass

from kit.families.observability import exporters
from kit.families.observability.dashboard import panel_specs
from kit.families.observability.options import SITE_RUNBOOKS, Slo
from kit.families.observability.promrules import BURN_WINDOWS, Alert, all_alerts, burn_factor, capacity, memory_ratio
from kit.families.observability.sli import ERROR_RECORD, sli_selector
from kit.model import Spec

SITE_FOLDER = SITE_RUNBOOKS     # where kit's site publishes monitoring/runbooks/ (kit/publish.py)
FOLDER = "monitoring/runbooks"
SECTIONS = ("Symptoms", "Impact", "Dashboard", "PromQL", "Diagnosis", "Mitigation", "Rollback", "Escalation",
            "The alert rule")
PLACEHOLDER = "PLACEHOLDER"       # marks what the team must fill in (names, rotations, channels)
COMPOSE = "docker compose -f compose.yaml -f monitoring/compose.monitoring.yaml"
PROMETHEUS_UI = "http://127.0.0.1:9090"   # compose.monitoring.yaml publishes Prometheus there (PROMETHEUS_PORT)
GRAFANA_UI = "http://127.0.0.1:3000"


def runbook_link(slo: Slo, name: str) -> str:
    """The alert's runbook_url: <base>/<Alert>.html, the base being slo.runbook_url, or
    <slo.site_url>/runbooks, or the site-relative `runbooks` when no address is known."""
    return f"{slo.runbook_url}/{name}.html"


def page_path(name: str) -> str:
    return f"{FOLDER}/{name}.md"


@dataclass(frozen=True)
class Query:
    caption: str
    expr: str


@dataclass(frozen=True)
class Content:
    symptoms: list[str]
    impact: list[str]
    panels: list[tuple[str, str]]           # (panel title, what to look for)
    queries: list[Query]
    compose: list[str]                      # alert-specific diagnosis steps (markdown, may hold code)
    kubernetes: list[str]
    mitigation: list[str]


# -- the service model, as the pages use it --------------------------------------------------------

def _namespaces(spec: Spec) -> list[str]:
    k8s = spec.option("kubernetes")
    return [f"{k8s.namespace}-{env.name}" for env in k8s.environments]


def _prod_namespace(spec: Spec) -> str:
    k8s = spec.option("kubernetes")
    names = [env.name for env in k8s.environments]
    return f"{k8s.namespace}-{'prod' if 'prod' in names else names[-1]}"


def _ticket_namespaces(spec: Spec) -> list[str]:
    return [ns for ns in _namespaces(spec) if ns != f"{spec.option('kubernetes').namespace}-prod"]


def _code(lines: list[str], lang: str = "bash") -> str:
    body = "\n".join(f"    {line}" for line in [f"```{lang}", *lines, "```"])
    # a blank line after the fence too: Python-Markdown (mkdocs) ends the list item only at one,
    # otherwise the next numbered step is read as text of this item
    return "\n\n" + body + "\n"


def _sel(spec: Spec) -> str:
    return f'job="{spec.name}"'


def _dep_checks_compose(spec: Spec) -> list[str]:
    steps = []
    for dep in spec.dependencies:
        if dep.kind == "postgres":
            user = dict(dep.env).get("POSTGRES_USER", "postgres")
            db = dict(dep.env).get("POSTGRES_DB", user)
            cmd = f"{COMPOSE} exec {dep.name} pg_isready -U {user} -d {db}"
        elif dep.kind == "redis":
            cmd = f"{COMPOSE} exec {dep.name} redis-cli ping"
        else:
            cmd = f"{COMPOSE} ps {dep.name}"
        steps.append(f"Check {dep.kind} `{dep.name}` answers (its health and its logs):"
                     + _code([cmd, f"{COMPOSE} logs --since 30m {dep.name} | tail -50"]))
    return steps


def _dep_checks_k8s(spec: Spec) -> list[str]:
    managed = dict(spec.option("kubernetes").managed)
    steps = []
    for dep in spec.dependencies:
        host = managed.get(dep.name, dep.name)
        reach = (f"kubectl -n \"$NS\" exec deploy/{spec.name} -- python3 -c \"import socket; "
                 f"socket.create_connection(('{host}', {dep.port}), 3); print('reachable')\"")
        if dep.name in managed:
            steps.append(f"Check the managed {dep.kind} `{dep.name}` ({host}) from an app pod (the NetworkPolicy "
                         "admits the app's pods only), then its status in the cloud provider's console:"
                         + _code([reach]))
            continue
        if dep.kind == "postgres":
            user = dict(dep.env).get("POSTGRES_USER", "postgres")
            own = f"kubectl -n \"$NS\" exec statefulset/{dep.name} -- pg_isready -U {user}"
        elif dep.kind == "redis":
            own = f"kubectl -n \"$NS\" exec statefulset/{dep.name} -- redis-cli ping"
        else:
            own = f"kubectl -n \"$NS\" get statefulset {dep.name}"
        steps.append(f"Check {dep.kind} `{dep.name}` (StatefulSet `{dep.name}`, one replica) runs, answers, and is "
                     "reachable from the app:" + _code([
                         f"kubectl -n \"$NS\" get pods -l app.kubernetes.io/name={dep.name}", own, reach,
                         f"kubectl -n \"$NS\" logs statefulset/{dep.name} --since=30m | tail -50"]))
    return steps


def _dep_queries(spec: Spec) -> list[Query]:
    out = []
    for dep in exporters.watched(spec):
        metric = {"postgres": "pg_up", "redis": "redis_up"}.get(dep.kind)
        if metric:
            out.append(Query(f"{dep.name} ({dep.kind}) as its exporter sees it (1 = reachable)",
                             f'{metric}{{job="{exporters.job(dep)}"}}'))
    return out


def _dep_panels(spec: Spec) -> list[tuple[str, str]]:
    up = {"postgres": "PostgreSQL up", "redis": "Redis up"}
    return [(f"{dep.name}: {up[dep.kind]}", "0 means the exporter cannot reach it")
            for dep in exporters.watched(spec) if dep.kind in up]


def _dep_mitigation(spec: Spec) -> list[str]:
    """What to do when a dependency fails: kit runs each one in the cluster as a one-replica
    StatefulSet (no standby to fail over to) unless kubernetes.managed names a managed endpoint."""
    managed = dict(spec.option("kubernetes").managed)
    out = []
    for dep in spec.dependencies:
        if dep.name in managed:
            out.append(f"**{dep.kind} `{dep.name}` fails** (managed, {managed[dep.name]}): fail over in the cloud "
                       "provider (promote the standby or replica) and check the app reconnects "
                       f"(`{spec.health_path or '/'}` answers 200).")
        else:
            out.append(f"**{dep.kind} `{dep.name}` fails** (its up panel at 0, connection errors in the logs): "
                       f"restart it, `kubectl -n \"$NS\" rollout restart statefulset/{dep.name}` or "
                       f"`{COMPOSE} restart {dep.name}` (its volume keeps the data). It runs as one replica "
                       "with no standby, so a lost volume means restoring from your backup.")
    return out


def _pods(spec: Spec) -> str:
    return f"kubectl -n \"$NS\" get pods -l app.kubernetes.io/name={spec.name} -o wide"


def _health_k8s(spec: Spec) -> str:
    path = spec.health_path or "/"
    return (f"kubectl -n \"$NS\" exec deploy/{spec.name} -- python3 -c \"import urllib.request as u; "
            f"print(u.urlopen('http://127.0.0.1:{spec.port}{path}', timeout=4).status)\"")


# -- per alert --------------------------------------------------------------------------------------

def _burn(spec: Spec, slo: Slo, alert: Alert) -> Content:
    kind = "availability" if alert.name.startswith("Availability") else "latency"
    objective = slo.availability if kind == "availability" else slo.latency_objective
    budget = 1 - objective / 100
    severity = "page" if alert.name.endswith("Fast") else "warn"
    windows = [w for w in BURN_WINDOWS if w[3] == severity]
    m, sel, window = slo.metrics, sli_selector(spec, slo), slo.window_days
    minutes = round(window * 24 * 60 * budget, 1)
    burns = [f"{int(share * 100)}% of the budget in {long} (burn rate {burn_factor(slo, long, share):g}x: "
             f"{round(window * 24 / burn_factor(slo, long, share), 1):g} h to spend all of it), confirmed over {short}"
             for long, short, share, _s, _f in windows]
    bad = "fail (5xx)" if kind == "availability" else f"take longer than {slo.latency_threshold_s * 1000:g} ms"
    record = ERROR_RECORD.format(w="5m")
    queries = [Query("the SLI error ratio per namespace, short and long windows (compare with the objective "
                     f"{budget:g})", f'{record}{{service="{spec.name}",slo="{kind}"}}'),
               Query("the same over 1h", f'{ERROR_RECORD.format(w="1h")}{{service="{spec.name}",slo="{kind}"}}')]
    if kind == "availability":
        queries.append(Query("failing requests per second by namespace and status",
                             f'sum by (namespace, {m.status_label}) (rate({m.requests}{{{sel},{m.status_label}=~"5.."}}[5m]))'))
        if m.path_label:
            queries.append(Query(f"which routes fail ({m.path_label})",
                                 f'topk(5, sum by (namespace, {m.path_label}) (rate({m.requests}{{{sel},'
                                 f'{m.status_label}=~"5.."}}[5m])))'))
        spent = (f'(sum by (namespace) (increase({m.requests}{{{sel},{m.status_label}=~"5.."}}[{window}d]))\n'
                 f'  / sum by (namespace) (increase({m.requests}{{{sel}}}[{window}d]))) / {budget:g}')
    else:
        queries.append(Query("p99 latency by namespace (seconds)",
                             f"histogram_quantile(0.99, sum by (namespace, le) (rate({m.duration}_bucket{{{sel}}}[5m])))"))
        spent = (f'(1 - sum by (namespace) (increase({m.duration}_bucket{{{sel},le="{slo.latency_le}"}}[{window}d]))\n'
                 f'  / sum by (namespace) (increase({m.duration}_count{{{sel}}}[{window}d]))) / {budget:g}')
    queries.append(Query(f"share of the {window}-day error budget already spent (1 = all of it)", spent))
    queries += _dep_queries(spec) if kind == "availability" else []
    panels = [("SLO error ratio (5m) vs objective", f"the `{kind}` line against {budget:g}"),
              ("Error ratio (5xx)" if kind == "availability" else "Latency quantiles",
               "when it rose, and in which namespace"),
              ("Request rate by status", "a traffic change or a new status at the same time")]
    if kind == "latency":
        panels += [("Requests in flight", "requests queueing behind busy handlers"),
                   ("CPU (share of the base limit)", "CPU starvation")]
    panels += _dep_panels(spec)
    symptoms = [f"Alertmanager {'pages on-call' if severity == 'page' else 'opens a ticket'} with "
                f"`{alert.name}` for a namespace (`namespace` label) and `slo=\"{kind}\"`.",
                f"More requests than the objective allows {bad}: users see "
                + ("errors (HTTP 5xx) from the API." if kind == "availability" else "slow responses and timeouts."),
                "The SLO panel's line is above the objective on the dashboard."]
    impact = [f"The objective is {objective:g}% of requests over {window} days: an error budget of {budget:.4g} "
              f"of requests ({minutes:g} minutes of total outage in {window} days).",
              "This alert fires on " + "; or ".join(burns) + ".",
              f"Affected: every client of {spec.name} in that namespace (prod: "
              f"{_prod_host(spec)}); dev and staging namespaces only affect the team, and their alerts are tickets.",
              "While the budget lasts, releases may continue; once it is spent, freeze feature releases for "
              "this service until it recovers (PLACEHOLDER: your team's error budget policy)."]
    compose = ["Look at the app's recent errors:" + _code([f"{COMPOSE} logs --since 30m {spec.name} | grep -iE "
                                                             "'error|exception|timeout' | tail -50"])]
    kube = ["Which image runs now (compare with the rollout history above: did a deploy start the burn?):" + _code([
        f"kubectl -n \"$NS\" get deployment {spec.name} -o jsonpath='{{.spec.template.spec.containers[0].image}}{{\"\\n\"}}'"]),
        "Read the errors in the logs of every pod:" + _code([
            f"kubectl -n \"$NS\" logs -l app.kubernetes.io/name={spec.name} --since=30m --prefix | grep -iE "
            "'error|exception|timeout' | tail -50"])]
    mitigation = ["**A release started it** (the burn began at a rollout): roll back (see *Rollback*) and "
                  "watch the 5m ratio fall below the objective within minutes.",
                  *_dep_mitigation(spec),
                  "**Overload** (rate up, handlers busy, CPU at the limit): scale out, "
                  + _scale_text(spec) + "."]
    return Content(symptoms, impact, panels, queries, compose, kube, mitigation)


def _prod_host(spec: Spec) -> str:
    k8s = spec.option("kubernetes")
    hosts = [env.host for env in k8s.environments if env.name == "prod"]
    return f"https://{hosts[0]}" if hosts and hosts[0] else f"the {_prod_namespace(spec)} namespace"


def _scale_text(spec: Spec) -> str:
    k8s = spec.option("kubernetes")
    prod = next((e for e in k8s.environments if e.name == "prod"), k8s.environments[-1])
    return (f"raising the HorizontalPodAutoscaler's floor (prod runs {prod.min_replicas} to {prod.max_replicas} "
            f"replicas): `kubectl -n \"$NS\" patch hpa {spec.name} -p '{{\"spec\":{{\"minReplicas\":"
            f"{min(prod.max_replicas, prod.min_replicas * 2)}}}}}'` (the HPA owns `replicas`, so `kubectl scale` "
            "would be undone); in compose the app publishes one fixed port, so raise `--workers` in the "
            "service's command instead of adding containers")


def _target_down(spec: Spec, slo: Slo) -> Content:
    sel = _sel(spec)
    return Content(
        symptoms=[f"`TargetDown` for an `instance` of {spec.name}: Prometheus's scrape of "
                  f"`{spec.metrics_path}` fails (`up` = 0) for 2 minutes.",
                  "The Targets up panel shows 0 for that instance; the other panels lose its series."],
        impact=["If the instance is really down, its share of requests fails or is retried on the others "
                "(on Kubernetes the Service stops routing to a pod whose readiness probe fails).",
                f"Every other alert for {spec.name} on that instance is blind while it cannot be scraped"
                + (", including the SLO alerts." if slo.metrics.requests else ".")],
        panels=[("Targets up", "which instance and namespace is at 0, and since when"),
                ("Request rate by status", "whether traffic still flows (an outage, or only the scrape fails)"),
                *_dep_panels(spec)],
        queries=[Query("targets down now", f"up{{{sel}}} == 0"),
                 Query("targets up per namespace", f"sum by (namespace) (up{{{sel}}})"),
                 Query("restarts in the last hour (a crash loop shows here)",
                       f"changes(process_start_time_seconds{{{sel}}}[1h])"), *_dep_queries(spec)],
        compose=[_compose_metrics(spec)],
        kubernetes=["Does the metrics path answer from inside the pod?" + _code([
            f"kubectl -n \"$NS\" exec deploy/{spec.name} -- python3 -c \"import urllib.request as u; "
            f"print(u.urlopen('http://127.0.0.1:{spec.metrics_port}{spec.metrics_path}', timeout=4).status)\""]),
            f"Is the target still discovered? Prometheus → Status → Targets, job `{spec.name}` (through "
            f"prometheus-operator: ServiceMonitor `{spec.name}` in `{spec.option('kubernetes').monitoring_namespace}`)."],
        mitigation=["**Pods crash or do not start**: follow ServiceRestarting's runbook "
                    "([ServiceRestarting](ServiceRestarting.md)); a bad release: roll back (see *Rollback*).",
                    "**One pod hangs** (running, but neither health nor metrics answer): delete it, the "
                    f"Deployment replaces it: `kubectl -n \"$NS\" delete pod <pod>`; in compose "
                    f"`{COMPOSE} restart {spec.name}`.",
                    "**Only the scrape fails** (requests succeed): check the NetworkPolicy admits the "
                    "monitoring namespace on the metrics port, and the ServiceMonitor's labels."])


def _compose_metrics(spec: Spec) -> str:
    if spec.metrics_port == spec.port:    # compose publishes the app's port on 127.0.0.1
        return (f"Does the metrics path answer? `curl -sS -o /dev/null -w '%{{http_code}}\\n' "
                f"http://127.0.0.1:{spec.port}{spec.metrics_path}` (200 expected).")
    return ("Does the metrics path answer (its port is not published)?" + _code([
        f"{COMPOSE} exec {spec.name} python3 -c \"import urllib.request as u; "
        f"print(u.urlopen('http://127.0.0.1:{spec.metrics_port}{spec.metrics_path}', timeout=4).status)\""]))


def _target_missing(spec: Spec, slo: Slo) -> Content:
    sel = _sel(spec)
    return Content(
        symptoms=[f"A `TargetMissing` ticket: Prometheus has had no `{spec.name}` target at all for 5 minutes, "
                  "so TargetDown cannot fire and every panel is empty.",
                  "The alert has no `namespace` label (`absent()` keeps none), so it is a warning everywhere."],
        impact=[f"{spec.name} is either not running anywhere this Prometheus watches (then users are affected) "
                "or runs unmonitored: no SLO or saturation alert can fire until it is scraped again."],
        panels=[("Targets up", "empty: no series at all")],
        queries=[Query("targets per namespace (empty when absent)", f"count by (namespace) (up{{{sel}}})"),
                 Query("the alert's own condition", f"absent(up{{{sel}}})")],
        compose=[f"Is the app's scrape job configured? `grep -n 'job_name: {spec.name}' monitoring/prometheus.yml`."],
        kubernetes=["Is the app deployed in any namespace, and does its Service have endpoints?" + _code([
            f"kubectl get pods -A -l app.kubernetes.io/name={spec.name}",
            f"kubectl -n \"$NS\" get endpoints {spec.name}"]),
            "Does the Prometheus select the ServiceMonitor? Its labels must match the Prometheus's "
            "`serviceMonitorSelector`:" + _code([
                f"kubectl -n {spec.option('kubernetes').monitoring_namespace} get servicemonitor {spec.name} "
                "--show-labels",
                f"kubectl -n {spec.option('kubernetes').monitoring_namespace} get prometheus "
                "-o jsonpath='{.items[*].spec.serviceMonitorSelector}'"])],
        mitigation=["**Scaled to zero or deleted**: redeploy through the deploy workflow (see *Rollback* for "
                    "the command with a digest).",
                    "**Not selected**: re-apply the monitoring overlay, `kubectl apply -k "
                    "k8s/monitoring/overlays/<env>`, and fix `slo.prometheus_release` or "
                    "`slo.operator_labels` in the task if the labels are wrong."])


def _restarting(spec: Spec, slo: Slo) -> Content:
    sel = _sel(spec)
    return Content(
        symptoms=[f"`ServiceRestarting`: {spec.name} at an instance started more than twice within 15 minutes "
                  "(its `process_start_time_seconds` changed).",
                  "On Kubernetes the pod shows `CrashLoopBackOff` or `OOMKilled`; in compose the container's "
                  "status flips between starting and running."],
        impact=["Requests in flight on a restarting instance fail; with every replica restarting the "
                "service is down and the availability budget burns (AvailabilityErrorBudgetBurnFast follows).",
                "Each restart drops caches and connections, so latency rises after it."],
        panels=[("Targets up", "gaps at each restart"), ("Memory (share of the container's limit)",
                                                         "a climb to 1 before each restart: out-of-memory kills"),
                ("Error ratio (5xx)", "errors around the restarts"), *_dep_panels(spec)],
        queries=[Query("starts in the last 15 minutes, per instance", f"changes(process_start_time_seconds{{{sel}}}[15m])"),
                 Query("seconds since each instance started", f"time() - process_start_time_seconds{{{sel}}}"),
                 Query("memory against the limit (near 1 before an OOM kill)", memory_ratio(spec)),
                 *_dep_queries(spec)],
        compose=[f"Read the logs of the runs before the last restart: `{COMPOSE} logs --since 30m {spec.name} | tail -100`; "
                 f"and `docker inspect --format '{{{{.State.OOMKilled}}}} {{{{.RestartCount}}}}' "
                 f"$({COMPOSE} ps -q {spec.name})`."],
        kubernetes=["Why did the last container stop (exit code, `OOMKilled`, probe failures)?" + _code([
            "kubectl -n \"$NS\" describe pod <pod> | sed -n '/Last State/,/Ready/p;/Events/,$p'",
            "kubectl -n \"$NS\" logs <pod> --previous | tail -100"])],
        mitigation=["**Out of memory**: raise the overlay's memory limit "
                    "(`kubernetes.environments.<env>.memory`, then redeploy), or `service.resources.memory` "
                    "for compose; find the leak afterwards.",
                    "**A dependency is unreachable at start-up**: fix the dependency first (the steps above).",
                    "**A bad setting or a bad release**: roll back (see *Rollback*); check `kubectl -n \"$NS\" "
                    f"get configmap -l app.kubernetes.io/name={spec.name} -o yaml` against the last good one."])


def _cpu(spec: Spec, slo: Slo) -> Content:
    sel, m = _sel(spec), slo.metrics
    queries = [Query("CPU used against the base limit, per instance", f"rate(process_cpu_seconds_total{{{sel}}}[5m]) / {spec.cpu:g}")]
    if m.requests:
        queries.append(Query("request rate per namespace (did traffic grow?)",
                             f"sum by (namespace) (rate({m.requests}{{{sel}}}[5m]))"))
    return Content(
        symptoms=[f"`HighCpuUsage` ticket: an instance used more than 90% of {spec.cpu:g} CPU for 15 minutes.",
                  "The CPU panel sits near 1; latency may rise with it."],
        impact=[f"Throttled at the limit, requests slow down: the latency objective ({slo.latency_objective:g}% "
                f"within {slo.latency_threshold_s * 1000:g} ms) is at risk. No request fails from this alone."],
        panels=[("CPU (share of the base limit)", "which instance, and whether all are high (load) or one (a hot loop)"),
                ("Request rate by status", "a traffic increase at the same time"),
                ("Latency quantiles", "whether users feel it")],
        queries=queries,
        compose=[f"`docker stats --no-stream $({COMPOSE} ps -q {spec.name})`."],
        kubernetes=["Compare with the pods' usage and the autoscaler:" + _code([
            f"kubectl -n \"$NS\" top pods -l app.kubernetes.io/name={spec.name}",
            f"kubectl -n \"$NS\" get hpa {spec.name}"])],
        mitigation=["**Load**: scale out, " + _scale_text(spec) + ".",
                    "**One instance only** (a hot loop): delete that pod and keep its logs for the fix.",
                    "**The limit is too low for normal traffic**: raise `service.resources.cpu` (and the "
                    "overlay's CPU) in the task and redeploy."])


def _memory(spec: Spec, slo: Slo) -> Content:
    sel = _sel(spec)
    return Content(
        symptoms=["`HighMemoryUsage` ticket: an instance's resident memory stayed above 90% of its limit for 15 minutes.",
                  "The memory panel is near 1; next comes an OOM kill and ServiceRestarting."],
        impact=["Nothing fails yet; at the limit the kernel kills the container and its in-flight requests fail."],
        panels=[("Memory (share of the container's limit)", "rising without traffic (a leak) or with it (load)"),
                ("Request rate by status", "traffic at the same time")],
        queries=[Query("memory against the limit (the alert's own expression)", memory_ratio(spec)),
                 Query("resident bytes per instance", f"process_resident_memory_bytes{{{sel}}}"),
                 Query("growth per second over the last hour (a steady positive slope is a leak)",
                       f"deriv(process_resident_memory_bytes{{{sel}}}[1h])")],
        compose=[f"`docker stats --no-stream $({COMPOSE} ps -q {spec.name})` (MEM USAGE / LIMIT)."],
        kubernetes=["Compare with the pods' usage and their limits:" + _code([
            f"kubectl -n \"$NS\" top pods -l app.kubernetes.io/name={spec.name}",
            f"kubectl -n \"$NS\" get pods -l app.kubernetes.io/name={spec.name} "
            "-o custom-columns=POD:.metadata.name,LIMIT:.spec.containers[0].resources.limits.memory"])],
        mitigation=["**A leak**: restart the instances one by one to buy time (`kubectl -n \"$NS\" rollout "
                    f"restart deployment/{spec.name}`, or `{COMPOSE} restart {spec.name}`), and roll back if a "
                    "release introduced it (see *Rollback*).",
                    "**Load**: raise the overlay's memory limit (`kubernetes.environments.<env>.memory`) or "
                    "`service.resources.memory`, and redeploy."])


def _saturated(spec: Spec, slo: Slo) -> Content:
    sel, m, cap = _sel(spec), slo.metrics, capacity(spec)
    queries = [Query("average busy handlers per instance (the alert fires at "
                     f"{0.8 * cap:g} of {cap})", f"avg_over_time({m.in_flight}{{{sel}}}[5m])")]
    if m.duration:
        queries.append(Query("p99 latency by namespace (slow handlers hold their slot)",
                             f"histogram_quantile(0.99, sum by (namespace, le) (rate({m.duration}_bucket{{{sel}}}[5m])))"))
    if m.requests:
        queries.append(Query("request rate per namespace", f"sum by (namespace) (rate({m.requests}{{{sel}}}[5m]))"))
    return Content(
        symptoms=[f"`RequestsSaturated` ticket: on average 80% or more of an instance's {cap} request handlers "
                  "(gunicorn workers x threads) were busy for 10 minutes.",
                  "New requests queue: latency rises before errors do."],
        impact=[f"Queued requests count against the latency objective ({slo.latency_objective:g}% within "
                f"{slo.latency_threshold_s * 1000:g} ms); when the queue overflows clients time out."],
        panels=[("Requests in flight", "how close to the handlers' count"),
                ("Latency quantiles", "slow requests hold handlers"),
                ("Request rate by status", "more traffic, or the same traffic served slower"), *_dep_panels(spec)],
        queries=queries + _dep_queries(spec),
        compose=[f"Which requests are slow? `{COMPOSE} logs --since 15m {spec.name} | tail -100`."],
        kubernetes=["Are all pods saturated, and is the autoscaler at its ceiling?" + _code([
            f"kubectl -n \"$NS\" get hpa {spec.name}",
            f"kubectl -n \"$NS\" top pods -l app.kubernetes.io/name={spec.name}"])],
        mitigation=["**More traffic**: scale out, " + _scale_text(spec) + ".",
                    "**A slow dependency** (latency up, rate flat): see the dependency steps; scaling out would "
                    "only add load to it.",
                    f"**Too few handlers for I/O-bound work**: raise `--threads` (now {cap} handlers per "
                    "instance) in the service's command and redeploy."])


BUILDERS = {"TargetDown": _target_down, "TargetMissing": _target_missing, "ServiceRestarting": _restarting,
            "HighCpuUsage": _cpu, "HighMemoryUsage": _memory, "RequestsSaturated": _saturated}


def content(spec: Spec, slo: Slo, alert: Alert) -> Content:
    if "ErrorBudgetBurn" in alert.name:
        return _burn(spec, slo, alert)
    return BUILDERS[alert.name](spec, slo)


# -- the page -------------------------------------------------------------------------------------

def _severity_text(spec: Spec, alert: Alert) -> str:
    if alert.severity != "page":
        return "warn: a ticket for the team, in every environment"
    tickets = _ticket_namespaces(spec)
    text = "page: the on-call person is paged for prod and compose"
    return text + (f"; a ticket from {', '.join(f'`{n}`' for n in tickets)}" if tickets else "")


def _rollback(spec: Spec) -> list[str]:
    ci = spec.option("ci")
    k8s = spec.option("kubernetes")
    prod = next((e.name for e in k8s.environments if e.name == "prod"), k8s.environments[-1].name)
    out = ["**Kubernetes, at once:** return the Deployment to its previous revision and wait for it:" + _code([
        f"kubectl -n \"$NS\" rollout history deployment/{spec.name}",
        f"kubectl -n \"$NS\" rollout undo deployment/{spec.name}            # or --to-revision=<n>",
        f"kubectl -n \"$NS\" rollout status deployment/{spec.name} --timeout=5m"])]
    digest = ("Find the previous digest: `kubectl -n \"$NS\" rollout history deployment/"
              f"{spec.name} --revision=<n> | grep Image`.")
    if "github" in ci.providers:
        out.append("**Then make it stick** (the next deploy re-applies the overlay's image): redeploy the "
                   "previous digest through the deploy workflow, which verifies its signature, pins it with "
                   "`kustomize edit set image` and waits for the rollout. " + digest + _code([
                       "gh workflow run deploy.yml --ref " + ci.default_branch
                       + " -f image-digest=sha256:<previous digest> -f promote=true   # promote: also production"]))
    elif "gitlab" in ci.providers:
        out.append("**Then make it stick** (the next deploy re-applies the overlay's image): in GitLab, "
                   f"*Operate → Environments → {prod}*, re-deploy the last good deployment (it re-runs that "
                   "pipeline's deploy job with its digest). " + digest)
    else:
        out.append("**Then make it stick**: pin the previous digest in the overlay and apply it. " + digest + _code([
            f"(cd k8s/overlays/{prod} && kustomize edit set image {spec.name}=<image>@sha256:<previous digest>)",
            f"kubectl apply -k k8s/overlays/{prod}"]))
    out.append("**Compose:** check out the last good commit and rebuild the app only:" + _code([
        "git checkout <last good commit> -- .", f"{COMPOSE} up -d --build --no-deps {spec.name}"]))
    out.append("**Undo a mitigation** once the alert has resolved for 30 minutes: set the autoscaler's "
               "`minReplicas` back to the overlay's value by re-applying it (`kubectl apply -k "
               "k8s/overlays/<env>`), and revert any limit raised by hand in the task so the next "
               "generation keeps it.")
    return out


def _escalation(spec: Spec, alert: Alert) -> list[str]:
    first = ("Paged (receiver `oncall-pager`): acknowledge within 5 minutes; the primary on-call person owns "
             "it until resolved or handed over." if alert.severity == "page" else
             "Ticket (receiver `team-tickets`): the team handles it in working hours; it becomes urgent when a "
             "page alert follows (a page inhibits this warning for the same service and namespace).")
    return [first,
            f"Escalate to the {spec.name} service owner when it is not mitigated within 30 minutes, or at once "
            "when the error budget is spent or data may be lost: **PLACEHOLDER: service owner, e.g. "
            "@backend-lead**.",
            "Dependencies: **PLACEHOLDER: database / platform on-call rotation** for " +
            (", ".join(f"`{d.name}` ({d.kind})" for d in spec.dependencies) or "the cluster") +
            " and the cluster itself.",
            "Incident channel: **PLACEHOLDER: #incident-channel**; record the timeline and what you changed there.",
            "PLACEHOLDER marks what kit cannot know (your people, rotations and channels): fill them in "
            "where you publish these pages (regenerating overwrites this file)."]


def runbook(spec: Spec, slo: Slo, alert: Alert) -> str:
    c = content(spec, slo, alert)
    k8s = spec.option("kubernetes")
    namespaces = ", ".join(f"`{n}`" for n in _namespaces(spec))
    dashboard_titles = {title for title, _t, _u in panel_specs(spec, slo)}
    panels = [(t, what) for t, what in c.panels if t in dashboard_titles]
    lines = [f"# {alert.name}", "",
             f"**{alert.summary}**", "",
             f"Service `{spec.name}` · severity {_severity_text(spec, alert)} · fires after `{alert.for_}` · "
             "[all runbooks](index.md)", "",
             alert.description.replace("{{ $labels.instance }}" + (spec.metrics_path or ""),
                                       f"an instance's {spec.metrics_path}" if spec.metrics_path else "an instance")
             .replace("{{ $labels.instance }}", "an instance"), "",
             "## Symptoms", ""] + [f"- {s}" for s in c.symptoms] + ["", "## Impact", ""]
    lines += [f"- {s}" for s in c.impact]
    lines += ["", "## Dashboard", "",
              f"Grafana dashboard **{spec.name} service (RED)** (uid `kit-{spec.name}`; compose: "
              f"{GRAFANA_UI}). Set its `namespace` variable to the alert's `namespace` label "
              f"(`compose`, or one of {namespaces}). Panels:", ""]
    lines += [f"- **{t}**: {what}" for t, what in panels]
    lines += ["", "## PromQL", "",
              f"In Prometheus (compose: {PROMETHEUS_UI}/graph; Kubernetes: port-forward your Prometheus, e.g. "
              f"`kubectl -n {k8s.monitoring_namespace} port-forward svc/<prometheus service> 9090`). Add "
              "`namespace=\"...\"` to a selector to narrow it to the alert's namespace.", ""]
    for q in c.queries:
        lines += [f"{q.caption}:", "", "```promql", q.expr, "```", ""]
    lines += ["## Diagnosis", "",
              "### Compose", "",
              "From the folder holding `compose.yaml`:", ""]
    compose = [f"Is the app running and healthy? `{COMPOSE} ps` (state and health of every service), then "
               f"`curl -sS -w ' %{{http_code}}\\n' http://127.0.0.1:{spec.port}{spec.health_path or '/'}`.",
               f"Read its logs: `{COMPOSE} logs --since 30m {spec.name} | tail -100`.",
               *c.compose, *_dep_checks_compose(spec)]
    lines += [f"{i}. {step}" for i, step in enumerate(compose, 1)]
    lines += ["", "### Kubernetes", "",
              f"Set `NS` to the alert's `namespace` label ({namespaces}):", "",
              "```bash", f"NS={_prod_namespace(spec)}", "```", ""]
    kube = ["Are the pods running and ready, and on which nodes?" + _code([_pods(spec)]),
            "Read the events of a failing pod and of the namespace:" + _code([
                "kubectl -n \"$NS\" describe pod <pod>",
                "kubectl -n \"$NS\" get events --sort-by=.lastTimestamp | tail -20"]),
            "Read the logs (the app writes JSON lines):" + _code([
                f"kubectl -n \"$NS\" logs deployment/{spec.name} --since=30m | tail -100",
                "kubectl -n \"$NS\" logs <pod> --previous | tail -100   # the run before a restart"]),
            "What was deployed and when:" + _code([f"kubectl -n \"$NS\" rollout history deployment/{spec.name}"]),
            f"Does the app answer its health check from inside a pod? (`{spec.health_path or '/'}` "
            "names the failing dependency when it answers 503)" + _code([_health_k8s(spec)]),
            *c.kubernetes, *_dep_checks_k8s(spec)]
    lines += [f"{i}. {step}" for i, step in enumerate(kube, 1)]
    lines += ["", "## Mitigation", ""] + [f"{i}. {s}" for i, s in enumerate(c.mitigation, 1)]
    lines += ["", "## Rollback", ""] + [f"- {s}" for s in _rollback(spec)]
    lines += ["", "## Escalation", ""] + [f"- {s}" for s in _escalation(spec, alert)]
    lines += ["", "## The alert rule", "",
              f"`{alert.name}` in `monitoring/rules/alerts.yml` (group `{spec.name}-{alert.group}`), and the "
              f"same rule in the PrometheusRule `{k8s.monitoring_namespace}/{spec.name}` "
              f"(`k8s/monitoring/base/prometheusrule.yaml`); live state: "
              f"[Prometheus alerts]({PROMETHEUS_UI}/alerts?search={alert.name}) (compose).", "",
              "```promql", alert.expr, "```", "",
              "Generated by kit from the task's `slo` section and the service model; edit the task and "
              "regenerate rather than this page.", ""]
    return "\n".join(lines)


def runbooks(spec: Spec, slo: Slo) -> dict[str, str]:
    alerts = all_alerts(spec, slo)
    pages = {page_path(a.name): runbook(spec, slo, a) for a in alerts}
    index = [f"# {spec.name} runbooks", "",
             "One page per alert kit generates; each alert's `runbook_url` links to its page.", "",
             "| alert | severity | summary |", "|---|---|---|"]
    index += [f"| [{a.name}]({a.name}.md) | {a.severity} | {a.summary} |" for a in alerts]
    if not alerts:
        index += ["", "No alert on the app: the service model has no metrics path, so nothing of it is scraped."]
    pages[f"{FOLDER}/index.md"] = "\n".join(index) + "\n"
    return pages
