"""Alertmanager in the live check: the generated config with its webhooks pointed at a local
receiver (a tiny HTTP server on the stack's network), and what that receiver got once the sandbox
Prometheus fired alerts: a prod page delivered to the pager, a dev page to tickets only, and the
warning that the page inhibits delivered nowhere."""
from __future__ import annotations

import json
import time

import yaml

from kit.errors import SandboxError
from kit.evidence import Evidence
from kit.families.observability.routing import PAGER
from kit.model import Spec
from kit.sandbox.health import POLL_S, http_get

ALERTMANAGER = "monitoring/alertmanager.yml"
WEBHOOK, WEBHOOK_PORT = "kit-webhook", 8080
INHIBITED = "KitSandboxInhibitedWarn"      # the sandbox's warning for the same outage as TargetDown
GROUP_WAIT, GROUP_INTERVAL = "1s", "2s"
DELIVERY_TIMEOUT_S = 60
TOOL = "alertmanager 0.25 (stand-in) + a local webhook receiver"
# the receiver: keeps every POST (path = the receiver's name) and answers GET with the list
WEBHOOK_SCRIPT = """
import http.server, json, signal, sys
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
got = []
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        got.append({"receiver": self.path.strip("/"), "payload": json.loads(body or b"null")})
        self.send_response(200); self.end_headers()
    def do_GET(self):
        data = json.dumps(got).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json"); self.end_headers()
        self.wfile.write(data)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", PORT), H).serve_forever()
""".replace("PORT", str(WEBHOOK_PORT))


def sandbox_alertmanager(text: str) -> str:
    """The generated config with every webhook sent to the local receiver (path = receiver name)
    and shorter group waits, so a delivery comes within seconds."""
    config = yaml.safe_load(text)

    def shorten(route: dict, root: bool = False) -> None:
        for key, value in (("group_wait", GROUP_WAIT), ("group_interval", GROUP_INTERVAL)):
            if root or key in route:
                route[key] = value
        for child in route.get("routes") or []:
            shorten(child)
    shorten(config["route"], root=True)
    for receiver in config.get("receivers") or []:
        for hook in receiver.get("webhook_configs") or []:
            hook["url"] = f"http://{WEBHOOK}:{WEBHOOK_PORT}/{receiver['name']}"
    return yaml.safe_dump(config, sort_keys=False)


def inhibited_rule(spec: Spec, for_: str) -> str:
    """A sandbox-only warning firing for the same outage as TargetDown (a little later), so the
    page's inhibition of warnings shows on a real alert."""
    rule = {"alert": INHIBITED, "expr": f'up{{job="{spec.name}"}} == 0', "for": for_,
            "labels": {"severity": "warn", "service": spec.name},
            "annotations": {"summary": "kit sandbox: a warning the TargetDown page inhibits"}}
    return yaml.safe_dump({"groups": [{"name": "kit-sandbox", "rules": [rule]}]}, sort_keys=False)


def webhook_service(image: str) -> dict:
    return {"image": image, "pull_policy": "never", "restart": "no", "command": ["python3", "-c", WEBHOOK_SCRIPT],
            "ports": [f"127.0.0.1::{WEBHOOK_PORT}"], "networks": ["backend"],
            "healthcheck": {"test": ["CMD", "python3", "-c", "import urllib.request; urllib.request.urlopen("
                                     f"'http://127.0.0.1:{WEBHOOK_PORT}/', timeout=2)"],
                            "interval": "1s", "timeout": "3s", "retries": 30}}


def _deliveries(url: str) -> list[tuple[str, dict]]:
    """(receiver, alert) for every firing alert the receiver was sent."""
    status, _, body = http_get(url + "/", timeout=5)
    if status != 200:
        raise SandboxError(f"the webhook receiver answered {status}")
    return [(post["receiver"], alert) for post in json.loads(body)
            for alert in (post.get("payload") or {}).get("alerts") or [] if alert.get("status") == "firing"]


def _am_alerts(url: str) -> list[dict]:
    status, _, body = http_get(url + "/api/v2/alerts", timeout=5)
    return json.loads(body) if status == 200 else []


def deliveries(spec: Spec, webhook: str, alertmanager: str, since: float) -> list[Evidence]:
    """Wait for the prod and dev TargetDown notifications and the inhibited warnings, then judge:
    observability.live.alert_routing and observability.live.inhibition."""
    k8s = spec.option("kubernetes")
    prod, dev = f"{k8s.namespace}-prod", f"{k8s.namespace}-dev"
    seen: dict[str, float] = {}

    def done() -> bool:
        got = _deliveries(webhook)
        for receiver, alert in got:
            key = f"{alert['labels'].get('alertname')}@{alert['labels'].get('namespace')} -> {receiver}"
            seen.setdefault(key, round(time.monotonic() - since, 2))
        muted = [a for a in _am_alerts(alertmanager) if a["labels"].get("alertname") == INHIBITED
                 and a.get("status", {}).get("inhibitedBy")]
        names = {(a["labels"].get("alertname"), a["labels"].get("namespace")) for _, a in got}
        return {("TargetDown", prod), ("TargetDown", dev)} <= names and {a["labels"].get("namespace") for a in muted} >= {prod, dev}
    start = time.monotonic()
    while not done() and time.monotonic() - start < DELIVERY_TIMEOUT_S:
        time.sleep(POLL_S)
    waited = round(time.monotonic() - since, 2)
    time.sleep(3)             # a group_interval more: a warning let through would have arrived by now
    done()
    got, am = _deliveries(webhook), _am_alerts(alertmanager)
    routed = sorted({(r, a["labels"].get("alertname"), a["labels"].get("namespace")) for r, a in got})
    pager = {(n, ns) for r, n, ns in routed if r == PAGER}
    problems = []
    if ("TargetDown", prod) not in pager:
        problems.append(f"no TargetDown page from {prod} reached {PAGER}")
    if ("TargetDown", dev) in pager:
        problems.append(f"TargetDown from {dev} reached {PAGER}: dev paged")
    if not any(n == "TargetDown" and ns == dev for _r, n, ns in routed):
        problems.append(f"TargetDown from {dev} was delivered to no receiver")
    routing = Evidence("observability.live.alert_routing", ALERTMANAGER, "Alertmanager, loaded with the generated "
                       "routes, delivers the prod page to the pager and the dev page to tickets only",
                       "failed" if problems else "passed", tool=TOOL, reason="; ".join(problems), duration_s=waited,
                       figures={"delivered": [list(r) for r in routed], "first_seen_s_after_stop": seen})
    warned = [a for a in am if a["labels"].get("alertname") == INHIBITED]
    muted = {a["labels"].get("namespace"): a.get("status", {}) for a in warned}
    leaked = [list(r) for r in routed if r[1] == INHIBITED]
    problems = [f"{INHIBITED} in {ns} is not inhibited ({status.get('state')})" for ns, status in muted.items()
                if not status.get("inhibitedBy")]
    problems += ([f"{INHIBITED} was delivered: {leaked}"] if leaked else [])
    problems += ([] if warned else [f"Alertmanager never received {INHIBITED}"])
    inhibition = Evidence("observability.live.inhibition", ALERTMANAGER, "the page inhibits the same service's "
                          "warning in the same namespace: received by Alertmanager, muted, delivered nowhere",
                          "failed" if problems else "passed", tool=TOOL, reason="; ".join(problems), duration_s=waited,
                          figures={"inhibited": {ns: {"state": s.get("state"), "inhibitedBy": s.get("inhibitedBy")}
                                                 for ns, s in muted.items()}, "delivered": leaked})
    return [routing, inhibition]
