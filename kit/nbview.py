"""What notebooks display: evidence tables and charts. Views only, no logic."""
from __future__ import annotations

import html
from collections.abc import Iterable

from kit.evidence import Evidence, short_figures

COLOUR = {"passed": "#2e7d32", "failed": "#c62828", "skipped": "#f57f17"}


def _cell(column: str, value: object) -> str:
    text = html.escape(str(value))
    if column in ("status", "state") and str(value) in COLOUR:
        return f'<td><strong style="color:{COLOUR[str(value)]}">{text}</strong></td>'
    return f"<td>{text}</td>"


def table(rows: Iterable[dict], columns: list[str] | None = None) -> str:
    rows = list(rows)
    columns = columns or (list(rows[0]) if rows else [])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(c, r.get(c, "")) for c in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def evidence_table(records: list[Evidence]) -> str:
    rows = [{"check": r.check, "status": r.status, "title": r.title, "tool": r.tool,
             "seconds": r.duration_s, "figures": short_figures(r), "reason": r.reason} for r in records]
    return table(rows, ["check", "status", "title", "tool", "seconds", "figures", "reason"])


def failures(records: list[Evidence]) -> str:
    """Every failed check, with its log excerpt, visible in the notebook itself."""
    parts = []
    for r in records:
        if r.status == "failed":
            parts.append(f"<h4>failed: {html.escape(r.check)}: {html.escape(r.reason)}</h4>"
                         f"<pre>{html.escape(r.command)}\n\n{html.escape(r.log)}</pre>")
    return "".join(parts) or "<p>No check failed.</p>"


def standins(records: list[Evidence]) -> str:
    seen = {k: v for r in records for k, v in r.standins.items()}
    if not seen:
        return "<p>No stand-in images were used.</p>"
    return ("<p>No registry is reachable in this sandbox, so local stand-ins built from Debian packages "
            "replaced these images. The deliverables name the real ones.</p>"
            + table([{"real image": k, "stand-in": v} for k, v in sorted(seen.items())]))


def bar_chart(labels: list[str], values: list[float], title: str, xlabel: str):
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, max(2.0, 0.35 * len(labels) + 1)))
    ax.barh(range(len(labels)), values, color="#3f51b5")
    ax.set_yticks(range(len(labels)), [lbl[:60] for lbl in labels], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    fig.tight_layout()
    plt.close(fig)  # displayed once by the caller, not again by the inline backend
    return fig


def stacked_status_chart(counts: list[dict]):
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 2.5))
    names = [c["family"] for c in counts]
    left = [0] * len(counts)
    for status, colour in (("passed", "#2e7d32"), ("failed", "#c62828"), ("skipped", "#f9a825")):
        values = [c[status] for c in counts]
        ax.barh(names, values, left=left, color=colour, label=status)
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.set_xlabel("checks")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    ax.set_title("Evidence by family")
    fig.tight_layout()
    plt.close(fig)
    return fig


def graphviz_svg(dot_source: str) -> str:
    """Lay out a Graphviz graph with `dot` (so every arrow meets its boxes); the SVG text."""
    import shutil
    import subprocess

    from kit.errors import KitError
    dot = shutil.which("dot")
    if dot is None:
        raise KitError("diagrams need Graphviz's `dot`: apt-get install -y graphviz (or bash scripts/setup.sh)")
    proc = subprocess.run([dot, "-Tsvg"], input=dot_source, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise KitError(f"dot could not lay out the diagram: {proc.stderr.strip()}")
    return proc.stdout


def dot_quote(text: str) -> str:
    """A Graphviz string literal ("\\n" in ``text`` stays a line break)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
