"""Cross-artifact consistency of the pipelines: what they deploy must exist and agree with the
Kustomize overlays and the Terraform environments kit generated from the same Spec."""
from __future__ import annotations

import yaml

from kit.evidence import Evidence
from kit.model import Spec

OVERLAY_EXPR = "${{ inputs.overlay }}"


def github_targets(files: dict[str, str]) -> list[dict]:
    deploy = yaml.safe_load(files.get(".github/workflows/deploy.yml", "") or "{}") or {}
    env_job = (yaml.safe_load(files.get(".github/workflows/deploy-environment.yml", "") or "{}") or {})
    env = ((env_job.get("jobs") or {}).get("deploy") or {}).get("env") or {}
    ci = yaml.safe_load(files.get(".github/workflows/ci.yml", "") or "{}") or {}
    out = []
    for name, job in (deploy.get("jobs") or {}).items():
        overlay = str((job.get("with") or {}).get("overlay", ""))
        out.append({"where": f"deploy.yml {name}", "overlay": overlay, "image": (ci.get("env") or {}).get("IMAGE"),
                    "set_image": env.get("SERVICE"), "deploy_image": env.get("IMAGE"),
                    "namespace": str(env.get("NAMESPACE", "")).replace(OVERLAY_EXPR, overlay),
                    "cluster": str(env.get("CLUSTER", "")).replace(OVERLAY_EXPR, overlay)})
    return out


def gitlab_targets(files: dict[str, str]) -> list[dict]:
    data = yaml.safe_load(files.get(".gitlab-ci.yml", "") or "{}") or {}
    top = data.get("variables") or {}
    return [{"where": f".gitlab-ci.yml {name}", "overlay": str(job["variables"].get("OVERLAY", "")),
             "image": top.get("IMAGE"), "set_image": top.get("SERVICE"), "deploy_image": top.get("IMAGE"),
             "namespace": str(job["variables"].get("NAMESPACE", "")), "cluster": ""}
            for name, job in data.items()
            if isinstance(job, dict) and name.startswith("deploy-") and "OVERLAY" in (job.get("variables") or {})]


def _overlay_problems(spec: Spec, files: dict[str, str], target: dict) -> list[str]:
    where, overlay = target["where"], target["overlay"]
    path = f"k8s/overlays/{overlay}/kustomization.yaml"
    if path not in files:
        return [f"{where}: deploys overlay {overlay!r}, but {path} was not generated"]
    kustomization = yaml.safe_load(files[path]) or {}
    problems = []
    images = {i.get("name"): i.get("newName") for i in kustomization.get("images") or []}
    if images.get(target["set_image"]) != spec.image:
        problems.append(f"{where}: `kustomize edit set image {target['set_image']}=...` matches no image "
                        f"named {target['set_image']!r} with newName {spec.image} in {path} ({images})")
    if kustomization.get("namespace") != target["namespace"]:
        problems.append(f"{where}: waits in namespace {target['namespace']!r}, the overlay deploys to "
                        f"{kustomization.get('namespace')!r}")
    return problems


def consistency(spec: Spec, files: dict[str, str]) -> Evidence:
    targets = github_targets(files) + gitlab_targets(files)
    problems = [] if targets else ["no deploy job found"]
    tf_envs = {p.split("/")[2] for p in files if p.startswith("terraform/environments/")}
    for target in targets:
        if target["image"] != spec.image or target["deploy_image"] != spec.image:
            problems.append(f"{target['where']}: pushes or deploys {target['image']}, not service.image {spec.image}")
        problems += _overlay_problems(spec, files, target)
        if tf_envs and target["cluster"] and target["cluster"] not in {f"{spec.name}-{e}" for e in tf_envs}:
            problems.append(f"{target['where']}: cluster {target['cluster']} is not one Terraform creates "
                            f"({', '.join(sorted(f'{spec.name}-{e}' for e in tf_envs))})")
    return Evidence("cicd.consistency", "pipelines", "what the pipelines push and deploy matches service.image, "
                    "the Kustomize overlays (image name, namespace) and the Terraform clusters",
                    "failed" if problems else "passed", tool="kit", reason="; ".join(problems[:4]),
                    figures={"deploy_targets": len(targets)}, log="\n".join(problems))
