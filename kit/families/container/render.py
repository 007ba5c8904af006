"""Container family: Dockerfile, .dockerignore and the secrets entrypoint."""
from __future__ import annotations

from kit.model import UV_PIN, Spec
from kit.render import render_variant


def healthcheck_command(spec: Spec) -> list[str]:
    """The exec-form health command, needing no curl: Python's own urllib or socket."""
    if spec.health_path:
        url = f"http://127.0.0.1:{spec.port}{spec.health_path}"
        code = f"import urllib.request; urllib.request.urlopen({url!r}, timeout=4)"
    else:
        code = f"import socket; socket.create_connection(('127.0.0.1', {spec.port}), timeout=4).close()"
    return ["python3", "-c", code]


def render_container(spec: Spec) -> dict[str, str]:
    return render_variant("container", "python", {
        "name": spec.name, "title": spec.title, "base_image": spec.base_image,
        "requirements_file": spec.requirements_file, "lock_file": spec.lock_file, "uv_pin": UV_PIN,
        "extra_packages": list(spec.extra_packages), "command": list(spec.command),
        "port": spec.port, "uid": spec.uid, "healthcheck": healthcheck_command(spec),
        "env": [("PORT", str(spec.port))],
    })
