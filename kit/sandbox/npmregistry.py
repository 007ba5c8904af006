"""A local npm registry for image builds: containers cannot reach registry.npmjs.org here, the
host can (SANDBOX.md), as for pip and PyPI (kit.sandbox.pkgindex).

Why not verdaccio: it is a whole Node application with its own storage format and ~hundreds of
packages to install and pin, and it would need Node on the host. What a build needs is two kinds
of GET: the tarballs a lockfile names, and, without a lockfile, the packuments (package
metadata). So kit does what pkgindex does for pip, in the standard library:

- **pre-filled cache**: every tarball the lockfile resolves (package-lock.json v2/v3 `packages`
  entries with `resolved` and `integrity`) is downloaded on the host once, checked against its
  integrity hash and kept under kit's state dir (``npm-cache/``);
- **a small registry** on 127.0.0.1 serves that cache. With a lockfile it is *offline*: a request
  for anything the lockfile does not name gets 404, so a build that passes proves the lockfile is
  complete. Without a lockfile it proxies packuments and tarballs from the public registry
  (through the host), rewriting tarball URLs to itself.

The build runs with ``--network host --build-arg NPM_CONFIG_REGISTRY=http://127.0.0.1:PORT/``;
npm replaces the registry host of the lockfile's `resolved` URLs with the configured registry
(its `replace-registry-host` setting, default `npmjs`), which is also how a corporate mirror works.
"""
from __future__ import annotations

import base64
import contextlib
import hashlib
import http.server
import json
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from kit.config import Settings
from kit.errors import SandboxError

UPSTREAM = "https://registry.npmjs.org/"


def cache_dir() -> Path:
    path = Settings.load().state_dir / "npm-cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


def locked_tarballs(lockfile: Path, omit_dev: bool = True) -> list[tuple[str, str]]:
    """(tarball path under the registry, integrity) for every package a package-lock.json v2/v3
    installs (devDependencies left out when the image omits them)."""
    data = json.loads(Path(lockfile).read_text())
    out = []
    for key, meta in sorted(data.get("packages", {}).items()):
        if "node_modules/" not in key or not isinstance(meta, dict) or meta.get("link") or "version" not in meta:
            continue     # the root, a link, or a link's target ("packages/x": a folder of the source)
        if omit_dev and meta.get("dev"):
            continue
        if meta.get("resolved"):
            url = urllib.parse.urlparse(meta["resolved"])
            if url.scheme not in ("http", "https"):     # git+ssh, file: not served by a registry
                continue
            rel = url.path.lstrip("/")
        else:   # written with omit-lockfile-registry-resolved: the registry's default tarball path
            name = meta.get("name") or key.rsplit("node_modules/", 1)[-1]
            rel = f"{name}/-/{name.rsplit('/', 1)[-1]}-{meta['version']}.tgz"
        out.append((rel, meta.get("integrity", "")))
    return out


def pnpm_locked_tarballs(lockfile: Path) -> list[tuple[str, str]]:
    """(tarball path, integrity) for every registry package a pnpm-lock.yaml (v6 to v9) names:
    its `packages` keys are name@version (v6: /name@version), and a registry package's
    resolution is its integrity alone, so pnpm asks the registry for the default tarball path."""
    import yaml
    data = yaml.safe_load(Path(lockfile).read_text()) or {}
    out = []
    for key, meta in sorted((data.get("packages") or {}).items()):
        resolution = (meta or {}).get("resolution") or {}
        if "integrity" not in resolution or "tarball" in resolution:   # git, file: and URL deps
            continue
        name, _, version = key.lstrip("/").partition("(")[0].rpartition("@")
        if not name or not version:
            continue
        out.append((f"{name}/-/{name.rsplit('/', 1)[-1]}-{version}.tgz", resolution["integrity"]))
    return out


def yarn_locked_tarballs(lockfile: Path) -> list[tuple[str, str]]:
    """(tarball path, integrity) for every registry package of a yarn 1 lockfile: its entries'
    `resolved` URLs (on registry.yarnpkg.com or registry.npmjs.org, the same packages)."""
    out, rel = [], ""
    for row in Path(lockfile).read_text().splitlines():
        row = row.strip()
        if row.startswith("resolved "):
            url = urllib.parse.urlparse(row.split(None, 1)[1].strip('"'))
            rel = url.path.lstrip("/") if url.netloc in ("registry.yarnpkg.com", "registry.npmjs.org") else ""
            if rel:
                out.append((rel, ""))
        elif row.startswith("integrity ") and rel and out and out[-1][0] == rel:
            out[-1] = (rel, row.split(None, 1)[1])
    return out


def _check_integrity(data: bytes, integrity: str) -> bool:
    for item in integrity.split():
        algo, _, digest = item.partition("-")
        if algo in ("sha512", "sha384", "sha256", "sha1"):
            return base64.b64encode(hashlib.new(algo, data).digest()).decode() == digest
    return not integrity


def _fetch(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "kit-npm-cache"})
    with urllib.request.urlopen(request, timeout=60) as resp:
        return resp.read()


def prefill(lockfile: Path, omit_dev: bool = True) -> list[str]:
    """Download what the lockfile names into the cache (once); returns the tarball paths."""
    paths = []
    locked = {"pnpm-lock.yaml": pnpm_locked_tarballs, "yarn.lock": yarn_locked_tarballs}.get(
        lockfile.name, lambda lock: locked_tarballs(lock, omit_dev))(lockfile)
    for rel, integrity in locked:
        target = cache_dir() / rel
        if not target.is_file():
            try:
                data = _fetch(UPSTREAM + rel)
            except OSError as exc:
                raise SandboxError(f"could not download {rel} from {UPSTREAM} for the local npm registry: "
                                   f"{exc}") from None
            if not _check_integrity(data, integrity):
                raise SandboxError(f"{rel} from {UPSTREAM} does not match the lockfile's integrity {integrity[:20]}...")
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".part")
            tmp.write_bytes(data)
            tmp.replace(target)
        paths.append(rel)
    return paths


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "kit-npm-registry"
    allowed: set[str] | None = None      # offline: only these tarball paths
    tools: frozenset[str] = frozenset()  # offline too: the package manager the build installs (proxied)
    base_url = ""
    served: list[str]

    def log_message(self, *args) -> None:   # quiet; the served list is the record
        pass

    def do_GET(self) -> None:     # http.server's handler name
        rel = urllib.parse.unquote(self.path.split("?", 1)[0].lstrip("/"))
        if self.allowed is None or rel.split("/-/", 1)[0] in self.tools:
            return self._proxy(rel)
        target = cache_dir() / rel
        if rel in self.allowed and target.is_file():
            self.served.append(rel)
            return self._send(200, target.read_bytes(), "application/octet-stream")
        return self._send(404, b'{"error":"offline: only what the lockfile names is served"}', "application/json")

    def _proxy(self, rel: str) -> None:
        """A packument (tarball URLs rewritten to this registry) or a tarball, through the host."""
        if "/-/" in rel:
            target = cache_dir() / rel
            if not target.is_file():
                try:
                    data = _fetch(UPSTREAM + rel)
                except OSError as exc:
                    return self._send(404, json.dumps({"error": str(exc)}).encode(), "application/json")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            self.served.append(rel)
            return self._send(200, target.read_bytes(), "application/octet-stream")
        try:
            body = _fetch(UPSTREAM + urllib.parse.quote(rel, safe="@"))
        except OSError as exc:
            return self._send(404, json.dumps({"error": str(exc)}).encode(), "application/json")
        body = body.replace(UPSTREAM.encode(), self.base_url.encode())
        self.served.append(rel)
        return self._send(200, body, "application/json")

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextlib.contextmanager
def serve_registry(source: Path, lock_file: str, omit_dev: bool = True,
                   tools: tuple[str, ...] = ()) -> Iterator[tuple[str, dict]]:
    """Serve the service's packages on 127.0.0.1; yield (registry URL, figures). `tools` are the
    npm packages of the package manager the build installs first (pnpm, yarn): proxied even
    when the registry is offline, since no lockfile of the service names them."""
    lock = Path(source) / lock_file if lock_file else None
    offline = lock is not None and (lock.name == "pnpm-lock.yaml"
                                    or (lock.name == "yarn.lock" and "__metadata:" not in lock.read_text()))
    if lock is not None and lock.name == "package-lock.json":
        data = json.loads(lock.read_text())
        entries = [m for k, m in data.get("packages", {}).items()
                   if "node_modules/" in k and isinstance(m, dict) and "version" in m]
        # npm fetches a packument for an entry without `resolved` (omit-lockfile-registry-resolved),
        # which the offline registry does not serve: such lockfiles are proxied
        offline = data.get("lockfileVersion", 1) >= 2 and all(m.get("resolved") or m.get("link") for m in entries)
    allowed = set(prefill(lock, omit_dev)) if offline else None
    served: list[str] = []
    handler = type("Handler", (_Handler,), {"allowed": allowed, "served": served, "tools": frozenset(tools)})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    handler.base_url = url
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    figures = {"mode": "offline (pre-filled from the lockfile)" if offline
               else "proxy (no package-lock.json v2/v3, pnpm-lock.yaml or yarn 1 yarn.lock)",
               "tarballs_locked": len(allowed or ()), "served": served}
    try:
        yield url, figures
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
