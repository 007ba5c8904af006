"""The end-to-end workflow on kind: generated with the pipelines, linted and policy-checked like
them, recorded as generated and not run here (never passed), and pinned."""
from __future__ import annotations

import dataclasses

import pytest
import yaml

from kit.families import render_all
from kit.families.cicd import checks
from kit.families.cicd.e2e import E2E_CHARTS, NODE_IMAGES, WORKFLOW, node_image, pin_problems, record
from kit.families.iac.addons import CHARTS
from kit.spec import load_spec


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    from tests.conftest import copy_example
    return load_spec(copy_example(tmp_path_factory.mktemp("e2e") / "shop-api"))


@pytest.fixture(scope="module")
def files(spec):
    return render_all(spec)


def test_recorded_as_generated_not_run_never_passed(files):
    records = {r.check: r for r in record(files)}
    e2e = records["cicd.e2e.kind"]
    assert e2e.status == "skipped" and e2e.reason.startswith("generated, not run here")
    assert records["cicd.rule.e2e_pins"].status == "passed"
    assert record({k: v for k, v in files.items() if k != WORKFLOW}) == []


def test_it_proves_what_the_review_asked(files, spec):
    text = files[WORKFLOW]
    wf = yaml.safe_load(text)
    run = "\n".join(s.get("run", "") for s in wf["jobs"]["e2e"]["steps"])
    assert "disableDefaultCNI: true" in run and "helm install cilium" in run             # an enforcing CNI
    for chart in ("cert-manager", "ingress-nginx", "external-secrets", "kube-prometheus-stack"):
        assert f"--version {E2E_CHARTS[chart]['version']}" in run
    assert all(E2E_CHARTS[c] == CHARTS[c] for c in CHARTS)        # the versions Terraform installs
    assert "kubectl apply -k app/k8s/overlays/e2e" in run and "resources: [../dev]" in run
    assert "rollout status" in run and "port-forward svc/ingress-nginx-controller" in run
    assert 'query=up{namespace=\\"${NS}\\"}' in run and "$api/rules" in run      # the Prometheus API
    assert '.state == "firing"' in run and "delete networkpolicy" in run             # an alert fired on purpose
    assert wf["permissions"] == {} and wf["jobs"]["e2e"]["permissions"] == {"contents": "read"}


def test_linted_like_the_other_workflows(files):
    assert WORKFLOW in checks.workflow_files(files)
    broken = {**files, WORKFLOW: files[WORKFLOW].replace("    timeout-minutes: 45\n", "")}
    timeouts = next(r for r in checks.rule_records(broken, checks.workflow_files(broken)) if r.check == "cicd.rule.timeouts")
    assert timeouts.status == "failed" and "e2e-kind.yml" in timeouts.log


PINS = [
    (" --version 1.17.4", "", "unpinned chart"),
    ('          echo "${HELM_SHA256}  $RUNNER_TEMP/helm.tgz" | sha256sum -c -\n', "", "helm.tgz is downloaded without a sha256"),
    ('          echo "${KIND_SHA256}  $RUNNER_TEMP/bin/kind" | sha256sum -c -\n', "", "bin/kind is downloaded without"),
    ("@sha256:050072256b9a903bd914c0b2866828150cb229cea0efe5892e2b644d5dd3b34f", "", "not pinned by digest"),
]


@pytest.mark.parametrize("old,new,reason", PINS, ids=[f"pins-{i}" for i in range(len(PINS))])
def test_pins_broken_fail(files, old, new, reason):
    text = files[WORKFLOW]
    assert pin_problems(text) == [] and old in text
    assert any(reason in p for p in pin_problems(text.replace(old, new, 1)))


def test_the_node_image_follows_the_kubernetes_version(spec):
    assert node_image("1.31") == NODE_IMAGES["1.31"]
    assert node_image("1.34") == NODE_IMAGES["1.33"] and node_image("1.29") == NODE_IMAGES["1.30"]
    k8s = dataclasses.replace(spec.option("kubernetes"), version="1.32")
    text = render_all(dataclasses.replace(spec, options={**spec.options, "kubernetes": k8s}))[WORKFLOW]
    assert f"NODE_IMAGE: {NODE_IMAGES['1.32']}" in text
