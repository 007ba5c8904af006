"""The acceptance checklist: ten standard items plus the task's own criteria, each ticked
only when every check behind it passed."""
from __future__ import annotations

import re
from dataclasses import dataclass

from kit.evidence import Evidence

STANDARD: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Dockerfile and entrypoint lint clean (hadolint, shellcheck)", ("container.hadolint", "container.shellcheck")),
    ("Dockerfile agrees with the service model (port, health path, numeric non-root USER, multi-stage)",
     ("container.consistency",)),
    ("The image builds with BuildKit", ("container.build",)),
    ("The container runs as a non-root user", ("container.nonroot",)),
    ("Docker's own health check reports the container healthy", ("container.healthy",)),
    ("The health endpoint answers 200 and an invented path does not",
     ("container.health_endpoint", "container.route_guard")),
    ("The metrics endpoint serves Prometheus samples", ("container.metrics",)),
    ("SIGTERM stops the server cleanly", ("container.shutdown",)),
    ("compose.yaml is valid (compose-spec schema, docker compose config) and consistent",
     ("compose.schema", "compose.config", "compose.consistency")),
    ("The compose stack comes up healthy with its dependencies, and is removed without leftovers",
     ("compose.up", "compose.health", "compose.cleanup")),
    ("Kubernetes overlays build with kustomize and validate --strict against the target version and the two before",
     ("kubernetes.kustomize.*", "kubernetes.validate.*")),
    ("Kubernetes manifests pass checkov and fit together (selectors, ports, probes, references, restricted pods)",
     ("kubernetes.checkov", "kubernetes.consistency")),
    ("The image runs under the Deployment's own pod spec and passes its startup, readiness and liveness probes",
     ("kubernetes.pod.*",)),
    ("CI/CD pipelines pass actionlint, shellcheck on their run: scripts, their JSON schemas and checkov",
     ("cicd.actionlint", "cicd.shellcheck", "cicd.schema.*", "cicd.checkov.*")),
    ("Pipelines are hardened: actions pinned by commit SHA, least-privilege permissions, timeouts, "
     "concurrency, no untrusted input in run:", ("cicd.rule.*",)),
    ("Terraform is formatted, parses, passes checkov (skips with reasons) and kit's rules (pinned, "
     "typed, locked remote state, no secrets)", ("iac.fmt", "iac.parse", "iac.checkov", "iac.rule.*")),
    ("terraform validate passes on every root module and the shared module", ("iac.validate.*",)),
)

# criterion wording -> the checks that can prove it
RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (r"kubernetes|\bpod\b|pod security|restricted", ("kubernetes.pod.*", "kubernetes.consistency")),
    (r"\bci\b|ci/cd|pipeline|workflow|github actions|gitlab", ("cicd.rule.*", "cicd.checkov.*")),
    (r"terraform|infrastructure as code|\biac\b", ("iac.fmt", "iac.checkov", "iac.rule.*")),
    (r"non-?root|root user", ("container.nonroot",)),
    (r"hadolint|lint", ("container.hadolint",)),
    (r"sigterm|graceful|shut ?down", ("container.shutdown",)),
    (r"metric|prometheus", ("container.metrics",)),
    (r"secret|\.env\.example|placeholder|credential", ("compose.env_example", "compose.consistency")),
    (r"(healthy|health).*(postgres|redis|depend|compose|stack)|(postgres|redis|compose|stack).*healthy",
     ("compose.up", "compose.health")),
    (r"health", ("container.healthy", "container.health_endpoint")),
    (r"\bbuild", ("container.build",)),
)
METRIC = re.compile(r"`([a-zA-Z_:][a-zA-Z0-9_:]*_[a-zA-Z0-9_:]+)`")
SIZE = re.compile(r"(?:image )?size\D{0,20}?(\d+)\s*(MB|MiB|GB)", re.I)


@dataclass(frozen=True)
class Item:
    text: str
    checks: tuple[str, ...]
    state: str            # passed | failed | unproven | review
    note: str = ""

    @property
    def ticked(self) -> bool:
        return self.state == "passed"


def _expand(checks: tuple[str, ...], by_id: dict[str, Evidence]) -> tuple[str, ...]:
    """`family.prefix.*` stands for every record with that prefix (at least one must exist)."""
    out: list[str] = []
    for check in checks:
        matches = sorted(k for k in by_id if check.endswith("*") and k.startswith(check[:-1]))
        out += matches or [check]
    return tuple(out)


def _judge(text: str, checks: tuple[str, ...], by_id: dict[str, Evidence]) -> Item:
    checks = _expand(checks, by_id)
    found = [by_id[c] for c in checks if c in by_id]
    if len(found) < len(checks):
        missing = sorted(set(checks) - set(by_id))
        return Item(text, checks, "unproven", f"no evidence for {', '.join(missing)}")
    if all(r.status == "passed" for r in found):
        return Item(text, checks, "passed")
    bad = [r for r in found if r.status != "passed"]
    return Item(text, checks, "failed" if any(r.status == "failed" for r in bad) else "unproven",
                "; ".join(f"{r.check}: {r.status} ({r.reason})" for r in bad))


def standard_items(records: list[Evidence]) -> list[Item]:
    by_id = {r.check: r for r in records}
    return [_judge(text, checks, by_id) for text, checks in STANDARD]


def task_items(criteria: tuple[str, ...], records: list[Evidence]) -> list[Item]:
    by_id = {r.check: r for r in records}
    items = []
    for text in criteria:
        size = SIZE.search(text)
        if size and "container.build" in by_id:
            items.append(_size_item(text, size, by_id["container.build"]))
            continue
        checks = next((c for pattern, c in RULES if re.search(pattern, text, re.I)), ())
        metric_names = METRIC.findall(text)
        if checks == ("container.metrics",) and metric_names and "container.metrics" in by_id:
            items.append(_metrics_item(text, metric_names, by_id["container.metrics"]))
        elif not checks:
            items.append(Item(text, (), "review", "needs human review: no check can prove this"))
        else:
            items.append(_judge(text, checks, by_id))
    return items


def _size_item(text: str, match: re.Match, build: Evidence) -> Item:
    limit = float(match.group(1)) * (1000 if match.group(2).upper() == "GB" else 1)
    size = build.figures.get("size_mb")
    if build.status != "passed" or size is None:
        return Item(text, ("container.build",), "unproven", "the image did not build")
    ok = size < limit
    note = f"image {size} MB {'<' if ok else '>='} {limit:g} MB"
    if "standins" in build.to_dict() and build.standins:
        note += " (built on the local stand-in base; the official base differs in size)"
    return Item(text, ("container.build",), "passed" if ok else "failed", note)


def _metrics_item(text: str, names: list[str], metrics: Evidence) -> Item:
    """A criterion that names metrics is met only when the scrape had each of them. The parser
    reports counter families without their `_total` suffix."""
    if metrics.status != "passed":
        return Item(text, ("container.metrics",), "failed" if metrics.status == "failed" else "unproven",
                    metrics.reason)
    scraped = set(metrics.figures.get("names", []))
    missing = [n for n in names if n not in scraped and n.removesuffix("_total") not in scraped]
    if missing:
        return Item(text, ("container.metrics",), "failed", f"not in the scrape: {', '.join(missing)}")
    return Item(text, ("container.metrics",), "passed", f"scraped: {', '.join(names)}")
