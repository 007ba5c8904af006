"""Alertmanager routing by environment, proven with amtool's own routing test: a page from dev or
staging reaches no paging receiver, a page from prod does."""
from __future__ import annotations

import shlex
import subprocess
import time

from kit.core.context import VerifyContext
from kit.core.tools import tool_version
from kit.evidence import Evidence
from kit.model import Spec

ALERTMANAGER = "monitoring/alertmanager.yml"
PAGER, TICKETS = "oncall-pager", "team-tickets"     # the receivers alertmanager.yml.j2 defines


def routing_cases(spec: Spec) -> list[tuple[dict[str, str], bool]]:
    """(alert labels, should it page): a page from each overlay's namespace (only prod pages), a
    warning from prod (never pages) and a page from compose (pages)."""
    k8s = spec.option("kubernetes")
    base = {"alertname": "TargetDown", "service": spec.name}
    cases = [({**base, "severity": "page", "namespace": f"{k8s.namespace}-{env.name}"}, env.name == "prod")
             for env in k8s.environments]
    cases.append(({**base, "alertname": "HighCpuUsage", "severity": "warn", "namespace": f"{k8s.namespace}-prod"}, False))
    cases.append(({**base, "severity": "page", "namespace": "compose"}, True))
    return cases


def route(config: str, labels: dict[str, str], cwd) -> tuple[list[str], str]:
    """The receivers Alertmanager routes `labels` to, as `amtool config routes test` resolves them."""
    argv = ["amtool", "config", "routes", "test", f"--config.file={config}", *(f"{k}={v}" for k, v in labels.items())]
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv)} exited {proc.returncode}: {(proc.stdout + proc.stderr).strip()[:300]}")
    return [r.strip() for r in proc.stdout.strip().split(",") if r.strip()], shlex.join(argv)


def env_routing(spec: Spec, ctx: VerifyContext) -> Evidence:
    """Dev and staging never page; prod pages.

    Alertmanager walks the routing tree from the root; with `continue: false` (the default) the
    first matching child route handles the alert, so a namespace route placed before the severity
    routes takes every dev and staging alert: prometheus/alertmanager @
    68fb2d5759b3a92c0bb2a1a13d4ef7ff5b06256d, docs/configuration.md:200-208 and :225-240
    (https://prometheus.io/docs/alerting/latest/configuration/). `amtool config routes test`
    resolves a label set to its receivers the same way (README.md:322-334, cli/test_routing.go:30-48
    at the same commit), which is what this rule runs."""
    title = "Alertmanager routes by environment: a dev or staging page reaches no pager, a prod page does"
    start, rows, problems, commands = time.monotonic(), [], [], []
    try:
        for labels, should_page in routing_cases(spec):
            receivers, command = route(ALERTMANAGER, labels, ctx.deliverables)
            commands.append(command)
            pages = PAGER in receivers
            rows.append({"labels": labels, "receivers": receivers, "pages": pages, "should_page": should_page})
            if pages != should_page:
                where = f"{labels['severity']} alert from namespace {labels['namespace']}"
                problems.append(f"a {where} goes to {', '.join(receivers)}: it should "
                                f"{'page' if should_page else 'not page'} ({PAGER})")
    except (RuntimeError, FileNotFoundError, subprocess.TimeoutExpired) as exc:
        problems.append(str(exc))
    return Evidence("observability.rule.env_routing", ALERTMANAGER, title, "failed" if problems else "passed",
                    tool=f"amtool {tool_version(['amtool', '--version'])} (config routes test)",
                    command=commands[0] + f" (and {len(commands) - 1} more label sets)" if commands else "",
                    duration_s=round(time.monotonic() - start, 3), reason="; ".join(problems),
                    figures={"routes": rows})
