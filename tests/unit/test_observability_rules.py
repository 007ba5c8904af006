"""The observability family's cross-system rules (kit/families/observability/rules.py): each passes
on the generated deliverables and fails when the fault it encodes is planted on purpose."""
from __future__ import annotations

import pytest
import yaml

from kit.cli import main
from kit.families import render_all
from kit.families.observability import rules
from kit.families.observability.render import render_observability
from kit.spec import load_spec


@pytest.fixture
def spec(example):
    return load_spec(example)


@pytest.fixture
def files(spec):
    return render_all(spec)


def _set_slo(example, text: str) -> None:
    task = example / ".claude" / "task.md"
    task.write_text(task.read_text().replace("slo:\n", "slo:\n" + text, 1))


# ---------------------------------------------------------------- 1. the operator's selectors

def test_operator_objects_carry_kube_prometheus_stacks_default_release_label(spec, files):
    for rel in (rules.SERVICE_MONITORS, rules.PROMETHEUS_RULE):
        for doc in yaml.safe_load_all(files[rel]):
            assert doc["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    record = rules.operator_selector(spec, files)
    assert record.passed and record.figures["selector"] == {"release": "kube-prometheus-stack"}


@pytest.mark.parametrize("rel", [rules.SERVICE_MONITORS, rules.PROMETHEUS_RULE])
def test_an_object_without_the_release_label_fails_the_selector_rule(spec, files, rel):
    files[rel] = files[rel].replace('    release: "kube-prometheus-stack"\n', "")
    record = rules.operator_selector(spec, files)
    assert record.status == "failed" and "lacks release=kube-prometheus-stack" in record.reason


def test_the_release_name_is_set_by_the_task(example):
    _set_slo(example, "  prometheus_release: monitoring\n")
    spec = load_spec(example)
    files = render_observability(spec)
    labels = yaml.safe_load(files[rules.PROMETHEUS_RULE])["metadata"]["labels"]
    assert labels["release"] == "monitoring" and rules.operator_selector(spec, files).passed


def test_operator_labels_name_what_a_custom_prometheus_selects(example):
    _set_slo(example, "  operator_labels: {team: shop}\n")
    spec = load_spec(example)
    files = render_observability(spec)
    assert "release" not in yaml.safe_load(files[rules.PROMETHEUS_RULE])["metadata"]["labels"]
    assert rules.operator_selector(spec, files).figures["selector"] == {"team": "shop"}


def test_operator_labels_without_the_declared_release_are_refused(example, capsys):
    _set_slo(example, "  prometheus_release: prom\n  operator_labels: {team: shop}\n")
    assert main(["generate", str(example)]) == 2
    assert "slo.operator_labels: must include release: prom" in capsys.readouterr().err
