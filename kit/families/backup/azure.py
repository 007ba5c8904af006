"""The Azure backup storage's rules, read from backup/terraform/main.tf with python-hcl2 (kit cannot
apply it here): what the issue asks of the account, the container, its WORM policy, the lifecycle, the
DR copy and the jobs' identity. Sources: hashicorp/terraform-provider-azurerm 3.x
website/docs/r/storage_account.html.markdown (account_kind, enable_https_traffic_only, min_tls_version,
allow_nested_items_to_be_public, blob_properties, sas_policy), storage_container_immutability_policy,
storage_management_policy, storage_object_replication and role_assignment; Azure "Container-level WORM
policies" (https://learn.microsoft.com/azure/storage/blobs/immutable-container-level-worm-policies);
the built-in role "Storage Blob Data Contributor" (read, write and delete blobs; assignable at a
container's scope)."""
from __future__ import annotations

import hcl2

from kit.evidence import Evidence
from kit.families.backup.options import Backup

TF = "backup/terraform/main.tf"
SOURCE = ("hashicorp/terraform-provider-azurerm 3.x website/docs/r/storage_account.html.markdown, "
          "storage_container_immutability_policy, storage_management_policy, storage_object_replication, "
          "role_assignment; learn.microsoft.com/azure/storage/blobs/immutable-container-level-worm-policies")
WRITER_ROLE = "Storage Blob Data Contributor"


def _unquote(v: object) -> object:
    return v[1:-1] if isinstance(v, str) and len(v) >= 2 and v[0] == v[-1] == '"' else v


def _first(body: dict, key: str) -> dict:
    blocks = body.get(key) or []
    return blocks[0] if blocks and isinstance(blocks[0], dict) else {}


def resources(text: str) -> dict[str, dict[str, dict]]:
    """type -> name -> body of every resource in the file."""
    out: dict[str, dict[str, dict]] = {}
    for entry in hcl2.loads(text).get("resource", []):
        for rtype, named in entry.items():
            for name, body in named.items():
                out.setdefault(str(_unquote(rtype)), {})[str(_unquote(name))] = body
    return out


def storage_problems(text: str, b: Backup, namespace: list[str], service: str, lock_days: int) -> list[str]:
    """What breaks the issue's Azure backup storage rules, as sentences (none: it holds)."""
    try:
        res = resources(text)
    except Exception as exc:       # python-hcl2 raises lark's errors
        return [f"{TF} does not parse: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"]
    problems: list[str] = []
    accounts = res.get("azurerm_storage_account", {})
    account = accounts.get("backup")
    if account is None:
        return ["no azurerm_storage_account.backup"]
    expect = {"account_kind": "StorageV2", "min_tls_version": "TLS1_2"}
    for key, value in expect.items():
        if _unquote(account.get(key)) != value:
            problems.append(f"storage account: {key} is not {value}")
    if account.get("enable_https_traffic_only", account.get("https_traffic_only_enabled")) is not True:
        problems.append("storage account: HTTPS-only is not on")
    if account.get("allow_nested_items_to_be_public") is not False:
        problems.append("storage account: allow_nested_items_to_be_public is not false (public blob access)")
    if account.get("infrastructure_encryption_enabled") is not True and not account.get("customer_managed_key"):
        problems.append("storage account: neither infrastructure encryption nor a customer-managed key")
    if account.get("shared_access_key_enabled") is not False and not _first(account, "sas_policy"):
        problems.append("storage account: shared keys are on and no sas_policy bounds a SAS's life")
    blob = _first(account, "blob_properties")
    if blob.get("versioning_enabled") is not True:
        problems.append("storage account: blob versioning is off")
    if not _first(blob, "delete_retention_policy").get("days"):
        problems.append("storage account: blob soft delete is off")
    container = res.get("azurerm_storage_container", {}).get("backup")
    if container is None:
        problems.append("no azurerm_storage_container.backup")
    elif _unquote(container.get("container_access_type", '"private"')) != "private":
        problems.append("container: container_access_type is not private")
    policies = [p for p in res.get("azurerm_storage_container_immutability_policy", {}).values()
                if "azurerm_storage_container.backup." in str(p.get("storage_container_resource_manager_id"))]
    if not policies:
        problems.append("container: no time-based immutability policy (WORM)")
    elif not any(isinstance(p.get("immutability_period_in_days"), int) and p["immutability_period_in_days"] >= lock_days
                 for p in policies):
        problems.append(f"container: the immutability period is shorter than {lock_days} days")
    rules = [r for p in res.get("azurerm_storage_management_policy", {}).values() for r in p.get("rule", [])]
    base = [_first(_first(r, "actions"), "base_object") for r in rules if r.get("enabled", True) is not False]
    deletes = [v for o in base for k, v in o.items() if k.startswith("delete_after_days")]
    if not deletes:
        problems.append("lifecycle: no rule deletes blobs after the retention")
    elif any(isinstance(d, int) and d < b.retention_days for d in deletes):
        problems.append(f"lifecycle: blobs are deleted before the retention ({b.retention_days} days) ends")
    if any(k.startswith("tier_to_archive") for o in base for k in o):
        problems.append("lifecycle: the Archive tier is offline (hours to rehydrate): a restore would miss the RTO")
    if b.dr_region:
        replicas = [a for a in accounts.values() if _unquote(a.get("location")) == b.dr_region]
        replicated = res.get("azurerm_storage_object_replication") or \
            str(_unquote(account.get("account_replication_type"))) in ("GRS", "GZRS", "RAGRS", "RAGZRS")
        if not replicated or (res.get("azurerm_storage_object_replication") and not replicas):
            problems.append(f"no copy in the DR region {b.dr_region} (object replication or geo-redundancy)")
    assignments = [a for a in res.get("azurerm_role_assignment", {}).values()
                   if "azurerm_user_assigned_identity.backup." in str(a.get("principal_id"))]
    if not assignments:
        problems.append("the backup identity has no role assignment")
    for a in assignments:
        role, scope = _unquote(a.get("role_definition_name")), str(a.get("scope"))
        if role != WRITER_ROLE:
            problems.append(f"the backup identity holds {role!r}, not {WRITER_ROLE!r} only")
        if "azurerm_storage_container.backup.resource_manager_id" not in scope:
            problems.append(f"the backup identity's role is scoped to {scope}, not the container")
    creds = [c for c in res.get("azurerm_federated_identity_credential", {}).values()
             if "azurerm_user_assigned_identity.backup." in str(c.get("parent_id"))]
    from kit.families.backup.wiring import trusted_namespaces
    trusted = trusted_namespaces(text, service)
    for ns in namespace:
        if ns not in trusted or not creds:
            problems.append(f"no federated credential for system:serviceaccount:{ns}:{service}-backup on the backup "
                            "identity")
    return problems


def storage_record(text: str, b: Backup, namespace: list[str], service: str, lock_days: int) -> Evidence:
    problems = storage_problems(text, b, namespace, service, lock_days)
    return Evidence("backup.azure_storage", TF, "the Azure backup storage: StorageV2, HTTPS and TLS 1.2 only, no "
                    "public blobs, encryption, versioning and soft delete, a private container under a WORM policy "
                    "as long as the lock, lifecycle deletion after the retention (no offline tier), the DR copy, "
                    f"and a workload identity with {WRITER_ROLE} on the container only",
                    "failed" if problems else "passed", tool="kit (python-hcl2; rules from azurerm's and Azure's docs)",
                    reason="; ".join(problems), proof="static", figures={"source": SOURCE},
                    log="\n".join(problems))
