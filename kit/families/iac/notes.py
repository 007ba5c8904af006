"""Infrastructure as code: what work.md's Integration Notes say (prerequisites, risks, rollback)."""
from __future__ import annotations

from kit.core.family import Integration
from kit.model import Spec


def integration(spec: Spec) -> Integration:
    cloud = spec.option("cloud")
    prereq = (f"A {cloud.provider} account or project with rights to create the state bucket, network, registry "
              "and Kubernetes cluster; apply `terraform/bootstrap` once, then each of "
              + ", ".join(f"`terraform/environments/{e}`" for e in cloud.environments)
              + "; set `api_allowed_cidrs` in each `terraform.tfvars` first.",)
    risks = ("`terraform validate` did not run here (providers and registry modules cannot be downloaded "
             "offline): run `terraform init && terraform validate` before the first plan.",
             "Review every `terraform plan` before apply: the cluster and its node pool are replaced by some "
             "changes (version, instance type).")
    rollback = ("Revert the Terraform change in git and apply again; the state bucket is versioned, so an "
                "earlier state can be restored if an apply corrupted it.",)
    return Integration(prereq, risks, rollback)
