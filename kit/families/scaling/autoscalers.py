"""The request-rate autoscalers kit generates, checked against the rules the systems that read them
enforce (no cluster runs here, so each rule is encoded with its source and broken on purpose in
tests/unit/test_scaling_integration.py):

- prometheus-adapter (kubernetes-sigs/prometheus-adapter docs/config.md): a rule has seriesQuery,
  resources (template or overrides), name (matches, as) and metricsQuery, a Go template over
  <<.Series>>, <<.LabelMatchers>> and <<.GroupBy>>; `as` is the name the custom metrics API serves,
  so it must equal the HPA's metric name, and the rule must discover the counter the app exports.
- the HPA (kubernetes/kubernetes pkg/apis/autoscaling/validation/validation.go, validatePodsSource:
  "must specify a positive target averageValue"): a per-pod rate is a Pods metric with an
  AverageValue target (Object would compare one object's value, not the pods' average).
- KEDA (keda.sh/docs/concepts/admission-webhooks, "Prevention Rules": the webhook blocks a
  ScaledObject whose "scaled workload (scaledobject.spec.scaleTargetRef) is already autoscaled by
  another other sources (other ScaledObject or HPA)"): KEDA creates its own HPA, so no plain HPA may
  target the same Deployment; the ScaledObject validates against KEDA's published CRD schema
  (crds/scaledobject.schema.json, KEDA v2.20.1), and the prometheus trigger needs serverAddress,
  query and threshold (keda.sh/docs/scalers/prometheus, "Trigger Specification"), and sets
  ignoreNullValues "false" (same page: default true, "ignore when the query returns an empty result", so a
  missing metric reads as 0 and KEDA scales down), with a spec.fallback (keda.sh/docs/concepts/
  scaling-deployments, "fallback": after failureThreshold failed reads KEDA holds fallback.replicas)
  of at least maxReplicaCount, so an outage of the metric never shrinks the Deployment.
- the PromQL of the adapter rule and the KEDA query parses (promtool check rules) and selects the
  counter the app exports (slo.metrics.requests)."""
from __future__ import annotations

import json
import re
import tempfile
from functools import lru_cache
from pathlib import Path

import yaml

from kit.evidence import Evidence
from kit.families.scaling import plan
from kit.model import Spec

ADAPTER, HPA = "k8s/scaling/prometheus-adapter-rules.yaml", "k8s/base/autoscaling.yaml"
SCALEDOBJECT = "k8s/overlays/<env>/scaledobject.yaml"       # one per overlay, in its kustomization's resources


def scaledobject_files(files: dict[str, str]) -> dict[str, str]:
    """Each overlay's ScaledObject file (mechanism keda), by path."""
    return {rel: text for rel, text in sorted(files.items())
            if re.fullmatch(r"k8s/overlays/[^/]+/scaledobject\.yaml", rel)}


def scaledobject_text(files: dict[str, str]) -> str:
    """Every overlay's ScaledObject file as one multi-document YAML stream."""
    return "\n---\n".join(scaledobject_files(files).values())
CRD_SCHEMA = Path(__file__).resolve().parent / "crds" / "scaledobject.schema.json"
RULE_KEYS = {"seriesQuery", "seriesFilters", "resources", "name", "metricsQuery"}     # config.md's rule fields
# what the adapter substitutes for its template fields when the HPA asks for two pods (config.md, "Querying")
TEMPLATE_VALUES = {"<<.Series>>": "{series}", "<<.LabelMatchers>>": 'namespace="ns",pod=~"a|b"', "<<.GroupBy>>": "pod"}


def _docs(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text or "") if isinstance(d, dict)]


def _strict(node: object) -> object:
    """The CRD's structural schema with unknown fields rejected where it lists the properties (the API
    server would prune them silently; a field kit writes that KEDA ignores is a defect)."""
    if isinstance(node, dict):
        out = {k: _strict(v) for k, v in node.items()}
        if "properties" in node and "additionalProperties" not in node \
                and not node.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


@lru_cache(maxsize=1)
def scaledobject_schema() -> dict:
    schema = json.loads(CRD_SCHEMA.read_text())
    schema.pop("$comment", None)
    schema = _strict(schema)
    schema["properties"]["metadata"] = {"type": "object"}     # ObjectMeta: not part of the CRD's schema
    return schema


def hpas(files: dict[str, str]) -> list[tuple[str, dict]]:
    """Every HorizontalPodAutoscaler kit generates under k8s/, with its file."""
    return [(rel, d) for rel, text in sorted(files.items()) if rel.startswith("k8s/") and rel.endswith(".yaml")
            for d in _docs(text) if d.get("kind") == "HorizontalPodAutoscaler"]


def rule_selects(rule: dict) -> str:
    """The metric name the rule discovers, from seriesQuery's __name__ matcher ("" when none)."""
    found = re.search(r'__name__\s*=~?\s*"\^?([a-zA-Z_:][a-zA-Z0-9_:]*)\$?"', str(rule.get("seriesQuery", "")))
    return found.group(1) if found else ""


def adapter_problems(files: dict[str, str], counter: str) -> list[str]:
    problems = []
    rules = (yaml.safe_load(files.get(ADAPTER, "")) or {}).get("rules") or []
    if not rules:
        return [f"{ADAPTER} has no rules: the custom metrics API would serve nothing"]
    hpa_metrics = [(m.get("type"), m) for _, h in hpas(files) for m in (h.get("spec") or {}).get("metrics") or []]
    served = set()
    for i, rule in enumerate(rules):
        where = f"rules[{i}]"
        unknown = set(rule) - RULE_KEYS
        if unknown:
            problems.append(f"{where}: unknown field(s) {sorted(unknown)} (config.md names {sorted(RULE_KEYS)})")
        for key in ("seriesQuery", "metricsQuery"):
            if not rule.get(key):
                problems.append(f"{where}: no {key}")
        resources = rule.get("resources") or {}
        overrides = resources.get("overrides") or {}
        if "pod" not in {(v or {}).get("resource") for v in overrides.values()} and not resources.get("template"):
            problems.append(f"{where}: resources maps no label to the pod resource: a Pods metric cannot be "
                            "attached to the pods")
        if "<<.Series>>" not in str(rule.get("metricsQuery", "")) or "<<.LabelMatchers>>" not in str(rule.get("metricsQuery", "")):
            problems.append(f"{where}: metricsQuery does not use <<.Series>> and <<.LabelMatchers>>: the query "
                            "would not be narrowed to the pods the HPA asks about")
        selected = rule_selects(rule)
        if selected != counter:
            problems.append(f"{where}: seriesQuery selects {selected or 'no metric name'}, the app exports "
                            f"{counter} (slo.metrics.requests)")
        name = rule.get("name") or {}
        if name.get("matches") and not re.search(str(name["matches"]), counter):
            problems.append(f"{where}: name.matches {name['matches']!r} does not match {counter}")
        served.add(str(name.get("as") or counter))
    pods = [m for kind, m in hpa_metrics if kind == "Pods"]
    if not pods:
        kinds = sorted({str(kind) for kind, _ in hpa_metrics}) or ["none"]
        problems.append(f"no HPA metric of type Pods (found {', '.join(kinds)}): a rate per pod is averaged over the "
                        "pods only as a Pods metric (validatePodsSource)")
    for m in pods:
        metric = ((m.get("pods") or {}).get("metric") or {}).get("name")
        target = (m.get("pods") or {}).get("target") or {}
        if metric not in served:
            problems.append(f"the HPA asks for {metric}, the adapter serves {', '.join(sorted(served))}: the names "
                            "must be equal")
        if target.get("type") != "AverageValue" or not target.get("averageValue"):
            problems.append(f"the HPA's Pods metric {metric} has target {target}: a Pods metric needs type "
                            "AverageValue and a positive averageValue (validatePodsSource)")
    return problems


def keda_problems(files: dict[str, str], counter: str) -> list[str]:
    from jsonschema import Draft202012Validator
    problems = []
    objects = [d for d in _docs(scaledobject_text(files)) if d.get("kind") == "ScaledObject"]
    if not objects:
        return [f"{SCALEDOBJECT} has no ScaledObject"]
    for so in objects:
        for err in sorted(Draft202012Validator(scaledobject_schema()).iter_errors(so), key=lambda e: list(e.path)):
            where = ".".join(str(p) for p in err.path) or "(root)"
            problems.append(f"CRD schema: {where}: {err.message[:160]}")
        spec = so.get("spec") or {}
        name = f"ScaledObject in {(so.get('metadata') or {}).get('namespace')}"
        ref = spec.get("scaleTargetRef") or {}
        for rel, hpa in hpas(files):
            target = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
            if target.get("name") == ref.get("name") and target.get("kind", "Deployment") == ref.get("kind", "Deployment"):
                problems.append(f"{rel}: HorizontalPodAutoscaler/{(hpa.get('metadata') or {}).get('name')} scales "
                                f"{ref.get('kind', 'Deployment')}/{ref.get('name')}, which the ScaledObject scales: "
                                "KEDA's admission webhook refuses a workload another HPA already scales")
        fallback = spec.get("fallback") or {}
        if not fallback:
            problems.append(f"{name}: no spec.fallback: when the metric cannot be read KEDA keeps no replica count")
        elif int(fallback.get("replicas") or 0) < int(spec.get("maxReplicaCount") or 0):
            problems.append(f"{name}: fallback replicas {fallback.get('replicas')} is below maxReplicaCount "
                            f"{spec.get('maxReplicaCount')}: a Prometheus outage at the peak would shrink the Deployment")
        for i, trigger in enumerate(spec.get("triggers") or []):
            if trigger.get("type") != "prometheus":
                continue
            meta = trigger.get("metadata") or {}
            missing = [k for k in ("serverAddress", "query", "threshold") if not meta.get(k)]
            if missing:
                problems.append(f"triggers[{i}]: the prometheus trigger needs {', '.join(missing)}")
            if meta.get("query") and counter not in metric_names(str(meta["query"])):
                problems.append(f"triggers[{i}]: the query selects {', '.join(metric_names(str(meta['query']))) or 'no metric'}, "
                                f"the app exports {counter} (slo.metrics.requests)")
            if str(meta.get("ignoreNullValues", "true")).lower() != "false":
                problems.append(f"triggers[{i}]: ignoreNullValues is not \"false\": KEDA's default (true) reads an "
                                "empty result (the metric missing) as 0 and scales to the minimum")
            try:
                if float(meta.get("threshold", "0")) <= 0:
                    problems.append(f"triggers[{i}]: threshold {meta.get('threshold')} is not a positive number")
            except ValueError:
                problems.append(f"triggers[{i}]: threshold {meta.get('threshold')!r} is not a number")
    return problems


def metric_names(query: str) -> list[str]:
    """Metric names a PromQL expression selects (identifiers before a `{` or `[`, minus functions)."""
    return sorted({m for m in re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[{\[]", query)
                   if m not in {"rate", "irate", "increase", "sum", "by", "without", "avg", "max", "min"}})


def queries(files: dict[str, str], counter: str) -> list[tuple[str, str]]:
    """(where, PromQL) of the adapter rules (template fields filled as the adapter fills them) and the
    KEDA triggers."""
    found = []
    for i, rule in enumerate((yaml.safe_load(files.get(ADAPTER, "")) or {}).get("rules") or []):
        text = str(rule.get("metricsQuery", ""))
        for field, value in TEMPLATE_VALUES.items():
            text = text.replace(field, value.format(series=counter))
        found.append((f"{ADAPTER} rules[{i}].metricsQuery", text))
    for so in _docs(scaledobject_text(files)):
        for i, trigger in enumerate((so.get("spec") or {}).get("triggers") or []):
            if (trigger.get("metadata") or {}).get("query"):
                found.append((f"{SCALEDOBJECT} triggers[{i}].query", str(trigger["metadata"]["query"])))
    return found


def promql_record(files: dict[str, str], counter: str) -> Evidence:
    """promtool parses each query (as a recording rule's expr: `promtool check rules` reports a syntax
    error with its position)."""
    from kit.core.tools import tool_version
    from kit.evidence import run_tool
    found = queries(files, counter)
    rels = ", ".join(sorted({where.split(" ")[0] for where, _ in found}))
    groups = {"groups": [{"name": "kit-scaling-queries", "rules": [
        {"record": f"kit:scaling_query_{i}", "expr": q} for i, (_, q) in enumerate(found)]}]}
    with tempfile.TemporaryDirectory(prefix="kit-scaling-") as tmp:
        path = Path(tmp) / "scaling-queries.yml"
        path.write_text(yaml.safe_dump(groups, sort_keys=False))
        record = run_tool("scaling.promql", rels, "the adapter rule's and the KEDA trigger's PromQL parse and select "
                          "the app's request counter", ["promtool", "check", "rules", str(path)],
                          tool=f"promtool {tool_version(['promtool', '--version'])}")
        record.command = record.command.replace(str(path), "scaling-queries.yml (the queries as recording rules)")
    wrong = [f"{where} selects {', '.join(metric_names(q)) or 'no metric'}, not {counter}"
             for where, q in found if counter not in metric_names(q)]
    if wrong:
        record.status = "failed"
        record.reason = "; ".join(wrong + ([record.reason] if record.reason else []))
    record.figures["queries"] = [q for _, q in found]
    return record


def checks(spec: Spec, files: dict[str, str]) -> list[Evidence]:
    scaling = spec.option("scaling")
    if scaling.mechanism == "hpa-cpu":
        return []
    counter = spec.option("slo").metrics.requests
    check = "scaling.adapter" if scaling.mechanism == "hpa-rps" else "scaling.keda"
    rel = ADAPTER if scaling.mechanism == "hpa-rps" else SCALEDOBJECT
    title = ("the prometheus-adapter rule serves the metric the HPA scales on, from the app's request counter"
             if scaling.mechanism == "hpa-rps" else "the ScaledObject validates against KEDA's CRD schema (v2.20.1), "
             "queries the app's request counter, and no other HPA scales its Deployment")
    if not counter:
        return [Evidence(check, rel, title, "failed", tool="kit", reason="the app exports no request counter kit "
                         "found (slo.metrics.requests): there is no request rate to scale on; name it in "
                         "slo.metrics.requests, or use mechanism hpa-cpu")]
    problems = adapter_problems(files, counter) if scaling.mechanism == "hpa-rps" else keda_problems(files, counter)
    tool = "kit (rules from prometheus-adapter docs/config.md and Kubernetes' HPA validation)" \
        if scaling.mechanism == "hpa-rps" else "kit (jsonschema against KEDA's ScaledObject CRD v2.20.1; KEDA's admission rules)"
    records = [Evidence(check, rel, title, "failed" if problems else "passed", tool=tool,
                        reason="; ".join(problems[:6]), figures={"counter": counter,
                                                                  "metric": plan.rps_metric(counter),
                                                                  "target_rps_per_pod": plan.target_rps(scaling)},
                        proof="static")]
    records.append(promql_record(files, counter))
    return records
