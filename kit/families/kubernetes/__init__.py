"""Kubernetes family: a Kustomize base and dev/staging/prod overlays; kustomize, kubernetes-validate
--strict, checkov, cross-object rules, and the image run under the Deployment's pod spec (the
pod sandbox: Docker running the pod spec, an emulation, not a kubelet)."""
from __future__ import annotations

from kit.core.checkov import checkov_tool
from kit.core.family import ChecklistItem, Criterion, Family, Option, Tool
from kit.core.tools import version_probe
from kit.families.kubernetes import checks, options, podsandbox
from kit.families.kubernetes.notes import integration
from kit.families.kubernetes.render import render_kubernetes, work_notes

FAMILY = Family(
    name="kubernetes", title="Kubernetes manifests", notebook="30_kubernetes", template="kubernetes/base",
    render=render_kubernetes, option=Option("kubernetes", options.SCHEMA, options.parse),
    static_checks=(checks.static_checks,), sandbox_checks=(podsandbox.sandbox_checks,),
    needs=("container",), sandbox_proof="emulated",
    emulation_leaves_out="the pod sandbox is Docker running the Deployment's pod spec, not a kubelet: no "
                         "scheduler, CNI, NetworkPolicies, HPA, PDB, fsGroup, preStop hook or grace period",
    checklist=(
        ChecklistItem("Kubernetes overlays build with kustomize and validate --strict against the target "
                      "version and the two before", ("kubernetes.kustomize.*", "kubernetes.validate.*")),
        ChecklistItem("Kubernetes manifests pass checkov, fit together (selectors, ports, probes, references, "
                      "restricted pods) and meet what the cluster's other systems enforce (restarts, drains, "
                      "autoscaling, certificates, network policies, quota)",
                      ("kubernetes.checkov", "kubernetes.consistency", "kubernetes.rule.*")),
        ChecklistItem("The image runs under the Deployment's own pod spec and passes its startup, readiness "
                      "and liveness probes", ("kubernetes.pod.*",)),
    ),
    criteria=(
        Criterion(r"kubernetes|\bpod\b|pod security|restricted", ("kubernetes.pod.*", "kubernetes.consistency"), 10),
    ),
    tools=(
        Tool("kubectl (kustomize)", version_probe(["kubectl", "version", "--client"]),
             "bash scripts/setup.sh installs kubectl from Debian trixie's package"),
        Tool("kubernetes-validate", version_probe(["kubernetes-validate", "--version"]),
             "pip install 'kubernetes-validate>=1.37,<1.38' into kit's venv (or bash scripts/setup.sh)"),
        checkov_tool(),
    ),
    highlights=("k8s/base/deployment.yaml#readinessProbe:",),
    work_notes=work_notes,
    purposes=(
        ("k8s/README.md", "cluster prerequisites, environments, disruptions and probes, for whoever applies the manifests"),
        ("k8s/base/kustomization.yaml", "the Kustomize base: every object of the service"),
        ("k8s/base/namespace.yaml", "namespace with the restricted Pod Security Standard, quota and limit range"),
        ("k8s/base/serviceaccount.yaml", "the pods' identity, with no API token mounted"),
        ("k8s/base/config.env", "non-secret settings for the ConfigMap"),
        ("k8s/base/secrets.yaml", "ExternalSecret: secrets by reference to the cloud's secret store"),
        ("k8s/base/deployment.yaml", "the app's pods: probes, resources, restricted security context, rolling update"),
        ("k8s/base/service.yaml", "the Service in front of the pods"),
        ("k8s/base/autoscaling.yaml", "HorizontalPodAutoscaler and PodDisruptionBudget"),
        ("k8s/base/networkpolicy.yaml", "default deny plus the flows the app needs"),
        ("k8s/base/ingress.yaml", "Ingress with a cert-manager certificate"),
        ("k8s/base/dependencies.yaml", "the dependencies in the cluster (StatefulSets or managed endpoints)"),
        ("k8s/base/cronjobs.yaml", "the task's scheduled jobs"),
        ("k8s/overlays/*/kustomization.yaml", "one environment: namespace, replicas, host, image"),
        ("k8s/overlays/*/config.env", "that environment's settings"),
        ("k8s/overlays/*/patch-*.yaml", "that environment's resources and strategy"),
        ("k8s/overlays/*", "that environment's objects"),
    ),
    integration=integration,
)
