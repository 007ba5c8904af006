"""Scaling and capacity: what work.md's Integration Notes say (prerequisites, risks, rollback)."""
from __future__ import annotations

from kit.core.family import Integration
from kit.model import Spec


def integration(spec: Spec) -> Integration:
    mechanism = spec.option("scaling").mechanism
    scaler = {"hpa-cpu": "metrics-server for the HorizontalPodAutoscaler",
              "hpa-rps": "prometheus-adapter serving the custom metrics API, with the rule of "
                         "`k8s/scaling/prometheus-adapter-rules.yaml` added to its config (the HPA scales on it), and "
                         "the Prometheus that scrapes the app's request counter",
              "keda": "KEDA 2.x (its ScaledObject CRD, operator and webhook) for `k8s/overlays/<env>/scaledobject.yaml`, "
                      "which each overlay applies with its Deployment, reaching the Prometheus that scrapes the app's "
                      "request counter; when switching from an HPA mechanism, delete the old HPA first (`kubectl "
                      "apply -k` does not prune it, and KEDA's webhook refuses a Deployment another HPA scales)"}[mechanism]
    prereq = (f"{scaler}, and the Vertical Pod Autoscaler's recommender "
              "for `k8s/scaling/vpa.yaml` (recommendation mode only: it never evicts pods).",)
    risks = ("The per-pod capacity was measured on a shared 2-core sandbox machine under Docker limits: rerun "
             "`loadtest/locustfile.py` against staging before trusting the replica bounds.",)
    rollback = ("Scaling objects carry no state: re-apply the previous revision of the overlay; the HPA keeps the "
                "current replica count until its stabilisation window passes.",)
    return Integration(prereq, risks, rollback)
