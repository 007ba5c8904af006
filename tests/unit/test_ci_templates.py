"""kit's own CI templates (the reusable GitHub workflows and the GitLab include) pass the field's
linters here, pin every action to the same commits as the generated pipelines, and call kit the
way its command line works. Static checks only: no GitHub or GitLab runner is reachable here."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from kit.core.checkov import run_checkov
from kit.families.cicd.checks import actionlint, run_shellcheck, schema
from kit.families.cicd.render import ACTIONS

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("kit-*.yml"))
GITLAB = ROOT / "ci" / "kit.gitlab-ci.yml"


def test_the_reusable_workflows_are_where_github_looks_for_them():
    # GitHub runs and lets other repositories call only workflows in .github/workflows at the root
    # (docs.github.com, "Reusing workflows": `uses: {owner}/{repo}/.github/workflows/{filename}@{ref}`)
    assert [w.name for w in WORKFLOWS] == ["kit-fleet.yml", "kit-verify.yml"]
    for workflow in WORKFLOWS:
        on = yaml.safe_load(workflow.read_text())[True]          # YAML 1.1 reads `on` as True
        assert "workflow_call" in on, workflow.name


def test_every_action_is_pinned_to_the_generated_pipelines_commit():
    for path in [*WORKFLOWS]:
        for action, ref, tag in re.findall(r"uses: ([\w./-]+)@(\S+) # (\S+)", path.read_text()):
            assert ACTIONS[action] == (ref, tag), f"{path.name}: {action}@{ref} # {tag}"
        steps = "\n".join(row for row in path.read_text().splitlines() if not row.lstrip().startswith("#"))
        assert not re.search(r"uses: [\w./-]+@(?![0-9a-f]{40}\b)", steps), path.name


def test_the_templates_call_kit_with_options_it_has():
    from kit.cli import parser
    run = parser()._subparsers._group_actions[0].choices["run"]
    known = {opt for action in run._actions for opt in action.option_strings}
    texts = [w.read_text() for w in WORKFLOWS] + [GITLAB.read_text()]
    for text in texts:
        for line in re.findall(r"kit run [^\n]*", text):
            for option in re.findall(r"\s(--[a-z-]+)", line):
                assert option in known, line
    assert "kit fleet" in WORKFLOWS[0].read_text()
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert "KIT_SETUP_STATIC" in setup and all("KIT_SETUP_STATIC" in t for t in texts)


@pytest.mark.tools
def test_actionlint_shellcheck_and_the_schemas_find_nothing(tmp_path):
    names = [str(w.relative_to(ROOT)) for w in WORKFLOWS]
    record = actionlint(ROOT, names)
    assert record.passed and record.figures["workflows"] == 2, record.log or record.reason
    files = {n: (ROOT / n).read_text() for n in names}
    assert run_shellcheck(files, names).passed
    assert schema("x", "w", "vendor.github-workflows", ROOT, names).passed
    assert schema("x", "g", "vendor.gitlab-ci", ROOT, [str(GITLAB.relative_to(ROOT))]).passed


@pytest.mark.tools
def test_checkov_finds_nothing(tmp_path):
    shutil.copytree(ROOT / ".github", tmp_path / "gh" / ".github")
    record = run_checkov("x", "w", "t", tmp_path / "gh", "github_actions")
    assert record.passed, record.reason + record.log
    (tmp_path / "gl").mkdir()
    shutil.copy(GITLAB, tmp_path / "gl" / ".gitlab-ci.yml")
    record = run_checkov("x", "g", "t", tmp_path / "gl", "gitlab_ci")
    assert record.passed, record.reason + record.log


@pytest.mark.tools
def test_a_broken_workflow_is_caught(tmp_path):
    bad = tmp_path / ".github" / "workflows" / "kit-verify.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(WORKFLOWS[1].read_text().replace("${{ inputs.kit-ref }}", "${{ inputs.kit_ref }}", 1))
    assert not actionlint(tmp_path, [str(bad.relative_to(tmp_path))]).passed
