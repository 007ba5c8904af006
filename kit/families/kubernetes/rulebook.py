"""Rules other systems enforce on the built manifests: what the kubelet, the eviction API, the
HPA controller, cert-manager, the CNI and quota admission will do with them, which no schema and
no policy scanner checks. Each rule is a function (Spec, one overlay's objects) -> problems, with
the system's documentation or source cited in its docstring; checks.py reports each as its own
evidence record, `kubernetes.rule.<id>`, and tests/unit/test_k8s.py breaks each on purpose."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kit.families.kubernetes.cluster_rules import hpa_rule, keda_rule, liveness_rule, pdb_rule, pdb_selector_rule
from kit.families.kubernetes.network_rules import acme_solver_rule, network_rule
from kit.families.kubernetes.quota_rules import quota_rule
from kit.families.kubernetes.secret_names import secret_names_rule
from kit.model import Spec


@dataclass(frozen=True)
class Rule:
    id: str                                            # the evidence id is kubernetes.rule.<id>
    title: str
    source: str                                        # the other system's documentation
    check: Callable[[Spec, list[dict]], list[str]]


RULES = (
    Rule("liveness", "probes that restart the container (liveness, startup) do not check the dependencies",
         "https://kubernetes.io/docs/tasks/configure-pod-container/configure-liveness-readiness-startup-probes/",
         liveness_rule),
    Rule("pdb", "no PodDisruptionBudget forbids every eviction at the lowest replica count of what it selects",
         "https://kubernetes.io/docs/tasks/run-application/configure-pdb/", pdb_rule),
    Rule("pdb-selector", "each PodDisruptionBudget selects the pods of exactly one controller (the disruption "
         "controller sums the scale of every controller it matches)",
         "https://kubernetes.io/docs/tasks/run-application/configure-pdb/#identify-an-application-to-protect",
         pdb_selector_rule),
    Rule("hpa", "a workload an HPA scales sets no spec.replicas, and requests CPU in every container when "
         "the HPA scales on CPU",
         "https://kubernetes.io/docs/concepts/workloads/autoscaling/horizontal-pod-autoscale/"
         "#migrating-deployments-and-statefulsets-to-horizontal-autoscaling", hpa_rule),
    Rule("keda", "with KEDA, each overlay applies exactly one ScaledObject for the app's Deployment in its "
         "namespace, and no HorizontalPodAutoscaler", "https://keda.sh/docs/latest/concepts/admission-webhooks/",
         keda_rule),
    Rule("acme-solver", "cert-manager's HTTP-01 solver pod is reachable from the ingress controller under the "
         "namespace's NetworkPolicies", "https://cert-manager.io/docs/configuration/acme/http01/", acme_solver_rule),
    Rule("network", "the namespace's NetworkPolicies allow every connection the manifests imply (DNS, the "
         "ingress controller, the dependencies, the OpenTelemetry collector, the metrics scraper)",
         "https://kubernetes.io/docs/concepts/services-networking/network-policies/", network_rule),
    Rule("quota", "each ResourceQuota admits the worst case (HPA maximum, rollout surge, StatefulSets, CronJob runs, "
         "cert-manager's solver pod), and every container states what the quota counts",
         "https://kubernetes.io/docs/concepts/policy/resource-quotas/", quota_rule),
    Rule("secret-names", "every ExternalSecret remoteRef key is a valid secret name in the declared cloud's store "
         "(Secrets Manager, Secret Manager, Key Vault)",
         "https://cloud.google.com/secret-manager/docs/reference/rest/v1/projects.secrets/create", secret_names_rule),
)
