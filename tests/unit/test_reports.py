"""Reports are views of evidence: ticks need passing records, sections come in order."""
from __future__ import annotations

import re
from datetime import date

from kit.evidence import Evidence
from kit.families import families, render_all
from kit.report.acceptance import standard_items, task_items
from kit.report.context import append_write_zone, read_context, write_zone_entry
from kit.report.workmd import SECTIONS, render_work_md
from kit.spec import load_spec

STANDARD = [(item.text, item.checks) for f in families().values() for item in f.checklist]


def _ev(check, status="passed", **figures):
    return Evidence(check, "Dockerfile", check, status, figures=figures)


def _all_standard(status="passed"):
    return [_ev(c.replace("*", "any"), status) for _, checks in STANDARD for c in checks]


def test_standard_items_ticked_only_by_passing_evidence():
    assert len(STANDARD) == 26                       # the families' declared items, each judged once
    assert [i.text for i in standard_items([])] == [text for text, _ in STANDARD]
    assert all(check.split(".")[0] in families() for _, checks in STANDARD for check in checks)
    assert all(i.ticked for i in standard_items(_all_standard()))
    records = _all_standard()
    records[0] = _ev(records[0].check, "failed")
    items = standard_items(records)
    assert not items[0].ticked and items[0].state == "failed"
    assert all(i.ticked for i in items[1:])


def test_missing_evidence_is_unproven_not_ticked():
    items = standard_items([])
    assert all(i.state == "unproven" and not i.ticked for i in items)


def test_task_criteria_mapping_and_human_review():
    records = [_ev("container.nonroot"), _ev("container.metrics", "failed"),
               _ev("container.build", size_mb=250.0)]
    items = task_items(("The image runs as a non-root user", "/metrics exposes Prometheus metrics",
                        "Image size under 400 MB", "Image size under 100 MB",
                        "The on-call team agrees the runbook is sufficient"), records)
    states = [i.state for i in items]
    assert states == ["passed", "failed", "passed", "failed", "review"]
    assert "needs human review" in items[4].note


def test_work_md_has_seven_sections_in_order(minimal):
    spec = load_spec(minimal)
    files = render_all(spec)
    text = render_work_md(spec, files, _all_standard(), {"ctx.md": "earlier note"})
    headings = re.findall(r"^## (.+)$", text, re.M)
    assert headings == list(SECTIONS)
    assert "```dockerfile" in text and "> earlier note" in text
    for section in ("### Prerequisites", "### Risks", "### Rollback"):
        assert section in text.split("## Integration Notes", 1)[1]
    checklist = text.split("## Acceptance Checklist", 1)[1]
    assert checklist.count("- [x]") == len(STANDARD) + 1   # the standard items + the fixture's one criterion


def test_write_zone_entry_is_short_and_not_duplicated(minimal):
    spec = load_spec(minimal)
    entry = write_zone_entry(spec, _all_standard(), render_all(spec), date(2026, 11, 27))
    rows = entry.strip().splitlines()
    assert 3 <= len(rows) <= 8 and rows[0] == "## DevOps Architect - 2026-11-27"
    assert [r.split(":")[0] for r in rows[1:]] == ["- Implemented", "- Key files", "- Tests", "- Next steps"]
    assert "Dockerfile," not in rows[1], "the Write Zone counts the deliverables, it does not list ~100 files"
    assert append_write_zone(spec, entry) is True
    assert append_write_zone(spec, entry) is False
    path = minimal / ".claude" / "tasks" / "context_session_1.md"
    assert path.read_text().count("## DevOps Architect - 2026-11-27") == 1
    assert read_context(spec) == {}, "kit does not quote its own Write Zone entries back"
    path.write_text(path.read_text() + "\n## Backend Engineer - 2026-11-28\n- Implemented: a new route\n")
    assert read_context(spec) == {".claude/tasks/context_session_1.md":
                                  "## Backend Engineer - 2026-11-28\n- Implemented: a new route"}


def test_task_figures_list_missing_sections(minimal):
    from kit.api import task_figures
    figures = {row["figure"]: row["value"] for row in task_figures(load_spec(minimal))}
    assert figures["missing sections"] == "Context, Technical constraints, Integration requirements"
    assert figures["acceptance criteria"] == 1


def test_each_family_says_how_it_was_proven_and_never_rounds_up():
    from kit.evidence import label_proof
    from kit.report.proof import by_level, family_proofs, proof_line
    build = _ev("container.build")
    build.standins = {"python:3.11-slim-bookworm": "kit-standin/python:3.11-bookworm"}
    container_static, container_run = [_ev("container.hadolint")], [build, _ev("container.healthy")]
    label_proof(container_static, sandbox=False, base_standins={})
    label_proof(container_run, sandbox=True, base_standins=build.standins)
    pod = [_ev("kubernetes.pod.startup"), _ev("kubernetes.pod.liveness", "skipped")]
    label_proof(pod, sandbox=True, base_standins=build.standins, emulated=True)
    k8s_static, cicd = [_ev("kubernetes.checkov")], [_ev("cicd.actionlint"), _ev("cicd.rule.pinned")]
    label_proof(k8s_static + cicd, sandbox=False, base_standins={})
    records = container_static + container_run + k8s_static + pod + cicd
    assert container_run[1].proof == "stand-in" and container_run[1].standins == build.standins
    assert pod[0].proof == "emulated" and pod[1].proof == ""        # a skipped record proved nothing
    lines = {p.name: proof_line(p) for p in family_proofs(records)}
    assert "stand-in run (`kit-standin/python:3.11-bookworm` for `python:3.11-slim-bookworm`) and static checks" \
        in lines["container"]
    assert "emulated (the pod sandbox is Docker running" in lines["kubernetes"] and "real run" not in lines["kubernetes"]
    assert lines["cicd"].endswith("static checks only: nothing here ran it.")
    assert by_level(family_proofs(records)) == "stand-in runs: container; emulated: kubernetes; static only: cicd"
    # a checklist item is only as proven as its weakest record
    items = {i.text: i for i in standard_items(records)}
    pod_item = next(i for t, i in items.items() if t.startswith("The image runs under the Deployment"))
    assert pod_item.state == "unproven"                              # liveness was skipped: not ticked
    lint = next(i for t, i in items.items() if t.startswith("Dockerfile and entrypoint lint"))
    assert lint.state == "unproven"                                  # no shellcheck record at all
    build_item = next(i for t, i in items.items() if t == "The image builds with BuildKit")
    assert build_item.ticked and build_item.proof == "stand-in"


def test_work_md_never_claims_real_containers_for_a_static_family(minimal):
    from kit.evidence import label_proof
    spec = load_spec(minimal)
    records = [_ev("cicd.actionlint"), _ev("iac.fmt")]
    label_proof(records, sandbox=False, base_standins={})
    text = render_work_md(spec, render_all(spec), records, {})
    summary = text.split("## Deliverables")[0]
    assert "real containers" not in text
    assert "- **CI/CD pipelines**: 1 passed, 0 failed, 0 skipped; static checks only: nothing here ran it." in summary


def test_write_zone_lists_only_the_checks_that_really_were_skipped(minimal):
    spec = load_spec(minimal)
    records = _all_standard()
    records[2] = Evidence(records[2].check, "x", "x", "skipped", reason="no engine")
    entry = write_zone_entry(spec, records, render_all(spec), date(2026, 11, 27))
    skipped = [r for r in entry.splitlines() if r.startswith("- Skipped:")]
    assert skipped == [f"- Skipped: {records[2].check} (reasons in work.md's Testing section)."]
    assert 3 <= len(entry.strip().splitlines()) <= 8


def test_work_md_of_the_example_is_short_links_every_file_and_inlines_none(example):
    from kit.report.workmd import EXCERPT_LINES, destination, link
    spec = load_spec(example)
    files = render_all(spec)
    text = render_work_md(spec, files, _all_standard(), {})
    assert len(text.splitlines()) < 400
    for rel in files:                                   # every deliverable linked, from .claude/
        assert f"]({link(spec, rel)})" in text, rel
        assert (spec.project / ".claude" / link(spec, rel)).resolve() == (spec.output / rel).resolve()
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text.split("## Usage Examples")[0], re.S)
    assert blocks and max(len(b.splitlines()) for b in blocks) <= EXCERPT_LINES, "no file inlined whole"
    assert destination(spec, ".github/workflows/ci.yml") == ".github/workflows/ci.yml"
    assert destination(spec, "Dockerfile") == "app/Dockerfile"


def test_every_generated_file_has_a_purpose(example, minimal):
    """The Deliverables table gives each file its one-line purpose: a family that adds a file
    without declaring it fails here."""
    from fnmatch import fnmatch
    for project in (example, minimal):
        spec = load_spec(project)
        for family in families().values():
            for rel in family.render(spec):
                assert any(fnmatch(rel, g) for g, _ in family.purposes), f"{family.name}: {rel} has no purpose"


def test_work_md_lists_the_warnings_of_passed_checks(minimal):
    spec = load_spec(minimal)
    records = _all_standard()
    records.append(Evidence("scaling.sizing", "k8s/", "sizing", "passed",
                            figures={"warnings": ["max_replicas: the manifests carry 10, the measurement gives 4"]}))
    text = render_work_md(spec, render_all(spec), records, {})
    testing = text.split("## Testing", 1)[1].split("## Integration Notes", 1)[0]
    assert "- `scaling.sizing`: max_replicas: the manifests carry 10, the measurement gives 4" in testing
