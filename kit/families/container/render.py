"""Container family: Dockerfile, .dockerignore and the secrets entrypoint."""
from __future__ import annotations

from kit.model import GO_RUNTIME_IMAGE, UV_PIN, Spec
from kit.render import render_variant


def healthcheck_command(spec: Spec) -> list[str]:
    """The exec-form health command, needing no curl: Python's own urllib or socket (Node's http
    or net for a Node service)."""
    if spec.stack == "node":
        return node_healthcheck_command(spec)
    if spec.stack == "go":       # kit-init, the static probe built into the image (docker/kit-init/main.go)
        return ["/app/kit-init", "health"]
    if spec.health_path:
        url = f"http://127.0.0.1:{spec.port}{spec.health_path}"
        code = f"import urllib.request; urllib.request.urlopen({url!r}, timeout=4)"
    else:
        code = f"import socket; socket.create_connection(('127.0.0.1', {spec.port}), timeout=4).close()"
    return ["python3", "-c", code]


def node_healthcheck_command(spec: Spec) -> list[str]:
    """The exec-form health command in Node itself (no curl in node:*-slim). `node -e` runs as
    CommonJS whatever package.json's "type" says, so require() works for ESM services too."""
    if spec.health_path:
        url = f"http://127.0.0.1:{spec.port}{spec.health_path}"
        code = (f"require('http').get({url!r}, r => process.exit(r.statusCode === 200 ? 0 : 1))"
                ".on('error', () => process.exit(1)).setTimeout(4000, () => process.exit(1))")
    else:
        code = (f"require('net').connect({spec.port}, '127.0.0.1', () => process.exit(0))"
                ".on('error', () => process.exit(1)).setTimeout(4000, () => process.exit(1))")
    return ["node", "-e", code]


def node_install(spec: Spec, production: bool) -> str:
    """The install command: exactly from the lockfile when there is one (npm ci, yarn --immutable,
    pnpm --frozen-lockfile); `npm install` with a warning recorded in the Spec's facts otherwise."""
    facts = spec.facts
    manager = getattr(facts, "package_manager", "npm")
    if manager == "yarn":
        if getattr(facts, "lock_kind", "") == "yarn-berry":
            return "corepack yarn workspaces focus --all --production" if production else \
                "corepack yarn install --immutable"
        return "corepack yarn install --frozen-lockfile" + (" --production" if production else "")
    if manager == "pnpm":
        return "corepack pnpm install --frozen-lockfile" + (" --prod" if production else "")
    base = "npm ci" if spec.lock_file else "npm install --no-package-lock"
    return base + (" --omit=dev" if production else "") + " --no-audit --no-fund"


def render_container(spec: Spec) -> dict[str, str]:
    if spec.stack == "node":
        return render_node(spec)
    if spec.stack == "go":
        return render_go(spec)
    return render_variant("container", "python", {
        "name": spec.name, "title": spec.title, "base_image": spec.base_image,
        "requirements_file": spec.requirements_file, "lock_file": spec.lock_file, "uv_pin": UV_PIN,
        "extra_packages": list(spec.extra_packages), "command": list(spec.command),
        "port": spec.port, "uid": spec.uid, "healthcheck": healthcheck_command(spec),
        "env": [("PORT", str(spec.port))],
    })


def render_node(spec: Spec) -> dict[str, str]:
    facts = spec.facts
    build = bool(getattr(facts, "build_script", False))
    return render_variant("container", "node", {
        "name": spec.name, "title": spec.title, "base_image": spec.base_image,
        "lock_file": spec.lock_file, "package_manager": getattr(facts, "package_manager", "npm"),
        "install": node_install(spec, production=not build),
        "prune": "npm prune --omit=dev --no-audit --no-fund" if build and facts.package_manager == "npm" else "",
        "build_script": build, "native": bool(getattr(facts, "native_modules", ())),
        "local_packages": list(getattr(facts, "local_packages", ())),
        "command": list(spec.command), "port": spec.port, "uid": spec.uid,
        "healthcheck": node_healthcheck_command(spec),
        "env": [("NODE_ENV", "production"), ("PORT", str(spec.port))],
    })


def render_go(spec: Spec) -> dict[str, str]:
    facts = spec.facts
    main = "." if spec.app == "." else f"./{spec.app}"
    return render_variant("container", "go", {
        "name": spec.name, "title": spec.title, "base_image": spec.base_image, "runtime_image": GO_RUNTIME_IMAGE,
        "main": main, "vendored": bool(getattr(facts, "vendored", False)), "has_go_sum": bool(spec.lock_file),
        "command": list(spec.command), "port": spec.port, "uid": spec.uid,
        "health_url": f"http://127.0.0.1:{spec.port}{spec.health_path}" if spec.health_path else "",
        "health_addr": f"127.0.0.1:{spec.port}", "env": [("PORT", str(spec.port))],
    })
