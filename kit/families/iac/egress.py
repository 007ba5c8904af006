"""What a private cluster needs of its network before anything runs on it: a way out for the
nodes (image pulls, ACME, the cloud APIs) and, on GKE, a way in for the control plane to the
admission webhooks the platform charts install. Each rule reads the parsed Terraform (Inventory)
and returns its problems; rules.py registers them as iac.rule.private_egress and
iac.rule.webhook_firewall."""
from __future__ import annotations

from kit.families.iac.terraform import Inventory, unquote

# The port each platform chart's admission webhook listens on in the pod (the chart default; a
# `set` of the key overrides it). ingress-nginx: controller.admissionWebhooks.port 8443
# (kubernetes/ingress-nginx charts/ingress-nginx/values.yaml); cert-manager: webhook.securePort
# 10250, chosen because "In GKE private clusters, by default kubernetes apiservers are allowed to
# talk to the cluster nodes only on 443 and 10250" (cert-manager deploy/charts/cert-manager
# values.yaml); external-secrets: webhook.port 10250 (external-secrets deploy/charts values.yaml).
WEBHOOKS = {"ingress-nginx": ("controller.admissionWebhooks", 8443),
            "cert-manager": ("webhook", 10250),
            "external-secrets": ("webhook", 10250)}
GKE_OPEN_PORTS = {443, 10250}
# terraform-google-modules/kubernetes-engine modules/private-cluster/variables.tf: firewall_inbound_ports
GKE_FIREWALL_DEFAULT_PORTS = ["8443", "9443", "15017"]
AKS_EGRESS = {"loadBalancer", "managedNATGateway", "userAssignedNATGateway"}


def _modules(inv: Inventory, needle: str) -> list[dict]:
    return [b for b in inv.blocks if b["kind"] == "module" and needle in b["source"]]


def _resources(inv: Inventory, folder: str, rtype: str) -> list[dict]:
    return [b for b in inv.blocks if b["kind"] == "resource" and b["type"] == rtype and b["folder"] == folder]


def _gke_private(inv: Inventory) -> list[dict]:
    return [m for m in _modules(inv, "terraform-google-modules/kubernetes-engine")
            if m["body"].get("enable_private_nodes") is True]


def private_egress(inv: Inventory) -> list[str]:
    """Nodes without public addresses reach the internet only through a NAT in the same Terraform.

    GKE: private clusters "use nodes that don't have external IP addresses"
    (https://cloud.google.com/kubernetes-engine/docs/concepts/private-cluster-concept); Cloud NAT
    gives resources without external addresses outbound connections to the internet
    (https://cloud.google.com/nat/docs/overview). Without a google_compute_router_nat every pull from registry.k8s.io, quay.io or ghcr.io fails
    and the helm_release waits time out. EKS on private subnets: the vpc module's
    `enable_nat_gateway` (terraform-aws-modules/vpc; "If you want your instances in a private subnet
    to connect to the internet, ... route traffic to a NAT gateway",
    https://docs.aws.amazon.com/vpc/latest/userguide/vpc-nat-gateway.html). AKS: outbound type
    `loadBalancer` (the default of Azure/aks/azurerm `net_profile_outbound_type`) or a NAT gateway
    gives egress; `userDefinedRouting` needs a route table this Terraform makes
    (https://learn.microsoft.com/azure/aks/egress-outboundtype)."""
    problems = []
    for gke in _gke_private(inv):
        nats = _resources(inv, gke["folder"], "google_compute_router_nat")
        if not nats:
            problems.append(f"{gke['folder']}: module {gke['name']} has private nodes (enable_private_nodes = true) "
                            "and no google_compute_router_nat: the nodes cannot pull public images")
        for nat in nats:
            ranges = unquote(nat["body"].get("source_subnetwork_ip_ranges_to_nat", ""))
            subnets = nat["body"].get("subnetwork") or []
            if ranges == "LIST_OF_SUBNETWORKS" and not any(
                    "ALL_IP_RANGES" in str(s.get("source_ip_ranges_to_nat")) for s in subnets):
                problems.append(f"{nat['folder']}: google_compute_router_nat.{nat['name']} does not translate all "
                                "ranges of the cluster subnet (pods leave from the secondary range)")
    for eks in _modules(inv, "terraform-aws-modules/eks"):
        subnets = str(eks["body"].get("subnet_ids", ""))
        if "private_subnets" not in subnets:
            continue
        vpcs = [m for m in _modules(inv, "terraform-aws-modules/vpc") if m["folder"] == eks["folder"]]
        if not (any(v["body"].get("enable_nat_gateway") is True for v in vpcs)
                or _resources(inv, eks["folder"], "aws_nat_gateway")):
            problems.append(f"{eks['folder']}: module {eks['name']} runs nodes in private subnets and no NAT gateway "
                            "exists (enable_nat_gateway or aws_nat_gateway): the nodes cannot pull public images")
    for aks in _modules(inv, "Azure/aks"):
        outbound = unquote(aks["body"].get("net_profile_outbound_type", "loadBalancer"))
        if outbound in AKS_EGRESS:
            continue
        if outbound == "userDefinedRouting" and _resources(inv, aks["folder"], "azurerm_route_table"):
            continue
        problems.append(f"{aks['folder']}: module {aks['name']} has outbound type {outbound!r} and no route out "
                        "in this Terraform: the nodes cannot pull public images")
    return problems


def _webhook_port(release: dict, chart: str) -> tuple[bool, int]:
    """(webhook enabled, its pod port) from the chart default and the release's `set` blocks."""
    prefix, port = WEBHOOKS[chart]
    enabled = True
    for s in release["body"].get("set") or []:
        name, value = unquote(s.get("name", "")), str(unquote(s.get("value", "")))
        if name == f"{prefix}.enabled":
            enabled = value.lower() != "false"
        if name in (f"{prefix}.port", f"{prefix}.securePort"):
            port = int(value)
    return enabled, port


def webhook_firewall(inv: Inventory) -> list[str]:
    """On a private GKE cluster the control plane reaches each admission webhook the Terraform installs.

    GKE creates a firewall rule admitting the control plane to the nodes on TCP 443 and 10250 only;
    a webhook on any other port needs a rule of its own, else the API server's calls time out and
    every object the webhook validates is rejected (cert-manager's chart values: "In GKE private
    clusters, by default kubernetes apiservers are allowed to talk to the cluster nodes only on 443
    and 10250"; https://cloud.google.com/kubernetes-engine/docs/how-to/private-clusters, "Adding
    firewall rules for specific use cases").
    The private-cluster module opens `firewall_inbound_ports` (default 8443, 9443, 15017) only with
    `add_master_webhook_firewall_rules = true` (or `add_cluster_firewall_rules`), both false by
    default (terraform-google-modules/terraform-google-kubernetes-engine
    modules/private-cluster/variables.tf). ingress-nginx's validating webhook listens on 8443: without
    the rule every Ingress apply fails with "failed calling webhook validate.nginx.ingress.kubernetes.io"."""
    problems = []
    for gke in _gke_private(inv):
        body = gke["body"]
        opened = body.get("add_master_webhook_firewall_rules") is True or body.get("add_cluster_firewall_rules") is True
        ports = {str(unquote(p)) for p in (body.get("firewall_inbound_ports") or GKE_FIREWALL_DEFAULT_PORTS)}
        for release in _resources(inv, gke["folder"], "helm_release"):
            chart = unquote(release["body"].get("chart", ""))
            if chart not in WEBHOOKS:
                continue
            enabled, port = _webhook_port(release, chart)
            if not enabled or port in GKE_OPEN_PORTS or (opened and str(port) in ports):
                continue
            why = ("add_master_webhook_firewall_rules is not true" if not opened
                   else f"{port} is not in firewall_inbound_ports")
            problems.append(f"{gke['folder']}: helm_release.{release['name']} ({chart}) serves its admission webhook "
                            f"on {port}, which the private GKE control plane cannot reach ({why})")
    return problems
