"""The end-to-end workflow kit ships with the pipelines (.github/workflows/e2e-kind.yml): what it
installs into kind, pinned, and its evidence record. kit lints and policy-checks it like the
other workflows; it cannot run it here (no network, no nested cluster), so its record is
skipped, saying so, never passed.

Pins and where they were read:
- kind v0.29.0, linux-amd64 sha256 c72eda46...3284: the same checksum in two unrelated public
  repositories' pinned installers (one labelled "Official Kind v0.29.0 release checksums"); node
  images from the kind v0.29.0 release notes, as pinned in several public repositories.
- helm v3.18.6, linux-amd64 sha256 3f43c0aa...19ce: the release notes' checksum list (an indexed
  copy) and several pinned installers.
- cilium 1.17.4 with `ipam.mode=kubernetes`, `image.pullPolicy=IfNotPresent` on kind
  (docs.cilium.io, "Installation Using Kind"); kube-prometheus-stack 88.5.3 (prometheus-community/
  helm-charts @ cf408a29, charts/kube-prometheus-stack/Chart.yaml); the platform's charts from
  kit/families/iac/addons.py, so kind runs what Terraform installs."""
from __future__ import annotations

import re

from kit.evidence import Evidence
from kit.families.iac.addons import CHARTS
from kit.model import Spec

WORKFLOW = ".github/workflows/e2e-kind.yml"
KIND = {"version": "v0.29.0", "sha256": "c72eda46430f065fb45c5f70e7c957cc9209402ef309294821978677c8fb3284"}
HELM = {"version": "v3.18.6", "sha256": "3f43c0aa57243852dd542493a0f54f1396c0bc8ec7296bbb2c01e802010819ce"}
# Kubernetes minor -> the kind v0.29.0 node image (by digest)
NODE_IMAGES = {
    "1.33": "kindest/node:v1.33.1@sha256:050072256b9a903bd914c0b2866828150cb229cea0efe5892e2b644d5dd3b34f",
    "1.32": "kindest/node:v1.32.5@sha256:e3b2327e3a5ab8c76f5ece68936e4cafaa82edf58486b769727ab0b3b97a5b0d",
    "1.31": "kindest/node:v1.31.9@sha256:b94a3a6c06198d17f59cca8c6f486236fa05e2fb359cbd75dabbfc348a10b211",
    "1.30": "kindest/node:v1.30.13@sha256:397209b3d947d154f6641f2d0ce8d473732bd91c87d9575ade99049aa33cd648",
}
E2E_CHARTS = {
    **CHARTS,
    "cilium": {"repository": "https://helm.cilium.io/", "chart": "cilium", "version": "1.17.4"},
    "kube-prometheus-stack": {"repository": "https://prometheus-community.github.io/helm-charts",
                              "chart": "kube-prometheus-stack", "version": "88.5.3"},
}


def node_image(version: str) -> str:
    """The node image of the target Kubernetes minor, else the nearest kind v0.29.0 ships."""
    if version in NODE_IMAGES:
        return NODE_IMAGES[version]
    minors = sorted(NODE_IMAGES, key=lambda v: int(v.split(".")[1]))
    lower = [v for v in minors if int(v.split(".")[1]) <= int(version.split(".")[1])]
    return NODE_IMAGES[lower[-1] if lower else minors[0]]


def context(spec: Spec) -> dict:
    k8s = spec.options.get("kubernetes")
    return {"kind": KIND, "helm": HELM, "node_image": node_image(getattr(k8s, "version", "1.33")),
            "charts": E2E_CHARTS, "monitoring_namespace": getattr(k8s, "monitoring_namespace", "monitoring"),
            "ingress_namespace": getattr(k8s, "controller_namespace", "ingress-nginx"),
            "ingress_class": getattr(k8s, "ingress_class", "nginx"),
            "health_path": spec.health_path or "/",
            # a health path must answer 2xx; without one, anything but a 5xx shows the route works
            "ok_from": 200, "ok_below": 300 if spec.health_path else 500,
            "cluster_issuer": getattr(k8s, "cluster_issuer", ""),
            "secret_store": getattr(k8s, "secret_store", "platform-secrets")}


HELM_INSTALL = re.compile(r"helm (?:install|upgrade)[^\n]*(?:\\\n[^\n]*)*")
DOWNLOAD = re.compile(r"curl [^\n]*?-[A-Za-z]*o\s+\"?([^\s\"]+)")


def pin_problems(text: str) -> list[str]:
    """The e2e workflow installs nothing unpinned: every Helm chart at --version, every binary
    it downloads checked against its sha256, the kind node image by digest."""
    problems = []
    for command in HELM_INSTALL.findall(text):
        if "--version " not in command:
            problems.append(f"unpinned chart: {' '.join(command.split())[:100]}")
    for target in DOWNLOAD.findall(text):
        if target == "/dev/null":
            continue
        if not re.search(re.escape(target) + r"[^\n]*\n?[^\n]*sha256sum -c|sha256sum -c[^\n]*" + re.escape(target), text):
            problems.append(f"{target} is downloaded without a sha256 check")
    node = re.search(r"NODE_IMAGE: (\S+)", text)
    if not node or "@sha256:" not in node.group(1):
        problems.append("the kind node image is not pinned by digest")
    return problems


def record(files: dict[str, str]) -> list[Evidence]:
    """The e2e workflow's own record: generated, linted with the others, not run here."""
    if WORKFLOW not in files:
        return []
    problems = pin_problems(files[WORKFLOW])
    pins = Evidence("cicd.rule.e2e_pins", WORKFLOW, "the e2e workflow installs nothing unpinned: charts at --version, "
                    "downloads sha256-checked, the node image by digest", "failed" if problems else "passed", tool="kit",
                    reason="; ".join(problems[:4]), figures={"problems": len(problems)}, log="\n".join(problems))
    return [pins, Evidence("cicd.e2e.kind", WORKFLOW, "the end-to-end workflow on kind (Cilium, cert-manager, ingress, "
                     "External Secrets, kube-prometheus-stack): rollout, a request through the ingress, the target "
                     "up and the rules loaded in Prometheus, an alert fired on purpose", "skipped", tool="kit",
                     reason="generated, not run here: it needs Docker, a kind cluster and the network; your CI runs "
                            "it (docs/families/cicd.md). Here it is linted like the other workflows (actionlint, "
                            "schema, checkov, kit's rules)",
                     figures={"kind": KIND["version"], "helm": HELM["version"],
                              "charts": {k: v["version"] for k, v in E2E_CHARTS.items()}})]
