"""Container family: Dockerfile, .dockerignore and the secrets entrypoint."""
from __future__ import annotations

from kit.model import CONSTRAINTS_FILE, GO_RUNTIME_IMAGE, UV_PIN, Spec
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


# The package managers kit installs in the build stage when the lockfile is yarn's or pnpm's
# (npm comes with node): npm package, the version used when package.json's packageManager names
# none (the newest release that runs on Node 18 and reads the current lockfile format), and the
# cache folder the install's BuildKit cache mount keeps.
NODE_TOOLS = {
    "pnpm": ("pnpm", "9.15.9", "/root/.pnpm-store"),
    "yarn-classic": ("yarn", "1.22.22", "/root/.yarn-cache"),
    "yarn-berry": ("@yarnpkg/cli-dist", "4.5.3", "/root/.yarn/berry/cache"),
}


def node_tool(spec: Spec) -> dict[str, str]:
    """The yarn or pnpm the build stage installs, pinned, with npm from the same registry into
    /opt/<manager> (not -g: node:* images already carry a yarn 1 in /usr/local/bin): version,
    where the version comes from, the install command and the cache folder. Empty for npm, and
    for yarn berry with a committed release (.yarnrc.yml's yarnPath), which runs as it is."""
    facts = spec.facts
    kind = facts.lock_kind if facts.package_manager == "yarn" else facts.package_manager
    if kind not in NODE_TOOLS or (kind == "yarn-berry" and facts.yarn_path):
        return {}
    package, pinned, cache = NODE_TOOLS[kind]
    version = facts.manager_version or pinned
    return {"package": package, "version": version, "cache": cache,
            "origin": "package.json's packageManager" if facts.manager_version else "kit's pin",
            "install": f"npm install --prefix /opt/{facts.package_manager} --no-audit --no-fund "
                       f"--no-save {package}@{version}"}


def node_install(spec: Spec, production: bool) -> str:
    """The install command: exactly from the lockfile when there is one (npm ci, yarn
    --frozen-lockfile or --immutable, pnpm --frozen-lockfile), each reading the one registry build
    argument NPM_CONFIG_REGISTRY; `npm install` with a warning recorded in the Spec's facts otherwise."""
    facts = spec.facts
    manager = facts.package_manager
    cache = node_tool(spec).get("cache", "")
    if manager == "yarn" and facts.lock_kind == "yarn-berry":
        yarn = f"node {facts.yarn_path}" if facts.yarn_path else "yarn"
        # berry reads its registry from YARN_NPM_REGISTRY_SERVER (set from the build argument) and
        # refuses a plain-http one unless its host is in unsafeHttpWhitelist (seen in the sandbox:
        # YN0081 for every package): an http mirror's host is allowed, an https one needs nothing
        allow = ('host="${NPM_CONFIG_REGISTRY#*://}" && host="${host%%[:/]*}" \\\n    && '
                 'case "$NPM_CONFIG_REGISTRY" in http://*) export YARN_UNSAFE_HTTP_WHITELIST="$host" ;; esac \\\n    && ')
        return allow + (f"{yarn} workspaces focus --all --production" if production
                        else f"{yarn} install --immutable")
    if manager == "yarn":
        # yarn 1 fetches yarn.lock's `resolved` URLs as written, whatever --registry says (seen
        # here: it went to registry.yarnpkg.com past the local registry), so the build's copy of
        # the lockfile is pointed at the registry argument first (npm does the same by itself,
        # its replace-registry-host); versions and integrity hashes are unchanged
        rewrite = ('sed -i -e "s#https://registry.yarnpkg.com/#${NPM_CONFIG_REGISTRY%/}/#g" '
                   '-e "s#https://registry.npmjs.org/#${NPM_CONFIG_REGISTRY%/}/#g" yarn.lock \\\n    && ')
        return (rewrite + 'yarn install --frozen-lockfile --non-interactive --registry "$NPM_CONFIG_REGISTRY" '
                f"--cache-folder {cache}" + (" --production" if production else ""))
    if manager == "pnpm":     # pnpm reads npm_config_registry like npm
        return f"pnpm install --frozen-lockfile --store-dir {cache}" + (" --prod" if production else "")
    base = "npm ci" if spec.lock_file else "npm install --no-package-lock"
    return base + (" --omit=dev" if production else "") + " --no-audit --no-fund"


def node_ci_install(spec: Spec) -> str:
    """CI's install, with devDependencies (lint and test tools), exactly from the lockfile: the
    same pinned yarn or pnpm as the image, run with npx (not `npm install -g`: the node images
    already carry a yarn 1 in /usr/local/bin, and a global install would collide with it)."""
    facts = spec.facts
    tool = node_tool(spec)
    run = (f"npx --yes --package {tool['package']}@{tool['version']} -- {facts.package_manager}" if tool
           else f"node {facts.yarn_path}" if facts.yarn_path else facts.package_manager)
    if facts.package_manager == "yarn" and facts.lock_kind == "yarn-berry":
        return f"{run} install --immutable"
    if facts.package_manager == "yarn":
        return f"{run} install --frozen-lockfile --non-interactive"
    if facts.package_manager == "pnpm":
        return f"{run} install --frozen-lockfile"
    return "npm ci" if spec.lock_file else "npm install"


def node_prune(spec: Spec) -> str:
    """After `npm run build`: drop the devDependencies the build needed, each manager its way."""
    facts = spec.facts
    if facts.package_manager == "npm":
        return "npm prune --omit=dev --no-audit --no-fund"
    if facts.package_manager == "pnpm":
        return f"pnpm prune --prod --store-dir {node_tool(spec)['cache']}"
    return node_install(spec, production=True)


def render_container(spec: Spec) -> dict[str, str]:
    if spec.stack == "node":
        return render_node(spec)
    if spec.stack == "go":
        return render_go(spec)
    files = render_variant("container", "python", {
        "name": spec.name, "title": spec.title, "base_image": spec.base_image,
        "requirements_file": spec.requirements_file, "lock_file": spec.lock_file, "uv_pin": UV_PIN,
        "extra_packages": list(spec.extra_packages), "command": list(spec.command),
        "port": spec.port, "uid": spec.uid, "healthcheck": healthcheck_command(spec),
        "env": [("PORT", str(spec.port))], "constraints_file": spec.constraints_file,
    })
    if spec.constraints_file == CONSTRAINTS_FILE:
        files[CONSTRAINTS_FILE] = ("# pip constraints from .claude/task.md (service.constraints), written by kit:\n"
                                   "# versions held for packages the requirements do not pin\n"
                                   + "".join(f"{pin}\n" for pin in spec.constraints))
    return files


SIGTERM_INIT = "/usr/local/lib/kit/sigterm.cjs"


def node_command(spec: Spec) -> list[str]:
    """The image's CMD: the Spec's command, with kit's minimal init preloaded when the app handles
    no SIGTERM (node as PID 1 ignores it otherwise; docker/sigterm.cjs says why)."""
    command = list(spec.command)
    if command[:1] == ["node"] and not getattr(spec.facts, "handles_sigterm", True):
        return ["node", "--require", SIGTERM_INIT, *command[1:]]
    return command


def render_node(spec: Spec) -> dict[str, str]:
    files = _render_node(spec)
    if SIGTERM_INIT not in node_command(spec):
        files.pop("docker/sigterm.cjs")
    return files


def _render_node(spec: Spec) -> dict[str, str]:
    facts = spec.facts
    build = bool(getattr(facts, "build_script", False))
    berry = facts.package_manager == "yarn" and facts.lock_kind == "yarn-berry"
    return render_variant("container", "node", {
        "name": spec.name, "title": spec.title, "base_image": spec.base_image,
        "lock_file": spec.lock_file, "package_manager": facts.package_manager,
        "tool": node_tool(spec), "cache": node_tool(spec).get("cache", "/root/.npm"), "berry": berry,
        "berry_files": [f for f in (".yarnrc.yml", facts.yarn_path) if f and (spec.source / f).is_file()] if berry else [],
        "node_linker": berry and facts.yarn_node_linker != "node-modules",
        "install": node_install(spec, production=not build),
        "prune": node_prune(spec) if build else "",
        "build_script": build, "native": bool(getattr(facts, "native_modules", ())),
        "local_packages": list(getattr(facts, "local_packages", ())),
        "command": node_command(spec), "sigterm_init": SIGTERM_INIT in node_command(spec),
        "port": spec.port, "uid": spec.uid, "healthcheck": node_healthcheck_command(spec),
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
