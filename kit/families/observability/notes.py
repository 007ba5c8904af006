"""Observability: what work.md's Integration Notes say (prerequisites, risks, rollback)."""
from __future__ import annotations

from kit.core.family import Integration
from kit.model import Spec


def integration(spec: Spec) -> Integration:
    prereq = ("kube-prometheus-stack (the prometheus-operator CRDs) in the cluster before "
              "`kubectl apply -k k8s/monitoring/overlays/<env>`; Alertmanager receivers for the pager and the "
              "ticket queue (the generated ones are placeholders).",)
    risks = ("Until the receivers are real, alerts fire but reach nobody.",)
    if not spec.option("slo").runbook_source:
        prereq += ("Publish kit's site and set `slo.site_url` to its address: until then each alert's "
                   "runbook_url is the site-relative `runbooks/<Alert>.html`, which a notification cannot open.",)
    prereq += ("Fill in the runbooks' `PLACEHOLDER` escalation contacts (owner, rotations, incident channel).",)
    if not spec.metrics_path:
        risks += ("The app serves no metrics: no SLO alerts are generated for it.",)
    rollback = ("Monitoring objects carry no state: re-apply the previous revision of `k8s/monitoring/`.",)
    return Integration(prereq, risks, rollback)
