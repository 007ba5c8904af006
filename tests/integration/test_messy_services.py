"""Services nobody here wrote, each with one of the messes real services have (DESIGN.md,
"Real services are messy"). kit must either prove them or fail them for the right reason."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from kit.cli import main
from tests.conftest import copy_project
from tests.integration.helpers import assert_nothing_left

pytestmark = [pytest.mark.docker, pytest.mark.slow]
MESSY = Path(__file__).resolve().parent.parent / "fixtures" / "messy"


@pytest.fixture(autouse=True)
def _no_load_test(monkeypatch):
    """The scaling family's load test (about a minute a service) runs on the example and the slow
    fixture (tests/integration/test_scaling_live.py); these services are here for other things."""
    monkeypatch.setenv("KIT_LOADTEST", "off")


def _verify(name: str, tmp_path) -> tuple[int, dict]:
    project = copy_project(MESSY / name, tmp_path / name)
    assert main(["generate", str(project)]) == 0
    code = main(["verify", str(project)])
    records = json.loads((project / "kit-out" / "evidence.json").read_text())["records"]
    assert_nothing_left()
    return code, {r["check"]: r for r in records}


@pytest.mark.parametrize("name", ["fastapi-items", "django-notes", "port-env", "old-deps"])
def test_proven(name, tmp_path):
    """pyproject-only FastAPI (uvicorn added), Django with env-driven ALLOWED_HOSTS and a required
    secret, plain WSGI on a custom port read from $PORT, and old pins: all proven end to end."""
    code, records = _verify(name, tmp_path)
    failed = {k: r["reason"] for k, r in records.items() if r["status"] == "failed"}
    assert code == 0 and failed == {}
    assert records["container.healthy"]["status"] == "passed"
    assert records["compose.up"]["status"] == "passed"


def test_no_health_route_falls_back_to_tcp_and_says_so(tmp_path):
    code, records = _verify("no-health", tmp_path)
    assert code == 0
    assert "TCP" in records["container.healthy"]["fallback"]
    assert records["container.health_endpoint"]["title"] == "the port accepts TCP connections"
    assert records["compose.health"]["title"] == "the app's port accepts TCP connections inside the stack"
    assert records["container.metrics"]["status"] == "skipped"


def test_catch_all_app_does_not_fool_the_health_check(tmp_path):
    code, records = _verify("catch-all", tmp_path)
    assert code == 4
    assert records["container.health_endpoint"]["status"] == "passed"
    assert records["container.route_guard"]["status"] == "failed"
    assert "answers 200 on any path" in records["container.route_guard"]["reason"]


def test_uv_lock_is_installed_exactly(tmp_path):
    """pyproject allows fastapi <0.116, uv.lock pins 0.111.1 (and a uvicorn): the image has the
    locked versions, not the newest in range, and kit does not add its own uvicorn pin."""
    import subprocess
    code, records = _verify("uv-locked", tmp_path)
    assert code == 0
    image = records["container.build"]["figures"]["image"]
    versions = subprocess.run(["docker", "run", "--rm", "--label", "org.kit.sandbox=true", image, "python3", "-c",
                               "import fastapi, uvicorn; print(fastapi.__version__, uvicorn.__version__)"],
                              capture_output=True, text=True, check=True).stdout.split()
    assert versions == ["0.111.1", "0.54.0"]


def test_django_host_check_fails_fast_with_the_cause(tmp_path):
    """Without DJANGO_ALLOWED_HOSTS the app answers 400 to every probe: kit stops waiting after a
    streak of identical 4xx answers and names Django's ALLOWED_HOSTS as the cause."""
    from kit.config import Settings
    project = copy_project(MESSY / "django-notes", tmp_path / "django-notes")
    task = project / ".claude" / "task.md"
    task.write_text(task.read_text().replace('  env:\n    DJANGO_ALLOWED_HOSTS: "*"\n', ""))
    assert "DJANGO_ALLOWED_HOSTS" not in task.read_text().split("---")[1]
    assert main(["generate", str(project)]) == 0
    assert main(["verify", str(project)]) == 4
    records = {r["check"]: r for r in json.loads((project / "kit-out" / "evidence.json").read_text())["records"]}
    healthy = records["container.healthy"]
    assert "HTTP 4xx" in healthy["reason"] and "ALLOWED_HOSTS" in healthy["reason"]
    # kit stopped at the streak, far inside its own deadline (not a timing test: kit's own figure)
    assert healthy["duration_s"] < Settings.load().health_timeout_s / 2, healthy["duration_s"]
    startup = records["kubernetes.pod.startup"]        # the pod sandbox stops on the same streak
    assert startup["status"] == "failed" and "the same HTTP 400 5 times in a row" in startup["reason"]
    assert startup["figures"]["probes"] == 5
    assert_nothing_left()


def test_dependency_drift_is_named_and_fixed_by_a_constraint_without_editing_the_app(tmp_path, monkeypatch):
    """Flask 2.0.3 is pinned, Werkzeug is not: today it resolves to 3.x, which dropped what Flask 2.0
    imports. The container check names that root cause and the constraint to add; with
    service.constraints (given here as a batch-style override, task.md untouched) the same app passes."""
    from kit.pipeline import generate, verify
    from kit.spec import load_spec
    from kit.task import OVERRIDES_ENV, Override, overrides_to_env
    project = copy_project(MESSY / "drift", tmp_path / "drift")
    source_before = {p.name: p.read_bytes() for p in (project / "src").iterdir()}
    spec = load_spec(project)
    generate(spec)
    healthy = next(r for r in verify(spec, ["container"]) if r.check == "container.healthy")
    assert healthy.status == "failed"
    assert "Root cause: ImportError: cannot import name 'url_quote' from 'werkzeug.urls'" in healthy.reason
    assert 'which the requirements do not pin' in healthy.reason and 'service.constraints: ["werkzeug<3"]' in \
        healthy.reason, healthy.reason
    monkeypatch.setenv(OVERRIDES_ENV, overrides_to_env((Override("service.constraints", ["werkzeug<2.1"], "test"),)))
    spec = load_spec(project)
    files = generate(spec)
    assert files["docker/constraints.txt"].endswith("werkzeug<2.1\n")
    assert '-c /tmp/constraints.txt -r requirements.txt' in files["Dockerfile"]
    records = {r.check: r for r in verify(spec, ["container"])}
    assert records["container.healthy"].status == "passed", records["container.healthy"].reason
    assert {p.name: p.read_bytes() for p in (project / "src").iterdir()} == source_before
    assert_nothing_left()
