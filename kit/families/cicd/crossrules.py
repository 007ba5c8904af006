"""kit's rules where the pipelines meet other systems (GitHub's workflow discovery, the cluster's
network reach, the registry the nodes pull from): each rule has its own evidence record, cites the
other system in its docstring, and returns the problems it found."""
from __future__ import annotations

import re
from collections.abc import Callable

import yaml

from kit.evidence import Evidence
from kit.families.cicd.consistency import github_targets, gitlab_targets
from kit.families.cicd.layout import layout_problems
from kit.families.iac.registry import EXAMPLE, KIND, mismatch, registry_of
from kit.families.iac.terraform import inventory, unquote
from kit.model import PLACEHOLDER_REGISTRY, Spec

# what the platform module must hold for the nodes to pull from the cloud's registry
REGISTRY_TF = {"aws": ("aws_ecr_repository", "registry_repository", "repository"),
               "gcp": ("google_artifact_registry_repository", "registry_repository", "repository"),
               "azure": ("azurerm_container_registry", "registry_name", "registry")}


def deployed_overlays(files: dict[str, str]) -> list[str]:
    return sorted({t["overlay"] for t in github_targets(files) + gitlab_targets(files) if t["overlay"]})


def layout(spec: Spec, files: dict[str, str]) -> list[str]:
    """GitHub runs only workflows in `.github/workflows` at the repository root (docs.github.com
    workflow syntax: "You must store workflow files in the .github/workflows directory of your
    repository"; the workflows concept page: "GitHub searches the .github/workflows directory in
    the root of your repository"), so the workflows sit at the root and every path they use
    resolves from there to the service's source (kit/families/cicd/layout.py)."""
    return layout_problems(spec, files, deployed_overlays(files))


def _pull_secrets(files: dict[str, str]) -> list[str]:
    """Where the k8s manifests declare an imagePullSecret (pod specs or service accounts)."""
    found = []
    for path in sorted(p for p in files if p.startswith("k8s/") and p.endswith(".yaml")):
        for doc in yaml.safe_load_all(files[path]):
            if not isinstance(doc, dict):
                continue
            pod = (((doc.get("spec") or {}).get("template") or {}).get("spec") or {})
            if pod.get("imagePullSecrets") or (doc.get("kind") == "ServiceAccount" and doc.get("imagePullSecrets")):
                found.append(f"{path} {doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}")
    return found


def _logs_in(step: dict, host: str) -> bool:
    if "docker/login-action" in str(step.get("uses", "")):
        return str((step.get("with") or {}).get("registry")) == host
    run = str(step.get("run") or "")
    return "login" in run and (host in run or host in (step.get("env") or {}).values())


def _publish_logs_in(files: dict[str, str], host: str) -> bool:
    """The GitHub publish job (or GitLab's) logs in to the registry it pushes to."""
    ci = files.get(".github/workflows/ci.yml", "")
    gitlab = files.get(".gitlab-ci.yml", "")
    if ci:
        steps = ((yaml.safe_load(ci) or {}).get("jobs") or {}).get("publish", {}).get("steps") or []
        if not any(_logs_in(step or {}, host) for step in steps):
            return False
    return not gitlab or ("docker login" in gitlab and f"REGISTRY: {host}" in gitlab)


def registry(spec: Spec, files: dict[str, str]) -> list[str]:
    """CI pushes to the registry the cluster pulls from. The pipelines push service.image and the
    overlays name it (cicd.consistency); the nodes can pull it only from the registry the chosen
    cloud's Terraform creates and grants them (EKS node role with AmazonEC2ContainerRegistryReadOnly,
    terraform-aws-modules/eks node groups; GKE `grant_registry_access`, "Grants created
    cluster-specific service account ... artifactregistry.reader" in
    terraform-google-modules/kubernetes-engine modules/private-cluster/variables.tf; AKS
    `attached_acr_id_map`, AcrPull for the kubelet identity), or with an imagePullSecret the pod
    declares (https://kubernetes.io/docs/concepts/containers/images/#specifying-imagepullsecrets-on-a-pod).
    GHCR is not such a registry: "When you first publish a package ... the default visibility is
    private" (github/docs content/packages/learn-github-packages/configuring-a-packages-access-control-and-visibility.md).
    Terraform must not create a registry nothing pushes to either."""
    cloud = spec.option("cloud")
    reg = registry_of(spec.image, cloud.provider)
    inv = inventory(files)
    resource, var, part = REGISTRY_TF[cloud.provider]
    created = [b for b in inv.blocks if b["type"] == resource and b["kind"] == "resource"]
    calls = [b for b in inv.blocks if b["kind"] == "module" and b["source"] == "terraform/modules/platform"]
    owners = [c for c in calls if c["body"].get("create_registry") is True]
    problems = []
    if not reg.is_cloud:
        if owners:
            problems.append(f"Terraform creates a {KIND[cloud.provider]} registry, but CI pushes {spec.image} elsewhere")
        if not _pull_secrets(files):
            problems.append(f"the cluster pulls {spec.image} from {reg.host}, which the {cloud.provider} Terraform does not "
                            "create or grant the nodes, and no pod or service account declares an imagePullSecret: set "
                            f"service.image to the {KIND[cloud.provider]} repository ({EXAMPLE[cloud.provider]})")
        return problems
    why = mismatch(reg, cloud.region, cloud.project)
    if why:
        return [f"service.image {spec.image}: {why}: the Terraform creates no registry there and grants the nodes none"]
    if not created or len(owners) != 1:
        problems.append(f"service.image is {KIND[cloud.provider]} {reg.host}, but {len(owners)} environment(s) create it "
                        f"({resource} in the platform module: {len(created)})")
    for call in calls:
        named = unquote(call["body"].get(var, ""))
        if named != reg.parts[part]:
            problems.append(f"{call['folder']}: the platform's {var} is {named!r}, service.image names {reg.parts[part]!r}")
    if cloud.provider == "gcp" and not any(b["body"].get("grant_registry_access") is True
                                           for b in inv.blocks if b["kind"] == "module" and b["name"] == "gke"):
        problems.append("the GKE node service account is not granted the registry (grant_registry_access)")
    if cloud.provider == "azure" and not any("attached_acr_id_map" in b["body"] and "registry_id" in
                                             str(b["body"]["attached_acr_id_map"])
                                             for b in inv.blocks if b["kind"] == "module" and b["name"] == "aks"):
        problems.append("the AKS kubelet identity is not attached to the registry (attached_acr_id_map)")
    if not _publish_logs_in(files, reg.host):
        problems.append(f"the publish job does not log in to {reg.host}, the registry it pushes to")
    return problems


CLOUD_LOGIN = re.compile(r"configure-aws-credentials|google-github-actions/auth|azure/login")
HOSTED = re.compile(r"^(ubuntu|windows|macos)-")
# the Terraform attribute restricting who reaches the cluster API, per cloud
API_RESTRICTION = {"aws": ("eks", "cluster_endpoint_public_access_cidrs"), "gcp": ("gke", "master_authorized_networks"),
                   "azure": ("aks", "api_server_authorized_ip_ranges")}


def _cluster_jobs(files: dict[str, str]) -> list[tuple[str, list[str], str]]:
    """(where, runs-on labels, steps text) of every GitHub job that signs in to the cloud and
    talks to the cluster."""
    out = []
    for path in sorted(p for p in files if p.startswith(".github/workflows/")):
        for name, job in ((yaml.safe_load(files[path]) or {}).get("jobs") or {}).items():
            steps = yaml.safe_dump((job or {}).get("steps") or [])
            if CLOUD_LOGIN.search(steps) and "kubectl" in steps:
                labels = job.get("runs-on")
                out.append((f"{path} jobs.{name}", labels if isinstance(labels, list) else [str(labels)], steps))
    return out


def _module_body(inv, name: str) -> dict:
    return next((b["body"] for b in inv.blocks if b["kind"] == "module" and b["name"] == name), {})


def runner_reach(spec: Spec, files: dict[str, str]) -> list[str]:
    """The deploy jobs run where the cluster API admits them. The Terraform restricts the API to
    api_allowed_cidrs: EKS "Communication to the endpoint from addresses outside of the CIDR blocks
    that you specify is denied", and "If you enable private access, Kubernetes API requests from
    within your cluster's VPC use the private VPC endpoint"
    (https://docs.aws.amazon.com/eks/latest/APIReference/API_VpcConfigRequest.html); GKE master
    authorized networks "disallow external access (except the cluster node IPs)"
    (terraform-google-modules/kubernetes-engine modules/private-cluster/variables.tf); AKS
    `api_server_authorized_ip_ranges`. GitHub-hosted runners have no fixed address to list there:
    "GitHub's IP addresses change from time to time", and allowing by IP is not recommended
    (https://docs.github.com/en/authentication/keeping-your-account-and-data-secure/about-githubs-ip-addresses).
    So a job that talks to the cluster must run on a self-hosted runner inside the network, and
    the Terraform must admit that network: the EKS cluster security group (443 from the private
    subnets), the GKE authorized networks (the cluster subnet, reached with --internal-ip); on
    AKS the runner's egress must be in api_allowed_cidrs, which kit cannot know (said in the
    tfvars)."""
    cloud = spec.option("cloud").provider
    inv = inventory(files)
    module, attr = API_RESTRICTION[cloud]
    body = _module_body(inv, module)
    if not body or attr not in body:
        return []                       # the API is not restricted: any runner reaches it
    problems = []
    for where, labels, steps in _cluster_jobs(files):
        if "self-hosted" not in labels or any(HOSTED.match(label) for label in labels):
            problems.append(f"{where}: runs on {labels}, a GitHub-hosted runner with no fixed address, but the "
                            f"{cloud} cluster API admits only {attr} (api_allowed_cidrs): run it on a self-hosted "
                            "runner inside the environment's network")
            continue
        if cloud == "aws":
            rules = body.get("cluster_security_group_additional_rules") or {}
            if not any(r.get("type") == '"ingress"' or r.get("type") == "ingress" for r in rules.values()
                       if int(r.get("from_port", 0)) <= 443 <= int(r.get("to_port", 0))):
                problems.append(f"{where}: runs inside the VPC, but the EKS cluster security group admits no "
                                "443 from the runners' subnets (cluster_security_group_additional_rules)")
        if cloud == "gcp":
            if "subnet_cidr" not in str(body.get("master_authorized_networks")):
                problems.append(f"{where}: runs in the cluster subnet, which the GKE master authorized networks omit")
            if "--internal-ip" not in steps:
                problems.append(f"{where}: fetches GKE credentials without --internal-ip: from the subnet the public "
                                "endpoint is not reachable")
    return problems


CROSS_RULES: dict[str, tuple[str, Callable[[Spec, dict[str, str]], list[str]]]] = {
    "layout": ("the pipelines sit at the repository root and their paths (working directory, build "
               "context, Dockerfile, dependency file, overlays) resolve to the service's source", layout),
    "runner_reach": ("the jobs that deploy run where the cluster API admits them: self-hosted runners inside the "
                     "network the Terraform admits, never GitHub-hosted ones against a restricted endpoint",
                     runner_reach),
    "registry": ("CI pushes to the registry the cluster pulls from: the one the cloud's Terraform creates and "
                 "grants the nodes, or one an imagePullSecret reaches", registry),
}


def cross_records(spec: Spec, files: dict[str, str]) -> list[Evidence]:
    records = []
    for rule, (title, check) in CROSS_RULES.items():
        if rule == "registry" and spec.image.split("/")[0] == PLACEHOLDER_REGISTRY:
            records.append(Evidence(f"cicd.rule.{rule}", "pipelines", title, "skipped", tool="kit",
                                    reason=f"service.image is unset ({spec.image} is a placeholder): there is no "
                                           "registry to compare; set it to the cloud's registry, which Terraform then "
                                           "creates and grants the nodes"))
            continue
        problems = check(spec, files)
        records.append(Evidence(f"cicd.rule.{rule}", "pipelines", title, "failed" if problems else "passed",
                                tool="kit", reason="; ".join(problems[:4]), figures={"problems": len(problems)},
                                log="\n".join(problems)))
    return records


# what a later run pushes again: fixed names (branch, latest, edge, raw values) and a cache ref
REPUSHED_TYPES = re.compile(r"^type=(ref,event=branch|edge|raw|schedule)\b")
VERSION_TYPES = re.compile(r"^type=(semver|pep440|match|ref,event=tag)\b")
GITLAB_MOVING = re.compile(r":(latest|buildcache|\$\{?CI_COMMIT_(BRANCH|REF_NAME|REF_SLUG)\}?)\b")


def _immutable(files: dict[str, str]) -> str:
    """The immutable registry the Terraform creates ('' when none): ECR with IMMUTABLE tags,
    Artifact Registry with docker_config.immutable_tags."""
    for b in inventory(files).blocks:
        if b["type"] == "aws_ecr_repository" and unquote(b["body"].get("image_tag_mutability", "")) == "IMMUTABLE":
            return "ECR (image_tag_mutability IMMUTABLE)"
        if b["type"] == "google_artifact_registry_repository" and any(
                c.get("immutable_tags") is True for c in (b["body"].get("docker_config") or [])
                if isinstance(c, dict)):
            return "Artifact Registry (immutable_tags)"
    return ""


def _github_tag_problems(text: str) -> list[str]:
    wf = yaml.safe_load(text) or {}
    triggers = wf.get("on", wf.get(True)) or {}
    push = (triggers.get("push") or {}) if isinstance(triggers, dict) else {}
    both = bool(push.get("tags")) and bool(push.get("branches"))          # one commit, two runs
    problems = []
    for job_id, job in (wf.get("jobs") or {}).items():
        for step in job.get("steps") or []:
            uses, args = str(step.get("uses", "")), step.get("with") or {}
            if "docker/metadata-action" in uses:
                lines = [t.strip() for t in str(args.get("tags", "")).splitlines() if t.strip()]
                flavor = str(args.get("flavor", ""))
                for t in lines:
                    if REPUSHED_TYPES.match(t):
                        problems.append(f"ci.yml job {job_id}: metadata-action tag {t!r} names a tag every run pushes again")
                    if t.startswith("type=sha") and "enable=" not in t and both:
                        problems.append(f"ci.yml job {job_id}: {t!r} is pushed by the branch run and again by the v* tag "
                                        "run of the same commit")
                if any(VERSION_TYPES.match(t) for t in lines) and "latest=false" not in flavor.replace(" ", ""):
                    problems.append(f"ci.yml job {job_id}: metadata-action's flavor latest=auto adds `latest` on every "
                                    "version tag: set flavor latest=false")
            if "docker/build-push-action" in uses and "type=registry" in str(args.get("cache-to", "")):
                problems.append(f"ci.yml job {job_id}: cache-to {args['cache-to']!r} rewrites a fixed cache ref each run")
    return problems


def _gitlab_tag_problems(text: str) -> list[str]:
    doc = yaml.safe_load(text) or {}
    problems = []
    for name, job in doc.items():
        if not isinstance(job, dict):
            continue
        script = " ".join(str(s) for s in job.get("script") or [])
        if "--push" not in script:
            continue
        if re.search(r"--cache-to\s+\"?type=registry", script):
            problems.append(f".gitlab-ci.yml {name}: --cache-to type=registry rewrites a fixed cache ref each run")
        for tag in re.findall(r"--tag\s+\"?([^\"\s]+)", script):
            if GITLAB_MOVING.search(tag):
                problems.append(f".gitlab-ci.yml {name}: tag {tag} is pushed again by a later run")
            elif tag.endswith(":${CI_COMMIT_SHA}"):
                problems.append(f".gitlab-ci.yml {name}: tag {tag} is pushed by the branch pipeline and again by the tag "
                                "pipeline of the same commit: tag the version on tags, the sha on branches")
    return problems


def immutable_tags(spec: Spec, files: dict[str, str]) -> list[str]:
    """With an immutable registry, no tag a pipeline pushes is one a later run pushes again.

    ECR: "When tag immutability is turned on for a repository, ... an ImageTagAlreadyExistsException
    error is returned" on pushing an existing tag (https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-tag-mutability.html);
    Artifact Registry: with immutable tags a tag cannot be moved to another digest, so pushing an
    existing tag fails (https://cloud.google.com/artifact-registry/docs/docker/manage-images#immutable-tags).
    docker/metadata-action: `flavor: latest=auto` (the default) emits `latest` for `type=semver`,
    `type=ref,event=tag`, ...; `type=ref,event=branch` emits the branch name each run; `type=sha`
    is emitted by every event, so the v* tag run of a commit re-pushes the sha tag the branch run
    pushed, unless gated (`enable={{is_default_branch}}`) (docker/metadata-action README, "flavor
    input" and "tags input"). A GitLab registry cache (`--cache-to type=registry,ref=...:buildcache`)
    rewrites one tag every run (https://docs.docker.com/build/cache/backends/registry/). Any of
    these fails the publish job of the second release."""
    if registry_of(spec.image, spec.option("cloud").provider).cloud == "":
        return []
    store = _immutable(files)
    if not store:
        return []
    problems = []
    if ".github/workflows/ci.yml" in files:
        problems += _github_tag_problems(files[".github/workflows/ci.yml"])
    if ".gitlab-ci.yml" in files:
        problems += _gitlab_tag_problems(files[".gitlab-ci.yml"])
    return [f"{p} ({store})" for p in problems]


CROSS_RULES["immutable_tags"] = ("with an immutable registry, no tag a pipeline pushes is one a later run pushes again "
                                 "(no latest, no branch name, the sha only from branches, no fixed cache ref)",
                                 immutable_tags)


SET_IMAGE = re.compile(r"kustomize edit set image ([^\n)]*)")


def _deploy_sets(files: dict[str, str]) -> dict[str, set[str]]:
    """Per pipeline (GitHub, GitLab), the image names its deploy pins (`kustomize edit set image
    NAME=...`), ${SERVICE} resolved."""
    service = {t["set_image"] for t in github_targets(files) + gitlab_targets(files) if t["set_image"]}
    pipelines = {"GitHub": [p for p in files if p.startswith(".github/workflows/")], "GitLab": [".gitlab-ci.yml"]}
    found = {}
    for pipeline, paths in pipelines.items():
        names = set()
        for path in paths:
            for args in SET_IMAGE.findall(files.get(path, "")):
                for arg in re.findall(r"\"?([^\s\"=]+)=", args):
                    names |= service if arg in ("${SERVICE}", "$SERVICE") else {arg}
        if names:
            found[pipeline] = names
    return found


def deploy_images(spec: Spec, files: dict[str, str]) -> list[str]:
    """Every Deployment image in a deployed overlay is one the deploy pins, or one some pipeline pushes.

    The pipelines push `service.image` only by the commit sha and the release version (see
    immutable_tags), never by environment name; a Deployment whose image the deploy leaves at the
    overlay's `newTag` (`<image>:staging`, `:prod`) names a tag that does not exist, and the kubelet
    reports ErrImagePull / ImagePullBackOff ("Kubernetes could not pull a container image ... for
    example an invalid name, or a tag that does not exist", https://kubernetes.io/docs/concepts/containers/images/#imagepullbackoff).
    kustomize's `images:` entry is what the deploy's `kustomize edit set image NAME=...@sha256:...`
    replaces (https://kubectl.docs.kubernetes.io/references/kustomize/kustomization/images/), so each
    Deployment's image name must be one every deploying pipeline sets, or carry a digest already."""
    containers = []
    for path in sorted(p for p in files if p.startswith("k8s/base/") and p.endswith(".yaml")):
        for doc in yaml.safe_load_all(files[path]):
            if isinstance(doc, dict) and doc.get("kind") == "Deployment":
                pod = doc["spec"]["template"]["spec"]
                containers += [(doc["metadata"]["name"], c["image"]) for c in pod.get("containers", [])]
    problems = []
    for pipeline, pinned in _deploy_sets(files).items():
        for overlay in deployed_overlays(files):
            kust = yaml.safe_load(files.get(f"k8s/overlays/{overlay}/kustomization.yaml", "") or "{}") or {}
            images = {i["name"]: i for i in kust.get("images") or []}
            for deployment, image in containers:
                entry = images.get(image.split(":")[0].split("@")[0])
                if entry is None or entry["name"] in pinned or entry.get("digest"):
                    continue
                if entry.get("newName", image) != spec.image:
                    continue               # another image (a stand-in, a dependency): not this pipeline's
                problems.append(f"{pipeline} deploy, overlay {overlay}: Deployment/{deployment} runs "
                                f"{entry.get('newName')}:{entry.get('newTag')}, which the deploy does not pin "
                                f"(kustomize edit set image sets {sorted(pinned)}) and no pipeline pushes: "
                                "ImagePullBackOff")
    return problems


CROSS_RULES["deploy_images"] = ("every Deployment image in a deployed overlay is pinned by the deploy or pushed by a "
                                "pipeline (a canary or idle slot left at the overlay's tag never pulls)", deploy_images)
