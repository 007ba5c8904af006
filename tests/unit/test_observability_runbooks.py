"""Runbooks: every alert's page has every section, names dashboard panels that exist and queries
that parse and read only the rules' metrics; each alert's runbook_url is its page in the published
site; slo.site_url and slo.runbook_url. Each check is broken on purpose."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kit.cli import main
from kit.families.observability import checks as obs
from kit.families.observability import runbook_checks as rbc
from kit.families.observability.promql import metric_names
from kit.families.observability.runbooks import SECTIONS, page_path
from kit.families.observability.structure import ALERTS, DASHBOARD, alert_rules
from kit.spec import load_spec
from tests.conftest import write_task

GOOD_SERVICE = "service:\n  name: mini\n  source: src\n"


@pytest.fixture(params=["example", "minimal"])
def project(request) -> Path:
    return request.getfixturevalue(request.param)


def _files(project: Path) -> tuple:
    spec = load_spec(project)
    from kit.families import render_all
    return spec, render_all(spec)


def _set_slo(project: Path, lines: str) -> None:
    task = project / ".claude" / "task.md"
    text = re.sub(r"(?m)^  site_url: .*\n", "", task.read_text())     # the example's own address
    task.write_text(text.replace("slo:\n", f"slo:\n{lines}", 1) if "slo:\n" in text
                    else text.replace("\n---\n", f"\nslo:\n{lines}---\n", 1))


def test_every_alert_has_a_page_with_every_section(project):
    spec, files = _files(project)
    names = [r["alert"] for r in alert_rules(files[ALERTS])]
    assert names
    for name in names:
        found = rbc.sections(files[page_path(name)])
        assert [s for s in SECTIONS if s in found] == list(SECTIONS), name
        assert all(found[s] for s in SECTIONS), name
    index = files["monitoring/runbooks/index.md"]
    assert {n for n in names if f"[{n}]({n}.md)" in index} == set(names)
    assert rbc.runbook_pages(spec, files).passed


def test_panel_titles_exist_in_the_dashboard(project):
    _spec, files = _files(project)
    titles = {p["title"] for p in json.loads(files[DASHBOARD])["panels"]}
    for rule in alert_rules(files[ALERTS]):
        panels = rbc.page_panels(files[page_path(rule["alert"])])
        assert panels and set(panels) <= titles, (rule["alert"], set(panels) - titles)


def test_queries_read_only_metrics_the_rules_or_dashboard_read(project):
    _spec, files = _files(project)
    known = rbc.known_metrics(files)
    queries = rbc.all_queries(files)
    assert len(queries) >= 2 * len(alert_rules(files[ALERTS]))
    for rel, query in queries:
        assert metric_names(query) and metric_names(query) <= known, (rel, query)


def test_the_example_pages_use_the_service_model(spec_example):
    _spec, files = spec_example
    burn = files[page_path("AvailabilityErrorBudgetBurnFast")]
    assert "43.2 minutes" in burn and "14.4x" in burn and "https://shop.example.com" in burn
    assert 'NS=shop-api-prod' in burn and "`shop-api-dev`, `shop-api-staging`, `shop-api-prod`" in burn
    assert 'kubectl -n "$NS" exec statefulset/db -- pg_isready -U app' in burn
    assert 'kubectl -n "$NS" exec statefulset/cache -- redis-cli ping' in burn
    assert 'kubectl -n "$NS" rollout undo deployment/shop-api' in burn
    assert "gh workflow run deploy.yml --ref main -f image-digest=sha256:<previous digest>" in burn
    assert "PLACEHOLDER: service owner" in burn and "example.com/" not in burn.split("## Escalation")[1]
    down = files[page_path("TargetDown")]
    assert "pg_isready" in down and "**Targets up**" in down and "[ServiceRestarting](ServiceRestarting.md)" in down


@pytest.fixture
def spec_example(example):
    _set_slo(example, "")        # site-relative links, as when no address is known
    return _files(example)


@pytest.mark.parametrize("rel,old,new,check,reason", [
    # a section dropped
    ("monitoring/runbooks/TargetDown.md", "## Escalation\n", "## Later\n", "observability.runbooks",
     "TargetDown: no section 'Escalation'"),
    # the dashboard renames a panel a runbook names
    (DASHBOARD, '"title": "Targets up"', '"title": "Up targets"', "observability.runbooks",
     "panel 'Targets up' is not in"),
    # a query over a metric nothing scrapes for the rules
    ("monitoring/runbooks/TargetDown.md", "up{job=\"shop-api\"} == 0\n```", "upp{job=\"shop-api\"} == 0\n```",
     "observability.runbooks", "queries upp, which no rule or dashboard panel reads"),
    # a link to a page that is not generated
    ("monitoring/runbooks/TargetDown.md", "[ServiceRestarting](ServiceRestarting.md)",
     "[ServiceRestarting](ServiceRestart.md)", "observability.runbooks", "links to ServiceRestart.md"),
    # the rule on the page is not the rule in alerts.yml
    ("monitoring/runbooks/TargetDown.md", "```promql\nup{job=\"shop-api\"} == 0\n```\n\nGenerated",
     "```promql\nup{job=\"shop-api\"} < 1\n```\n\nGenerated", "observability.runbooks",
     "does not show the alert's rule"),
    # an alert links to a page that does not exist
    (ALERTS, "runbook_url: runbooks/TargetDown.html", "runbook_url: runbooks/TargetDwn.html",
     "observability.rule.runbook_links", "TargetDown links to 'runbooks/TargetDwn.html', not its page"),
    ("k8s/monitoring/base/prometheusrule.yaml", "runbook_url: runbooks/TargetDown.html",
     "runbook_url: https://runbooks.example.com/shop-api/TargetDown.html", "observability.rule.runbook_links",
     "prometheusrule.yaml: TargetDown links to"),
])
def test_each_runbook_check_fails_on_a_broken_deliverable(spec_example, rel, old, new, check, reason):
    spec, files = spec_example
    assert old in files[rel], old
    files = {**files, rel: files[rel].replace(old, new, 1)}
    record = {"observability.runbooks": rbc.runbook_pages,
              "observability.rule.runbook_links": rbc.runbook_links}[check](spec, files)
    assert record.status == "failed" and reason in record.reason, record.reason


def test_a_missing_page_breaks_the_link(spec_example):
    spec, files = spec_example
    files = {k: v for k, v in files.items() if k != page_path("HighCpuUsage")}
    record = rbc.runbook_links(spec, files)
    assert record.status == "failed" and "HighCpuUsage has no runbook page" in record.reason


def test_links_are_site_relative_and_flagged_without_an_address(example):
    _set_slo(example, "")
    spec, files = _files(example)
    rules = alert_rules(files[ALERTS])
    assert rules and all(r["annotations"]["runbook_url"] == f"runbooks/{r['alert']}.html" for r in rules)
    assert "example.com" not in files[ALERTS]
    record = rbc.runbook_base(spec, files)
    assert record.status == "skipped" and "slo.site_url is not set" in record.reason


def test_site_url_makes_the_links_absolute(example):
    _set_slo(example, "  site_url: https://docs.acme.test/shop-api/\n")
    spec, files = _files(example)
    rules = alert_rules(files[ALERTS])
    assert {r["annotations"]["runbook_url"] for r in rules} == {
        f"https://docs.acme.test/shop-api/runbooks/{r['alert']}.html" for r in rules}
    assert rbc.runbook_base(spec, files).passed and rbc.runbook_links(spec, files).passed
    bad = {**files, ALERTS: files[ALERTS].replace("https://docs.acme.test/shop-api/runbooks/TargetDown.html",
                                                  "https://elsewhere.test/TargetDown.html")}
    record = rbc.runbook_base(spec, bad)
    assert record.status == "failed" and "elsewhere.test" in record.reason


def test_runbook_url_is_the_folder_of_the_pages(example):
    _set_slo(example, "  runbook_url: https://wiki.acme.test/runbooks/shop-api\n")
    spec, files = _files(example)
    assert "runbook_url: https://wiki.acme.test/runbooks/shop-api/TargetDown.html" in files[ALERTS]
    assert rbc.runbook_links(spec, files).passed and rbc.runbook_base(spec, files).figures["from"] == "slo.runbook_url"


@pytest.mark.parametrize("front,expected", [
    ("slo:\n  site_url: https://a.test\n  runbook_url: https://b.test\n", "slo.runbook_url: give site_url or runbook_url, not both"),
    ("slo:\n  site_url: docs.acme.test\n", "slo.site_url"),
])
def test_bad_runbook_address(minimal, capsys, front, expected):
    write_task(minimal, GOOD_SERVICE + front)
    assert main(["generate", str(minimal)]) == 2
    err = capsys.readouterr().err
    assert expected in err, err


def test_the_site_serves_each_link(spec_example, tmp_path):
    """kit's site copies monitoring/runbooks/ to runbooks/ (use_directory_urls: false, so X.md is
    served as X.html): every site-relative link names a copied page."""
    from kit.publish import _runbook_pages
    _spec, files = spec_example
    src = tmp_path / "monitoring" / "runbooks"
    src.mkdir(parents=True)
    for rel, text in files.items():
        if rel.startswith("monitoring/runbooks/"):
            (tmp_path / rel).write_text(text)
    pages = tmp_path / "docs"
    pages.mkdir()
    _runbook_pages(src, pages)
    for rule in alert_rules(files[ALERTS]):
        url = rule["annotations"]["runbook_url"]
        assert (pages / url).with_suffix(".md").is_file(), url


@pytest.mark.tools
def test_runbook_queries_parse_with_promtool(spec_example):
    _spec, files = spec_example
    record = obs.runbook_promql(files, "promtool")
    assert record.passed and record.figures["queries"] >= 20, record.reason
    broken = {**files, page_path("TargetDown"): files[page_path("TargetDown")].replace(
        'up{job="shop-api"} == 0\n```', 'up{job="shop-api"} == \n```', 1)}
    record = obs.runbook_promql(broken, "promtool")
    assert record.status == "failed", record.log


def test_managed_dependency_and_gitlab_change_the_steps(minimal):
    """A managed Postgres is checked from an app pod and failed over in the cloud, not exec'd into;
    on GitLab the rollback re-deploys the environment's last good deployment."""
    write_task(minimal, GOOD_SERVICE + "dependencies:\n  - {kind: postgres, name: db}\n  - {kind: redis, name: cache}\n"
               "kubernetes:\n  secrets: secret\n  managed: {db: db.internal.example.com}\n"
               "ci:\n  provider: gitlab\n")
    spec, files = _files(minimal)
    page = files[page_path("TargetDown")]
    assert "managed postgres `db` (db.internal.example.com)" in page
    assert "create_connection(('db.internal.example.com', 5432), 3)" in page
    assert "exec statefulset/db" not in page and 'exec statefulset/cache -- redis-cli ping' in page
    assert "Operate → Environments → prod" in page and "gh workflow run" not in page
    assert rbc.runbook_pages(spec, files).passed and rbc.runbook_links(spec, files).passed
