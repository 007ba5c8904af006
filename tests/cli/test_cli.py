"""The command line: exact exit codes and messages."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from kit.cli import main

KIT = [sys.executable, "-m", "kit.cli"]


def test_generate_prints_every_file_and_exits_0(minimal, capsys):
    assert main(["generate", str(minimal)]) == 0
    printed = sorted(p.split("kit-out/")[1] for p in capsys.readouterr().out.split())
    from kit.families import render_all
    from kit.spec import load_spec
    assert printed == sorted(render_all(load_spec(minimal)))       # every family's files, each printed once
    assert {".dockerignore", ".env.example", "Dockerfile", "compose.yaml", "docker/entrypoint.sh",
            "k8s/base/kustomization.yaml", "k8s/overlays/prod/kustomization.yaml",
            ".github/workflows/ci.yml", "terraform/environments/prod/main.tf",
            "monitoring/prometheus.yml"} <= set(printed)
    assert (minimal / "kit-out" / "docker" / "entrypoint.sh").stat().st_mode & 0o111


def test_generate_twice_is_byte_identical(minimal):
    main(["generate", str(minimal)])
    first = {p: p.read_bytes() for p in (minimal / "kit-out").rglob("*") if p.is_file()}
    main(["generate", str(minimal)])
    assert first == {p: p.read_bytes() for p in (minimal / "kit-out").rglob("*") if p.is_file()}


def test_verify_before_generate_says_what_to_do(minimal, capsys):
    assert main(["verify", str(minimal), "--static"]) == 1
    assert "run `kit generate` first" in capsys.readouterr().err


@pytest.mark.tools
def test_static_verify_passes_on_generated_files(minimal, capsys):
    assert main(["generate", str(minimal)]) == 0
    assert main(["verify", str(minimal), "--static"]) == 0
    out = capsys.readouterr().out
    assert "container.hadolint" in out and "compose.schema" in out and "0 failed" in out


@pytest.mark.tools
def test_static_verify_fails_on_a_lint_finding(minimal, capsys):
    main(["generate", str(minimal)])
    dockerfile = minimal / "kit-out" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("WORKDIR /app", "WORKDIR app"))  # DL3000
    assert main(["verify", str(minimal), "--static"]) == 4
    captured = capsys.readouterr()
    assert "container.hadolint" in captured.err and "DL3000" in (minimal / "kit-out" / "evidence.json").read_text()


def test_unknown_verb_is_a_usage_error():
    proc = subprocess.run([*KIT, "deploy"], capture_output=True, text=True)
    assert proc.returncode == 2 and "invalid choice: 'deploy'" in proc.stderr


@pytest.mark.docker
def test_doctor_lists_everything_present():
    proc = subprocess.run([*KIT, "doctor"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout
    for name in ("Docker engine", "docker compose v2", "docker buildx", "hadolint", "check-jsonschema",
                 "shellcheck", "stand-in kit-standin/postgres:15", "stand-in kit-standin/python:3.11-bookworm"):
        assert re.search(rf"^ok\s+{re.escape(name)}\s", proc.stdout, re.M), (name, proc.stdout)


def test_doctor_names_the_fix_when_the_engine_is_missing(tmp_path):
    env = {"DOCKER_HOST": f"unix://{tmp_path}/none.sock", "PATH": "/usr/bin:/bin:/usr/local/bin"}
    proc = subprocess.run([*KIT, "doctor"], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 1
    assert "missing Docker engine" in proc.stdout and "fix: start one: bash scripts/setup.sh" in proc.stdout


def test_diff_shows_what_regenerating_would_change(minimal, capsys):
    assert main(["generate", str(minimal)]) == 0
    capsys.readouterr()
    assert main(["diff", str(minimal)]) == 0 and capsys.readouterr().out == ""
    dockerfile = minimal / "kit-out" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("EXPOSE 8000", "EXPOSE 9000"))
    assert main(["diff", str(minimal)]) == 1
    out = capsys.readouterr().out
    assert "--- a/Dockerfile" in out and "-EXPOSE 9000" in out and "+EXPOSE 8000" in out


def test_publish_before_run_says_what_to_do(minimal, capsys):
    assert main(["publish", str(minimal)]) == 1
    assert "run `kit run` first" in capsys.readouterr().err


def test_lab_without_jupyterlab_names_the_install(minimal, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("sys.executable", str(tmp_path / "bin" / "python"))   # a venv with no jupyter-lab
    assert main(["lab", str(minimal)]) == 1
    err = capsys.readouterr().err
    assert "JupyterLab is not installed" in err and "scripts/setup.sh" in err
