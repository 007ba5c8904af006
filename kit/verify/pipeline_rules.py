"""kit's own pipeline rules, on parsed GitHub Actions workflows: each returns the problems it
found (an empty list means the rule holds). Pure functions, so a unit test can break each one."""
from __future__ import annotations

import re
from typing import Any, Callable, Iterator

SHA_PIN = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"@[0-9a-f]{40}\s+#\s*v?\d+(\.\d+)*\s*$")
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.S)
# contexts an outsider can set (issue titles, branch names, PR bodies, inputs, step outputs
# derived from them); anything in run: must come through env instead
UNTRUSTED = re.compile(r"\b(github\.event\.|github\.head_ref|inputs\.|steps\.|needs\.|env\.|matrix\.|vars\.)")
WRITE_OK = {"packages", "id-token", "contents", "attestations", "deployments", "pull-requests",
            "security-events", "statuses", "checks", "issues", "actions", "pages"}

Workflow = dict[str, Any]


def _jobs(wf: Workflow) -> Iterator[tuple[str, dict]]:
    for name, job in (wf.get("jobs") or {}).items():
        yield name, job or {}


def _steps(wf: Workflow) -> Iterator[tuple[str, int, dict]]:
    for name, job in _jobs(wf):
        for index, step in enumerate(job.get("steps") or []):
            yield name, index, step or {}


def pinned_actions(wf: Workflow, text: str) -> list[str]:
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


def _permission_problems(where: str, perms: Any, top: bool) -> list[str]:
    if perms is None:
        return [f"{where}: no permissions block (the token would get the repository default)"]
    if isinstance(perms, str):
        return [] if perms == "read-all" and top else [f"{where}: permissions: {perms}"]
    problems = []
    for scope, level in perms.items():
        if level == "write" and (top or scope not in WRITE_OK):
            problems.append(f"{where}: {scope}: write" + (" at the top level" if top else ""))
    return problems


def least_privilege(wf: Workflow, text: str) -> list[str]:
    """Top level grants nothing (or read); every job names its own, minimal, permissions."""
    problems = _permission_problems("top level", wf.get("permissions"), top=True)
    for name, job in _jobs(wf):
        problems += _permission_problems(f"jobs.{name}", job.get("permissions"), top=False)
    return problems


def timeouts(wf: Workflow, text: str) -> list[str]:
    """Every job that runs steps has timeout-minutes (a job calling a reusable workflow cannot;
    the called workflow's jobs carry it)."""
    return [f"jobs.{name}: no timeout-minutes" for name, job in _jobs(wf)
            if not job.get("uses") and not job.get("timeout-minutes")]


def concurrency(wf: Workflow, text: str) -> list[str]:
    """A workflow that others do not call declares a concurrency group."""
    triggers = wf.get("on") or wf.get(True) or {}
    if isinstance(triggers, dict) and set(triggers) == {"workflow_call"}:
        return []
    return [] if wf.get("concurrency") else ["no concurrency group at the workflow level"]


def no_untrusted_in_run(wf: Workflow, text: str) -> list[str]:
    """No `${{ }}` expression of an attacker-controllable context inside a run: script."""
    problems = []
    for job, index, step in _steps(wf):
        for expr in EXPRESSION.findall(str(step.get("run") or "")):
            if UNTRUSTED.search(expr) or "github." in expr:
                problems.append(f"{job}.steps[{index}]: run: interpolates ${{{{{expr}}}}}; pass it through env:")
    return problems


RULES: dict[str, tuple[str, Callable[[Workflow, str], list[str]]]] = {
    "pinned": ("every action pinned to a full commit SHA with its release in a comment", pinned_actions),
    "permissions": ("least-privilege permissions: none at the top level, per job only what it needs",
                    least_privilege),
    "timeouts": ("timeout-minutes on every job", timeouts),
    "concurrency": ("a concurrency group on every triggered workflow", concurrency),
    "untrusted": ("no untrusted context interpolated into run: (passed through env)", no_untrusted_in_run),
}
