"""The published site, built from generated files and evidence records (no Docker): no machine
path anywhere, every deliverable in the browser with a copy button, a filterable evidence table,
and a system diagram laid out by Graphviz."""
from __future__ import annotations

import re
import sys
import tempfile

import pytest

from kit.evidence import Evidence
from kit.pipeline import generate, save_family_evidence
from kit.publish import build_site, system_dot
from kit.spec import load_spec

pytestmark = pytest.mark.tools          # runs mkdocs, Graphviz and (one test) Chromium


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from tests.conftest import copy_example
    project = copy_example(tmp_path_factory.mktemp("site") / "shop-api")
    spec = load_spec(project)
    files = generate(spec)
    tmp = tempfile.gettempdir()
    save_family_evidence(spec.output, "container", [
        Evidence("container.build", "Dockerfile", "The image builds", "passed", proof="stand-in",
                 figures={"size_mb": 236.9}, command=f"docker build {spec.output}",
                 log=f"copied {spec.project}/app to {tmp}/kit-stage-x1y2/ctx with {sys.prefix}/bin/python"),
        Evidence("container.healthy", "Dockerfile", "Healthy", "passed", proof="stand-in",
                 figures={"time_to_healthy_s": 0.7})])
    save_family_evidence(spec.output, "iac", [
        Evidence("iac.validate.bootstrap", "terraform/bootstrap", "terraform validate", "skipped",
                 reason=f"providers are not in the mirror {tmp}/kit-tf-abc/providers")])
    (spec.output / "work.md").write_text("# Work\n\n[`app/Dockerfile`](../kit-out/Dockerfile)\n")
    return spec, files, build_site(spec, [])


def test_no_machine_path_anywhere_in_the_site(site):
    spec, _files, out = site
    machine = [str(spec.project), sys.prefix, tempfile.gettempdir().rstrip("/") + "/kit-"]
    found = [(page.name, m) for page in out.rglob("*.html") for m in machine if m in page.read_text()]
    assert found == []
    evidence = (out / "evidence.html").read_text()
    assert "$TMPDIR/ctx" in evidence and "$KIT_VENV/bin/python" in evidence, "paths are replaced, not dropped"


def test_every_deliverable_is_in_the_browser_with_a_copy_button(site):
    _spec, files, out = site
    page = (out / "deliverables.html").read_text()
    for rel in files:
        anchor = "f-" + re.sub(r"[^a-zA-Z0-9]+", "-", rel).strip("-").lower()
        assert f'id="{anchor}"' in page, rel
    assert '"content.code.copy"' in page, "mkdocs-material adds a copy button to every code block"
    assert page.count('class="highlight"') >= len(files), "every file is a highlighted code block"
    assert "/root/.cache/pip" in page, "paths inside the image are the deliverable's own and stay"


def test_evidence_table_is_filterable_and_links_work_md_to_the_browser(site):
    _spec, _files, out = site
    page = (out / "evidence.html").read_text()
    assert 'id="evidence-table"' in page and 'data-family="iac"' in page and 'data-status="skipped"' in page
    assert (out / "javascripts" / "evidence-filter.js").is_file()
    assert 'href="deliverables.html#f-dockerfile"' in (out / "work.html").read_text()


def test_the_system_diagram_is_laid_out_by_graphviz(site):
    spec, _files, out = site
    svg = (out / "system.svg").read_text()
    assert "<svg" in svg and svg.count('class="edge"') == system_dot(spec).count(" -> ")
    assert 'src="system.svg"' in (out / "index.html").read_text()


def test_the_evidence_filter_works_in_chromium(site):
    import functools
    import http.server
    import shutil
    import threading

    from playwright.sync_api import sync_playwright
    _spec, _files, out = site
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    errors: list[str] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/evidence.html", wait_until="networkidle")
            assert page.inner_text("#evidence-count") == "3 shown"
            page.select_option("#evidence-status", "skipped")
            assert page.inner_text("#evidence-count") == "1 shown"
            page.select_option("#evidence-status", "")
            page.fill("#evidence-text", "healthy")
            assert page.inner_text("#evidence-count") == "1 shown"
            browser.close()
    finally:
        server.shutdown()
    assert errors == []


def test_kubernetes_diagram_arrows_meet_their_boxes(site):
    """The notebook's object diagram is laid out by Graphviz: every reference between two shown
    objects is one edge of the SVG, drawn from one node to another (no free-floating arrows)."""
    from kit.families.kubernetes import views
    from kit.nbview import graphviz_svg
    spec, _files, _out = site
    objects = views.built(spec, "dev")
    dot = views.diagram_dot(objects, "dev")
    svg = graphviz_svg(dot)
    assert dot.count(" -> ") >= 10 and svg.count('class="edge"') == dot.count(" -> ")
    assert "Ingress" in svg and "HorizontalPodAutoscaler" in svg
