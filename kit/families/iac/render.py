"""IaC family: Terraform for the task's cloud (cloud.provider): a bootstrap for the remote
state, a shared platform module (registry, network, managed Kubernetes, node pool) and one root
module per environment. Every cloud has the same shape; only the resources differ."""
from __future__ import annotations

import re

from kit.families.iac import addons
from kit.families.iac.registry import mismatch, registry_of
from kit.model import Spec
from kit.render import render_variant

TERRAFORM = ">= 1.10.0, < 2.0.0"
# cloud -> pinned providers and community modules (roots pin exact, the shared module a range)
VERSIONS: dict[str, dict[str, str]] = {
    "aws": {"terraform": TERRAFORM, "aws": "5.80.0", "aws_range": ">= 5.80.0, < 6.0.0",
            "vpc_module": "5.17.0", "eks_module": "20.31.6", "iam_module": "5.44.0"},
    "gcp": {"terraform": TERRAFORM, "google": "6.14.1", "google_range": ">= 6.14.1, < 7.0.0",
            "network_module": "10.0.0", "gke_module": "35.0.1"},
    "azure": {"terraform": TERRAFORM, "azurerm": "3.117.0", "azurerm_range": ">= 3.117.0, < 4.0.0",
              "aks_module": "9.1.0"},
}

# the state store's name the task sets, as each cloud accepts it (Azure storage accounts take no '-')
STATE_NAME = {"aws": str, "gcp": str, "azure": lambda name: name.replace("-", "")}
# what the bootstrap derives when the task sets none (bucket and storage account names are global)
DERIVED_STATE = {"aws": "<service>-tfstate-<account id>", "gcp": "<project>-tfstate",
                 "azure": "<service>tf<8 hex of the subscription id>"}


def state_store(cloud) -> str:
    """The state store's name as the docs say it: the task's, or how the bootstrap derives it."""
    if cloud.state_bucket:
        return STATE_NAME[cloud.provider](cloud.state_bucket)
    return f"{cloud.project}-tfstate" if cloud.provider == "gcp" else DERIVED_STATE[cloud.provider]


# the GitHub environment that deploys each Terraform environment (ci's OVERLAYS, reversed)
GITHUB_ENVIRONMENT = {"prod": "production"}
GHCR = re.compile(r"^ghcr\.io/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+)$")


def github_repository(image: str, repository: str = "") -> str:
    """ci.repository, else owner/name when the image is ghcr.io/OWNER/NAME, else "" (the variable
    must be set in terraform.tfvars)."""
    match = GHCR.match(image)
    return repository or (f"{match[1]}/{match[2]}" if match else "")


def registry_environment(environments: list[str]) -> str:
    """The one environment that creates the account's registry: prod when there is one."""
    return "prod" if "prod" in environments else environments[-1]


def registry_context(spec: Spec) -> dict:
    """The registry Terraform creates: the one service.image names, when it is this cloud's and
    in this region/project; else none (no registry nothing pushes to)."""
    cloud = spec.option("cloud")
    reg = registry_of(spec.image, cloud.provider)
    create = reg.is_cloud and not mismatch(reg, cloud.region, cloud.project)
    ci = spec.options.get("ci")
    return {"create": create, "image": spec.image, "host": reg.host,
            "repository": reg.parts.get("repository", spec.name) if create else spec.name,
            "name": reg.parts.get("registry", "") if create else "",
            "default_branch": getattr(ci, "default_branch", "main"),
            # the backup family's image (PostgreSQL with pgBackRest): its own ECR repository beside the app's
            "backup_repository": (f"{reg.parts.get('repository', spec.name)}-pgbackrest"
                                  if create and _backup_image(spec) else "")}


def _backup_image(spec: Spec) -> bool:
    from kit.families.backup.render import in_cluster
    try:
        return bool(spec.option("backup").enabled) and in_cluster(spec)
    except KeyError:
        return False


def context(spec: Spec) -> dict:
    cloud = spec.option("cloud")
    envs = list(cloud.environments)
    ci = spec.options.get("ci")
    return {"github_repository": github_repository(spec.image, getattr(ci, "repository", "")),
            "registry_environment": registry_environment(envs), "registry": registry_context(spec),
            "github_environments": {e: GITHUB_ENVIRONMENT.get(e, e) for e in envs},
            "name": spec.name, "cloud": cloud.provider, "region": cloud.region, "project": cloud.project,
            "kubernetes_version": cloud.kubernetes_version, "instance_type": cloud.instance_type,
            "min_nodes": cloud.min_nodes, "max_nodes": cloud.max_nodes,
            "state_bucket": STATE_NAME[cloud.provider](cloud.state_bucket) if cloud.state_bucket else "",
            "state_store": state_store(cloud),
            "environments": list(cloud.environments),
            "versions": {**VERSIONS[cloud.provider], "helm": addons.HELM_PROVIDER["exact"],
                         "helm_range": addons.HELM_PROVIDER["range"]},
            "external_secrets": addons.context(spec)["external_secrets"],
            "cluster_autoscaler": addons.context(spec)["cluster_autoscaler"]}


def render_iac(spec: Spec) -> dict[str, str]:
    ctx = context(spec)
    files = render_variant("iac", ctx["cloud"], ctx)
    files.update(render_variant("iac", "common", addons.context(spec)))
    shared = {k: v for k, v in ctx.items() if k not in ("environments", "cloud", "github_environments", "cluster_autoscaler")}
    for env in ctx["environments"]:
        env_files = render_variant("iac", f"{ctx['cloud']}/environment",
                                   {**shared, "environment": env, "github_environment": ctx["github_environments"][env],
                                    "app_namespace": addons.app_namespace(spec, env)})
        files.update({f"terraform/environments/{env}/{rel}": text for rel, text in env_files.items()})
    return files


def work_notes(spec: Spec) -> list[str]:
    cloud = spec.option("cloud")
    versions = VERSIONS[cloud.provider]
    ca = addons.CLUSTER_AUTOSCALER_CHARTS.get(cloud.kubernetes_version, {})
    return [
        f"- Terraform for {cloud.provider} ({cloud.region}): `terraform/bootstrap` (the locked remote state, "
        f"`{state_store(cloud)}`: bucket names are global, so the name carries the account, project or "
        "subscription), `terraform/modules/platform` (registry, network, "
        f"Kubernetes {cloud.kubernetes_version} with a {cloud.instance_type} node pool of {cloud.min_nodes}-"
        f"{cloud.max_nodes}) and one root module per environment: {', '.join(cloud.environments)}.",
        "- The cluster gets what the manifests assume: NetworkPolicy enforcement ("
        + {"aws": "vpc-cni `enableNetworkPolicy`", "gcp": "Dataplane V2", "azure": "Azure Network Policy Manager"}[cloud.provider]
        + "), the metrics API for the HPA ("
        + {"aws": "the metrics-server add-on", "gcp": "GKE's HPA add-on", "azure": "AKS's own, listed in k8s/README.md"}[cloud.provider]
        + "), and Helm releases of ingress-nginx, cert-manager and the External Secrets Operator (with its cloud "
        "identity), pinned: " + ", ".join(f"{c} {v['version']}" for c, v in addons.CHARTS.items())
        + "; a local chart adds the ClusterIssuer and the ClusterSecretStore.",
        "- Node scaling: " + {
            "aws": (f"NONE: kit pins no Cluster Autoscaler release for Kubernetes {cloud.kubernetes_version} "
                    f"(it does for {', '.join(addons.CLUSTER_AUTOSCALER_CHARTS)}), so the EKS node group stays at "
                    "its desired size." if not ca else
                    f"the Kubernetes Cluster Autoscaler (chart {ca.get('version')}, app {ca.get('app_version')}, the "
                    f"release for Kubernetes {cloud.kubernetes_version}) moves the EKS node group between "
                    f"{cloud.min_nodes} and {cloud.max_nodes}, finding it by the tags `k8s.io/cluster-autoscaler/enabled` "
                    "and `k8s.io/cluster-autoscaler/<cluster>`, through its own IRSA role that may resize only the "
                    "groups so tagged. Chosen over Karpenter: it scales the existing managed node group, with fewer "
                    "moving parts."),
            "gcp": f"GKE's own cluster autoscaler moves the node pool between {cloud.min_nodes} and {cloud.max_nodes} "
                   "(the pool's `autoscaling`); nothing to install.",
            "azure": f"AKS's cluster autoscaler moves the node pool between {cloud.min_nodes} and {cloud.max_nodes} "
                     "(`enable_auto_scaling`); nothing to install.",
        }[cloud.provider] + " Rule `iac.rule.node_autoscaling` fails when a pool could grow and nothing grows it.",
        "- Pinned: " + ", ".join(f"{k} {v}" for k, v in versions.items() if not k.endswith("_range")) + ".",
        "- No credentials in the code; set `api_allowed_cidrs` in each environment's terraform.tfvars. "
        "`terraform validate` needs the providers, which cannot be downloaded here: see its evidence.",
    ]
