"""One replica, then two, behind a load balancer (nginx, a stand-in built from Debian's package), in the
same compose stack as the load test: the same saturating load through the balancer both times, and the
ratio of the achieved rates. Near-linear (>= 1.6x) shows the service scales out; lower is reported with
the likely cause."""
from __future__ import annotations

from pathlib import Path

from kit.evidence import Evidence
from kit.families.scaling import loadtest
from kit.model import Spec

LB = "kit-lb"
LB_IMAGE = "nginx:1.27-bookworm"     # what the sandbox's balancer stands in for
NEAR_LINEAR = 1.6
SATURATE = 6.0                        # offered load: 6 x the one-pod capacity (a pod carries well past C with a slow tail)
RUN_S = 6


def nginx_conf(spec: Spec) -> str:
    """Round robin over every address the app's service name resolves to (one per replica; nginx
    resolves it again on reload), keep-alive to the upstreams like an ingress controller."""
    return (f"upstream app {{\n    server {spec.name}:{spec.port};\n    keepalive 32;\n}}\n"
            "server {\n    listen 80;\n    access_log off;\n    location / {\n"
            "        proxy_http_version 1.1;\n        proxy_set_header Connection \"\";\n"
            "        proxy_set_header Host $host;\n        proxy_pass http://app;\n    }\n}\n")


def lb_service(staged: Path, spec: Spec, image: str) -> dict:
    """The balancer added to the sandbox's compose override (its config written into the staged copy)."""
    conf = staged / "loadtest" / "kit-lb.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(nginx_conf(spec))
    return {"image": image, "pull_policy": "never", "restart": "no", "networks": ["backend"],
            "ports": ["127.0.0.1::80"], "volumes": [f"{conf}:/etc/nginx/conf.d/default.conf:ro"],
            "depends_on": {spec.name: {"condition": "service_healthy"}},
            "healthcheck": {"interval": "1s"}}


def compare(spec: Spec, stack, locustfile: Path, capacity_rps: float, standins: dict[str, str],
            top_rps: float) -> Evidence:
    from kit.sandbox.engine import docker
    offered = round(max(SATURATE * capacity_rps, top_rps), 1)
    url = f"http://127.0.0.1:{stack.port(LB, 80)}"
    achieved = {}
    for replicas in (1, 2):
        if replicas == 2:
            stack.compose("up", "-d", "--wait", "--no-recreate", "--scale", f"{spec.name}=2", spec.name)
            docker("compose", "-p", stack.project, "exec", "-T", LB, "nginx", "-s", "reload", cwd=stack.staged)
        data, _, argv = loadtest.run_locust(locustfile, url, RUN_S, [offered])
        samples = [s for s in data["samples"] if s[0] >= data["marks"][0][1] + 1]
        span = max(data["marks"][-1][1] - data["marks"][0][1] - 1, 1e-6)
        ok = [s for s in samples if not s[2]]
        achieved[replicas] = {"achieved_rps": round(len(ok) / span, 1),
                              "p95_ms": round(loadtest.percentile([s[1] for s in ok], 95) * 1000, 1),
                              "errors": len(samples) - len(ok)}
    ratio = round(achieved[2]["achieved_rps"] / achieved[1]["achieved_rps"], 2) if achieved[1]["achieved_rps"] else 0
    near = ratio >= NEAR_LINEAR
    errors = achieved[1]["errors"] + achieved[2]["errors"]
    saturated = achieved[1]["achieved_rps"] < 0.9 * offered
    if not saturated:
        verdict = (f"not saturated: one replica already carried {achieved[1]['achieved_rps']:g} of {offered:g} rps "
                   "offered, so the ratio says nothing about scaling out")
    elif errors:
        verdict = f"{errors} request(s) failed through the balancer"
    elif near:
        verdict = "near-linear: the service is stateless enough to scale out"
    else:
        verdict = ("below near-linear; likely cause: both replicas share one Postgres and one Redis (a connection "
                   "per request), and on this 2-core machine the generator, nginx, the database and both replicas "
                   "compete for the same cores; a shared lock or session state in the app would show the same way")
    # not saturated: the measurement is void (a busy machine, a load too low), not a fault of the service:
    # skipped with the figures, never passed and never failed
    status = "skipped" if not saturated else ("failed" if errors else "passed")
    return Evidence("scaling.scaleout", "compose.yaml", "one replica versus two behind a load balancer at a "
                    f"saturating load (>= {NEAR_LINEAR}x is near-linear)", status,
                    tool=f"locust 2.47.0 through nginx ({LB_IMAGE} stand-in)", command=" ".join(argv[1:]),
                    reason=f"{ratio}x: {verdict}",
                    figures={"ratio": ratio, "near_linear": near, "offered_rps": offered, "by_replicas": achieved,
                             "how": "the same compose stack, one app replica then two (docker compose --scale), "
                                    "each under the same CPU cap, behind nginx round robin"},
                    standins=standins)
