"""The cluster Terraform creates can host the manifests: every add-on k8s/ depends on is
installed per cloud (or listed in k8s/README.md), with the names the manifests use; each broken
on purpose fails iac.rule.prerequisites."""
from __future__ import annotations

import dataclasses

import pytest

from kit.families import render_all
from kit.families.iac import prerequisites
from kit.families.iac.rules import RULES
from kit.families.iac.terraform import inventory
from kit.spec import load_spec
from tests.unit.test_iac import on_cloud

PLATFORM = "terraform/modules/platform/main.tf"
ADDONS = "terraform/modules/platform/addons.tf"
CHART = "terraform/modules/platform/charts/platform-config/templates/"
README = "k8s/README.md"


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    from tests.conftest import copy_example
    return load_spec(copy_example(tmp_path_factory.mktemp("platform") / "shop-api"))


@pytest.fixture(scope="module")
def rendered(spec):
    return {cloud: render_all(on_cloud(spec, cloud)) for cloud in ("aws", "gcp", "azure")}


def drop_readme_line(files, needle):
    lines = files[README].splitlines(keepends=True)
    assert any(needle in line for line in lines), needle
    return {**files, README: "".join(line for line in lines if needle not in line)}


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_every_cloud_installs_what_the_manifests_assume(rendered, cloud):
    problems, figures = prerequisites.check(rendered[cloud], cloud)
    assert problems == []
    assert {"networkpolicy", "ingress", "cert-manager", "external-secrets"} <= set(figures["terraform"])
    assert ("metrics-server" in figures["terraform"]) == (cloud != "azure")      # AKS: the README's line
    assert figures["readme"] == (["metrics-server", "prometheus-operator"] if cloud == "azure"
                                 else ["prometheus-operator"])


# (cloud, file, old, new, the README line dropped as well, the reason)
BROKEN = [
    ("aws", PLATFORM, '      configuration_values = jsonencode({ enableNetworkPolicy = "true" })\n', "",
     "A CNI that enforces NetworkPolicy", "needs a CNI enforcing NetworkPolicy"),
    ("gcp", PLATFORM, '  datapath_provider = "ADVANCED_DATAPATH"\n', "",
     "A CNI that enforces NetworkPolicy", "needs a CNI enforcing NetworkPolicy"),
    ("azure", PLATFORM, '  network_policy                  = "azure"\n', "",
     "A CNI that enforces NetworkPolicy", "needs a CNI enforcing NetworkPolicy"),
    ("aws", PLATFORM, "    metrics-server = {\n      most_recent = true\n    }\n", "",
     "metrics-server", "needs metrics-server"),
    ("gcp", PLATFORM, "  horizontal_pod_autoscaling = true\n", "", "metrics-server", "needs metrics-server"),
    ("aws", ADDONS, 'resource "helm_release" "external_secrets"', 'resource "null_resource" "external_secrets"',
     "External Secrets Operator", "needs the External Secrets Operator"),
    ("aws", ADDONS, 'resource "helm_release" "ingress_nginx"', 'resource "null_resource" "ingress_nginx"',
     "ingress controller", "needs an ingress controller"),
    ("aws", ADDONS, 'resource "helm_release" "cert_manager"', 'resource "null_resource" "cert_manager"',
     "cert-manager", "needs cert-manager"),
]


@pytest.mark.parametrize("cloud,path,old,new,line,reason", BROKEN, ids=[f"{b[0]}-{i}" for i, b in enumerate(BROKEN)])
def test_an_undeclared_add_on_fails(rendered, cloud, path, old, new, line, reason):
    files = rendered[cloud]
    assert old in files[path]
    broken = {**files, path: files[path].replace(old, new, 1)}
    problems, figures = prerequisites.check(broken, cloud)
    assert problems == [] and figures["readme"], "the README still lists it: declared, so it passes"
    problems, _ = prerequisites.check(drop_readme_line(broken, line), cloud)
    assert any(reason in p for p in problems), problems


# Terraform installs it, but not what the manifests name: fails whatever the README says
CONTRADICTIONS = [
    ("aws", ADDONS, 'value = "nginx"', 'value = "nginx-internal"', "serves IngressClass 'nginx-internal'"),
    ("gcp", ADDONS, 'namespace        = "ingress-nginx"', 'namespace        = "edge"', "which no NetworkPolicy admits"),
    ("azure", CHART + "cluster-issuer.yaml", "  name: letsencrypt-prod\n", "  name: letsencrypt-staging\n",
     "no ClusterIssuer 'letsencrypt-prod'"),
    ("aws", CHART + "cluster-secret-store.yaml", "  name: platform-secrets\n", "  name: other\n",
     "no ClusterSecretStore 'platform-secrets'"),
    ("aws", PLATFORM, '["external-secrets:external-secrets"]', '["kube-system:external-secrets"]', "no cloud identity"),
    ("gcp", PLATFORM, "[external-secrets/external-secrets]", "[default/external-secrets]", "no cloud identity"),
    ("azure", PLATFORM, '"system:serviceaccount:external-secrets:external-secrets"',
     '"system:serviceaccount:default:eso"', "no cloud identity"),
]


@pytest.mark.parametrize("cloud,path,old,new,reason", CONTRADICTIONS, ids=[f"{c[0]}-{i}" for i, c in enumerate(CONTRADICTIONS)])
def test_what_terraform_installs_must_match_the_manifests(rendered, cloud, path, old, new, reason):
    files = rendered[cloud]
    assert old in files[path]
    problems, _ = prerequisites.check({**files, path: files[path].replace(old, new, 1)}, cloud)
    assert any(reason in p for p in problems), problems


def test_helm_charts_are_pinned(rendered):
    files = rendered["aws"]
    assert RULES["pinned"][1](inventory(files)) == []
    broken = {**files, ADDONS: files[ADDONS].replace('version          = "4.12.1"', 'version          = "~4.12"')}
    assert any("helm_release ingress_nginx" in p for p in RULES["pinned"][1](inventory(broken)))


def test_the_names_follow_the_kubernetes_section(spec):
    k8s = dataclasses.replace(spec.option("kubernetes"), ingress_class="public", controller_namespace="edge",
                              cluster_issuer="acme", secret_store="vault")
    files = render_all(dataclasses.replace(spec, options={**spec.options, "kubernetes": k8s}))
    assert 'value = "public"' in files[ADDONS] and 'namespace        = "edge"' in files[ADDONS]
    assert "  name: acme\n" in files[CHART + "cluster-issuer.yaml"]
    assert "  name: vault\n" in files[CHART + "cluster-secret-store.yaml"]


ACCESS = "terraform/modules/platform/charts/platform-config/templates/deploy-access.yaml"
SCOPE = [
    ("aws", PLATFORM, "      kubernetes_groups = [local.deploy_group]\n",
     '      policy_associations = {\n        admin = {\n          policy_arn   = "arn:aws:eks::aws:cluster-access-policy/'
     'AmazonEKSClusterAdminPolicy"\n          access_scope = { type = "cluster" }\n        }\n      }\n',
     "AmazonEKSClusterAdminPolicy with scope cluster"),
    ("gcp", PLATFORM, '"roles/container.clusterViewer"', '"roles/container.developer"', "roles/container.developer"),
    ("azure", PLATFORM, '"Azure Kubernetes Service Cluster User Role"', '"Azure Kubernetes Service RBAC Cluster Admin"',
     "on the whole cluster"),
    ("aws", ACCESS, "kind: RoleBinding\nmetadata:\n  name: deploy-admin", "kind: ClusterRoleBinding\nmetadata:\n  name: deploy-admin",
     "ClusterRoleBinding deploy-admin gives the deploy identity 'admin'"),
    ("gcp", ACCESS, "  name: {{ $ns }}-deploy-namespace\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n"
     "  name: {{ $ns }}-deploy-namespace", "  name: {{ $ns }}-deploy-namespace\nroleRef:\n  apiGroup: "
     "rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: cluster-admin", "'cluster-admin' in every namespace"),
]


@pytest.mark.parametrize("cloud,path,old,new,reason", SCOPE, ids=[f"scope-{s[0]}-{i}" for i, s in enumerate(SCOPE)])
def test_a_cluster_admin_deploy_identity_fails(rendered, cloud, path, old, new, reason):
    """The old EKS access entry (AmazonEKSClusterAdminPolicy, cluster scope) and its equivalents."""
    from kit.families.iac import access
    files = rendered[cloud]
    assert access.check(files) == []
    assert old in files[path]
    problems = access.check({**files, path: files[path].replace(old, new, 1)})
    assert any(reason in p for p in problems), problems


def test_the_deploy_identity_is_bound_in_its_namespace_only(rendered):
    from kit.families.iac import access
    files = rendered["aws"]
    text = files[ACCESS]
    assert text.count("kind: RoleBinding") == 2 and text.count("kind: ClusterRoleBinding") == 1
    broken = {**files, ACCESS: text.replace("kind: RoleBinding", "kind: Ignored")}
    assert any("no RoleBinding" in p for p in access.check(broken))
    for env in ("staging", "prod"):
        assert f'app_namespace      = "shop-api-{env}"' in files[f"terraform/environments/{env}/main.tf"]


EGRESS = [
    ("gcp", "private_egress", 'resource "google_compute_router_nat" "nat" {', 'resource "google_compute_router" "nat2" {',
     "no google_compute_router_nat"),
    ("gcp", "private_egress", 'source_ip_ranges_to_nat = ["ALL_IP_RANGES"]',
     'source_ip_ranges_to_nat = ["PRIMARY_IP_RANGE"]', "does not translate all ranges"),
    ("aws", "private_egress", "enable_nat_gateway   = true", "enable_nat_gateway   = false", "no NAT gateway"),
    ("azure", "private_egress", "  network_plugin = \"azure\"\n",
     "  network_plugin = \"azure\"\n  net_profile_outbound_type = \"userDefinedRouting\"\n", "no route out"),
    ("gcp", "webhook_firewall", "  add_master_webhook_firewall_rules = true\n", "",
     "add_master_webhook_firewall_rules is not true"),
    ("gcp", "webhook_firewall", "  add_master_webhook_firewall_rules = true\n",
     '  add_master_webhook_firewall_rules = true\n  firewall_inbound_ports = ["9443"]\n',
     "8443 is not in firewall_inbound_ports"),
]


@pytest.mark.parametrize("cloud,rule,old,new,reason", EGRESS, ids=[f"{e[1]}-{e[0]}-{i}" for i, e in enumerate(EGRESS)])
def test_private_nodes_egress_and_webhook_firewall(rendered, cloud, rule, old, new, reason):
    """Private GKE nodes without Cloud NAT pull no public image (every helm_release times out), and
    ingress-nginx's webhook on 8443 is unreachable from a private GKE control plane unless the
    module opens it: each planted fault fails its rule, the generated Terraform passes."""
    files = rendered[cloud]
    assert old in files[PLATFORM]
    assert RULES[rule][1](inventory(files)) == []
    problems = RULES[rule][1](inventory({**files, PLATFORM: files[PLATFORM].replace(old, new, 1)}))
    assert any(reason in p for p in problems), problems


def test_a_webhook_on_an_open_port_needs_no_firewall(rendered):
    """cert-manager (10250) and ESO (10250) are reachable through GKE's own rule; moving
    ingress-nginx's webhook to 10250 would be too, and disabling it needs nothing."""
    files = rendered["gcp"]
    plain = files[PLATFORM].replace("  add_master_webhook_firewall_rules = true\n", "")
    addons = files[ADDONS].replace('  set {\n    name  = "controller.ingressClass"\n',
                                   '  set {\n    name  = "controller.admissionWebhooks.enabled"\n    value = "false"\n  }\n'
                                   '  set {\n    name  = "controller.ingressClass"\n', 1)
    assert addons != files[ADDONS]
    assert RULES["webhook_firewall"][1](inventory({**files, PLATFORM: plain, ADDONS: addons})) == []


def test_a_service_without_metrics_still_declares_the_operator_crds():
    """No metrics path means no ServiceMonitor, but the PrometheusRule and Fluent Bit objects in
    k8s/monitoring/base still need the prometheus-operator CRDs: the README must say so (the
    django-notes fixture failed iac.rule.prerequisites before)."""
    from tests.conftest import ROOT
    spec = load_spec(ROOT / "tests" / "fixtures" / "messy" / "django-notes")
    assert not spec.metrics_path
    files = render_all(spec)
    assert "k8s/monitoring/base/prometheusrule.yaml" in files
    problems, _ = prerequisites.check(files, spec.option("cloud").provider)
    assert problems == []
    assert "prometheus-operator CRDs" in files["k8s/README.md"]
