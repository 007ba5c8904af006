"""CI/CD family: GitHub Actions workflows and/or a GitLab pipeline, chosen by ci.provider.

Every third-party action is pinned to a full commit SHA with its release in a comment. The SHAs
were looked up in public workflows that pin them (a code search for "<owner>/<action>@<sha>"
found each one pinned, with the same release comment, in several unrelated repositories)."""
from __future__ import annotations

from kit.families.cicd import e2e
from kit.families.cicd.layout import source_dir
from kit.families.iac.registry import registry_of
from kit.families.kubernetes.render import rollout
from kit.model import Spec
from kit.render import render_variant

# action -> (commit SHA, release tag)
ACTIONS: dict[str, tuple[str, str]] = {
    "actions/checkout": ("11bd71901bbe5b1630ceea73d27597364c9af683", "v4.2.2"),
    "actions/setup-python": ("a26af69be951a213d495a4c3e4e4022e16d87065", "v5.6.0"),
    "actions/setup-node": ("49933ea5288caeca8642d1e84afbd3f7d6820020", "v4.4.0"),
    "actions/setup-go": ("d35c59abb061a4a6fb18e82ac0862c26744d6ab5", "v5.5.0"),
    "actions/upload-artifact": ("ea165f8d65b6e75b540449e92b4886f43607fa02", "v4.6.2"),
    "actions/download-artifact": ("d3f86a106a0bac45b974a628896c90dbdf5c8093", "v4.3.0"),
    "docker/setup-buildx-action": ("b5ca514318bd6ebac0fb2aedd5d36ec1b5c232a2", "v3.10.0"),
    "docker/login-action": ("74a5d142397b4f367a81961eba4e8cd7edddf772", "v3.4.0"),
    "docker/metadata-action": ("902fa8ec7d6ecbf8d84d538b9b233a880e428804", "v5.7.0"),
    "docker/build-push-action": ("263435318d21b8e681c14492fe198d362a7d2c83", "v6.18.0"),
    "hadolint/hadolint-action": ("54c9adbab1582c2ef04b2016b760714a4bfde3cf", "v3.1.0"),
    # >= 0.35.0: GHSA-69fq-xp46-6x23 (tags before 0.35.0 were force-pushed to malicious commits)
    "aquasecurity/trivy-action": ("57a97c7e7821a5776cebc9bb87c984fa69cba8f1", "0.35.0"),
    "sigstore/cosign-installer": ("d7d6bc7722e3daa8354c50bcb52f4837da5e9b6a", "v3.8.1"),
    "aws-actions/configure-aws-credentials": ("e3dd6a429d7300a6a4c196c26e071d42e0343502", "v4.0.2"),
    "google-github-actions/auth": ("71f986410dfbc7added4569d411d040a91dc6935", "v2.1.8"),
    "azure/login": ("a457da9ea143d694b1b9c7c869ebb04ebe844ef5", "v2.3.0"),
}
# tools the jobs install or run, pinned
TOOLS = {"ruff": "0.8.6", "pytest": "8.3.4", "hadolint": "v2.12.0", "trivy": "0.58.1",
         "cosign": "v2.4.1", "kustomize": "v5.4.3", "kubectl": "1.31", "python_image": "3.12-slim-bookworm"}
# GitHub environment name -> the Kustomize overlay it deploys
OVERLAYS = {"staging": "staging", "production": "prod"}
VARIANTS = {"github": "github", "gitlab": "gitlab"}


def pinned(action: str) -> str:
    sha, tag = ACTIONS[action]
    return f"{action}@{sha} # {tag}"


def has_tests(spec: Spec) -> bool:
    src = spec.source
    return (src / "tests").is_dir() or any(src.glob("test_*.py")) or any(src.glob("*_test.py"))


def _commands(spec: Spec, ci) -> dict[str, str]:
    if spec.stack == "go":        # modules as go.sum pins them (or vendor/); vet and test
        return {"install": "go mod download" if not getattr(spec.facts, "vendored", False) else "go mod verify",
                "lint": ci.lint, "test": ci.test}
    if spec.stack == "node":      # exactly from the lockfile, with devDependencies (lint and test tools)
        from kit.families.container.render import node_ci_install
        return {"install": node_ci_install(spec), "lint": ci.lint, "test": ci.test}
    install = (f"python -m pip install -r {spec.requirements_file}" if spec.requirements_file.endswith(".txt")
               else "python -m pip install .")
    test = ci.test if ci.test != "python -m pytest -q" or has_tests(spec) else "python -m compileall -q ."
    return {"install": install, "lint": ci.lint, "test": test}


def registry_kind(spec: Spec) -> dict[str, str]:
    """How CI logs in to service.image's registry: ghcr (the workflow token), ecr (the push role
    through OIDC, when it is the ECR of the AWS cloud), other (REGISTRY_USERNAME/PASSWORD)."""
    host = spec.image.split("/")[0]
    ecr = registry_of(spec.image, "aws")
    if host == "ghcr.io":
        return {"registry_kind": "ghcr", "registry_region": ""}
    if ecr.is_cloud and spec.option("cloud").provider == "aws":
        return {"registry_kind": "ecr", "registry_region": ecr.parts["region"]}
    return {"registry_kind": "other", "registry_region": ""}


def _namespace(spec: Spec) -> str:
    """The Kubernetes overlays' namespace prefix (kubernetes.namespace, default the service name)."""
    k8s = spec.options.get("kubernetes")
    return getattr(k8s, "namespace", spec.name)


def backup_image(spec: Spec) -> str:
    """The backup family's image (backup/postgres/Dockerfile: PostgreSQL with pgBackRest) that the
    cluster's db StatefulSet, backup CronJob and restore Pod run, when backup/k8s is generated; else ""."""
    from kit.families.backup.render import image_tag, in_cluster, postgres_of
    try:
        if not spec.option("backup").enabled or not in_cluster(spec):
            return ""
    except KeyError:
        return ""
    return f"{spec.image}-pgbackrest:{image_tag(postgres_of(spec))}"


def context(spec: Spec) -> dict:
    ci, cloud = spec.option("ci"), spec.option("cloud")
    overlays = {env: overlay for env, overlay in OVERLAYS.items() if overlay in ci.environments}
    src = source_dir(spec)
    e2e_context = e2e.context(spec)
    return {
        "src": src, "src_prefix": "" if src == "." else f"{src}/",
        "backup_image": backup_image(spec),
        "name": spec.name, "image": spec.image, "registry": spec.image.split("/")[0],
        **registry_kind(spec),
        "python": ci.python, "default_branch": ci.default_branch, **_commands(spec, ci),
        "no_tests": (not has_tests(spec) and ci.test == "python -m pytest -q") if spec.stack != "node"
        else ci.test.startswith("node --check"),
        # setup-node's npm cache; yarn and pnpm are installed by the install step itself, after it
        "node_cache": spec.stack == "node" and spec.facts.package_manager == "npm",
        "stack": spec.stack, "node": spec.base_image.split(":")[1].split("-")[0] if spec.stack in ("node", "go") else "",
        "requirements": spec.requirements_file or "pyproject.toml",
        "environments": overlays, "namespace": _namespace(spec), "cloud": cloud.provider, "region": cloud.region, "project": cloud.project,
        "actions": {a: pinned(a) for a in ACTIONS}, "tools": TOOLS,
        "kit_job": dict(zip(("repository", "ref", "release"), ci.kit, strict=True)) if ci.kit[0] else {},
        **sign_identity(spec),
        # the other Deployments' images (canary, green slot): pinned to the same digest, since CI
        # pushes no tag they could name (cicd.rule.deploy_images)
        "extra_slots": [slot["image"] for slot in rollout(spec)["slots"] if not slot["main"]],
        "e2e": e2e_context, "cluster_issuer": e2e_context["cluster_issuer"], "secret_store": e2e_context["secret_store"],
        **trivy_severity(spec),
    }


def sign_identity(spec: Spec) -> dict[str, str]:
    """The identity the sign-once guard checks: exactly the one admission verifies (security.identity),
    so a digest signed by another workflow or ref is signed again here rather than denied at deploy."""
    security = spec.options.get("security")
    subject, issuer = (security.subject, security.issuer) if security else ("", "")
    github = issuer == "https://token.actions.githubusercontent.com"
    return {"sign_identity_github": subject if github else "", "sign_identity_gitlab": subject if issuer and not github
            else ""}


def trivy_severity(spec: Spec) -> dict[str, str]:
    """The image scan's --severity list: security.severity and above (default HIGH,CRITICAL)."""
    security = spec.options.get("security")
    levels = (security.scan_severities if security else "HIGH,CRITICAL").split(",")
    words = levels[0] if len(levels) == 1 else f"{', '.join(levels[:-1])} and {levels[-1]}"
    return {"trivy_severity": ",".join(levels), "trivy_severity_words": words}


def render_cicd(spec: Spec) -> dict[str, str]:
    ctx = context(spec)
    files: dict[str, str] = {}
    for provider in spec.option("ci").providers:
        files.update(render_variant("cicd", VARIANTS[provider], ctx))
    return files


def work_notes(spec: Spec) -> list[str]:
    ci, cloud = spec.option("ci"), spec.option("cloud")
    systems = " and ".join({"github": "GitHub Actions", "gitlab": "GitLab CI"}[p] for p in ci.providers)
    return [
        f"- {systems}: lint (`{ci.lint}`), test, hadolint, buildx build with cache, Trivy scan and CycloneDX "
        f"SBOM on every change; on `{ci.default_branch}` and `v*` tags also push to `{spec.image}` and sign "
        "keyless with cosign.",
        f"- Deploy: {' then '.join(OVERLAYS_BY_ENV.get(e, e) for e in ci.environments)} (production on `v*` tags) through protected "
        f"environments, the image pinned by digest with `kustomize edit set image`; {cloud.provider} "
        "credentials by " + " or ".join({"github": "OIDC federation (GitHub)", "gitlab": "the GitLab agent"}[p]
                                         for p in ci.providers) + ", never a stored key.",
        f"- Waits for the rollout of `deployment/{spec.name}` in `{_namespace(spec)}-<overlay>`.",
        "- Every action pinned to a commit SHA with its release in a comment; `permissions: {}` at the top, "
        "per-job least privilege; timeouts, concurrency, no expression inside `run:`.",
    ]


OVERLAYS_BY_ENV = {overlay: env for env, overlay in OVERLAYS.items()}
