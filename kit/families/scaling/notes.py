"""Scaling and capacity: what work.md's Integration Notes say (prerequisites, risks, rollback)."""
from __future__ import annotations

from kit.core.family import Integration
from kit.model import Spec


def integration(spec: Spec) -> Integration:
    prereq = ("metrics-server for the HorizontalPodAutoscaler, and the Vertical Pod Autoscaler's recommender "
              "for `k8s/scaling/vpa.yaml` (recommendation mode only: it never evicts pods).",)
    risks = ("The per-pod capacity was measured on a shared 2-core sandbox machine under Docker limits: rerun "
             "`loadtest/locustfile.py` against staging before trusting the replica bounds.",)
    rollback = ("Scaling objects carry no state: re-apply the previous revision of the overlay; the HPA keeps the "
                "current replica count until its stabilisation window passes.",)
    return Integration(prereq, risks, rollback)
