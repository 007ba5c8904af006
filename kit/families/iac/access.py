"""The CI deploy identity is never cluster admin: it acts in its app namespace only.

A deploy identity with cluster-wide rights turns a compromised pipeline (a poisoned action, a
leaked OIDC trust) into a compromised cluster. Kubernetes' RBAC good practices: "Assign
permissions at the namespace level where possible. Use RoleBindings as opposed to
ClusterRoleBindings to give users rights only within a specific namespace", and "Administrators
should not use cluster-admin accounts except where specifically needed"
(https://kubernetes.io/docs/concepts/security/rbac-good-practices/). On EKS an access policy
associated with `access_scope = { type = "cluster" }` applies to every namespace
(https://docs.aws.amazon.com/eks/latest/userguide/access-policies.html); on GKE and AKS the
project or subscription roles `roles/container.admin|developer` and the AKS RBAC
Admin/Writer/Cluster Admin roles at cluster scope do the same."""
from __future__ import annotations

import re

import yaml

from kit.families.iac.terraform import Inventory, inventory, unquote

# what names the deploy identity in the Terraform kit writes
DEPLOY_REFS = ("aws_iam_role.deploy", "google_service_account.deploy", "azurerm_user_assigned_identity.deploy")
EKS_BROAD = re.compile(r"AmazonEKS(ClusterAdmin|Admin|Edit)Policy")
GCP_BROAD = {"roles/container.admin", "roles/container.clusterAdmin", "roles/container.developer", "roles/owner",
             "roles/editor"}
AKS_BROAD = re.compile(r"Azure Kubernetes Service (RBAC Cluster Admin|RBAC Admin|RBAC Writer|Cluster Admin Role)"
                       r"|^(Owner|Contributor)$")
BROAD_CLUSTER_ROLES = {"cluster-admin", "admin", "edit"}
CHARTS_DIR = "terraform/modules/platform/charts/"


def _mentions_deploy(value) -> bool:
    return any(ref in str(value) for ref in DEPLOY_REFS)


def _eks(inv: Inventory) -> list[str]:
    problems = []
    for b in inv.blocks:
        entries = b["body"].get("access_entries") if b["kind"] == "module" else None
        for key, entry in (entries or {}).items() if isinstance(entries, dict) else []:
            if not _mentions_deploy(entry.get("principal_arn")):
                continue
            for pol in (entry.get("policy_associations") or {}).values():
                scope = unquote((pol.get("access_scope") or {}).get("type", ""))
                if EKS_BROAD.search(str(pol.get("policy_arn"))) and scope != "namespace":
                    problems.append(f"{b['folder']}: access entry {key} associates {unquote(pol.get('policy_arn'))} "
                                    f"with scope {scope or '(none)'}: the deploy role administers every namespace")
        if b["type"] == "aws_eks_access_policy_association" and _mentions_deploy(b["body"].get("principal_arn")):
            scope = unquote(((b["body"].get("access_scope") or [{}])[0]).get("type", ""))
            if EKS_BROAD.search(str(b["body"].get("policy_arn"))) and scope != "namespace":
                problems.append(f"{b['folder']}: {b['type']}.{b['name']} gives the deploy role a cluster-scoped policy")
    return problems


def _cloud_roles(inv: Inventory) -> list[str]:
    problems = []
    for b in inv.blocks:
        body = b["body"]
        if b["type"] in ("google_project_iam_member", "google_project_iam_binding") and _mentions_deploy(
                body.get("member", body.get("members"))):
            role = unquote(body.get("role", ""))
            if role in GCP_BROAD:
                problems.append(f"{b['folder']}: {b['type']}.{b['name']} grants the deploy service account {role} "
                                "on the whole project (every cluster, every namespace)")
        if b["type"] == "azurerm_role_assignment" and _mentions_deploy(body.get("principal_id")):
            role = unquote(body.get("role_definition_name", ""))
            scope = unquote(body.get("scope", ""))
            if AKS_BROAD.search(role) and "/namespaces/" not in scope:
                problems.append(f"{b['folder']}: {b['type']}.{b['name']} grants the deploy identity {role!r} "
                                "on the whole cluster")
    return problems


def _rbac(files: dict[str, str]) -> list[str]:
    """The deploy identity's Kubernetes bindings in the platform's local charts: no ClusterRoleBinding
    to a broad ClusterRole, and at least one RoleBinding in the app namespace."""
    problems, namespaced = [], False
    for path, text in sorted(files.items()):
        if not (path.startswith(CHARTS_DIR) and path.endswith("deploy-access.yaml")):
            continue
        plain = re.sub(r"(?m)^\s*\{\{-?[^}]*\}\}\s*$\n?", "", text)     # Helm actions on their own lines
        plain = re.sub(r"\{\{[^}]*\}\}", "x", plain)                     # values: placeholders, so it parses
        for doc in yaml.safe_load_all(plain):
            if not isinstance(doc, dict):
                continue
            role = (doc.get("roleRef") or {}).get("name", "")
            if doc.get("kind") == "ClusterRoleBinding" and role in BROAD_CLUSTER_ROLES:
                problems.append(f"{path}: ClusterRoleBinding {doc['metadata'].get('name')} gives the deploy identity "
                                f"{role!r} in every namespace")
            namespaced |= doc.get("kind") == "RoleBinding"
        if not namespaced:
            problems.append(f"{path}: the deploy identity has no RoleBinding in its namespace: the deploy cannot apply")
    return problems


def check(files: dict[str, str]) -> list[str]:
    inv = inventory(files)
    return _eks(inv) + _cloud_roles(inv) + _rbac(files)
