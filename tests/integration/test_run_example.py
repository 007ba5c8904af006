"""`kit run` on the bundled example, end to end in real containers (run once, asserted many ways)."""
from __future__ import annotations

import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from kit.cli import main
from kit.report.workmd import SECTIONS
from tests.conftest import copy_example
from tests.integration.helpers import assert_nothing_left

pytestmark = [pytest.mark.docker, pytest.mark.slow]
PLANTED = "hunter2-planted-value"


@pytest.fixture(scope="module")
def example_run(tmp_path_factory, docker_engine):
    project = copy_example(tmp_path_factory.mktemp("run") / "shop-api")
    (project / "app" / ".env").write_text(f"PGPASSWORD={PLANTED}\n")   # a developer's real value, beside the source
    task = project / ".claude" / "task.md"
    before = hashlib.sha256(task.read_bytes()).hexdigest()
    context_before = (project / ".claude" / "tasks" / "context_session_1.md").read_text()
    code = main(["run", str(project)])
    return {"project": project, "code": code, "task_sha": before, "context_before": context_before}


def _records(run):
    return json.loads((run["project"] / "kit-out" / "evidence.json").read_text())["records"]


def test_every_check_passes(example_run):
    records = _records(example_run)
    failed = [(r["check"], r["reason"]) for r in records if r["status"] == "failed"]
    assert failed == [] and example_run["code"] == 0
    ids = {r["check"] for r in records}
    assert {"container.hadolint", "container.build", "container.healthy", "container.metrics",
            "container.nonroot", "container.shutdown", "compose.up", "compose.health",
            "compose.depends.db", "compose.depends.cache", "compose.cleanup"} <= ids


def test_evidence_figures_are_real(example_run):
    by_id = {r["check"]: r for r in _records(example_run)}
    assert by_id["container.build"]["figures"]["size_mb"] > 50
    assert by_id["container.build"]["figures"]["layers"] >= 5
    assert by_id["container.metrics"]["figures"]["samples"] > 0
    assert "shop_http_requests" in " ".join(by_id["container.metrics"]["figures"]["names"])
    assert by_id["container.nonroot"]["figures"]["uid_gid"] == "10001 10001"
    assert by_id["container.healthy"]["standins"] == {"postgres:15-bookworm": "kit-standin/postgres:15",
                                                      "redis:7-bookworm": "kit-standin/redis:7",
                                                      "python:3.11-slim-bookworm": "kit-standin/python:3.11-bookworm"}
    assert by_id["container.healthy"]["proof"] == "stand-in" and by_id["container.hadolint"]["proof"] == "static"
    assert by_id["kubernetes.pod.startup"]["proof"] == "emulated"
    assert {r["proof"] for r in by_id.values() if r["check"].startswith(("cicd.", "iac.")) and r["status"] != "skipped"} \
        == {"static"}
    assert by_id["compose.depends.db"]["status"] == "passed"
    assert by_id["compose.depends.db"]["figures"]["status_while_down"] != 200


def test_kubernetes_pod_sandbox_ran_under_the_pod_spec(example_run):
    """The image ran under the dev overlay's restricted pod spec, probed with kubelet semantics."""
    by_id = {r["check"]: r for r in _records(example_run)}
    settings = by_id["kubernetes.pod.settings"]["figures"]
    assert settings["user"] == "10001:10001" and settings["read_only"] and settings["cap_drop"] == ["ALL"]
    assert settings["inside"]["id -u"] == "10001" and "Read-only file system" in settings["inside"]["write /"]
    assert by_id["kubernetes.pod.startup"]["status"] == "passed"
    live = by_id["kubernetes.pod.liveness"]["figures"]
    assert live["probes"] >= 2 and live["passed"] == live["probes"]
    kinds = {t["probe"] for t in live["timeline"]}
    assert kinds == {"startupProbe", "readinessProbe", "livenessProbe"}
    assert by_id["kubernetes.checkov"]["figures"]["failed"] == 0
    assert {"kubernetes.validate.1.33", "kubernetes.validate.1.32", "kubernetes.validate.1.31"} <= set(by_id)


def test_task_md_is_never_modified(example_run):
    task = example_run["project"] / ".claude" / "task.md"
    assert hashlib.sha256(task.read_bytes()).hexdigest() == example_run["task_sha"]


def test_work_md_sections_and_checklist(example_run):
    text = (example_run["project"] / ".claude" / "work.md").read_text()
    assert re.findall(r"^## (.+)$", text, re.M) == list(SECTIONS)
    checklist = text.split("## Acceptance Checklist", 1)[1]
    assert checklist.count("- [x]") >= 10
    assert "needs human review" in checklist          # the example's on-call criterion
    assert PLANTED not in text and "kit-sandbox-" not in text   # no secret value, not even a placeholder one
    out = example_run["project"] / "kit-out"
    leaked = [str(p) for p in out.rglob("*") if p.is_file() and PLANTED.encode() in p.read_bytes()]
    assert leaked == []                                          # not in evidence.json, the site or a deliverable


def test_write_zone_appended_once(example_run):
    path = example_run["project"] / ".claude" / "tasks" / "context_session_1.md"
    text = path.read_text()
    assert text.startswith(example_run["context_before"])
    entry = text[len(example_run["context_before"]):].strip().splitlines()
    assert 3 <= len(entry) <= 8 and entry[0].startswith("## DevOps Architect - ")


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.loads: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "img", "iframe", "source") and attrs.get("src"):
            self.loads.append(attrs["src"])
        if tag == "link" and attrs.get("href") and attrs.get("rel") not in ("canonical",):
            self.loads.append(attrs["href"])


def test_site_pages_and_nothing_loaded_from_outside(example_run):
    site = example_run["project"] / "kit-out" / "site"
    pages = {p.name for p in site.glob("*.html")}
    assert {"index.html", "10_container.html", "20_compose.html", "30_kubernetes.html", "work.html",
            "evidence.html"} <= pages
    external = []
    for page in site.rglob("*.html"):
        parser = _Refs()
        parser.feed(page.read_text())
        external += [f"{page.name}: {u}" for u in parser.loads if re.match(r"^(https?:)?//", u)]
    assert external == []
    assert list((site / "10_container_files").glob("*.png")), "the layer chart is published"


def test_no_container_left_behind(example_run):
    assert_nothing_left()


ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"   # git-ignored; CI keeps it


def test_site_in_a_real_browser_requests_only_itself(example_run):
    """Open every page of the published site in headless Chromium (Debian's, driven by
    Playwright): no console error, every request goes to the local server, the evidence summary is
    on screen; screenshots of the landing page, a family page, the deliverables browser and a
    runbook are kept in test-artifacts/."""
    import functools
    import http.server
    import shutil
    import threading

    from playwright.sync_api import sync_playwright
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is installed by scripts/setup.sh"
    site = example_run["project"] / "kit-out" / "site"
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    requested: list[str] = []
    errors: list[str] = []
    shots = {"index.html": "landing", "30_kubernetes.html": "family-page", "deliverables.html": "deliverables",
             "runbooks/TargetDown.html": "runbook"}
    ARTIFACTS.mkdir(exist_ok=True)
    pages = sorted(str(p.relative_to(site)) for p in site.rglob("*.html") if p.name != "404.html")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("request", lambda req: requested.append(req.url))
            page.on("console", lambda m: errors.append(f"{page.url}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"{page.url}: {e}"))
            for name in pages:
                page.goto(f"{base}/{name}", wait_until="networkidle")
                if name in shots:
                    page.screenshot(path=str(ARTIFACTS / f"site-{shots[name]}.png"))
            page.goto(f"{base}/index.html", wait_until="networkidle")
            body = page.inner_text("body")
            browser.close()
    finally:
        server.shutdown()
    outside = [u for u in requested if not (u.startswith(base) or u.startswith("data:"))]
    assert outside == []
    assert errors == []
    assert len(pages) >= 10 and all((ARTIFACTS / f"site-{s}.png").stat().st_size > 10_000 for s in shots.values())
    assert re.search(r"\d+ passed, 0 failed", body)
    assert "Checked by:" in body and "Key figures" in body and "static checks only" in body


def test_no_machine_path_in_the_site_or_work_md(example_run):
    import sys
    import tempfile
    project = example_run["project"]
    machine = [str(project), sys.prefix, tempfile.gettempdir().rstrip("/") + "/kit-", str(Path.home() / ".cache" / "kit")]
    texts = {str(p.relative_to(project)): p.read_text(errors="replace")
             for p in (project / "kit-out" / "site").rglob("*.html")}
    texts[".claude/work.md"] = (project / ".claude" / "work.md").read_text()
    found = sorted({(name, m) for name, text in texts.items() for m in machine if m in text})
    assert found == []
    page = (project / "kit-out" / "site" / "10_container.html").read_text()
    assert "from kit" not in page and "injected-parameters" not in page, "code cells are hidden"


def test_cicd_and_iac_evidence(example_run):
    by_id = {r["check"]: r for r in _records(example_run)}
    for check in ("cicd.actionlint", "cicd.shellcheck", "cicd.schema.github", "cicd.checkov.github",
                  "cicd.rule.pinned", "cicd.rule.permissions", "iac.fmt", "iac.parse", "iac.checkov",
                  "iac.rule.backend"):
        assert by_id[check]["status"] == "passed", (check, by_id[check]["reason"])
    validate = [r for r in by_id.values() if r["check"].startswith("iac.validate.")]
    assert validate and all(r["status"] in ("passed", "skipped") and (r["status"] == "passed" or r["reason"])
                            for r in validate)


def test_observability_runs_live_in_the_full_run(example_run):
    by_id = {r["check"]: r for r in _records(example_run)}
    assert by_id["observability.promtool_test"]["status"] == "passed"
    assert by_id["observability.live.target_down"]["status"] == "passed"
    assert (example_run["project"] / "kit-out" / "site" / "runbooks" / "TargetDown.html").is_file()


def test_backup_drill_restored_the_data(example_run):
    """The DR drill ran with the generated scripts: the backup and the archived WAL came back byte for
    byte, and the measured RTO and RPO are within the task's targets."""
    by_id = {r["check"]: r for r in _records(example_run)}
    for check in ("backup.drill.backup", "backup.drill.restore", "backup.drill.data", "backup.drill.pitr",
                  "backup.drill.rpo", "backup.drill.rto", "backup.drill.cleanup"):
        assert by_id[check]["status"] == "passed", (check, by_id[check]["reason"])
    assert by_id["backup.drill.backup"]["figures"]["backup_bytes"] > 1_000_000
    assert by_id["backup.drill.data"]["figures"]["rows_back"]["A"] == 200
    assert by_id["backup.drill.data"]["figures"]["rows_back"]["B"] == 100      # replayed from the archived WAL
    rpo, rto = by_id["backup.drill.rpo"]["figures"], by_id["backup.drill.rto"]["figures"]
    assert rpo["seconds_lost"] <= rpo["rpo_target_s"] and 0 < rto["rto_s"] <= rto["rto_target_s"]
    assert rto["app_started"] and rto["app_health_status"] == 200       # restore.sh brought the app back
    assert by_id["backup.drill.rto"]["proof"] == "stand-in"
    assert {"postgres:15-bookworm": "kit-standin/postgres:15", "redis:7-bookworm": "kit-standin/redis:7"}.items() \
        <= by_id["backup.drill.rto"]["standins"].items()


def test_scaling_measured_sized_and_simulated(example_run):
    """The load test ran on the real image under its limits, the generator was not the bottleneck,
    the sizing compares the measurement with the generated manifests, the HPA was replayed over a
    day, and one replica was compared with two behind the nginx stand-in."""
    by_id = {r["check"]: r for r in _records(example_run)}
    load = by_id["scaling.loadtest"]
    assert load["status"] == "passed" and load["figures"]["capacity_rps"] > 0
    assert load["proof"] == "stand-in" and "not a kubelet" in load["figures"]["how"]
    assert load["figures"]["cpu_limit"] == 0.5 and load["figures"]["url"].startswith("http://127.0.0.1:")
    assert max(s["generator_cpu"] for s in load["figures"]["steps"]) < 0.8
    assert by_id["scaling.generator"]["status"] == "passed"
    sizing = by_id["scaling.sizing"]["figures"]
    assert sizing["generated"]["maxReplicas"] == 10 and {"cpu_request_m", "max_replicas"} <= set(sizing["derived"])
    assert all(name in sizing["formulas"] for name in sizing["derived"])
    simulation = by_id["scaling.simulation"]
    assert simulation["proof"] == "emulated" and len(simulation["figures"]["replicas"]) == 24 * 60
    scaleout = by_id["scaling.scaleout"]["figures"]
    assert scaleout["by_replicas"]["2"]["achieved_rps"] > 0 and scaleout["ratio"] > 0
    assert by_id["scaling.scaleout"]["standins"]["nginx:1.27-bookworm"] == "kit-standin/nginx:1"


def test_security_evidence_in_the_full_run(example_run):
    """SBOM valid and complete, no secret anywhere (the planted .env beside the source is not output),
    every overlay admitted and every mutation denied, capabilities empty in the running container."""
    by_id = {r["check"]: r for r in _records(example_run)}
    sbom = by_id["security.sbom"]
    assert sbom["status"] == "passed" and sbom["figures"]["spec_version"] == "1.6"
    assert sbom["figures"]["requirements_missing"] == [] and sbom["figures"]["by_type"]["python"] >= 5
    assert (example_run["project"] / "kit-out" / "evidence" / "sbom.cdx.json").is_file()
    for check in ("security.secrets.files", "security.secrets.source", "security.secrets.image"):
        assert by_id[check]["status"] == "passed" and by_id[check]["figures"]["findings"] == 0, by_id[check]["reason"]
    assert by_id["security.secrets.image"]["figures"]["layers"] >= 4
    assert by_id["security.admission.overlays"]["status"] == "passed"
    matrix = by_id["security.admission.overlays"]["figures"]["matrix"]
    assert {m.split("/")[0] for m in matrix} == {"dev", "staging", "prod"}
    assert by_id["security.admission.mutations"]["status"] == "passed"
    assert by_id["security.admission.mutations"]["figures"]["addon_images"] == [
        "quay.io/jetstack/cert-manager-acmesolver:v1.17.2"]
    for check in ("security.policies.rules", "security.policies.kustomize", "security.threat_model", "security.signing"):
        assert by_id[check]["status"] == "passed", (check, by_id[check]["reason"])
    hard = by_id["security.hardening"]
    assert hard["status"] == "passed" and int(hard["figures"]["CapEff"], 16) == 0
    assert hard["figures"]["NoNewPrivs"] == "1" and hard["figures"]["setuid_setgid"] == []
    assert set(hard["figures"]["write_attempts"].values()) == {"EROFS"}
    assert by_id["security.vulnerabilities"]["status"] == "skipped"
    work = (example_run["project"] / "kit-out" / "work.md").read_text()
    assert "- [x] No secrets or sensitive data in output" in work
    assert PLANTED not in json.dumps(_records(example_run))
