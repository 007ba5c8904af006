"""Cross-artifact consistency rules catch deliberately broken deliverables."""
from __future__ import annotations

import json

import pytest

from kit.families import render_all
from kit.families.compose import checks as compose_checks
from kit.families.container.checks import consistency as dockerfile_consistency
from kit.spec import load_spec
from kit.task_schema import schema_json
from tests.conftest import ROOT


@pytest.fixture
def spec_files(example):
    spec = load_spec(example)
    return spec, render_all(spec)


def test_generated_files_are_consistent(spec_files):
    spec, files = spec_files
    assert dockerfile_consistency(spec, files["Dockerfile"]).passed
    assert compose_checks.consistency(spec, files["compose.yaml"]).passed
    assert compose_checks.env_example(spec, files[".env.example"]).passed


@pytest.mark.parametrize("old,new,reason", [
    ("EXPOSE 8000", "EXPOSE 8080", "EXPOSE (8080,) != service port 8000"),
    ("USER 10001:10001", "USER root", "USER must be a numeric non-root id"),
    ("USER 10001:10001", "USER 0:0", "USER must be a numeric non-root id"),
    ("127.0.0.1:8000/healthz", "127.0.0.1:8000/status", "HEALTHCHECK does not probe /healthz"),
    ("127.0.0.1:8000/healthz", "127.0.0.1:9000/healthz", "HEALTHCHECK does not probe port 8000"),
    ("0.0.0.0:8000", "0.0.0.0:9000", "CMD does not bind port 8000"),
    ("FROM ${PYTHON_IMAGE} AS runtime", "", "the build is not multi-stage"),
])
def test_broken_dockerfile_fails(spec_files, old, new, reason):
    spec, files = spec_files
    broken = files["Dockerfile"].replace(old, new)
    if not new.startswith("FROM") and old.startswith("FROM"):
        broken = broken.replace("COPY --from=build /opt/venv /opt/venv\n", "")
    record = dockerfile_consistency(spec, broken)
    assert record.status == "failed" and reason in record.reason


@pytest.mark.parametrize("old,new,reason", [
    ("condition: service_healthy", "condition: service_started", "does not wait for db to be healthy"),
    ('"127.0.0.1:${APP_PORT:-8000}:8000"', '"${APP_PORT:-8000}:8000"', "published beyond 127.0.0.1"),
    ('"127.0.0.1:${APP_PORT:-8000}:8000"', '"127.0.0.1:8000:9000"', "no published port maps to container port 8000"),
    ("      - db-data:/var/lib/postgresql/data\n", "", "db keeps no data in the named volume db-data"),
    ("      PGHOST: \"db\"\n", "      PGHOST: \"db\"\n      PGPASSWORD: \"x\"\n", "secret PGPASSWORD is set as plain environment"),
    ("urlopen('http://127.0.0.1:8000/healthz'", "urlopen('http://127.0.0.1:8000/'", "differs from the Dockerfile"),
    ("memory: 512m", "memory: 2g", "differ from the service model"),
])
def test_broken_compose_fails(spec_files, old, new, reason):
    spec, files = spec_files
    assert old in files["compose.yaml"]
    record = compose_checks.consistency(spec, files["compose.yaml"].replace(old, new, 1))
    assert record.status == "failed" and reason in record.reason


def test_env_example_with_a_real_value_fails(spec_files):
    spec, files = spec_files
    record = compose_checks.env_example(spec, files[".env.example"].replace("PGPASSWORD=change-me", "PGPASSWORD=s3cret"))
    assert record.status == "failed" and "other than the placeholder" in record.reason


def test_published_schema_is_current():
    assert (ROOT / "docs" / "reference" / "task.schema.json").read_text() == schema_json()
    json.loads(schema_json())


def test_every_family_is_one_package_with_template_notebook_docs_and_tests():
    """The real layout: kit/families/<name>/ is a package declaring FAMILY, its templates sit in
    templates/<name>/<variant>/ with a manifest, and it has a notebook, a docs page and tests."""
    from kit.core.family import Family
    from kit.families import families
    packages = sorted(p.parent.name for p in (ROOT / "kit" / "families").glob("*/__init__.py"))
    assert packages == sorted(families())
    tests = "".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))
    for name, family in families().items():
        assert isinstance(family, Family) and family.name == name
        assert family.template.split("/")[0] == name, name
        assert (ROOT / "templates" / family.template / "manifest.yaml").is_file(), name
        assert (ROOT / "notebooks" / f"{family.notebook}.ipynb").is_file(), name
        assert (ROOT / "docs" / "families" / f"{name}.md").is_file(), name
        assert f"kit.families.{name}" in tests, f"no test imports kit.families.{name}"
        assert family.static_checks, f"{name} declares no static check"
        for check in family.static_checks + family.sandbox_checks:
            assert callable(check) and (check.__module__ + ".").startswith(f"kit.families.{name}."), check


def test_quantities():
    from kit.resources import compose_memory, parse_cpu, parse_memory
    assert parse_cpu("500m") == 0.5 and parse_cpu(2) == 2.0 and parse_cpu("1.5") == 1.5
    assert parse_memory("512Mi") == 512 * 2**20 and parse_memory("1Gi") == 2**30 and parse_memory("500M") == 5 * 10**8
    assert compose_memory(512 * 2**20) == "512m" and compose_memory(2**30) == "1g"
    for bad in ("0", "-1", "1.2.3", "fast"):
        with pytest.raises(ValueError):
            parse_cpu(bad)
    for bad in ("0Mi", "512MB", "1 Gi x"):
        with pytest.raises(ValueError):
            parse_memory(bad)


@pytest.mark.tools
def test_project_docs_build_strict(tmp_path):
    """The project's own docs site (mkdocs.yml + docs/) builds with --strict."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    mkdocs = Path(sys.executable).with_name("mkdocs")
    proc = subprocess.run([str(mkdocs), "build", "--strict", "--quiet", "-d", str(tmp_path / "site")], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "site" / "task-format.html").is_file()
