"""kit's own Terraform rules, on the parsed inventory: each returns the problems it found."""
from __future__ import annotations

import re
from collections.abc import Callable

from kit.families.iac import autoscaling, egress
from kit.families.iac.terraform import Inventory, unquote

EXACT = re.compile(r"^\d+\.\d+\.\d+$")
EXACT_CHART = re.compile(r"^v?\d+\.\d+\.\d+$")
BOUNDED = re.compile(r">=\s*\d+(\.\d+)*\s*,\s*<\s*\d+(\.\d+)*")
SECRET_KEYS = re.compile(r"^(access_key|secret_key|password|client_secret|token|private_key|"
                         r"admin_password|credentials|sas_token|access_token)$")
LOCKING = {"s3": lambda b: b.get("use_lockfile") is True or bool(b.get("dynamodb_table")),
           "gcs": lambda b: True, "azurerm": lambda b: True}   # gcs and azurerm lock natively


def pinned(inv: Inventory) -> list[str]:
    """Roots pin providers exactly, shared modules bound them; registry modules pin a release,
    Helm releases a chart version (local charts excepted); every folder sets required_version."""
    problems = []
    roots = set(inv.roots())
    for p in inv.providers:
        ok = EXACT.match(p["version"]) if p["folder"] in roots else BOUNDED.search(p["version"])
        if not ok:
            want = "an exact version" if p["folder"] in roots else "a '>= x, < y' range"
            problems.append(f"{p['folder']}: provider {p['name']} version {p['version']!r} is not {want}")
    for b in inv.blocks:
        if b["kind"] == "module" and not b["source"].startswith("terraform/") and not EXACT.match(b["version"]):
            problems.append(f"{b['folder']}: module {b['name']} ({b['source']}) is not pinned to a release")
    for b in inv.blocks:
        chart = unquote(b["body"].get("chart", "")) if b["type"] == "helm_release" else ""
        if chart and not chart.startswith("${path.module}") and not EXACT_CHART.match(unquote(b["body"].get("version", ""))):
            problems.append(f"{b['folder']}: helm_release {b['name']} ({chart}) is not pinned to a chart version")
    for folder in inv.folders():
        if not inv.settings.get(folder, {}).get("required_version"):
            problems.append(f"{folder}: no required_version")
    return problems


def variables(inv: Inventory) -> list[str]:
    """Every variable has a type and a description; shared-module inputs without a default validate."""
    problems = []
    for v in inv.variables:
        where = f"{v['folder']}: variable {v['name']}"
        if not v["type"]:
            problems.append(f"{where} has no type")
        if not v["description"]:
            problems.append(f"{where} has no description")
        if "/modules/" in v["folder"] + "/" and v["default"] is None and not v["validation"] and v["type"] != "bool":
            problems.append(f"{where} is required but has no validation")
    return problems


def backend(inv: Inventory) -> list[str]:
    """Every environment keeps its state in a remote backend that locks."""
    problems = []
    for folder in inv.roots():
        if folder.endswith("/bootstrap"):
            continue                    # creates the backend's storage: local state by design
        conf = inv.settings.get(folder, {}).get("backend")
        if not conf:
            problems.append(f"{folder}: no remote backend")
        elif conf["type"] not in LOCKING or not LOCKING[conf["type"]](conf):
            problems.append(f"{folder}: backend {conf['type']} does not lock the state")
    return problems


def no_secrets(inv: Inventory) -> list[str]:
    """No credential attribute with a literal value, no secret-like variable with a default."""
    problems = []
    for b in inv.blocks:
        for key, value in b["body"].items():
            if SECRET_KEYS.match(key) and isinstance(value, str) and value.startswith('"'):
                problems.append(f"{b['folder']}: {b['type']}.{b['name']}.{key} is a literal credential")
    for v in inv.variables:
        if SECRET_KEYS.match(v["name"]) and v["default"] not in (None, ""):
            problems.append(f"{v['folder']}: variable {v['name']} has a default value")
    return problems


def outputs(inv: Inventory) -> list[str]:
    """Every output is described, and every root and module has some."""
    problems = [f"{o['folder']}: output {o['name']} has no description" for o in inv.outputs if not o["description"]]
    with_outputs = {o["folder"] for o in inv.outputs}
    problems += [f"{f}: no outputs" for f in inv.folders() if f not in with_outputs]
    return problems


RULES: dict[str, tuple[str, Callable[[Inventory], list[str]]]] = {
    "pinned": ("providers and modules pinned, required_version set", pinned),
    "variables": ("variables typed and described; required module inputs validated", variables),
    "backend": ("each environment's state in a remote backend with locking", backend),
    "secrets": ("no credentials in the code: they come from the environment", no_secrets),
    "outputs": ("outputs described, in every root and module", outputs),
}


# the state store per cloud: (resource, its name attribute, the backend key naming it, the
# identity that makes a derived name unique)
STATE_STORES = {"aws_s3_bucket": ("bucket", "s3", "bucket", "data.aws_caller_identity"),
                "google_storage_bucket": ("name", "gcs", "bucket", "var.project"),
                "azurerm_storage_account": ("name", "azurerm", "storage_account_name", "data.azurerm_client_config")}


def _resolve(inv: Inventory, folder: str, expr: str) -> str:
    """An expression with the folder's locals written out (one level is all kit uses)."""
    return re.sub(r"\blocal\.(\w+)", lambda m: str(inv.locals.get(folder, {}).get(m[1], m[0])), str(expr))


def state_name(inv: Inventory) -> list[str]:
    """The remote state store's name is unique across accounts. S3 bucket names "must be unique
    across all AWS accounts in all the AWS Regions within a partition"
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html); GCS bucket
    names share one global namespace (https://cloud.google.com/storage/docs/buckets#naming) and
    Azure storage account names are unique across Azure
    (https://learn.microsoft.com/azure/storage/common/storage-account-overview#storage-account-name).
    So a fixed `<service>-tfstate` collides in the second account that applies it. The bootstrap
    derives the name from the account id, the project id or the subscription, unless the task set
    one on purpose (the bootstrap's state_bucket default); each environment's backend names that
    store, or leaves it to `terraform init -backend-config` from the bootstrap's output."""
    problems = []
    stores = [b for b in inv.blocks if b["kind"] == "resource" and b["type"] in STATE_STORES
              and b["folder"].endswith("/bootstrap")]
    boot = {v["folder"]: v["default"] for v in inv.variables if v["name"] == "state_bucket"}
    explicit = next((d for d in boot.values() if d), None)
    for store in stores:
        attr, _, _, identity = STATE_STORES[store["type"]]
        name = _resolve(inv, store["folder"], unquote(store["body"].get(attr, "")))
        if explicit is None and identity not in name:
            problems.append(f"{store['folder']}: {store['type']}.{store['name']}.{attr} = {name!r} does not derive "
                            f"from {identity}: the name is global, a fixed one collides in another account")
    kinds = {STATE_STORES[s["type"]][1]: STATE_STORES[s["type"]] for s in stores}
    for folder in inv.roots():
        conf = inv.settings.get(folder, {}).get("backend") or {}
        if folder.endswith("/bootstrap") or conf.get("type") not in kinds:
            continue
        key = kinds[conf["type"]][2]
        value = conf.get(key)
        project = next((v["default"] for v in inv.variables if v["folder"] == folder and v["name"] == "project"), None)
        if value is None or value == explicit or (conf["type"] == "gcs" and project and value == f"{project}-tfstate"):
            continue
        problems.append(f"{folder}: backend {conf['type']} names the fixed {key} {value!r}, which neither carries "
                        "the account or project nor is the name the task set: give it at init from the "
                        "bootstrap's output")
    return problems


RULES["state_name"] = ("the state store's name is unique across accounts (derived from the account, project or "
                       "subscription, or set by the task)", state_name)

RULES["private_egress"] = ("private nodes have a way out to public registries in the same Terraform (Cloud NAT, "
                           "a NAT gateway, AKS's outbound load balancer)", egress.private_egress)
RULES["webhook_firewall"] = ("on a private GKE cluster the control plane reaches every admission webhook the "
                             "platform charts install", egress.webhook_firewall)
RULES["node_autoscaling"] = ("a node pool whose max exceeds its min has something that scales it (EKS: the "
                             "cluster-autoscaler with discovery tags and a tag-scoped IRSA role; GKE and AKS: "
                             "their autoscaling switched on)", autoscaling.node_autoscaling)

# where a rule's behaviour is documented (the record's figures `source`)
SOURCES = {"node_autoscaling": autoscaling.SOURCE}
