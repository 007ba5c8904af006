"""Kubernetes: what work.md's Integration Notes say (prerequisites, risks, rollback)."""
from __future__ import annotations

from kit.core.family import Integration
from kit.model import Spec


def integration(spec: Spec) -> Integration:
    k = spec.option("kubernetes")
    stateful = [d.name for d in spec.dependencies if d.name not in dict(k.managed)]
    prereq = [
        f"An ingress controller for the IngressClass `{k.ingress_class}` in `{k.controller_namespace}`, cert-manager "
        f"with the ClusterIssuer `{k.cluster_issuer}`, metrics-server, and a CNI that enforces NetworkPolicy "
        "(see `k8s/README.md`).",
    ]
    if spec.secrets:
        prereq.append(f"The External Secrets Operator and the ClusterSecretStore `{k.secret_store}`; create "
                      + ", ".join(f"`{spec.name}/{s}`" for s in spec.secrets) + " in the cloud's secret store "
                      "before the first deploy.")
    risks = []
    if stateful:
        risks.append(", ".join(f"`{n}`" for n in stateful) + " run in the cluster as single-replica StatefulSets: "
                     "a node drain takes each down briefly. Use `kubernetes.managed` for production.")
    if any(e.min_replicas == 1 for e in k.environments):
        risks.append("Where an HPA floor is one replica, a node drain leaves the service without a ready pod "
                     "until the replacement is ready.")
    if k.strategy == "blue-green":
        risks.append("Blue-green: the HorizontalPodAutoscaler scales the blue Deployment only.")
    rollback = [f"`kubectl -n {k.namespace}-<env> rollout undo deployment/{spec.name}` returns to the previous "
                f"ReplicaSet at once; `kubectl -n {k.namespace}-<env> rollout status deployment/{spec.name}` "
                "confirms it. The pipeline's next deploy re-applies the overlay's image, so then redeploy the "
                "previous digest through the pipeline (below)."]
    return Integration(tuple(prereq), tuple(risks), tuple(rollback))
