"""The `security` task section: the severity threshold of CI's vulnerability scan, the admission
engine, the cosign identity the cluster verifies (default: the CI workflow that signs today),
extra forbidden capabilities and the registries images may come from."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kit.model import Service
    from kit.task import TaskDoc

SEVERITIES = ("low", "medium", "high", "critical")
ENGINES = ("gatekeeper", "kyverno")
CAPABILITY = r"^[A-Z][A-Z0-9_]*$"
# the OIDC issuers of the CI systems kit writes pipelines for (cosign keyless signing)
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
GITLAB_ISSUER = "https://gitlab.com"

SCHEMA: dict = {
    "type": "object", "additionalProperties": False,
    "description": "Security and compliance: admission policies, the signature the cluster verifies, "
                   "runtime rules and the scans kit runs (k8s/policies/, security/). Every key is optional.",
    "properties": {
        "severity": {"enum": list(SEVERITIES), "description": "the lowest vulnerability severity that fails "
                     "CI's image scan (default high: HIGH and CRITICAL fail)"},
        "engine": {"enum": list(ENGINES), "description": "the admission controller the cluster runs: gatekeeper "
                   "(ConstraintTemplates + Constraints, evaluated by kit) or kyverno (ClusterPolicies, "
                   "structure-checked only); default gatekeeper"},
        "identity": {"type": "object", "additionalProperties": False, "properties": {
            "subject": {"type": "string", "minLength": 1, "description": "the certificate identity (regular "
                        "expression) cosign signed with; default: the CI workflow kit writes, on the default "
                        "branch and v* tags"},
            "issuer": {"type": "string", "pattern": "^https://", "description": "the OIDC issuer of that "
                       "identity; default: the CI provider's"}}},
        "forbidden_capabilities": {"type": "array", "uniqueItems": True,
                                   "items": {"type": "string", "pattern": CAPABILITY},
                                   "description": "capabilities denied on top of the restricted profile "
                                                  "(which allows only NET_BIND_SERVICE to be added), e.g. "
                                                  "[NET_BIND_SERVICE]"},
        "registries": {"type": "array", "minItems": 1, "uniqueItems": True,
                       "items": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9.:-]*(/[a-z0-9._/-]*)?$"},
                       "description": "image prefixes the service's images may come from (default: the "
                                      "registry of service.image); service.image must match one"},
    },
}


@dataclass(frozen=True)
class SecurityOptions:
    severity: str
    engine: str
    subject: str                  # regular expression of the signing certificate's identity
    issuer: str
    identity_source: str          # where subject/issuer come from
    forbidden_capabilities: tuple[str, ...]
    registries: tuple[str, ...]   # prefixes of the app's images (dependency images are added by name)

    @property
    def scan_severities(self) -> str:
        """Trivy's --severity list for the threshold, e.g. HIGH,CRITICAL."""
        return ",".join(s.upper() for s in SEVERITIES[SEVERITIES.index(self.severity):])


def registry_of(image: str) -> str:
    """The registry host of an image reference (docker.io for a bare name)."""
    first = image.split("/")[0]
    return first if "/" in image and ("." in first or ":" in first or first == "localhost") else "docker.io"


def matches_registry(image: str, prefix: str) -> bool:
    prefix = prefix.rstrip("/")
    return image == prefix or image.startswith(prefix + "/") or image.startswith(prefix + ":") \
        or image.startswith(prefix + "@")


# GitHub and GitLab names never contain "<": an identity with this placeholder matches no certificate
UNSET_REPOSITORY = "<set ci\\.repository>"


def default_identity(doc: TaskDoc, service: Service) -> tuple[str, str, str]:
    """The identity CI signs with today: keyless cosign in the generated ci workflow (GitHub) or
    pipeline (GitLab), on the default branch and v* release tags (kit/families/cicd, templates/cicd).
    A tag is one path segment (`v[^/]+`: the workflow's `tags: ['v*']` glob does not cross `/`). With
    no `ci.repository` the identity fails closed: it names no repository, so verify-images admits no
    image until the task sets one (a `[^/]+/[^/]+` wildcard would admit an image signed by any
    repository's ci.yml)."""
    from kit.families.cicd import options as ci_options
    ci = ci_options.parse(doc, service)
    branch = re.escape(ci.default_branch)
    repo = re.escape(ci.repository) if ci.repository else UNSET_REPOSITORY
    unset = "" if ci.repository else "; ci.repository is not set, so no signature matches until it is (fails closed)"
    if "github" in ci.providers:
        return (f"^https://github\\.com/{repo}/\\.github/workflows/ci\\.yml@refs/(heads/{branch}|tags/v[^/]+)$",
                GITHUB_ISSUER, "the GitHub workflow .github/workflows/ci.yml (job publish, `cosign sign`)" + unset)
    return (f"^https://gitlab\\.com/{repo}//\\.gitlab-ci\\.yml@refs/(heads/{branch}|tags/v[^/]+)$",
            GITLAB_ISSUER, "the GitLab pipeline .gitlab-ci.yml (`cosign sign`)" + unset)


def parse(doc: TaskDoc, service: Service) -> SecurityOptions:
    raw = doc.data.get("security") or {}
    identity = raw.get("identity") or {}
    subject, issuer, source = default_identity(doc, service)
    if identity.get("subject"):
        try:
            re.compile(identity["subject"])
        except re.error as exc:
            raise doc.error(f"is not a regular expression: {exc}", "security", "identity", "subject",
                            hint="cosign's --certificate-identity-regexp and Kyverno's subject take a regular "
                                 "expression, e.g. ^https://github.com/OWNER/REPO/.github/workflows/ci.yml@refs/heads/main$") from None
        subject, source = identity["subject"], "security.identity"
    if identity.get("issuer"):
        issuer, source = identity["issuer"], "security.identity"
    image = service.image
    registries = tuple(str(r).rstrip("/") for r in raw.get("registries") or ()) or (registry_of(image),)
    if raw.get("registries") and not any(matches_registry(image, r) for r in registries):
        raise doc.error(f"service.image {image} is in none of these registries: {', '.join(registries)}",
                        "security", "registries",
                        hint="the registry allowlist would deny the service's own image; add its registry "
                             f"({registry_of(image)}) or fix service.image")
    return SecurityOptions(severity=str(raw.get("severity", "high")), engine=str(raw.get("engine", "gatekeeper")),
                           subject=subject, issuer=issuer, identity_source=source,
                           forbidden_capabilities=tuple(raw.get("forbidden_capabilities") or ()),
                           registries=registries)
