"""kit's own pipeline rules, on parsed GitHub Actions workflows: each returns the problems it
found (an empty list means the rule holds). Pure functions, so a unit test can break each one."""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import yaml

SHA_PIN = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"@[0-9a-f]{40}\s+#\s*v?\d+(\.\d+)*\s*$")
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.S)
# contexts an outsider can set (issue titles, branch names, PR bodies, inputs, step outputs
# derived from them); anything in run: must come through env instead
UNTRUSTED = re.compile(r"\b(github\.event\.|github\.head_ref|inputs\.|steps\.|needs\.|env\.|matrix\.|vars\.)")
# a job may hold a write scope only when it does something that needs it
NEEDS_WRITE = {
    "packages": re.compile(r"docker/login-action|docker push|--push\b|push: true"),
    "id-token": re.compile(r"cosign sign|configure-aws-credentials|google-github-actions/auth|azure/login"),
    "contents": re.compile(r"git push|gh release|action-gh-release"),
    "attestations": re.compile(r"actions/attest"),
    "security-events": re.compile(r"codeql-action/upload-sarif"),
    "pull-requests": re.compile(r"gh pr (comment|edit|review)"),
}

Workflow = dict[str, Any]


def _jobs(wf: Workflow) -> Iterator[tuple[str, dict]]:
    for name, job in (wf.get("jobs") or {}).items():
        yield name, job or {}


def _steps(wf: Workflow) -> Iterator[tuple[str, int, dict]]:
    for name, job in _jobs(wf):
        for index, step in enumerate(job.get("steps") or []):
            yield name, index, step or {}


def pinned_actions(wf: Workflow, text: str, others: dict[str, Workflow]) -> list[str]:
    """Every `uses:` outside this repository is pinned to a 40-hex commit with a version comment."""
    problems = []
    refs = [(f"{j}.steps[{i}]", s.get("uses")) for j, i, s in _steps(wf) if s.get("uses")]
    refs += [(j, job.get("uses")) for j, job in _jobs(wf) if job.get("uses")]
    for where, ref in refs:
        if ref.startswith("./") or ref.startswith("docker://"):
            continue
        if not SHA_PIN.match(ref):
            problems.append(f"{where}: {ref} is not pinned to a full commit SHA")
            continue
        line = next((row for row in text.splitlines() if ref in row), "")
        if not VERSION_COMMENT.search(line):
            problems.append(f"{where}: {ref} has no '# vX.Y.Z' comment naming the release")
    return problems


def _job_text(job: dict, others: dict[str, Workflow]) -> str:
    """What a job does, as text: its steps, or the jobs of the local workflow it calls."""
    called = job.get("uses") or ""
    if called.startswith("./"):
        callee = others.get(called[2:]) or {}
        return "\n".join(_job_text(j, others) for j in (callee.get("jobs") or {}).values())
    return yaml.safe_dump(job.get("steps") or [], sort_keys=False)


def _permission_problems(where: str, perms: Any, top: bool, does: str = "") -> list[str]:
    if perms is None:
        return [f"{where}: no permissions block (the token would get the repository default)"]
    if isinstance(perms, str):
        return [] if perms == "read-all" and top else [f"{where}: permissions: {perms}"]
    problems = []
    for scope, level in perms.items():
        if level != "write":
            continue
        if top:
            problems.append(f"{where}: {scope}: write at the top level")
        elif scope not in NEEDS_WRITE or not NEEDS_WRITE[scope].search(does):
            problems.append(f"{where}: {scope}: write, but nothing in the job needs it")
    return problems


def least_privilege(wf: Workflow, text: str, others: dict[str, Workflow]) -> list[str]:
    """Top level grants nothing (or read); every job names its own permissions, and writes only
    what one of its steps (or the workflow it calls) needs."""
    problems = _permission_problems("top level", wf.get("permissions"), top=True)
    for name, job in _jobs(wf):
        problems += _permission_problems(f"jobs.{name}", job.get("permissions"), top=False,
                                         does=_job_text(job, others))
    return problems


def timeouts(wf: Workflow, text: str, others: dict[str, Workflow]) -> list[str]:
    """Every job that runs steps has timeout-minutes (a job calling a reusable workflow cannot;
    the called workflow's jobs carry it)."""
    return [f"jobs.{name}: no timeout-minutes" for name, job in _jobs(wf)
            if not job.get("uses") and not job.get("timeout-minutes")]


def concurrency(wf: Workflow, text: str, others: dict[str, Workflow]) -> list[str]:
    """A workflow that others do not call declares a concurrency group, at the workflow level or
    on every job (per-environment groups, so one environment's run never replaces another's)."""
    triggers = wf.get("on") or wf.get(True) or {}
    if isinstance(triggers, dict) and set(triggers) == {"workflow_call"}:
        return []
    jobs = list(_jobs(wf))
    if wf.get("concurrency") or (jobs and all(job.get("concurrency") for _, job in jobs)):
        return []
    return ["no concurrency group at the workflow level or on every job"]


def no_untrusted_in_run(wf: Workflow, text: str, others: dict[str, Workflow]) -> list[str]:
    """No `${{ }}` expression of an attacker-controllable context inside a run: script."""
    problems = []
    for job, index, step in _steps(wf):
        for expr in EXPRESSION.findall(str(step.get("run") or "")):
            if UNTRUSTED.search(expr) or "github." in expr:
                problems.append(f"{job}.steps[{index}]: run: interpolates ${{{{{expr}}}}}; pass it through env:")
    return problems


RULES: dict[str, tuple[str, Callable[[Workflow, str, dict[str, Workflow]], list[str]]]] = {
    "pinned": ("every action pinned to a full commit SHA with its release in a comment", pinned_actions),
    "permissions": ("least-privilege permissions: none at the top level, per job only what it needs",
                    least_privilege),
    "timeouts": ("timeout-minutes on every job", timeouts),
    "concurrency": ("a concurrency group on every triggered workflow (or on each of its jobs)", concurrency),
    "untrusted": ("no untrusted context interpolated into run: (passed through env)", no_untrusted_in_run),
}
