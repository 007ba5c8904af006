"""The `cloud` task section: where the Terraform puts the registry, the cluster and its state."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kit.errors import TaskError
from kit.families.iac.addons import CLUSTER_AUTOSCALER_CHARTS

if TYPE_CHECKING:
    from kit.model import Spec
    from kit.task import TaskDoc

PROVIDERS = ("aws", "azure", "gcp")
DEFAULT_REGION = {"aws": "eu-west-1", "gcp": "europe-west1", "azure": "westeurope"}
REGION = r"^[a-z]{2,}[a-z0-9-]*[0-9a-z]$"
BUCKET = r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$"

SCHEMA: dict = {
    "type": "object",
    "additionalProperties": False,
    "description": "Infrastructure as code (terraform/): registry, managed Kubernetes, remote state. "
                   "Every key is optional.",
    "properties": {
        "provider": {"enum": list(PROVIDERS),
                     "description": "the cloud: aws, gcp or azure (default aws)"},
        "region": {"type": "string", "pattern": REGION, "maxLength": 40,
                   "description": "the cloud region, e.g. eu-west-1, europe-west1, westeurope"},
        "project": {"type": "string", "pattern": r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$",
                    "description": "GCP project id (gcp only; default <service>-prod)"},
        "kubernetes_version": {"type": "string", "pattern": r"^1\.\d{2}$",
                               "description": "the cluster's Kubernetes minor version, quoted "
                                              "(default: kubernetes.version)"},
        "node_pool": {"type": "object", "additionalProperties": False,
                      "description": "the default node pool: instance type and autoscaling bounds",
                      "properties": {
                          "instance_type": {"type": "string", "minLength": 2,
                                            "description": "machine type (default per cloud, e.g. m6i.large)"},
                          "min": {"type": "integer", "minimum": 1, "maximum": 100},
                          "max": {"type": "integer", "minimum": 1, "maximum": 100}}},
        "state_bucket": {"type": "string", "pattern": BUCKET,
                         "description": "bucket (or Azure storage account) holding the Terraform state; "
                                        "3-63 lower-case letters, digits and '-'. Bucket names are global, so "
                                        "by default the bootstrap derives a unique one: <service>-tfstate-"
                                        "<account id> on AWS, <project>-tfstate on GCP, <service>tf<hash of "
                                        "the subscription> on Azure"},
        "environments": {"type": "array", "minItems": 1, "uniqueItems": True,
                         "items": {"type": "string", "pattern": r"^[a-z][a-z0-9]{1,9}$"},
                         "description": "one Terraform root module per environment (default [staging, prod])"},
    },
}

DEFAULT_INSTANCE = {"aws": "m6i.large", "gcp": "e2-standard-4", "azure": "Standard_D4s_v5"}


@dataclass(frozen=True)
class CloudOptions:
    provider: str
    region: str
    project: str
    kubernetes_version: str
    instance_type: str
    min_nodes: int
    max_nodes: int
    state_bucket: str                # set by the task on purpose; "" = derived by the bootstrap
    environments: tuple[str, ...]


def parse(doc: TaskDoc, spec: Spec) -> CloudOptions:
    raw = doc.data.get("cloud") or {}

    def fail(message: str, *path: str, hint: str | None = None) -> TaskError:
        return doc.error(message, "cloud", *path, hint=hint)

    if not isinstance(raw, dict):
        raise fail("must be a mapping, e.g. {provider: aws, region: eu-west-1}")
    provider = raw.get("provider", "aws")
    if provider not in PROVIDERS:
        raise fail(f"unknown cloud {provider!r}; valid values: {', '.join(PROVIDERS)}", "provider")
    pool = raw.get("node_pool") or {}
    low, high = pool.get("min", 2), pool.get("max", 5)
    if low > high:
        raise fail(f"min {low} is larger than max {high}", "node_pool", hint="min <= max")
    manifests = _manifests_version(doc)
    version = str(raw.get("kubernetes_version", manifests))
    if version != manifests:
        raise fail(f"{version} differs from kubernetes.version {manifests}, which the manifests are "
                   "validated against", "kubernetes_version", hint="drop it, or set both to the same version")
    # a task that asks for EKS gets one that scales; without a cloud section the Terraform is a
    # default, rendered without the autoscaler for such a version (iac.rule.node_autoscaling says so)
    if doc.data.get("cloud") and provider == "aws" and version not in CLUSTER_AUTOSCALER_CHARTS:
        raise fail(f"kit pins no cluster-autoscaler release for Kubernetes {version} (EKS node groups scale "
                   "only through it, and its minor must match the cluster's)", "kubernetes_version",
                   hint="one of " + ", ".join(CLUSTER_AUTOSCALER_CHARTS))
    instance_type = pool.get("instance_type", DEFAULT_INSTANCE[provider])
    if "max" not in pool:      # with scaling.measured, the nodes prod needs at its derived figures
        high = max(low, _measured_nodes(doc, spec, instance_type) or high)
    bucket = raw.get("state_bucket", "")
    if bucket and provider == "azure" and not re.fullmatch(r"[a-z0-9]{3,24}", bucket.replace("-", "")):
        raise fail(f"{bucket!r} cannot name an Azure storage account", "state_bucket",
                   hint="Azure needs 3-24 lower-case letters and digits once '-' is dropped")
    return CloudOptions(provider=provider, region=raw.get("region", DEFAULT_REGION[provider]),
                        project=raw.get("project", f"{spec.name}-prod"[:30]),
                        kubernetes_version=version,
                        instance_type=instance_type,
                        min_nodes=low, max_nodes=high, state_bucket=bucket,
                        environments=tuple(raw.get("environments", ("staging", "prod"))))


def _measured_nodes(doc: TaskDoc, spec: Spec, instance_type: str) -> int | None:
    """Nodes for prod at its maximum replicas and requests when the task commits scaling.measured
    (kit/families/scaling/plan.py), else None: the default pool bounds stay."""
    if not (doc.data.get("scaling") or {}).get("measured"):
        return None
    from kit.families.kubernetes.options import parse as parse_kubernetes
    from kit.families.scaling.plan import node_pool_max
    found = node_pool_max(instance_type, parse_kubernetes(doc, spec).env("prod"), len(spec.dependencies))
    return found[0] if found else None


def _manifests_version(doc: TaskDoc) -> str:
    """The Kubernetes version the manifests target (kubernetes.version, else its default)."""
    from kit.families.kubernetes.options import DEFAULT_VERSION as default
    return str((doc.data.get("kubernetes") or {}).get("version", default))
