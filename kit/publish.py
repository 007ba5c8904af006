"""The published site: executed notebooks and evidence as an mkdocs-material site that loads
nothing from outside itself."""
from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from kit.errors import KitError
from kit.evidence import Evidence, summarize
from kit.model import Spec
from kit.pipeline import collect_evidence
from kit.report.paths import scrub
from kit.report.proof import family_proofs

CORE_PAGES = {"00_task": "Task and service model", "90_report": "Report"}   # the two notebooks no family owns


def page_titles() -> dict[str, str]:
    """Every notebook's page title: the core pages, and each family's own title."""
    from kit.families import families
    return {**CORE_PAGES, **{f.notebook: f.title for f in families().values()}}


def notebook_to_markdown(notebook: Path, pages: Path, spec: Spec | None = None) -> str:
    """Convert an executed notebook into a page plus its images; return the page's file name.
    The page shows the narrative, tables and plots: no code cell, no prompt, and not the
    injected-parameters cell (which holds this machine's paths)."""
    import nbformat
    from nbconvert import MarkdownExporter
    nb = nbformat.read(str(notebook), as_version=4)
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    stem = notebook.stem
    exporter = MarkdownExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, resources = exporter.from_notebook_node(
        nb, resources={"output_files_dir": f"{stem}_files", "unique_key": stem})
    if spec is not None:
        body = scrub(body, spec)
    for name, data in (resources.get("outputs") or {}).items():
        target = pages / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    (pages / f"{stem}.md").write_text(body)
    return f"{stem}.md"


FILTER_JS = """// Filter the evidence table by text, family and status (no network, no library).
document$.subscribe(function () {
  var table = document.getElementById("evidence-table");
  if (!table) { return; }
  var text = document.getElementById("evidence-text");
  var family = document.getElementById("evidence-family");
  var status = document.getElementById("evidence-status");
  var count = document.getElementById("evidence-count");
  function apply() {
    var q = text.value.toLowerCase(), shown = 0;
    table.querySelectorAll("tbody tr").forEach(function (row) {
      var ok = (!family.value || row.dataset.family === family.value) &&
               (!status.value || row.dataset.status === status.value) &&
               (!q || row.textContent.toLowerCase().indexOf(q) !== -1);
      row.style.display = ok ? "" : "none";
      if (ok) { shown += 1; }
    });
    count.textContent = shown + " shown";
  }
  [text, family, status].forEach(function (el) { el.addEventListener("input", apply); });
  apply();
});
"""


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _evidence_page(spec: Spec, records: list[Evidence]) -> str:
    """A filterable table of every record, then each record's details (command, reason, log)."""
    names = sorted({r.check.split(".")[0] for r in records})
    options = "".join(f'<option value="{_esc(n)}">{_esc(n)}</option>' for n in names)
    rows = ["# Evidence", "", "Every check kit ran, as recorded in `evidence.json`. Filter by text, family or "
            "status; each check links to its details below.", "",
            '<div class="kit-filter">',
            '<input id="evidence-text" type="search" placeholder="filter: check, tool, reason" aria-label="filter">',
            f'<select id="evidence-family" aria-label="family"><option value="">every family</option>{options}</select>',
            '<select id="evidence-status" aria-label="status"><option value="">every status</option>'
            '<option>passed</option><option>failed</option><option>skipped</option></select>',
            '<span id="evidence-count"></span>', '</div>', "",
            '<table id="evidence-table"><thead><tr><th>check</th><th>status</th><th>proof</th><th>tool</th>'
            '<th>title</th></tr></thead><tbody>']
    for r in records:
        anchor = r.check.replace(".", "-")
        rows.append(f'<tr data-family="{_esc(r.check.split(".")[0])}" data-status="{_esc(r.status)}">'
                    f'<td><a href="#{_esc(anchor)}"><code>{_esc(r.check)}</code></a></td>'
                    f'<td>{_esc(r.status)}{" (reused)" if r.cached_from else ""}</td><td>{_esc(r.proof or "-")}</td>'
                    f'<td>{_esc(r.tool or "-")}</td><td>{_esc(scrub(r.title, spec))}</td></tr>')
    rows += ["</tbody></table>", ""]
    for r in records:
        rows += [f"## `{r.check}` — {r.status} {{ #{r.check.replace('.', '-')} }}", "", f"{r.title}", "",
                 f"- deliverable: `{r.deliverable}`", f"- tool: {r.tool or '-'}", f"- proof: {r.proof or '-'}",
                 f"- duration: {r.duration_s} s"]
        if r.cached_from:
            rows.append(f"- **reused, not re-run:** cached from {r.cached_from} (every input unchanged since)")
        if r.command:
            rows.append(f"- command: `{r.command}`")
        if r.reason:
            rows.append(f"- reason: {r.reason}")
        if r.fallback:
            rows.append(f"- fallback: {r.fallback}")
        for real, local in r.standins.items():
            rows.append(f"- stand-in: `{local}` for `{real}`")
        if r.log:
            rows += ["", "```text", r.log, "```"]
        rows.append("")
    return scrub("\n".join(rows), spec)


KEY_FIGURES = (   # (check, figure, label, unit): shown on the landing page when the record has it
    ("container.build", "size_mb", "Image size", "MB"),
    ("container.healthy", "time_to_healthy_s", "Container healthy after", "s"),
    ("compose.up", "time_to_healthy_s", "Compose stack healthy after", "s"),
    ("kubernetes.validate.*", "objects", "Kubernetes objects validated", ""),
    ("observability.live.rules", "rules", "Prometheus rules loaded live", ""),
    ("observability.promtool_test", "alerts_fire_tested", "Alerts unit-tested firing (promtool)", ""),
    ("observability.live.target_down", "firing_after_s", "TargetDown seen firing after the app stopped", "s"),
    ("backup.drill.rto", "rto_s", "DR drill: destruction to healthy (RTO)", "s"),
    ("backup.drill.rpo", "seconds_lost", "DR drill: writes lost (RPO)", "s"),
    ("scaling.loadtest", "capacity_rps", "Capacity per pod within the latency objective", "req/s"),
)


def key_figures(records: list[Evidence]) -> list[dict]:
    """The landing page's figures (KEY_FIGURES) that this run's passed records carry."""
    from fnmatch import fnmatch
    out = []
    for check, figure, label, unit in KEY_FIGURES:
        rec = next((r for r in records if fnmatch(r.check, check) and figure in r.figures
                    and r.status == "passed"), None)
        if rec is not None:
            value = rec.figures[figure]
            value = len(value) if isinstance(value, list | dict) else value
            out.append({"label": label, "value": value, "unit": unit, "check": rec.check})
    return out


def _key_figures(records: list[Evidence]) -> list[str]:
    out = [f"| {f['label']} | {f['value']} {f['unit']} | [`{f['check']}`](evidence.md#{f['check'].replace('.', '-')}) |"
           for f in key_figures(records)]
    return (["| figure | value | evidence |", "|---|---|---|", *out] if out else [])


def _index_page(spec: Spec, records: list[Evidence], diagram: str) -> str:
    counts = summarize(records)
    rows = [f"# {spec.name}", "", spec.title, "",
            f"**{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped** "
            "— every figure here comes from an evidence record ([all of them](evidence.md)).", "",
            '<div class="grid cards" markdown>', ""]
    titles = page_titles()
    notebooks = {f.name: f.notebook for f in _families().values()}
    labels = {"real": "real run", "stand-in": "stand-in run", "emulated": "emulated", "static": "static checks"}
    for proof in family_proofs(records):
        c = proof.counts
        state = "failed" if c["failed"] else ("passed, static checks only" if proof.static_only else "passed")
        how = " and ".join(labels[level] for level in proof.levels) or "not run"
        if proof.static_only:
            how = "static checks only: nothing here ran it"
        page = f"{notebooks[proof.name]}.md"
        rows += [f"-   **[{titles.get(notebooks[proof.name], proof.title)}]({page})** · {state}", "",
                 "    ---", "",
                 f"    {c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped.", "",
                 f"    *Checked by:* {how}.", ""]
    rows += ["</div>", ""]
    figures = _key_figures(records)
    if figures:
        rows += ["## Key figures", "", *figures, ""]
    if diagram:
        rows += ["## The generated system", "",
                 f"![The generated system: traffic, data, telemetry and delivery paths]({diagram})", ""]
    standins = {k: v for r in records for k, v in r.standins.items()}
    if standins:
        rows += ["## Stand-ins", "", "No registry is reachable where kit ran, so the sandbox used local stand-ins; "
                 "the deliverables name the real images.", ""]
        rows += [f"- `{real}` → `{local}`" for real, local in sorted(standins.items())]
    rows += ["", "More: [the deliverables](deliverables.md) · [work.md](work.md) · [evidence](evidence.md)"]
    return scrub("\n".join(rows) + "\n", spec)


def _families():
    from kit.families import families
    return families()


def system_dot(spec: Spec) -> str:
    """The generated system as a Graphviz graph (laid out by dot, so every arrow meets its boxes)."""
    def q(*lines: str) -> str:          # a quoted label, one box line per argument
        return '"' + "\\n".join(x.replace("\\", "\\\\").replace('"', '\\"') for x in lines) + '"'

    def node(ident: str, *label: str, extra: str = "") -> str:
        return f"    {ident} [label={q(*label)}{', ' + extra if extra else ''}];"

    k = spec.option("kubernetes")
    ci = spec.option("ci")
    cloud = spec.option("cloud")
    managed = dict(k.managed)
    where = f"Kubernetes {k.version} on {cloud.provider} (one namespace per environment)"
    lines = ["digraph system {",
             '  rankdir=LR; fontname=Helvetica; node [shape=box, style="rounded,filled", fillcolor="#eceff1", '
             'fontname=Helvetica, fontsize=10]; edge [fontname=Helvetica, fontsize=9];',
             node("users", "clients", extra='shape=ellipse, fillcolor="#ffffff"'),
             node("ci", " / ".join(ci.providers) + " pipelines"),
             node("registry", "registry", spec.image.split("/")[0]),
             f"  subgraph cluster_k8s {{ label={q(where)}; style=dashed;",
             node("ingress", f"Ingress ({k.ingress_class})", f"TLS: {k.cluster_issuer}"),
             node("app", spec.name, "Deployment + HPA + PDB", extra='fillcolor="#bbdefb"'),
             node("secrets", "ExternalSecret", k.secret_store)]
    for dep in spec.dependencies:
        run = f"managed: {managed[dep.name]}" if dep.name in managed else "StatefulSet"
        lines.append(node(f"dep_{_ident(dep.name)}", dep.name, f"{dep.kind} ({run})", extra="shape=cylinder"))
    if spec.metrics_path:
        lines += [node("prom", "Prometheus", "(ServiceMonitor, rules)"), node("am", "Alertmanager")]
    lines.append("  }")
    lines += ['  users -> ingress [label="HTTPS"];', f"  ingress -> app [label={q(str(spec.port))}];",
              '  secrets -> app [label="files"];', '  ci -> registry [label="push, sign"];',
              '  registry -> app [label="pull by digest"];', '  ci -> app [label="kubectl apply", style=dashed];']
    lines += [f"  app -> dep_{_ident(dep.name)};" for dep in spec.dependencies]
    if spec.metrics_path:
        lines += [f"  prom -> app [label={q('scrape ' + spec.metrics_path)}, style=dotted];",
                  '  prom -> am [label="alerts"];']
    lines.append("}")
    return "\n".join(lines) + "\n"


def _ident(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name)


def render_diagram(spec: Spec, pages: Path) -> str:
    """system.svg from system_dot(), laid out by Graphviz."""
    from kit.nbview import graphviz_svg
    (pages / "system.svg").write_text(graphviz_svg(system_dot(spec)))
    return "system.svg"


def _fence_for(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`{3,}", text)), default=2)
    return "`" * max(3, longest + 1)


LEXER = {"Dockerfile": "dockerfile", ".yaml": "yaml", ".yml": "yaml", ".json": "json", ".sh": "bash",
         ".tf": "terraform", ".tfvars": "terraform", ".md": "markdown", ".env": "bash", ".example": "bash",
         ".py": "python"}


def _deliverables_page(spec: Spec, files: list[str]) -> str:
    from kit.report.workmd import destination
    rows = ["# Deliverables", "", "Every file kit generated, as it goes into the repository. Each block has a "
            "copy button.", ""]
    rows += [f"- [`{destination(spec, rel)}`](#{_anchor(rel)})" for rel in files]
    rows.append("")
    for rel in files:
        path = spec.output / rel
        text = path.read_text(errors="replace") if path.is_file() else ""
        lang = next((v for k, v in LEXER.items() if rel.endswith(k)), "text")
        fence = _fence_for(text)
        rows += [f"## `{destination(spec, rel)}` {{ #{_anchor(rel)} }}", "",
                 f"{fence}{lang}", text.rstrip("\n"), fence, ""]
    return scrub("\n".join(rows), spec)


def _anchor(rel: str) -> str:
    return "f-" + re.sub(r"[^a-zA-Z0-9]+", "-", rel).strip("-").lower()


def _runbook_pages(runbooks: Path, pages: Path) -> list[dict]:
    """The generated runbooks (monitoring/runbooks/*.md) as site pages, where alerts link."""
    if not (runbooks / "index.md").is_file():
        return []
    shutil.copytree(runbooks, pages / "runbooks")
    entries = [{"Index": "runbooks/index.md"}]
    entries += [{p.stem: f"runbooks/{p.name}"} for p in sorted(runbooks.glob("*.md")) if p.name != "index.md"]
    return [{"Runbooks": entries}]


def build_site(spec: Spec, notebooks: list[Path]) -> Path:
    from kit.families import render_all
    out = spec.output / "site"
    records = collect_evidence(spec.output)
    with tempfile.TemporaryDirectory(prefix="kit-site-") as tmp:
        root = Path(tmp)
        pages = root / "docs"
        pages.mkdir()
        diagram = render_diagram(spec, pages)
        (pages / "index.md").write_text(_index_page(spec, records, diagram))
        nav = [{"Summary": "index.md"}]
        titles = page_titles()
        for nb in notebooks:
            nav.append({titles[nb.stem]: notebook_to_markdown(nb, pages, spec)})
        (pages / "deliverables.md").write_text(_deliverables_page(spec, sorted(render_all(spec))))
        nav.append({"Deliverables": "deliverables.md"})
        nav += _runbook_pages(spec.output / "monitoring" / "runbooks", pages)
        work = spec.output / "work.md"
        if work.is_file():
            (pages / "work.md").write_text(_site_work_md(spec, work.read_text()))
            nav.append({"work.md": "work.md"})
        (pages / "evidence.md").write_text(_evidence_page(spec, records))
        nav.append({"Evidence": "evidence.md"})
        (pages / "javascripts").mkdir()
        (pages / "javascripts" / "evidence-filter.js").write_text(FILTER_JS)
        config = {"site_name": f"{spec.name}: deliverables and evidence", "docs_dir": "docs",
                  "site_dir": str(out), "use_directory_urls": False, "nav": nav,
                  "theme": {"name": "material", "font": False,
                            "features": ["navigation.sections", "content.code.copy"]},
                  "extra": {"generator": False}, "plugins": ["search"],
                  "extra_javascript": ["javascripts/evidence-filter.js"],
                  "markdown_extensions": ["tables", "admonition", "attr_list", "md_in_html",
                                          {"pymdownx.highlight": {"anchor_linenums": False}},
                                          {"pymdownx.superfences": {}}, {"toc": {"permalink": False}}]}
        base = _published_at(spec)
        if base:        # the 404 page's links then work under the address the team publishes it at
            config["site_url"] = base + "/"
        (root / "mkdocs.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        mkdocs = Path(sys.executable).with_name("mkdocs")
        env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
        proc = subprocess.run([str(mkdocs), "build", "--strict", "--quiet", "-f", str(root / "mkdocs.yml")],
                              capture_output=True, text=True, timeout=300, env=env)
        if proc.returncode != 0:
            raise KitError(f"mkdocs build --strict failed for the site:\n{proc.stdout}{proc.stderr}")
    from kit.families.security.checks import site_gate
    site_gate(spec)           # no secret in what is published: file and line of a finding, never its value
    return out


def _published_at(spec: Spec) -> str:
    """slo.site_url, where the team publishes this site ("" when the task does not say)."""
    try:
        slo = spec.option("slo")
    except KeyError:
        return ""
    if getattr(slo, "runbook_source", "") != "slo.site_url":
        return ""
    return slo.runbook_url.rsplit("/", 1)[0]


def _site_work_md(spec: Spec, text: str) -> str:
    """work.md on the site: its links to generated files point at the deliverables page instead
    (the files are not site pages), and its links into the site become site-relative."""
    from kit.families import render_all
    from kit.report.workmd import link
    for rel in render_all(spec):
        text = text.replace(f"]({link(spec, rel)})", f"](deliverables.md#{_anchor(rel)})")
    for page in ("site/evidence.html", "site/index.html", "evidence.json"):
        target = {"site/evidence.html": "evidence.md", "site/index.html": "index.md",
                  "evidence.json": "evidence.md"}[page]
        text = text.replace(f"]({link(spec, page)})", f"]({target})")
    return scrub(text, spec)
