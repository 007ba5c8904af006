"""The names the ExternalSecret asks the cloud's secret store for: one scheme per store, each a
valid secret name there (the rule secret_names_rule checks the built objects against it)."""
from __future__ import annotations

import re

from kit.core.k8s import _of, name_of
from kit.model import Spec

# The store each cloud's ClusterSecretStore reads (terraform/modules/platform/charts/platform-config)
# and what its secret names may be:
# - AWS Secrets Manager: "The secret name can contain ASCII letters, numbers, and the following
#   characters: /_+=.@-" (CreateSecret Name, https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_CreateSecret.html),
#   up to 512 characters;
# - GCP Secret Manager: "A secret ID is a string with a maximum length of 255 characters and can
#   contain uppercase and lowercase letters, numerals, and the hyphen (-) and underscore (_)
#   characters" (https://cloud.google.com/secret-manager/docs/reference/rest/v1/projects.secrets/create);
# - Azure Key Vault: an object name is "a 1-127 character string, starting with a letter and
#   containing only 0-9, a-z, A-Z, and -"
#   (https://learn.microsoft.com/azure/key-vault/general/about-keys-secrets-and-certificates#object-identifiers).
STORES = {
    "aws": ("AWS Secrets Manager", re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")),
    "gcp": ("GCP Secret Manager", re.compile(r"^[A-Za-z0-9_-]{1,255}$")),
    "azure": ("Azure Key Vault", re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,126}$")),
}


def cloud_of(spec: Spec) -> str:
    """The cloud whose store the ClusterSecretStore reads (the task's cloud.provider; aws by default)."""
    return getattr(spec.options.get("cloud"), "provider", "aws")


def remote_key(service: str, secret: str, cloud: str) -> str:
    """The store's name for one secret of the service: `<service>/<SECRET>` in Secrets Manager (the
    operator's IAM policy admits `secret:<service>/*`), `<service>-<SECRET>` in Secret Manager,
    `<service>-<SECRET>` with `_` as `-` in Key Vault (which has no `_`)."""
    if cloud == "aws":
        return f"{service}/{secret}"
    if cloud == "azure":
        return f"{service}-{secret}".replace("_", "-")
    return f"{service}-{secret}"


def secret_names_rule(spec: Spec, objects: list[dict]) -> list[str]:
    """Every ExternalSecret remoteRef key is a valid secret name in the declared cloud's store.

    The operator asks the provider for the key as written; a name the store cannot hold never
    exists there, the target Secret is never created, and the pods mounting it stay in
    ContainerCreating until the rollout times out. Names per store: see STORES (AWS CreateSecret,
    GCP Secret Manager secrets.create, Azure Key Vault object identifiers)."""
    cloud = cloud_of(spec)
    store, valid = STORES[cloud]
    problems = []
    for es in _of(objects, "ExternalSecret"):
        keys = [(d.get("remoteRef") or {}).get("key") for d in es["spec"].get("data") or []]
        keys += [(d.get("extract") or {}).get("key") for d in es["spec"].get("dataFrom") or []]
        for key in filter(None, keys):
            if not valid.match(str(key)):
                problems.append(f"ExternalSecret/{name_of(es)}: remoteRef key {key!r} is not a valid secret name in "
                                f"{store} (cloud.provider {cloud}): the Secret would never be created")
    return problems
