"""What the 40_cicd notebook shows, read back from the generated files: the pipelines' jobs and
their `needs` (drawn offline with matplotlib)."""
from __future__ import annotations

from typing import Any

import yaml

GITLAB_RESERVED = {"workflow", "variables", "default", "stages", "include"}


def github_jobs(files: dict[str, str]) -> list[dict[str, Any]]:
    rows = []
    for path in sorted(p for p in files if p.startswith(".github/workflows/")):
        data = yaml.safe_load(files[path]) or {}
        for name, job in (data.get("jobs") or {}).items():
            needs = job.get("needs") or []
            perms = job.get("permissions") or {}
            rows.append({"pipeline": path.rsplit("/", 1)[1], "job": name,
                         "needs": [needs] if isinstance(needs, str) else list(needs),
                         "runs": job.get("uses") or f"{len(job.get('steps') or [])} steps",
                         "permissions": ", ".join(f"{k}: {v}" for k, v in perms.items()) or "none",
                         "timeout": job.get("timeout-minutes", "(called workflow)")})
    return rows


def gitlab_jobs(files: dict[str, str]) -> list[dict[str, Any]]:
    if ".gitlab-ci.yml" not in files:
        return []
    data = yaml.safe_load(files[".gitlab-ci.yml"]) or {}
    stages = data.get("stages") or []
    jobs = {n: j for n, j in data.items() if isinstance(j, dict) and n not in GITLAB_RESERVED and not n.startswith(".")}
    jobs = {n: _extended(data, j) for n, j in jobs.items()}
    rows = []
    for name, job in jobs.items():
        stage = job.get("stage", "test")
        needs = job.get("needs")
        if needs is None:   # without needs, a job waits for every job of the earlier stages
            earlier = stages[: stages.index(stage)] if stage in stages else []
            needs = [n for n, j in jobs.items() if j.get("stage", "test") in earlier]
        rows.append({"pipeline": ".gitlab-ci.yml", "job": name, "needs": list(needs), "runs": f"stage {stage}",
                     "permissions": "job token", "timeout": job.get("timeout", (data.get("default") or {}).get("timeout"))})
    return rows


def _extended(data: dict, job: dict) -> dict:
    """A GitLab job with the keys of the templates it extends (its own keys win)."""
    bases = job.get("extends") or []
    merged: dict = {}
    for base in [bases] if isinstance(bases, str) else bases:
        merged.update(_extended(data, data.get(base) or {}))
    return {**merged, **job}


def pipeline_jobs(files: dict[str, str]) -> list[dict[str, Any]]:
    return github_jobs(files) + gitlab_jobs(files)


def _levels(jobs: list[dict]) -> dict[str, int]:
    level: dict[str, int] = {}
    names = {j["job"]: j for j in jobs}

    def depth(name: str, seen: frozenset = frozenset()) -> int:
        if name in level:
            return level[name]
        parents = [n for n in names[name]["needs"] if n in names and n not in seen]
        level[name] = 1 + max((depth(p, seen | {name}) for p in parents), default=-1)
        return level[name]
    for name in names:
        depth(name)
    return level


def job_graph(jobs: list[dict], title: str):
    """Jobs as boxes in columns by depth, arrows from each need to the job that waits for it."""
    import matplotlib.pyplot as plt
    level = _levels(jobs)
    columns: dict[int, list[str]] = {}
    for job in jobs:
        columns.setdefault(level[job["job"]], []).append(job["job"])
    height = max((len(c) for c in columns.values()), default=1)
    fig, ax = plt.subplots(figsize=(1.8 * max(len(columns), 1) + 1, 0.9 * height + 1.4))
    where = {name: (x, -y) for x, names in columns.items() for y, name in enumerate(names)}
    for job in jobs:
        for need in job["needs"]:
            if need in where:
                (x0, y0), (x1, y1) = where[need], where[job["job"]]
                bend = 0.35 if x1 - x0 > 1 else 0.0      # arcs over the boxes they skip
                ax.annotate("", xy=(x1 - 0.3, y1), xytext=(x0 + 0.3, y0), zorder=1,
                            arrowprops={"arrowstyle": "->", "color": "#607d8b",
                                        "connectionstyle": f"arc3,rad={bend}"})
    for name, (x, y) in where.items():
        ax.text(x, y, name, ha="center", va="center", fontsize=8, zorder=2,
                bbox={"boxstyle": "round,pad=0.4", "facecolor": "#e8eaf6", "edgecolor": "#3f51b5"})
    ax.set_xlim(-0.6, max(columns, default=0) + 0.6)
    ax.set_ylim(-height + 0.2, 0.8)
    ax.axis("off")
    ax.set_title(title)
    fig.tight_layout()
    plt.close(fig)
    return fig


def job_table(files: dict[str, str]) -> list[dict]:
    """Every CI job with its needs, permissions and timeout (GitHub Actions and GitLab CI)."""
    return [{**row, "needs": ", ".join(row["needs"]) or "-"} for row in pipeline_jobs(files)]


def pipeline_graphs(files: dict[str, str]) -> list:
    """One chart per pipeline file: its jobs, and arrows from each need to the job waiting for it."""
    rows = pipeline_jobs(files)
    names = sorted({r["pipeline"] for r in rows}, key=lambda n: (n != "ci.yml", n))
    return [job_graph([r for r in rows if r["pipeline"] == name], name) for name in names]
