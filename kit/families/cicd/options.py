"""The `ci` task section: which CI system(s) kit writes pipelines for, and how they test."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kit.model import Spec
    from kit.task import TaskDoc

PROVIDERS = {"github": ("github",), "gitlab": ("gitlab",), "both": ("github", "gitlab")}
BRANCH = r"^[A-Za-z0-9._/-]+$"

SCHEMA: dict = {
    "type": "object",
    "additionalProperties": False,
    "description": "CI/CD pipelines (.github/workflows/, .gitlab-ci.yml). Every key is optional.",
    "properties": {
        "provider": {"enum": sorted(PROVIDERS),
                     "description": "which CI system to write pipelines for: github, gitlab or both "
                                    "(default github)"},
        "repository": {"type": "string", "pattern": r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$",
                       "description": "the GitHub repository (owner/name) the pipelines run in: the cloud deploy "
                                      "identities trust its OIDC tokens (default: OWNER/NAME of a ghcr.io/OWNER/NAME "
                                      "image, else set in terraform.tfvars)"},
        "default_branch": {"type": "string", "pattern": BRANCH, "maxLength": 100,
                           "description": "the branch that pushes images and deploys (default main)"},
        "python": {"type": "string", "pattern": r"^3\.(9|10|11|12|13)$",
                   "description": "Python version the lint and test jobs use (default: the service's)"},
        "lint": {"type": "string", "minLength": 1,
                 "description": "the lint command, run in the service's source folder "
                                "(default: ruff check .)"},
        "test": {"type": "string", "minLength": 1,
                 "description": "the test command, run in the service's source folder "
                                "(default: python -m pytest -q, skipped when no tests exist)"},
        "environments": {"type": "array", "minItems": 1, "uniqueItems": True,
                         "items": {"enum": ["staging", "prod"]},
                         "description": "deploy environments in promotion order (default [staging, prod])"},
        "kit": {"type": "object", "additionalProperties": False, "required": ["repository", "ref", "release"],
                "description": "add a job that runs kit's reusable workflow (kit-verify.yml) in this pipeline: "
                               "static checks on pull requests, the sandbox on the default branch (GitHub only)",
                "properties": {
                    "repository": {"type": "string", "pattern": r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$",
                                   "description": "where kit is hosted, owner/name"},
                    "ref": {"type": "string", "pattern": r"^[0-9a-f]{40}$",
                            "description": "the kit commit to run, as a full 40-character SHA (pinned like every "
                                           "action)"},
                    "release": {"type": "string", "pattern": r"^v\d+\.\d+\.\d+$",
                                "description": "the kit release that commit is, e.g. v0.1.0 (the comment beside the pin)"}}},
    },
}


@dataclass(frozen=True)
class CiOptions:
    provider: str
    providers: tuple[str, ...]
    repository: str                  # owner/name, "" when unknown
    default_branch: str
    python: str
    lint: str
    test: str
    environments: tuple[str, ...]
    kit: tuple[str, str, str] = ("", "", "")   # (repository, commit, release) of kit's workflow; "" when off


def parse(doc: TaskDoc, spec: Spec) -> CiOptions:
    raw = doc.data.get("ci") or {}
    if not isinstance(raw, dict):
        raise doc.error("must be a mapping, e.g. {provider: github}", "ci")
    provider = raw.get("provider", "github")
    if provider not in PROVIDERS:
        raise doc.error(f"unknown CI provider {provider!r}; valid values: {', '.join(sorted(PROVIDERS))}",
                        "ci", "provider")
    envs = tuple(raw.get("environments", ("staging", "prod")))
    if envs != tuple(e for e in ("staging", "prod") if e in envs):
        raise doc.error(f"environments {list(envs)} are not in promotion order", "ci", "environments",
                        hint="write staging before prod")
    return CiOptions(provider=provider, providers=PROVIDERS[provider], repository=raw.get("repository", ""),
                     default_branch=raw.get("default_branch", "main"),
                     python=raw.get("python", spec.python), lint=raw.get("lint", _default(spec, "lint")),
                     test=raw.get("test", _default(spec, "test")), environments=envs,
                     kit=_kit(doc, raw, PROVIDERS[provider]))


def _kit(doc: TaskDoc, raw: dict, providers: tuple[str, ...]) -> tuple[str, str, str]:
    given = raw.get("kit")
    if not given:
        return ("", "", "")
    if "github" not in providers:
        raise doc.error("the kit job is offered for GitHub Actions only", "ci", "kit",
                        hint="for GitLab, include ci/kit.gitlab-ci.yml from kit's repository (see its docs)")
    return (given["repository"], given["ref"], given["release"])


def _default(spec: Spec, step: str) -> str:
    """The lint and test commands by stack: ruff and pytest for Python; for Node the package's own
    scripts (npm run lint only when package.json has one; npm test when it has a real test script)."""
    if getattr(spec, "stack", "python") == "go":
        return {"lint": "go vet ./...", "test": "go test ./..."}[step]
    if getattr(spec, "stack", "python") != "node":
        return {"lint": "ruff check .", "test": "python -m pytest -q"}[step]
    facts = spec.facts
    if step == "lint":
        return "npm run lint" if facts.has_lint else ""
    return "npm test" if facts.has_test else f"node --check {spec.app or 'index.js'}"
