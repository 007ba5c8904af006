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
    for rel, integrity in locked_tarballs(lockfile, omit_dev):
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
    base_url = ""
    served: list[str]

    def log_message(self, *args) -> None:   # quiet; the served list is the record
        pass

    def do_GET(self) -> None:     # http.server's handler name
        rel = urllib.parse.unquote(self.path.split("?", 1)[0].lstrip("/"))
        if "/-/" in rel:
            target = cache_dir() / rel
            if not target.is_file() and self.allowed is None:
                with contextlib.suppress(OSError):
                    data = _fetch(UPSTREAM + rel)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data)
            if target.is_file() and (self.allowed is None or rel in self.allowed):
                self.served.append(rel)
                return self._send(200, target.read_bytes(), "application/octet-stream")
            return self._send(404, b'{"error":"not in the local registry"}', "application/json")
        if self.allowed is not None:
            return self._send(404, b'{"error":"offline: the lockfile names every tarball"}', "application/json")
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
def serve_registry(source: Path, lock_file: str, omit_dev: bool = True) -> Iterator[tuple[str, dict]]:
    """Serve the service's packages on 127.0.0.1; yield (registry URL, figures)."""
    lock = Path(source) / lock_file if lock_file else None
    offline = False
    if lock is not None and lock.name == "package-lock.json":
        data = json.loads(lock.read_text())
        entries = [m for k, m in data.get("packages", {}).items()
                   if "node_modules/" in k and isinstance(m, dict) and "version" in m]
        # npm fetches a packument for an entry without `resolved` (omit-lockfile-registry-resolved),
        # which the offline registry does not serve: such lockfiles are proxied
        offline = data.get("lockfileVersion", 1) >= 2 and all(m.get("resolved") or m.get("link") for m in entries)
    allowed = set(prefill(lock, omit_dev)) if offline else None
    served: list[str] = []
    handler = type("Handler", (_Handler,), {"allowed": allowed, "served": served})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    handler.base_url = url
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    figures = {"mode": "offline (pre-filled from the lockfile)" if offline else "proxy (no lockfile v2/v3)",
               "tarballs_locked": len(allowed or ()), "served": served}
    try:
        yield url, figures
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
