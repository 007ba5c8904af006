"""The published site: executed notebooks and evidence as an mkdocs-material site that loads
nothing from outside itself."""
from __future__ import annotations

import os
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

CORE_PAGES = {"00_task": "Task and service model", "90_report": "Report"}   # the two notebooks no family owns


def page_titles() -> dict[str, str]:
    """Every notebook's page title: the core pages, and each family's own title."""
    from kit.families import families
    return {**CORE_PAGES, **{f.notebook: f.title for f in families().values()}}


def notebook_to_markdown(notebook: Path, pages: Path) -> str:
    """Convert an executed notebook into a page plus its images; return the page's file name."""
    import nbformat
    from nbconvert import MarkdownExporter
    nb = nbformat.read(str(notebook), as_version=4)
    stem = notebook.stem
    body, resources = MarkdownExporter().from_notebook_node(
        nb, resources={"output_files_dir": f"{stem}_files", "unique_key": stem})
    for name, data in (resources.get("outputs") or {}).items():
        target = pages / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    (pages / f"{stem}.md").write_text(body)
    return f"{stem}.md"


def _evidence_page(records: list[Evidence]) -> str:
    rows = ["# Evidence", "", "Every check kit ran, as recorded in `evidence.json`.", ""]
    for r in records:
        rows += [f"## `{r.check}` — {r.status}", "", f"{r.title}", "",
                 f"- deliverable: `{r.deliverable}`", f"- tool: {r.tool or '-'}",
                 f"- duration: {r.duration_s} s"]
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
    return "\n".join(rows)


def _index_page(spec: Spec, records: list[Evidence]) -> str:
    counts = summarize(records)
    rows = [f"# {spec.name}", "", spec.title, "",
            f"**{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped.**", "",
            "| check | status | title |", "|---|---|---|"]
    rows += [f"| `{r.check}` | {r.status} | {r.title} |" for r in records]
    standins = {k: v for r in records for k, v in r.standins.items()}
    if standins:
        rows += ["", "Stand-ins used in the sandbox (the deliverables name the real images):", ""]
        rows += [f"- `{real}` → `{local}`" for real, local in sorted(standins.items())]
    return "\n".join(rows) + "\n"


def _runbook_pages(runbooks: Path, pages: Path) -> list[dict]:
    """The generated runbooks (monitoring/runbooks/*.md) as site pages, where alerts link."""
    if not (runbooks / "index.md").is_file():
        return []
    shutil.copytree(runbooks, pages / "runbooks")
    entries = [{"Index": "runbooks/index.md"}]
    entries += [{p.stem: f"runbooks/{p.name}"} for p in sorted(runbooks.glob("*.md")) if p.name != "index.md"]
    return [{"Runbooks": entries}]


def build_site(spec: Spec, notebooks: list[Path]) -> Path:
    out = spec.output / "site"
    records = collect_evidence(spec.output)
    with tempfile.TemporaryDirectory(prefix="kit-site-") as tmp:
        root = Path(tmp)
        pages = root / "docs"
        pages.mkdir()
        (pages / "index.md").write_text(_index_page(spec, records))
        nav = [{"Summary": "index.md"}]
        titles = page_titles()
        for nb in notebooks:
            nav.append({titles[nb.stem]: notebook_to_markdown(nb, pages)})
        nav += _runbook_pages(spec.output / "monitoring" / "runbooks", pages)
        work = spec.output / "work.md"
        if work.is_file():
            shutil.copy(work, pages / "work.md")
            nav.append({"work.md": "work.md"})
        (pages / "evidence.md").write_text(_evidence_page(records))
        nav.append({"Evidence": "evidence.md"})
        config = {"site_name": f"{spec.name}: deliverables and evidence", "docs_dir": "docs",
                  "site_dir": str(out), "use_directory_urls": False, "nav": nav,
                  "theme": {"name": "material", "font": False, "features": ["navigation.sections"]},
                  "extra": {"generator": False}, "plugins": ["search"],
                  "markdown_extensions": ["tables", "admonition", "attr_list", "md_in_html",
                                          {"pymdownx.superfences": {}}]}
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
