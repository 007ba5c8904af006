"""Infrastructure-as-code family: Terraform for AWS, GCP or Azure; terraform fmt, parsing,
checkov, kit's rules, and terraform validate where providers can be had."""
from __future__ import annotations

from kit.core.checkov import checkov_tool
from kit.core.family import ChecklistItem, Criterion, Family, Option, Tool
from kit.families.iac import checks, options
from kit.families.iac.notes import integration
from kit.families.iac.render import render_iac, work_notes

FAMILY = Family(
    name="iac", title="Infrastructure as code", notebook="50_iac", template="iac/aws",
    render=render_iac, option=Option("cloud", options.SCHEMA, options.parse),
    static_checks=(checks.static_checks,),
    checklist=(
        ChecklistItem("Terraform is formatted, parses, passes checkov (skips with reasons) and kit's rules "
                      "(pinned, typed, locked remote state, no secrets)",
                      ("iac.fmt", "iac.parse", "iac.checkov", "iac.rule.*")),
        ChecklistItem("terraform validate passes on every root module and the shared module", ("iac.validate.*",)),
    ),
    criteria=(
        Criterion(r"terraform|infrastructure as code|\biac\b", ("iac.fmt", "iac.checkov", "iac.rule.*"), 30),
    ),
    tools=(
        Tool("terraform", checks.terraform_found,
             "install Terraform >= 1.10 on PATH (no reachable registry has it; iac.fmt fails without it)"),
        checkov_tool(),
    ),
    work_notes=work_notes,
    purposes=(
        ("terraform/README.md", "order of applies, prerequisites and what each root module owns"),
        ("terraform/bootstrap/*", "the locked, versioned remote state (applied once)"),
        ("terraform/environments/*/terraform.tfvars", "one environment's settings"),
        ("terraform/environments/*", "one environment's root module, calling the platform module"),
        ("terraform/modules/platform/charts/*", "a local chart adding the ClusterIssuer, the secret store and deploy access"),
        ("terraform/modules/platform/addons.tf", "cluster add-ons the manifests assume (ingress, cert-manager, external secrets)"),
        ("terraform/modules/platform/*", "the platform: registry, network, Kubernetes cluster and node pool"),
        ("terraform/*", "Terraform"),
    ),
    integration=integration,
)
