"""Checks of the runbook pages and the alerts' links to them: every alert's runbook_url is the
address of its page in the published site, every page has every section, names only dashboard
panels that exist and queries only metrics the rules and the dashboard read."""
from __future__ import annotations

import json
import re

import yaml

from kit.evidence import Evidence
from kit.families.observability.promql import is_recorded, metric_names
from kit.families.observability.runbooks import FOLDER, SECTIONS, SITE_FOLDER, page_path, runbook_link
from kit.families.observability.structure import ALERTS, DASHBOARD, alert_rules
from kit.model import Spec

RECORDING = "monitoring/rules/recording.yml"
PROMETHEUS_RULE = "k8s/monitoring/base/prometheusrule.yaml"
PROMQL_BLOCK = re.compile(r"^```promql\n(.*?)\n```", re.S | re.M)
PANEL_LINE = re.compile(r"^- \*\*(.+?)\*\*: ", re.M)


def _operator_rules(files: dict[str, str]) -> list[dict]:
    obj = yaml.safe_load(files.get(PROMETHEUS_RULE, "") or "{}") or {}
    return [r for g in (obj.get("spec") or {}).get("groups") or [] for r in g.get("rules") or [] if "alert" in r]


def runbook_links(spec: Spec, files: dict[str, str]) -> Evidence:
    """Each alert (rule files and PrometheusRule) links to <base>/<Alert>.html, and that page is
    generated: the site copies monitoring/runbooks/ to runbooks/ with use_directory_urls false, so
    monitoring/runbooks/<Alert>.md is served as runbooks/<Alert>.html (kit/publish.py)."""
    slo, problems, checked = spec.option("slo"), [], 0
    for where, rules in ((ALERTS, alert_rules(files[ALERTS])), (PROMETHEUS_RULE, _operator_rules(files))):
        for rule in rules:
            checked += 1
            name, url = rule["alert"], str((rule.get("annotations") or {}).get("runbook_url", ""))
            if url != runbook_link(slo, name):
                problems.append(f"{where}: {name} links to {url!r}, not its page {runbook_link(slo, name)!r}")
            if page_path(name) not in files:
                problems.append(f"{where}: {name} has no runbook page {page_path(name)} (its link would be broken)")
    return Evidence("observability.rule.runbook_links", ALERTS, "every alert's runbook_url is the address of its "
                    f"generated page ({FOLDER}/<Alert>.md, published as {SITE_FOLDER}/<Alert>.html)",
                    "failed" if problems else "passed", tool="kit", reason="; ".join(problems),
                    figures={"links": checked, "base": slo.runbook_url, "base_from": slo.runbook_source or "(unset)"})


def runbook_base(spec: Spec, files: dict[str, str]) -> Evidence:
    """Whether the links are absolute: without slo.site_url (or slo.runbook_url) kit knows no
    address for the site and invents none, so the links are site-relative: skipped, saying so."""
    slo = spec.option("slo")
    title = "the alerts' runbook links point at the address where the site is published"
    if not slo.runbook_source:
        return Evidence("observability.runbook_base", ALERTS, title, "skipped",
                        reason=f"slo.site_url is not set: the alerts link to the site-relative "
                               f"{SITE_FOLDER}/<Alert>.html, which a notification cannot open; set slo.site_url "
                               "to where you publish kit's site (or slo.runbook_url to where you publish the "
                               "runbooks)", figures={"base": slo.runbook_url})
    urls = [str((r.get("annotations") or {}).get("runbook_url", "")) for r in alert_rules(files[ALERTS])]
    off = [u for u in urls if not u.startswith(f"{slo.runbook_url}/")]
    return Evidence("observability.runbook_base", ALERTS, title, "failed" if off else "passed", tool="kit",
                    reason=f"links outside {slo.runbook_url}: {', '.join(off)}" if off else "",
                    figures={"base": slo.runbook_url, "from": slo.runbook_source, "links": len(urls)})


def sections(text: str) -> dict[str, str]:
    """A page's level-2 sections: heading -> body."""
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return {parts[i].strip(): parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}


def page_queries(text: str) -> list[str]:
    """The PromQL to run: the promql blocks of the page's PromQL section."""
    return PROMQL_BLOCK.findall(sections(text).get("PromQL", ""))


def page_panels(text: str) -> list[str]:
    return PANEL_LINE.findall(sections(text).get("Dashboard", ""))


def known_metrics(files: dict[str, str]) -> set[str]:
    """Every metric the alerting and recording rules and the dashboard read, and the recorded names."""
    rules = [r for rel in (ALERTS, RECORDING) for g in (yaml.safe_load(files[rel]) or {}).get("groups") or []
             for r in g.get("rules") or []]
    exprs = [str(r.get("expr", "")) for r in rules]
    exprs += [t.get("expr", "") for p in json.loads(files[DASHBOARD]).get("panels") or [] for t in p.get("targets") or []]
    return {n for e in exprs for n in metric_names(e)} | {r["record"] for r in rules if "record" in r}


def runbook_pages(spec: Spec, files: dict[str, str]) -> Evidence:
    """Every alert's page has every section with content; the panels it names are in the dashboard;
    its queries read only metrics the rules or the dashboard read (so the live check's scrape covers them)."""
    problems, queries = [], 0
    titles = {p.get("title") for p in json.loads(files[DASHBOARD]).get("panels") or []}
    metrics = known_metrics(files)
    for rule in alert_rules(files[ALERTS]):
        name, text = rule["alert"], files.get(page_path(rule["alert"]))
        if text is None:
            problems.append(f"{name} has no page {page_path(name)}")
            continue
        found = sections(text)
        problems += [f"{name}: no section '{s}'" for s in SECTIONS if s not in found]
        problems += [f"{name}: section '{s}' is empty" for s in SECTIONS if s in found and not found[s]]
        shown = found.get("The alert rule", "")
        if name not in shown or f"```promql\n{str(rule.get('expr', '')).strip()}\n```" not in shown:
            problems.append(f"{name}: the page does not show the alert's rule as it is in {ALERTS}")
        panels = page_panels(text)
        if not panels:
            problems.append(f"{name}: names no dashboard panel")
        problems += [f"{name}: panel '{t}' is not in {DASHBOARD}" for t in panels if t not in titles]
        exprs = page_queries(text)
        queries += len(exprs)
        if not exprs:
            problems.append(f"{name}: no PromQL to run")
        unknown = sorted({m for e in exprs for m in metric_names(e) if m not in metrics and not is_recorded(m)})
        problems += [f"{name}: queries {m}, which no rule or dashboard panel reads" for m in unknown]
        for label in re.findall(r"\(`?([A-Za-z]+\.md)\)", text):
            if not (label == "index.md" or f"{FOLDER}/{label}" in files):
                problems.append(f"{name}: links to {label}, which is not generated")
    return Evidence("observability.runbooks", f"{FOLDER}/", "every alert's runbook has symptoms, impact, dashboard "
                    "panels that exist, PromQL over the rules' metrics, diagnosis, mitigation, rollback, "
                    "escalation and its rule", "failed" if problems else "passed", tool="kit",
                    reason="; ".join(problems), figures={"pages": len(alert_rules(files[ALERTS])), "queries": queries})


def all_queries(files: dict[str, str]) -> list[tuple[str, str]]:
    """(page, query) for every runbook page's PromQL section."""
    return [(rel, q) for rel, text in sorted(files.items())
            if rel.startswith(f"{FOLDER}/") and rel.endswith(".md") for q in page_queries(text)]
