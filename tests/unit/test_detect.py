"""Detection of Python services from their source."""
from __future__ import annotations

import pytest

from kit.detect.python import detect_python, health_from_routes


def _write(root, files):
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_flask_requirements(tmp_path):
    src = _write(tmp_path, {"requirements.txt": "Flask==3.1.0  # web\nprometheus_client==0.21.1\n-e .\n",
                            "app.py": "from flask import Flask\napp = Flask(__name__)\n"
                                      "@app.route('/healthz')\ndef h(): return 'ok'\n"})
    facts = detect_python(src)
    assert facts.requirements_file == "requirements.txt"
    assert facts.framework == "flask" and facts.app == "app:app"
    assert facts.dependencies == ("flask", "prometheus-client")
    assert facts.uses_prometheus and "/healthz" in facts.routes


def test_fastapi_pyproject_and_python_version(tmp_path):
    src = _write(tmp_path, {
        "pyproject.toml": '[project]\nname="svc"\nrequires-python=">=3.10,<3.12"\n'
                          'dependencies=["fastapi>=0.110", "uvicorn[standard]"]\n',
        "uv.lock": "", "svc/main.py": "from fastapi import FastAPI\napi = FastAPI()\n"
                                    "@api.get('/health')\ndef h(): return {}\n"})
    facts = detect_python(src)
    assert (facts.requirements_file, facts.lock_file) == ("pyproject.toml", "uv.lock")
    assert facts.framework == "fastapi" and facts.app == "svc.main:api"
    assert facts.python == "3.11"
    assert health_from_routes(facts.routes) == "/health"


def test_django_wsgi_module(tmp_path):
    src = _write(tmp_path, {"requirements.txt": "Django==4.2.16\n",
                            "manage.py": "", "shop/wsgi.py": "from django.core.wsgi import get_wsgi_application\n"
                                                              "application = get_wsgi_application()\n",
                            "shop/urls.py": "urlpatterns = [path('healthz/', view)]\n"})
    facts = detect_python(src)
    assert facts.framework == "django" and facts.app == "shop.wsgi:application"
    assert "/healthz/" in facts.routes


def test_nothing_detected(tmp_path):
    facts = detect_python(_write(tmp_path, {"README.md": "hi"}))
    assert facts.requirements_file == "" and facts.framework == "" and facts.app == ""


def test_no_health_route_means_fallback():
    assert health_from_routes(("/", "/items")) == ""


def test_a_pyproject_kit_cannot_read_is_an_error_naming_the_file_and_line(tmp_path):
    """Read as 'no dependencies' before; now the file and the line are named."""
    import pytest

    from kit.errors import DetectionError
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["flask>=3"\n')
    with pytest.raises(DetectionError) as info:
        detect_python(tmp_path)
    assert info.value.file == str(tmp_path / "pyproject.toml") and info.value.line == 3
    assert "not valid TOML" in str(info.value)


def test_a_broken_uv_lock_and_build_requires_are_errors_too(tmp_path):
    import pytest

    from kit.errors import DetectionError
    from kit.sandbox.pkgindex import build_requires
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["flask>=3"]\n')
    (tmp_path / "uv.lock").write_text("version = 1\n[[package]\n")
    with pytest.raises(DetectionError) as info:
        detect_python(tmp_path)
    assert info.value.file == str(tmp_path / "uv.lock")
    (tmp_path / "uv.lock").unlink()
    assert build_requires(tmp_path) == []
    (tmp_path / "pyproject.toml").write_text("[build-system]\nrequires = [\n")
    with pytest.raises(DetectionError):
        build_requires(tmp_path)


def test_a_layer_size_docker_did_not_print_is_an_error_not_zero():
    import pytest

    from kit.errors import SandboxError
    from kit.sandbox.build import _parse_size
    assert _parse_size("0B") == 0 and _parse_size("12.5MB") == 12_500_000 and _parse_size("3kB") == 3000
    with pytest.raises(SandboxError):
        _parse_size("N/A")


@pytest.mark.parametrize("requires,python", [(">=3.12", "3.12"), (">= 3.13", "3.13"), (">=3.9", "3.9"),
                                              (">=3.10,<3.12", "3.11"), (">=3.8", ""), (">=3.14", "")])
def test_requires_python_floor_picks_that_python(tmp_path, requires, python):
    """`requires-python = ">=3.12"` built on the 3.11 default makes `pip install .` refuse the
    project: a floor within the supported 3.9-3.13 is the Python the image gets."""
    src = _write(tmp_path, {"pyproject.toml": f'[project]\nname="svc"\nrequires-python="{requires}"\n',
                            "app.py": "print(1)\n"})
    assert detect_python(src).python == python
