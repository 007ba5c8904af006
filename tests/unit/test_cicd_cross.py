"""The pipelines where they meet other systems: GitHub's workflow discovery at the repository
root, the cluster API's network reach, the registry the nodes pull from. Each rule passes on the
example and fails when broken on purpose."""
from __future__ import annotations

import dataclasses

import pytest

from kit.families import render_all
from kit.families.cicd.crossrules import CROSS_RULES, cross_records
from kit.spec import load_spec

CI = ".github/workflows/ci.yml"
DEPLOY_ENV = ".github/workflows/deploy-environment.yml"


def with_ci(spec, **ci):
    if "provider" in ci:
        ci["providers"] = {"github": ("github",), "gitlab": ("gitlab",), "both": ("github", "gitlab")}[ci["provider"]]
    return dataclasses.replace(spec, options={**spec.options, "ci": dataclasses.replace(spec.option("ci"), **ci)})


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    from tests.conftest import copy_example
    return with_ci(load_spec(copy_example(tmp_path_factory.mktemp("cross") / "shop-api")), provider="both")


@pytest.fixture(scope="module")
def files(spec):
    return render_all(spec)


def problems(spec, files, rule):
    return CROSS_RULES[rule][1](spec, files)


def test_example_passes_every_cross_rule(spec, files):
    records = {r.check: r for r in cross_records(spec, files)}
    assert {f"cicd.rule.{rule}" for rule in CROSS_RULES} == set(records)
    assert [(c, r.reason) for c, r in records.items() if r.status != "passed"] == []


LAYOUT = [
    (CI, "          context: app\n", "          context: .\n", "build context '.' holds no Dockerfile"),
    (CI, "          dockerfile: app/Dockerfile\n", "          dockerfile: Dockerfile\n", "'Dockerfile' does not exist"),
    (CI, "        working-directory: app\n", "        working-directory: src\n", "'src' does not exist"),
    (CI, "cache-dependency-path: app/requirements.txt", "cache-dependency-path: requirements.txt",
     "'requirements.txt' does not exist"),
    (DEPLOY_ENV, 'kubectl apply -k "app/k8s/overlays/${OVERLAY}"', 'kubectl apply -k "k8s/overlays/${OVERLAY}"',
     "'k8s/overlays/prod/kustomization.yaml' does not exist"),
    (".gitlab-ci.yml", "SOURCE_DIR: app ", "SOURCE_DIR: . ", "build context '.' holds no Dockerfile"),
]


@pytest.mark.parametrize("path,old,new,reason", LAYOUT, ids=[f"layout-{i}" for i in range(len(LAYOUT))])
def test_layout_broken_fails(spec, files, path, old, new, reason):
    """The old usage copied .github/ into app/, where GitHub never runs it; from the root, the
    paths must lead into app/."""
    assert old in files[path]
    found = problems(spec, {**files, path: files[path].replace(old, new)}, "layout")
    assert any(reason in p for p in found), found


def test_source_outside_the_repository_fails(spec, files, tmp_path):
    outside = dataclasses.replace(spec, project=spec.source / "nested")
    assert any("outside the project" in p for p in problems(outside, files, "layout"))


def test_usage_puts_the_pipelines_at_the_root(spec, files):
    from kit.report.workmd import _usage
    text = "\n".join(_usage(spec, files))
    root_copy = next(line for line in text.splitlines() if " .github " in line)
    assert root_copy.rstrip().endswith(" ../)") and "Dockerfile" not in root_copy
    src_copy = next(line for line in text.splitlines() if " Dockerfile " in line)
    assert src_copy.rstrip().endswith(" ../app/)") and ".github" not in src_copy


ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop-api"
CLOUD_IMAGES = {"aws": ECR, "gcp": "europe-west1-docker.pkg.dev/shop-api-prod/shop/shop-api",
                "azure": "acmeshop.azurecr.io/shop-api"}


def on_cloud(spec, provider, image):
    from kit.families.iac.options import DEFAULT_INSTANCE, DEFAULT_REGION
    cloud = dataclasses.replace(spec.option("cloud"), provider=provider, region=DEFAULT_REGION[provider],
                                instance_type=DEFAULT_INSTANCE[provider])
    return dataclasses.replace(spec, image=image, options={**spec.options, "cloud": cloud})


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_registry_of_the_cloud_passes(spec, cloud):
    s = on_cloud(spec, cloud, CLOUD_IMAGES[cloud])
    assert problems(s, render_all(s), "registry") == []


def test_ghcr_without_a_pull_secret_fails(spec):
    """The review's finding: pods pull from GHCR (private by default) with no pull secret, while
    the ECR repository Terraform creates is never used."""
    ghcr = dataclasses.replace(spec, image="ghcr.io/acme/shop-api")
    found = problems(ghcr, render_all(spec), "registry")          # Terraform from the ECR spec
    assert any("Terraform creates a ECR registry, but CI pushes ghcr.io/acme/shop-api elsewhere" in p for p in found)
    assert any("no pod or service account declares an imagePullSecret" in p for p in found)
    files = render_all(ghcr)                                      # no registry is created then
    assert problems(ghcr, files, "registry") == [p for p in problems(ghcr, files, "registry") if "imagePullSecret" in p] != []
    path = "k8s/base/deployment.yaml"
    declared = files[path].replace("      serviceAccountName:", "      imagePullSecrets: [{name: ghcr}]\n      serviceAccountName:", 1)
    assert declared != files[path]
    assert problems(ghcr, {**files, path: declared}, "registry") == []


REGISTRY = [
    ("aws", "terraform/environments/staging/main.tf", 'registry_repository = "shop-api"', 'registry_repository = "other"',
     "the platform's registry_repository is 'other'"),
    ("aws", CI, "          REGISTRY: 123456789012.dkr.ecr.eu-west-1.amazonaws.com\n",
     "          REGISTRY: 999999999999.dkr.ecr.eu-west-1.amazonaws.com\n", "does not log in to"),
    ("aws", "terraform/environments/prod/main.tf", "create_registry     = true", "create_registry     = false",
     "0 environment(s) create it"),
    ("gcp", "terraform/modules/platform/main.tf", "  grant_registry_access    = true\n", "",
     "not granted the registry"),
    ("azure", "terraform/modules/platform/main.tf", '{ service = local.registry_id }', "{}", "not attached to the registry"),
]


@pytest.mark.parametrize("cloud,path,old,new,reason", REGISTRY, ids=[f"registry-{r[0]}-{i}" for i, r in enumerate(REGISTRY)])
def test_registry_broken_fails(spec, cloud, path, old, new, reason):
    s = on_cloud(spec, cloud, CLOUD_IMAGES[cloud])
    files = render_all(s)
    assert old in files[path]
    found = problems(s, {**files, path: files[path].replace(old, new, 1)}, "registry")
    assert any(reason in p for p in found), found


def test_registry_in_another_region_fails(spec):
    s = dataclasses.replace(spec, image=ECR.replace("eu-west-1", "us-east-1"))
    assert any("in us-east-1, the cluster in eu-west-1" in p for p in problems(s, render_all(s), "registry"))


HOSTED_RUNNER = ('runs-on: [self-hosted, linux, "shop-api-${{ inputs.overlay }}"]', "runs-on: ubuntu-latest")
RUNNER = [
    ("aws", DEPLOY_ENV, *HOSTED_RUNNER, "a GitHub-hosted runner with no fixed address"),
    ("gcp", DEPLOY_ENV, *HOSTED_RUNNER, "a GitHub-hosted runner with no fixed address"),
    ("azure", DEPLOY_ENV, *HOSTED_RUNNER, "a GitHub-hosted runner with no fixed address"),
    ("aws", DEPLOY_ENV, "[self-hosted, linux,", "[ubuntu-24.04, self-hosted,", "a GitHub-hosted runner"),
    ("aws", "terraform/modules/platform/main.tf", "      from_port   = 443\n      to_port     = 443\n",
     "      from_port   = 22\n      to_port     = 22\n", "admits no 443 from the runners' subnets"),
    ("gcp", DEPLOY_ENV, ' --internal-ip', "", "without --internal-ip"),
    ("gcp", "terraform/modules/platform/main.tf", "{ cidr_block = var.subnet_cidr,", "{ cidr_block = \"10.9.0.0/16\",",
     "which the GKE master authorized networks omit"),
]


@pytest.mark.parametrize("cloud,path,old,new,reason", RUNNER, ids=[f"runner-{r[0]}-{i}" for i, r in enumerate(RUNNER)])
def test_runner_reach_broken_fails(spec, cloud, path, old, new, reason):
    """The review's finding: GitHub-hosted runners cannot reach an API restricted to api_allowed_cidrs."""
    s = on_cloud(spec, cloud, CLOUD_IMAGES[cloud])
    files = render_all(s)
    assert problems(s, files, "runner_reach") == []
    assert old in files[path]
    found = problems(s, {**files, path: files[path].replace(old, new, 1)}, "runner_reach")
    assert any(reason in p for p in found), found


def test_an_unrestricted_api_takes_any_runner(spec):
    files = render_all(spec)
    main = "terraform/modules/platform/main.tf"
    opened = files[main].replace("  cluster_endpoint_public_access_cidrs = var.api_allowed_cidrs\n", "")
    hosted = files[DEPLOY_ENV].replace(*HOSTED_RUNNER)
    assert problems(spec, {**files, main: opened, DEPLOY_ENV: hosted}, "runner_reach") == []


def test_the_placeholder_image_is_skipped_not_passed(spec):
    placeholder = dataclasses.replace(spec, image="registry.example.com/shop-api")
    record = next(r for r in cross_records(placeholder, render_all(placeholder)) if r.check == "cicd.rule.registry")
    assert record.status == "skipped" and "placeholder" in record.reason


GITLAB = ".gitlab-ci.yml"
TAGS = [
    (CI, "          flavor: latest=false\n", "", "adds `latest` on every version tag"),
    (CI, "type=sha,format=long,enable={{is_default_branch}}", "type=sha,format=long",
     "pushed by the branch run and again by the v* tag run"),
    (CI, "          tags: |\n", "          tags: |\n            type=ref,event=branch\n", "'type=ref,event=branch' names a tag"),
    (CI, "          cache-from: type=gha\n          provenance", "          cache-from: type=gha\n"
     "          cache-to: type=registry,ref=IMG:buildcache\n          provenance", "rewrites a fixed cache ref"),
    (GITLAB, '--cache-to "type=local,dest=.buildx-cache,mode=max"',
     '--cache-to "type=registry,ref=${IMAGE}:buildcache,mode=max"', "--cache-to type=registry"),
    (GITLAB, '--tag "${IMAGE}:${CI_COMMIT_TAG:-${CI_COMMIT_SHA}}"',
     '--tag "${IMAGE}:${CI_COMMIT_SHA}" ${CI_COMMIT_TAG:+--tag "${IMAGE}:${CI_COMMIT_TAG}"}',
     "pushed by the branch pipeline and again by the tag pipeline"),
    (GITLAB, '--tag "${IMAGE}:${CI_COMMIT_TAG:-${CI_COMMIT_SHA}}"',
     '--tag "${IMAGE}:${CI_COMMIT_TAG:-${CI_COMMIT_SHA}}" --tag "${IMAGE}:latest"', "is pushed again by a later run"),
]


@pytest.mark.parametrize("cloud", ["aws", "gcp"])
@pytest.mark.parametrize("path,old,new,reason", TAGS, ids=[f"tags-{i}" for i in range(len(TAGS))])
def test_a_tag_pushed_twice_to_an_immutable_registry_fails(spec, cloud, path, old, new, reason):
    """ECR (IMMUTABLE) and Artifact Registry (immutable_tags) refuse a second push of a tag: the
    v* run re-pushing the sha tag, `latest`, a branch tag or a fixed cache ref fails the publish."""
    s = on_cloud(spec, cloud, CLOUD_IMAGES[cloud])
    files = render_all(s)
    assert old in files[path], old
    assert problems(s, files, "immutable_tags") == []
    broken = problems(s, {**files, path: files[path].replace(old, new, 1)}, "immutable_tags")
    assert any(reason in p for p in broken), broken


def test_a_mutable_registry_takes_any_tag(spec):
    s = on_cloud(spec, "gcp", CLOUD_IMAGES["gcp"])
    files = render_all(s)
    mutable = files["terraform/modules/platform/main.tf"].replace("immutable_tags = true", "immutable_tags = false")
    ci = files[CI].replace("          flavor: latest=false\n", "")
    assert problems(s, {**files, "terraform/modules/platform/main.tf": mutable, CI: ci}, "immutable_tags") == []


@pytest.mark.parametrize("strategy,slot", [("canary", "shop-api-canary"), ("blue-green", "shop-api-green")])
@pytest.mark.parametrize("path", [DEPLOY_ENV, GITLAB])
def test_a_deployment_image_the_deploy_leaves_at_the_overlay_tag_fails(spec, strategy, slot, path):
    """CI pushes the sha and the version, never `:staging`/`:prod`: the canary (or idle slot) left
    at the overlay's tag never pulls. The deploy pins every slot to the deployed digest."""
    k8s = dataclasses.replace(spec.option("kubernetes"), strategy=strategy)
    s = dataclasses.replace(spec, options={**spec.options, "kubernetes": k8s})
    files = render_all(s)
    pin = f' "{slot}=${{IMAGE}}@${{DIGEST}}"'
    assert pin in files[path]
    assert problems(s, files, "deploy_images") == []
    broken = problems(s, {**files, path: files[path].replace(pin, "")}, "deploy_images")
    pipeline = "GitLab" if path == GITLAB else "GitHub"
    assert broken and all(p.startswith(f"{pipeline} deploy") for p in broken), broken
    assert any(f"Deployment/{slot} runs" in p and "ImagePullBackOff" in p for p in broken), broken
