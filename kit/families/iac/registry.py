"""The container registry, read from service.image (the one source of truth): CI pushes there, the
overlays name it, and the cloud's Terraform creates it and lets the nodes pull from it when it is
that cloud's registry. Any other registry (ghcr.io, a placeholder) is one the cluster has no
credentials for."""
from __future__ import annotations

import re
from dataclasses import dataclass

ECR = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com/(?P<repository>[a-z0-9][a-z0-9._/-]*)$")
ARTIFACT_REGISTRY = re.compile(r"^(?P<location>[a-z0-9-]+)-docker\.pkg\.dev/(?P<project>[a-z][a-z0-9-]{4,28}[a-z0-9])/"
                               r"(?P<repository>[a-z0-9][a-z0-9._-]*)/(?P<image>[a-z0-9][a-z0-9._/-]*)$")
ACR = re.compile(r"^(?P<registry>[a-z0-9]{5,50})\.azurecr\.io/(?P<repository>[a-z0-9][a-z0-9._/-]*)$")
PATTERNS = {"aws": ECR, "gcp": ARTIFACT_REGISTRY, "azure": ACR}
EXAMPLE = {"aws": "<account id>.dkr.ecr.<region>.amazonaws.com/<name>",
           "gcp": "<region>-docker.pkg.dev/<project>/<repository>/<name>",
           "azure": "<registry>.azurecr.io/<name>"}
KIND = {"aws": "ECR", "gcp": "Artifact Registry", "azure": "ACR"}


@dataclass(frozen=True)
class Registry:
    host: str
    cloud: str            # the cloud whose registry it is, "" for any other
    parts: dict           # the named parts of the image reference (account, region, repository, ...)

    @property
    def is_cloud(self) -> bool:
        return bool(self.cloud)


def registry_of(image: str, cloud: str) -> Registry:
    """The registry of service.image, as the given cloud sees it."""
    host = image.split("/", 1)[0]
    match = PATTERNS[cloud].match(image)
    return Registry(host, cloud if match else "", match.groupdict() if match else {})


def mismatch(reg: Registry, region: str, project: str) -> str:
    """Why the cloud's registry in service.image is not one this Terraform creates ('' when it is)."""
    if reg.cloud == "aws" and reg.parts["region"] != region:
        return f"the ECR repository is in {reg.parts['region']}, the cluster in {region}"
    if reg.cloud == "gcp" and reg.parts["project"] != project:
        return f"the Artifact Registry repository is in project {reg.parts['project']}, the cluster in {project}"
    if reg.cloud == "gcp" and reg.parts["location"] != region:
        return f"the Artifact Registry repository is in {reg.parts['location']}, the cluster in {region}"
    return ""
