"""CI/CD: what work.md's Integration Notes say (prerequisites, risks, rollback)."""
from __future__ import annotations

from kit.core.family import Integration
from kit.model import Spec


def integration(spec: Spec) -> Integration:
    ci = spec.option("ci")
    cloud = spec.option("cloud")
    prereq = []
    if "github" in ci.providers:
        prereq.append("GitHub: the workflows go to the repository root (`.github/workflows/`); create the "
                      "environments " + ", ".join(f"`{e}`" for e in ci.environments) + " (required reviewers "
                      f"on production), the {cloud.provider} OIDC trust for this repository (the deploy role that "
                      "`terraform/` creates), and a self-hosted runner per environment that can reach its "
                      "cluster's API.")
    if "gitlab" in ci.providers:
        prereq.append("GitLab: `.gitlab-ci.yml` at the repository root, the GitLab agent registered in each "
                      "cluster, and the registry credentials as masked, protected CI/CD variables.")
    risks = ["The first pipeline run pushes to the registry and signs with cosign: the registry and the OIDC "
             "trust must exist first (`terraform/` creates them)."]
    rollback = ["Redeploy the previous image through the pipeline: `gh workflow run deploy.yml --ref main "
                "-f image-digest=sha256:<previous digest> -f promote=true` (the digest from the registry or the "
                "last good run's summary; without `promote=true` only staging is rolled back). Production runs "
                "after staging succeeds, from `main` or a `v*` tag, once its environment's reviewers approve."]
    return Integration(tuple(prereq), tuple(risks), tuple(rollback))
