"""Local stand-ins for real images, built from Debian packages (no registry can be reached).

The base (``python-3.11``) is a debootstrapped Debian bookworm with Python 3.11, imported
with ``docker import``. The others are built FROM that base with apt and a Dockerfile in
``standin_images/<key>/``; their entrypoints follow the official images' behaviour.

Stand-ins are tagged ``kit-standin/...`` and never with a real image's name. Every one
carries the labels ``org.kit.standin=true``, ``org.kit.standin.for=<real image>``,
``org.kit.standin.package=<Debian package=version>`` and ``org.kit.standin.recipe=<hash>``;
a stand-in whose recipe changed (or whose base was rebuilt) is rebuilt on the next call.
"""
from __future__ import annotations

import fcntl
import hashlib
import inspect
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kit.config import Settings
from kit.errors import SandboxError
from kit.sandbox.engine import LABEL, docker, image_exists

IMAGES_DIR = Path(__file__).resolve().parent / "standin_images"
STANDIN_LABEL = "org.kit.standin"
FOR_LABEL = "org.kit.standin.for"
PACKAGE_LABEL = "org.kit.standin.package"
RECIPE_LABEL = "org.kit.standin.recipe"
RECIPE_VERSION = "1"          # bump to force every stand-in to be rebuilt

SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SECURITY = "http://deb.debian.org/debian-security"
BASE_PACKAGES = ("python3", "python3-venv", "python3-pip", "python-is-python3", "ca-certificates",
                 "netbase", "tzdata")
BASE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}

Log = Callable[[str], None]


@dataclass(frozen=True)
class Standin:
    key: str
    tag: str
    stands_for: tuple[str, ...]
    folder: str | None               # under standin_images/; None for the debootstrapped base
    note: str
    repository: str = ""             # the real repository, e.g. "postgres", "prom/prometheus"
    version: str = ""                # the version a tag must start with, e.g. "15", "3.11", "v2"
    variants: tuple[str, ...] = ("",)  # allowed tag suffixes after the version
    package: str = ""                # the Debian package whose version goes into a label
    base: str | None = None          # key of the stand-in this one is built FROM

    @property
    def real(self) -> str:
        return self.stands_for[0]


_DEBIAN_VARIANTS = ("", "-bookworm", "-slim", "-slim-bookworm")

STANDINS: dict[str, Standin] = {s.key: s for s in (
    Standin("python-3.11", "kit-standin/python:3.11-bookworm",
            ("python:3.11-slim-bookworm", "python:3.11-slim", "python:3.11-bookworm", "python:3.11"),
            None,
            "Debian bookworm (debootstrap minbase) with Debian's Python 3.11, python3-venv and pip",
            repository="python", version="3.11", variants=_DEBIAN_VARIANTS, package="python3.11"),
    Standin("postgres-15", "kit-standin/postgres:15",
            ("postgres:15-bookworm", "postgres:15"),
            "postgres-15",
            "Debian bookworm's postgresql-15 with the official image's entrypoint behaviour",
            repository="postgres", version="15", variants=("", "-bookworm"), package="postgresql-15",
            base="python-3.11"),
    Standin("node-18", "kit-standin/node:18-bookworm",
            ("node:18-bookworm-slim", "node:18-bookworm", "node:18-slim", "node:18"),
            "node-18",
            "Debian bookworm's nodejs 18 and npm 9 with the official image's node user (1000)",
            repository="node", version="18", variants=("", "-bookworm", "-slim", "-bookworm-slim"),
            package="nodejs", base="python-3.11"),
    Standin("golang-1.19", "kit-standin/golang:1.19-bookworm",
            ("golang:1.19", "golang:1.19-bookworm"),
            "golang-1.19",
            "Debian bookworm's golang-go 1.19 (the only Go toolchain in bookworm), GOPATH /go like the official image",
            repository="golang", version="1.19", variants=("", "-bookworm"), package="golang-1.19-go",
            base="python-3.11"),
    Standin("distroless-static", "kit-standin/distroless-static:nonroot",
            ("gcr.io/distroless/static-debian12:nonroot",),
            "distroless-static",
            "FROM scratch with Debian bookworm's CA certificates, tzdata and distroless's nonroot user 65532; "
            "no shell, like gcr.io/distroless/static-debian12:nonroot",
            repository="gcr.io/distroless/static-debian12", version="nonroot", variants=("",),
            package="", base="python-3.11"),
    Standin("redis-7", "kit-standin/redis:7",
            ("redis:7-bookworm", "redis:7", "redis:7.0"),
            "redis-7",
            "Debian bookworm's redis-server 7.0, protected mode off like the official image",
            repository="redis", version="7", variants=("", "-bookworm"), package="redis-server",
            base="python-3.11"),
    Standin("prometheus-2", "kit-standin/prometheus:2",
            ("prom/prometheus:v2.42.0", "prom/prometheus:v2"),
            "prometheus-2",
            "Debian bookworm's prometheus 2.42 as user nobody, the official image's entrypoint and flags",
            repository="prom/prometheus", version="v2", variants=("",), package="prometheus",
            base="python-3.11"),
    Standin("alertmanager-0", "kit-standin/alertmanager:0",
            ("prom/alertmanager:v0.27.0", "prom/alertmanager:v0.25.0"),
            "alertmanager-0",
            "Debian bookworm's prometheus-alertmanager 0.25 as user nobody, the official image's entrypoint and flags",
            repository="prom/alertmanager", version="v0", variants=("",), package="prometheus-alertmanager",
            base="python-3.11"),
    Standin("postgres-exporter-0", "kit-standin/postgres-exporter:0",
            ("quay.io/prometheuscommunity/postgres-exporter:v0.17.1",),
            "postgres-exporter-0",
            "Debian bookworm's prometheus-postgres-exporter 0.11 as /bin/postgres_exporter, user nobody",
            repository="quay.io/prometheuscommunity/postgres-exporter", version="v0", variants=("",),
            package="prometheus-postgres-exporter", base="python-3.11"),
    Standin("redis-exporter-1", "kit-standin/redis-exporter:1",
            ("oliver006/redis_exporter:v1.67.0",),
            "redis-exporter-1",
            "Debian bookworm's prometheus-redis-exporter 1.45 as /redis_exporter, user 59000",
            repository="oliver006/redis_exporter", version="v1", variants=("",),
            package="prometheus-redis-exporter", base="python-3.11"),
    Standin("nginx-1", "kit-standin/nginx:1",
            ("nginx:1.27-bookworm", "nginx:1"),
            "nginx-1",
            "Debian bookworm's nginx-light 1.22, conf.d layout and logs to stdout like the official image",
            repository="nginx", version="1", variants=("", "-bookworm"), package="nginx-light",
            base="python-3.11"),
)}


for _s in STANDINS.values():   # a stand-in must never pass for the real image
    if not _s.tag.startswith("kit-standin/") or _s.tag in _s.stands_for:
        raise RuntimeError(f"stand-in {_s.key} must be tagged kit-standin/..., not {_s.tag}")


# --------------------------------------------------------------------------- matching

def _split_ref(image: str) -> tuple[str, str] | None:
    """(repository, tag) with Docker Hub's implicit prefixes and any digest removed."""
    ref = image.strip().split("@", 1)[0]
    for prefix in ("docker.io/library/", "index.docker.io/library/", "docker.io/", "index.docker.io/",
                   "library/"):
        if ref.startswith(prefix):
            ref = ref[len(prefix):]
            break
    repo, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag or not tag:
        return None              # no tag means "latest", which is not a version kit can stand in for
    return repo.lower(), tag


def standin_for(image: str) -> Standin | None:
    """The stand-in for a real image reference, or None when kit has none.

    Matches an exact reference from ``stands_for``, or the same repository with a tag that
    starts with the stand-in's version (``postgres:15.6-bookworm``, ``python:3.11.9-slim``)
    and ends in one of the Debian variants it can honestly replace (not alpine, bullseye...)."""
    for standin in STANDINS.values():
        if image in standin.stands_for:
            return standin
    parsed = _split_ref(image)
    if parsed is None:
        return None
    repo, tag = parsed
    for standin in STANDINS.values():
        if repo != standin.repository or not tag.startswith(standin.version):
            continue
        rest = tag[len(standin.version):]
        # patch levels: ".6", ".11.9" (digits only), then the variant suffix
        m = re.fullmatch(r"((?:\.\d+)*)(.*)", rest)
        if m and m.group(2) in standin.variants:
            return standin
    return None


# --------------------------------------------------------------------------- building

def ensure_standin(key: str, log: Log = print) -> str:
    """Build the stand-in (and its base) when missing or out of date; return its tag."""
    standin = _get(key)
    with _build_lock():
        return _ensure_locked(standin, log)


def ensure_all(keys: Iterable[str] | None = None, log: Log = print) -> dict[str, str]:
    """Build every stand-in (or the named ones) that is missing; key -> tag."""
    wanted = list(keys) if keys is not None else list(STANDINS)
    standins = [_get(k) for k in wanted]
    with _build_lock():
        return {s.key: _ensure_locked(s, log) for s in standins}


def standin_labels(standin: Standin, recipe: str, package_version: str = "") -> dict[str, str]:
    """Set on every build so nothing inherited from the base image (its own labels) survives."""
    package = f"{standin.package}={package_version}" if package_version else standin.package
    return {LABEL: "true", STANDIN_LABEL: "true", FOR_LABEL: standin.real, RECIPE_LABEL: recipe,
            PACKAGE_LABEL: package}


def _get(key: str) -> Standin:
    try:
        return STANDINS[key]
    except KeyError:
        raise SandboxError(f"no stand-in named {key!r}; known: {', '.join(STANDINS)}") from None


@contextmanager
def _build_lock() -> Iterator[None]:
    """One builder at a time across processes (two pytest runs, kit prepare...)."""
    state = Settings.load().state_dir
    state.mkdir(parents=True, exist_ok=True)
    with open(state / "standins.lock", "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _ensure_locked(standin: Standin, log: Log) -> str:
    base_id = ""
    if standin.base:
        base_tag = _ensure_locked(_get(standin.base), log)
        base_id = _image_id(base_tag)
    recipe = _recipe(standin, base_id)
    old_id = ""
    if image_exists(standin.tag):
        current = _label(standin.tag, RECIPE_LABEL)
        if current == recipe:
            return standin.tag
        old_id = _image_id(standin.tag)
        log(f"stand-in {standin.tag}: recipe changed ({current or 'none'} -> {recipe}), rebuilding")
    start = time.monotonic()
    if standin.folder is None:
        log(f"building stand-in {standin.tag} with debootstrap (about a minute)")
        _build_base(standin, recipe)
    else:
        base_tag = _get(standin.base).tag if standin.base else ""
        log(f"building stand-in {standin.tag} from {base_tag}")
        _build_from_folder(standin, recipe, base_tag)
    log(f"stand-in {standin.tag} ready in {time.monotonic() - start:.1f}s")
    if old_id and old_id != _image_id(standin.tag):
        # the superseded image; kept when a container still uses it
        docker("image", "rm", old_id, check=False, timeout=120)
    return standin.tag


def _image_id(ref: str) -> str:
    return docker("image", "inspect", "--format", "{{.Id}}", ref, timeout=30).stdout.strip()


def _label(ref: str, name: str) -> str:
    out = docker("image", "inspect", "--format", f'{{{{index .Config.Labels "{name}"}}}}', ref,
                 check=False, timeout=30)
    value = out.stdout.strip() if out.returncode == 0 else ""
    return "" if value == "<no value>" else value


def _recipe(standin: Standin, base_id: str) -> str:
    """A hash of everything the image is made from; a change means a rebuild."""
    digest = hashlib.sha256(f"{RECIPE_VERSION}\n{standin.key}\n{standin.tag}\n{base_id}\n".encode())
    if standin.folder is None:
        digest.update(repr((SUITE, BASE_PACKAGES, sorted(BASE_ENV.items()))).encode())
        for fn in (_apt_sources, _prepare_rootfs, _build_base):
            digest.update(inspect.getsource(fn).encode())
    else:
        folder = IMAGES_DIR / standin.folder
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _build_from_folder(standin: Standin, recipe: str, base_tag: str) -> None:
    folder = IMAGES_DIR / standin.folder
    if not (folder / "Dockerfile").is_file():
        raise SandboxError(f"stand-in {standin.key}: no Dockerfile in {folder}")
    stage = f"{standin.tag}-kitstage"
    # --network host: package downloads leave from the host, never from a container's own address
    args = ["build", "--progress", "plain", "--network", "host", "-t", stage]
    if base_tag:
        args += ["--build-arg", f"BASE={base_tag}"]
    for k, v in standin_labels(standin, recipe).items():
        args += ["--label", f"{k}={v}"]
    docker(*args, str(folder), timeout=1800)
    try:
        version = _package_version(stage, standin.package)
        _relabel(stage, standin.tag, standin_labels(standin, recipe, version))
    finally:
        docker("image", "rm", stage, check=False, timeout=60)


def _package_version(ref: str, package: str) -> str:
    if not package:
        return ""
    proc = docker("run", "--rm", "--network", "none", "--label", f"{LABEL}=true", "--user", "0",
                  "--entrypoint", "dpkg-query", ref, "-W", "-f", "${Version}", package,
                  check=False, timeout=120)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def _relabel(source: str, tag: str, labels: dict[str, str]) -> None:
    """Tag ``source`` as ``tag`` with extra labels: a one-line build, no new layer."""
    args = ["build", "--progress", "plain", "-t", tag]
    for k, v in labels.items():
        args += ["--label", f"{k}={v}"]
    with tempfile.TemporaryDirectory(prefix="kit-relabel-") as ctx:
        (Path(ctx) / "Dockerfile").write_text(f"FROM {source}\n")
        docker(*args, ctx, timeout=300)


# --------------------------------------------------------------------------- the base

def debian_mirrors() -> tuple[str, str]:
    """(main mirror, security mirror) that apt on this host uses; Debian's CDN otherwise."""
    uris: list[str] = []
    parts = Path("/etc/apt/sources.list.d")
    for path in sorted(parts.glob("*.sources")) if parts.is_dir() else []:
        for line in path.read_text(errors="replace").splitlines():
            if line.strip().lower().startswith("uris:"):
                uris += line.split(":", 1)[1].split()
    lists = [Path("/etc/apt/sources.list"), *(sorted(parts.glob("*.list")) if parts.is_dir() else [])]
    for path in lists:
        if not path.is_file():
            continue
        for line in path.read_text(errors="replace").splitlines():
            line = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0])   # drop comments and [options]
            words = line.split()
            if len(words) >= 3 and words[0] == "deb":
                uris.append(words[1])
    uris = [u.rstrip("/") for u in uris if u.startswith(("http://", "https://", "file:/"))]
    main = next((u for u in uris if "security" not in u), DEFAULT_MIRROR)
    security = next((u for u in uris if "security" in u), DEFAULT_SECURITY)
    return main, security


def _apt_sources(main: str, security: str) -> str:
    keyring = "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    return (f"Types: deb\nURIs: {main}\nSuites: {SUITE} {SUITE}-updates\nComponents: main\n{keyring}\n"
            f"Types: deb\nURIs: {security}\nSuites: {SUITE}-security\nComponents: main\n{keyring}")


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve()).rstrip("/") + "/"
    found = []
    with open("/proc/self/mounts") as fh:
        for line in fh:
            point = line.split()[1].replace("\\040", " ")
            if point.startswith(prefix) or point == prefix.rstrip("/"):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def _remove_rootfs(root: Path) -> None:
    """Delete a debootstrap target, unmounting anything a failed run left mounted first."""
    if not root.exists():
        return
    for point in _mounts_under(root):
        subprocess.run(["umount", "-l", point], capture_output=True)
    if _mounts_under(root):
        raise SandboxError(f"cannot remove {root}: still mounted {_mounts_under(root)}")
    shutil.rmtree(root, ignore_errors=True)


def _prepare_rootfs(root: Path, main: str, security: str) -> str:
    """Make the debootstrapped tree look like a Debian image: apt sources, no services,
    python as in the official image. Returns the python3.11 package version."""
    sources = root / "etc/apt/sources.list.d"
    sources.mkdir(parents=True, exist_ok=True)
    (root / "etc/apt/sources.list").unlink(missing_ok=True)
    (sources / "debian.sources").write_text(_apt_sources(main, security))
    # no daemons start during `apt-get install` in a build (as in Debian's own images)
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    (root / "etc/apt/apt.conf.d/docker-clean").write_text(
        'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb '
        '/var/cache/apt/*.bin || true"; };\nBinary::apt::APT::Keep-Downloaded-Packages "false";\n')
    # the official image allows `pip install` outside a venv; Debian marks it externally managed
    for marker in (root / "usr/lib").glob("python3*/EXTERNALLY-MANAGED"):
        marker.unlink()
    # the official image's interpreters live in /usr/local/bin; some Dockerfiles name that path
    local_bin = root / "usr/local/bin"
    local_bin.mkdir(parents=True, exist_ok=True)
    for name, target in (("python3", "/usr/bin/python3"), ("python", "/usr/bin/python3"),
                         ("python3.11", "/usr/bin/python3.11"), ("pip", "/usr/bin/pip3"),
                         ("pip3", "/usr/bin/pip3")):
        link = local_bin / name
        if not link.exists() and not link.is_symlink():
            link.symlink_to(target)
    for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for path in (root / junk).glob("*"):
            if path.is_file():
                path.unlink()
    (root / "etc/resolv.conf").unlink(missing_ok=True)   # Docker provides its own
    (root / "etc/hostname").write_text("localhost\n")
    proc = subprocess.run(["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-W", "-f", "${Version}",
                           "python3.11"], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def _build_base(standin: Standin, recipe: str) -> None:
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not Path(debootstrap).exists():
        raise SandboxError("debootstrap is not installed (apt-get install debootstrap); it builds the "
                           f"stand-in {standin.tag}")
    if os.geteuid() != 0:
        raise SandboxError(f"building the stand-in {standin.tag} runs debootstrap, which needs root")
    main, security = debian_mirrors()
    work_parent = Settings.load().state_dir.resolve() / "debootstrap"
    cache = work_parent / "debs"
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="build-", dir=work_parent))
    root, tarball = work / "rootfs", work / "rootfs.tar"
    try:
        proc = subprocess.run([debootstrap, "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
                               f"--cache-dir={cache}", SUITE, str(root), main],
                              capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise SandboxError(f"debootstrap of {SUITE} from {main} failed (exit {proc.returncode})",
                               logs=proc.stdout + proc.stderr)
        for point in _mounts_under(root):
            subprocess.run(["umount", "-l", point], capture_output=True)
        version = _prepare_rootfs(root, main, security)
        subprocess.run(["tar", "--numeric-owner", "--xattrs", "-C", str(root), "-cf", str(tarball), "."],
                       check=True, capture_output=True, timeout=900)
        _remove_rootfs(root)
        changes = [f"ENV {k}={v}" for k, v in BASE_ENV.items()]
        if version:
            changes.append(f"ENV PYTHON_VERSION={version.split('-')[0]}")
        changes.append('CMD ["python3"]')
        stage = f"{standin.tag}-kitstage"
        args = ["import"]
        for change in changes:
            args += ["--change", change]
        docker(*args, str(tarball), stage, timeout=900)
        try:
            _relabel(stage, standin.tag, standin_labels(standin, recipe, version))
        finally:
            docker("image", "rm", stage, check=False, timeout=60)
    finally:
        _remove_rootfs(root)
        shutil.rmtree(work, ignore_errors=True)
