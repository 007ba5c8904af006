"""The Spec drives every file; generation is pure and deterministic."""
from __future__ import annotations

import re

import pytest
import yaml

from kit.errors import RenderError
from kit.families import render_all
from kit.families.container.dockerfile import dockerfile_facts
from kit.render import render_variant
from kit.spec import load_spec
from tests.conftest import write_task


def test_same_spec_gives_identical_bytes(minimal):
    first = render_all(load_spec(minimal))
    second = render_all(load_spec(minimal))
    assert first == second and set(first) >= {"Dockerfile", ".dockerignore", "docker/entrypoint.sh",
                                              "compose.yaml", ".env.example", "k8s/base/deployment.yaml",
                                              "monitoring/prometheus.yml"}


def test_values_come_from_the_spec(minimal):
    write_task(minimal, "service:\n  name: mini\n  source: src\n  port: 9123\n  health: /livez\n")
    files = render_all(load_spec(minimal))
    facts = dockerfile_facts(files["Dockerfile"])
    assert facts.expose == (9123,) and facts.user == "10001:10001" and facts.stages == 2
    assert "http://127.0.0.1:9123/livez" in facts.healthcheck[-1]
    assert "0.0.0.0:9123" in facts.cmd
    compose = yaml.safe_load(files["compose.yaml"])
    assert compose["services"]["mini"]["healthcheck"]["test"] == ["CMD", *facts.healthcheck]
    assert compose["services"]["mini"]["ports"] == ["127.0.0.1:${APP_PORT:-9123}:9123"]


def test_no_health_path_falls_back_to_tcp(minimal):
    (minimal / "src" / "app.py").write_text("from flask import Flask\napp = Flask(__name__)\n")
    spec = load_spec(minimal)
    assert spec.health_path == "" and "TCP" in spec.health_fallback
    assert "socket.create_connection" in render_all(spec)["Dockerfile"]


def test_dependencies_secrets_and_env(example):
    spec = load_spec(example)
    files = render_all(spec)
    compose = yaml.safe_load(files["compose.yaml"])
    app = compose["services"]["shop-api"]
    assert set(app["depends_on"]) == {"db", "cache"}
    assert all(v["condition"] == "service_healthy" for v in app["depends_on"].values())
    assert app["environment"]["PGHOST"] == "db" and app["environment"]["REDIS_URL"] == "redis://cache:6379/0"
    assert "PGPASSWORD" not in app["environment"] and app["secrets"] == ["PGPASSWORD"]
    assert compose["services"]["db"]["image"] == "postgres:15-bookworm"
    assert compose["services"]["db"]["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/PGPASSWORD"
    assert compose["secrets"] == {"PGPASSWORD": {"file": "./secrets/PGPASSWORD"}}
    assert re.search(r"^PGPASSWORD=change-me$", files[".env.example"], re.M)


def test_missing_template_variable_is_an_error():
    with pytest.raises(RenderError, match="missing"):
        render_variant("container", "python", {"name": "x"})


def test_pinned_server_added_when_missing(minimal):
    spec = load_spec(minimal)
    assert spec.extra_packages == ("gunicorn==23.0.0",)
    assert '"gunicorn==23.0.0"' in render_all(spec)["Dockerfile"]
