"""A local package index for image builds: containers cannot reach PyPI here, the host can.

pip, run inside the base image itself with the host's network and CA bundle, downloads the
service's packages into a wheelhouse (cached by the hash of the requirements and the base image);
the host serves it with pypiserver on 127.0.0.1, and the build runs with
``--network host --build-arg PIP_INDEX_URL=...``. The generated Dockerfile's ARG
PIP_INDEX_URL is what corporate users with a mirror set too."""
from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from kit.config import Settings
from kit.detect.python import read_toml
from kit.errors import SandboxError
from kit.evidence import excerpt
from kit.sandbox.engine import LABEL, docker

BUILD_TOOLS = ("setuptools", "wheel")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def host_ca_bundle() -> str:
    """The CA bundle the host's pip trusts; the download container gets it read-only."""
    for candidate in (os.environ.get("PIP_CERT"), os.environ.get("SSL_CERT_FILE"),
                      ssl.get_default_verify_paths().cafile, "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return candidate
    raise SandboxError("no CA bundle found for package downloads; set PIP_CERT to your CA bundle")


def build_requires(source: Path) -> list[str]:
    """The build backend a pyproject.toml asks for: the image's pip needs it from the index too."""
    pyproject = Path(source) / "pyproject.toml"
    if not pyproject.is_file():
        return []
    return list(read_toml(pyproject).get("build-system", {}).get("requires", []))


def wheelhouse(source: Path, requirements_file: str, extra: tuple[str, ...], base_image: str,
               constraints: tuple[str, ...] = ()) -> Path:
    """Download what ``pip install`` in the image will ask for, cached by content hash.

    pip resolves inside the base image itself, so environment markers (python_full_version,
    platform) are those of the interpreter the build will use, not the host's."""
    source = Path(source)
    spec_text = (source / requirements_file).read_text() if requirements_file else ""
    locked = requirements_file == "pyproject.toml" and (source / "uv.lock").is_file()
    if locked:
        spec_text += (source / "uv.lock").read_text()
    key = hashlib.sha256("\n".join([spec_text, base_image, *extra, *(f"-c {c}" for c in constraints)])
                         .encode()).hexdigest()[:16]
    target = Settings.load().state_dir / "wheelhouse" / key
    if (target / ".complete").is_file():
        return target
    target.mkdir(parents=True, exist_ok=True)
    # pip builds a local project's metadata in place, so it gets a writable copy of the source
    wanted = ["-r", f"/tmp/src/{requirements_file}"] if requirements_file == "requirements.txt" else ["/tmp/src"]
    pins = target.parent / f"{key}.constraints.txt"     # the image's `pip install -c` (service.constraints)
    pins.write_text("".join(f"{c}\n" for c in constraints))
    download = ["python3", "-m", "pip", "download", "--quiet", "--dest", "/wheels", "-c", "/tmp/constraints.txt",
                *BUILD_TOOLS, *build_requires(source), *extra, *wanted]
    prepare = "cp -r /src /tmp/src"
    if locked:   # the image installs exactly what uv.lock pins: download that, and uv itself
        from kit.model import UV_PIN
        prepare += (f" && python3 -m pip install --quiet --target /tmp/uvpkg {shlex.quote(UV_PIN)}"
                    " && /tmp/uvpkg/bin/uv export --frozen --no-dev --no-emit-project --format requirements-txt"
                    " --directory /tmp/src -o /tmp/requirements.lock"
                    " && python3 -m pip download --quiet --dest /wheels -r /tmp/requirements.lock")
        download = [*download[:-1], UV_PIN]   # hash-checked lock above; unpinned tools separately
    ca = host_ca_bundle()
    argv = ["run", "--rm", "--network", "host", "--label", f"{LABEL}=true",
            "--user", f"{os.getuid()}:{os.getgid()}", "-e", "HOME=/tmp",
            "-e", "PIP_CERT=/etc/ssl/certs/kit-host-ca.crt", "-e", "PIP_DISABLE_PIP_VERSION_CHECK=1",
            "-v", f"{ca}:/etc/ssl/certs/kit-host-ca.crt:ro", "-v", f"{target}:/wheels",
            "-v", f"{pins}:/tmp/constraints.txt:ro",
            "-v", f"{source}:/src:ro", base_image,
            "sh", "-c", prepare + " && exec " + shlex.join(download)]
    proc = docker(*argv, check=False, timeout=900)
    if proc.returncode != 0:
        lines = [r for r in (proc.stdout + proc.stderr).splitlines() if r.startswith("ERROR")]
        raise SandboxError(f"pip download of the service's packages failed in {base_image} "
                           f"(exit {proc.returncode}): {lines[-1] if lines else 'see the log'}",
                           logs=excerpt(proc.stdout + proc.stderr))
    (target / ".complete").write_text(" ".join(argv))
    return target


@contextlib.contextmanager
def serve_index(directory: Path, timeout: float = 30) -> Iterator[str]:
    """Serve ``directory`` as a PEP 503 index on 127.0.0.1; yield its /simple/ URL."""
    port = free_port()
    argv = [str(Path(sys.executable).with_name("pypi-server")), "run", "-i", "127.0.0.1",
            "-p", str(port), "--disable-fallback", "--log-stream", "none", str(directory)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/simple/"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read() if proc.stdout else ""
                raise SandboxError("the local package index (pypiserver) did not start", logs=out)
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
