"""The pipelines where they meet other systems: GitHub's workflow discovery at the repository
root, the cluster API's network reach, the registry the nodes pull from. Each rule passes on the
example and fails when broken on purpose."""
from __future__ import annotations

import dataclasses

import pytest

from kit.families import render_all
from kit.families.cicd.crossrules import CROSS_RULES, cross_records
from kit.spec import load_spec

CI = ".github/workflows/ci.yml"
DEPLOY_ENV = ".github/workflows/deploy-environment.yml"


def with_ci(spec, **ci):
    if "provider" in ci:
        ci["providers"] = {"github": ("github",), "gitlab": ("gitlab",), "both": ("github", "gitlab")}[ci["provider"]]
    return dataclasses.replace(spec, options={**spec.options, "ci": dataclasses.replace(spec.option("ci"), **ci)})


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    from tests.conftest import copy_example
    return with_ci(load_spec(copy_example(tmp_path_factory.mktemp("cross") / "shop-api")), provider="both")


@pytest.fixture(scope="module")
def files(spec):
    return render_all(spec)


def problems(spec, files, rule):
    return CROSS_RULES[rule][1](spec, files)


def test_example_passes_every_cross_rule(spec, files):
    records = {r.check: r for r in cross_records(spec, files)}
    assert {f"cicd.rule.{rule}" for rule in CROSS_RULES} == set(records)
    assert [(c, r.reason) for c, r in records.items() if r.status != "passed"] == []


LAYOUT = [
    (CI, "          context: app\n", "          context: .\n", "build context '.' holds no Dockerfile"),
    (CI, "          dockerfile: app/Dockerfile\n", "          dockerfile: Dockerfile\n", "'Dockerfile' does not exist"),
    (CI, "        working-directory: app\n", "        working-directory: src\n", "'src' does not exist"),
    (CI, "cache-dependency-path: app/requirements.txt", "cache-dependency-path: requirements.txt",
     "'requirements.txt' does not exist"),
    (DEPLOY_ENV, 'kubectl apply -k "app/k8s/overlays/${OVERLAY}"', 'kubectl apply -k "k8s/overlays/${OVERLAY}"',
     "'k8s/overlays/prod/kustomization.yaml' does not exist"),
    (".gitlab-ci.yml", "SOURCE_DIR: app ", "SOURCE_DIR: . ", "build context '.' holds no Dockerfile"),
]


@pytest.mark.parametrize("path,old,new,reason", LAYOUT, ids=[f"layout-{i}" for i in range(len(LAYOUT))])
def test_layout_broken_fails(spec, files, path, old, new, reason):
    """The old usage copied .github/ into app/, where GitHub never runs it; from the root, the
    paths must lead into app/."""
    assert old in files[path]
    found = problems(spec, {**files, path: files[path].replace(old, new)}, "layout")
    assert any(reason in p for p in found), found


def test_source_outside_the_repository_fails(spec, files, tmp_path):
    outside = dataclasses.replace(spec, project=spec.source / "nested")
    assert any("outside the project" in p for p in problems(outside, files, "layout"))


def test_usage_puts_the_pipelines_at_the_root(spec, files):
    from kit.report.workmd import _usage
    text = "\n".join(_usage(spec, files))
    root_copy = next(line for line in text.splitlines() if ".github/workflows/ci.yml" in line)
    assert root_copy.rstrip().endswith(" ../)") and "Dockerfile" not in root_copy
    src_copy = next(line for line in text.splitlines() if " Dockerfile " in line)
    assert src_copy.rstrip().endswith(" ../app/)") and ".github" not in src_copy
