"""Security: what work.md's Integration Notes say (prerequisites, risks, rollback)."""
from __future__ import annotations

from kit.core.family import Integration
from kit.model import Spec


def integration(spec: Spec) -> Integration:
    engine = spec.option("security").engine
    prereq = ((f"{'Gatekeeper' if engine == 'gatekeeper' else 'Kyverno'} in the cluster before applying "
               f"`k8s/policies/{engine}/`; start the constraints in `dryrun`/`Audit` mode and switch to deny once "
               "the audit is clean.") ,
              "Falco in the cluster for `security/falco_rules.yaml` (kit checked the rules' structure only).")
    risks = ("Kyverno's policies were checked for structure only (no Kyverno CLI here); Gatekeeper's Rego was "
             "evaluated with regopy, not by a Gatekeeper webhook.",
             "The vulnerability scan did not run here (no database reachable): the CI job runs it.")
    rollback = ("A policy that blocks deploys: set its enforcement to dryrun (Gatekeeper) or Audit (Kyverno), "
                "fix, then enforce again; deleting a ConstraintTemplate deletes its constraints.",)
    return Integration(prereq, risks, rollback)
