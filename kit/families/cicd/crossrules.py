"""kit's rules where the pipelines meet other systems (GitHub's workflow discovery, the cluster's
network reach, the registry the nodes pull from): each rule has its own evidence record, cites the
other system in its docstring, and returns the problems it found."""
from __future__ import annotations

from collections.abc import Callable

from kit.evidence import Evidence
from kit.families.cicd.consistency import github_targets, gitlab_targets
from kit.families.cicd.layout import layout_problems
from kit.model import Spec


def deployed_overlays(files: dict[str, str]) -> list[str]:
    return sorted({t["overlay"] for t in github_targets(files) + gitlab_targets(files) if t["overlay"]})


def layout(spec: Spec, files: dict[str, str]) -> list[str]:
    """GitHub runs only workflows in `.github/workflows` at the repository root (docs.github.com
    workflow syntax: "You must store workflow files in the .github/workflows directory of your
    repository"; the workflows concept page: "GitHub searches the .github/workflows directory in
    the root of your repository"), so the workflows sit at the root and every path they use
    resolves from there to the service's source (kit/families/cicd/layout.py)."""
    return layout_problems(spec, files, deployed_overlays(files))


CROSS_RULES: dict[str, tuple[str, Callable[[Spec, dict[str, str]], list[str]]]] = {
    "layout": ("the pipelines sit at the repository root and their paths (working directory, build "
               "context, Dockerfile, dependency file, overlays) resolve to the service's source", layout),
}


def cross_records(spec: Spec, files: dict[str, str]) -> list[Evidence]:
    records = []
    for rule, (title, check) in CROSS_RULES.items():
        problems = check(spec, files)
        records.append(Evidence(f"cicd.rule.{rule}", "pipelines", title, "failed" if problems else "passed",
                                tool="kit", reason="; ".join(problems[:4]), figures={"problems": len(problems)},
                                log="\n".join(problems)))
    return records
