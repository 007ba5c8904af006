"""The monitoring overlays (k8s/monitoring/overlays/<env>/): each is applied to the cluster that runs
one environment, so every namespaced object it builds must land in a namespace that cluster has."""
from __future__ import annotations

import posixpath

import yaml

from kit.evidence import Evidence
from kit.model import Spec

OVERLAYS = "k8s/monitoring/overlays"
# kinds without a namespace (kubectl api-resources --namespaced=false), among those kit could write here
CLUSTER_SCOPED = frozenset({
    "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "ClusterSecretStore",
    "PersistentVolume", "StorageClass", "PriorityClass", "IngressClass", "APIService",
    "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"})


def overlay_envs(files: dict[str, str]) -> list[str]:
    """The environments with a monitoring overlay on disk, in file order."""
    prefix, suffix = f"{OVERLAYS}/", "/kustomization.yaml"
    return sorted(rel[len(prefix):-len(suffix)] for rel in files
                  if rel.startswith(prefix) and rel.endswith(suffix) and "/" not in rel[len(prefix):-len(suffix)])


def _yaml(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]


def build(files: dict[str, str], folder: str, seen: frozenset[str] = frozenset()) -> list[tuple[str, dict]]:
    """(file, object) for what `kubectl kustomize <folder>` emits, read statically: `resources`
    entries that are folders (a kustomization.yaml) are followed, files are read, and the
    kustomization's `namespace:` is set on its namespaced objects, as kustomize does."""
    rel = f"{folder}/kustomization.yaml"
    if rel not in files or folder in seen:
        return []
    kustomization = (yaml.safe_load(files[rel]) or {})
    out: list[tuple[str, dict]] = []
    for entry in kustomization.get("resources") or []:
        path = posixpath.normpath(posixpath.join(folder, str(entry)))
        if f"{path}/kustomization.yaml" in files:
            out += build(files, path, seen | {folder})
        elif path in files:
            out += [(path, obj) for obj in _yaml(files[path])]
    if kustomization.get("namespace"):
        for _, obj in out:
            if obj.get("kind") not in CLUSTER_SCOPED:
                obj.setdefault("metadata", {})["namespace"] = kustomization["namespace"]
    return out


def app_namespace(spec: Spec, files: dict[str, str], env: str) -> tuple[str, str]:
    """(namespace, where it came from): the namespace the app overlay k8s/overlays/<env> sets (and
    creates: kit's base has a Namespace that the overlay renames), else the Spec's <namespace>-<env>."""
    rel = f"k8s/overlays/{env}/kustomization.yaml"
    namespace = (yaml.safe_load(files.get(rel, "")) or {}).get("namespace") if rel in files else None
    if namespace:
        return str(namespace), rel
    return f"{spec.option('kubernetes').namespace}-{env}", "the Spec (kubernetes.namespace)"


def monitoring_namespaces(spec: Spec, files: dict[str, str]) -> Evidence:
    """Every namespaced object a monitoring overlay for environment E builds targets the monitoring
    namespace (kubernetes.monitoring_namespace, where kube-prometheus-stack runs) or the namespace E's
    app overlay creates (`<namespace>-<E>`, read from k8s/overlays/<E>/kustomization.yaml). Each
    cluster runs one environment (one Terraform cluster per environment; the e2e workflow applies the
    dev overlay only), so an object for another environment's namespace fails the whole apply.

    Source: Kubernetes documentation, "Namespaces",
    https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/ : a namespaced
    object lives in exactly one namespace, and creating it in a namespace that does not exist is
    refused by the API server (`namespaces "<name>" not found`, the NamespaceLifecycle admission
    plugin, https://kubernetes.io/docs/reference/access-authn-authz/admission-controllers/#namespacelifecycle).
    An object with no namespace would go to whatever namespace the kubectl context names, so it
    fails too."""
    monitoring = spec.option("kubernetes").monitoring_namespace
    envs, problems, figures = overlay_envs(files), [], {}
    for env in envs:
        namespace, source = app_namespace(spec, files, env)
        allowed = {monitoring, namespace}
        objects = build(files, f"{OVERLAYS}/{env}")
        namespaced = [(rel, o) for rel, o in objects if o.get("kind") not in CLUSTER_SCOPED]
        for rel, obj in namespaced:
            meta = obj.get("metadata") or {}
            target = meta.get("namespace")
            if target not in allowed:
                problems.append(f"{OVERLAYS}/{env}: {obj.get('kind')}/{meta.get('name')} ({rel}) targets "
                                f"{'no namespace' if not target else 'namespace ' + str(target)}; a cluster running "
                                f"{env} has only {monitoring} and {namespace} (from {source})")
        figures[env] = {"namespaces": sorted(allowed), "namespaced_objects": len(namespaced)}
    if not envs:
        problems.append(f"no monitoring overlay under {OVERLAYS}/")
    return Evidence("observability.rule.monitoring_namespaces", f"{OVERLAYS}/",
                    "every namespaced object of each environment's monitoring overlay targets the monitoring "
                    "namespace or that environment's app namespace", "failed" if problems else "passed",
                    tool="kit", reason="; ".join(problems[:8]), figures={"overlays": figures})
