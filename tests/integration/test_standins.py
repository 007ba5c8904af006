"""Stand-in images: the mapping from real references, and real containers proving that each
stand-in behaves like the official image a compose file or Dockerfile was written for.

Only ports published on 127.0.0.1 are used; every container and volume is labelled
``org.kit.sandbox=true`` and removed in ``finally``."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from kit.config import Settings
from kit.sandbox.engine import LABEL, docker, engine_version
from kit.sandbox.standins import STANDINS, ensure_standin, standin_for

ROOT = Path(__file__).resolve().parents[2]
TEST_LABELS = ["--label", f"{LABEL}=true", "--label", f"{LABEL}.test=test_standins"]


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _missing(reason: str) -> None:
    """Skip locally, but fail in CI: there the Docker tests must really run."""
    if _in_ci():
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def docker_engine() -> str:
    """Overrides the session fixture of the same name for this module (same rule)."""
    version = engine_version()
    if version is None:
        _missing("no Docker engine answers; run scripts/setup.sh to start one")
    return version


def _image(key: str) -> str:
    return ensure_standin(key, log=lambda msg: print(f"kit: {msg}"))


@pytest.fixture(scope="module")
def python_image(docker_engine) -> str:
    return _image("python-3.11")


@pytest.fixture(scope="module")
def postgres_image(docker_engine) -> str:
    return _image("postgres-15")


@pytest.fixture(scope="module")
def redis_image(docker_engine) -> str:
    return _image("redis-7")


@pytest.fixture(scope="module")
def prometheus_image(docker_engine) -> str:
    return _image("prometheus-2")


# --------------------------------------------------------------------------- helpers

def run_detached(image: str, *command: str, env: dict[str, str] | None = None,
                 mounts: tuple[str, ...] = (), publish: int | None = None) -> str:
    args = ["run", "-d", *TEST_LABELS]
    for k, v in (env or {}).items():
        args += ["-e", f"{k}={v}"]
    for m in mounts:
        args += ["-v", m]
    if publish is not None:
        args += ["-p", f"127.0.0.1::{publish}"]      # loopback only, host port chosen by Docker
    return docker(*args, image, *command, timeout=120).stdout.strip()


def remove(*container_ids: str) -> None:
    ids = [c for c in container_ids if c]
    if ids:
        docker("rm", "-f", "-v", *ids, check=False, timeout=120)


def logs(cid: str) -> str:
    proc = docker("logs", cid, check=False, timeout=60)
    return (proc.stdout or "") + (proc.stderr or "")


def state(cid: str) -> dict:
    return json.loads(docker("inspect", "--format", "{{json .State}}", cid, timeout=30).stdout)


def wait_healthy(cid: str, timeout: float | None = None) -> float:
    """Poll Docker's health status with a deadline; fail early (with the logs) on exit."""
    timeout = timeout or Settings.load().health_timeout_s
    start = time.monotonic()
    while True:
        st = state(cid)
        health = (st.get("Health") or {}).get("Status", "none")
        elapsed = time.monotonic() - start
        if health == "healthy":
            return elapsed
        if not st.get("Running"):
            pytest.fail(f"container exited (code {st.get('ExitCode')}) before it was healthy:\n{logs(cid)[-3000:]}")
        if health == "unhealthy" or elapsed > timeout:
            probes = (st.get("Health") or {}).get("Log") or []
            pytest.fail(f"container {health} after {elapsed:.1f}s; last probe: {probes[-1:]}\n{logs(cid)[-3000:]}")
        time.sleep(0.2)


def wait_exited(cid: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        st = state(cid)
        if not st.get("Running"):
            return st
        if time.monotonic() > deadline:
            pytest.fail(f"container still running after {timeout}s:\n{logs(cid)[-3000:]}")
        time.sleep(0.2)


def host_port(cid: str, port: int) -> int:
    out = docker("port", cid, f"{port}/tcp", timeout=30).stdout.split()
    assert out, f"port {port} is not published"
    for mapping in out:
        host, _, _number = mapping.rpartition(":")
        assert host == "127.0.0.1", f"port {port} published on {host}, not loopback only"
    return int(out[0].rpartition(":")[2])


def proc1(cid: str) -> dict[str, str]:
    """Name and uid of the container's PID 1 (the main process after the entrypoint's exec)."""
    text = docker("exec", cid, "cat", "/proc/1/status", timeout=30).stdout
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {"name": fields["Name"].strip(), "uid": fields["Uid"].split()[0]}


def psql(port: int, user: str, db: str, password: str, sql: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("psql")
    if exe is None:
        _missing("the psql client is not installed on this host (apt-get install postgresql-client)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(PGPASSWORD=password, PGCONNECT_TIMEOUT="10", PGSSLMODE="disable")
    return subprocess.run([exe, "-X", "-w", "-h", "127.0.0.1", "-p", str(port), "-U", user, "-d", db,
                           "-tA", "-v", "ON_ERROR_STOP=1", "-c", sql],
                          capture_output=True, text=True, env=env, timeout=30)


def resp(port: int, *commands: str) -> list:
    """Send inline Redis commands over a raw socket; return the decoded replies."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"".join(c.encode() + b"\r\n" for c in commands))
        reader = sock.makefile("rb")

        def read():
            line = reader.readline().rstrip(b"\r\n")
            kind, rest = line[:1], line[1:].decode()
            if kind in (b"+", b"-"):
                return line.decode()
            if kind == b":":
                return int(rest)
            if kind == b"$":
                return None if int(rest) < 0 else reader.read(int(rest) + 2)[:-2].decode()
            if kind == b"*":
                return [read() for _ in range(int(rest))]
            raise AssertionError(f"not a RESP reply: {line!r}")

        return [read() for _ in commands]


def http_get(url: str, method: str = "GET") -> tuple[int, str]:
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


# --------------------------------------------------------------------------- mapping (no Docker)

@pytest.mark.parametrize("image, key", [
    ("python:3.11-slim-bookworm", "python-3.11"),
    ("node:18-bookworm-slim", "node-18"),
    ("node:18.20-bookworm-slim", "node-18"),
    ("node:20-bookworm-slim", None),          # Debian's nodejs is 18: no stand-in for another major
    ("node:18-alpine", None),
    ("golang:1.19", "golang-1.19"),
    ("golang:1.22", None),                    # Debian bookworm's only Go is 1.19
    ("gcr.io/distroless/static-debian12:nonroot", "distroless-static"),
    ("python:3.11-slim", "python-3.11"),
    ("python:3.11", "python-3.11"),
    ("python:3.11-bookworm", "python-3.11"),
    ("python:3.11.9-slim-bookworm", "python-3.11"),
    ("docker.io/library/python:3.11.9-slim", "python-3.11"),
    ("postgres:15-bookworm", "postgres-15"),
    ("postgres:15", "postgres-15"),
    ("postgres:15.6-bookworm", "postgres-15"),
    ("postgres:15.6", "postgres-15"),
    ("postgres:15@sha256:" + "0" * 64, "postgres-15"),
    ("redis:7-bookworm", "redis-7"),
    ("redis:7", "redis-7"),
    ("redis:7.0", "redis-7"),
    ("redis:7.0.15-bookworm", "redis-7"),
    ("prom/prometheus:v2.42.0", "prometheus-2"),
    ("prom/prometheus:v2.53.1", "prometheus-2"),
    ("prom/alertmanager:v0.27.0", "alertmanager-0"),
    ("prom/alertmanager:v0.25.0", "alertmanager-0"),
    ("quay.io/prometheuscommunity/postgres-exporter:v0.17.1", "postgres-exporter-0"),
    ("quay.io/prometheuscommunity/postgres-exporter:v0.11.1", "postgres-exporter-0"),
    ("oliver006/redis_exporter:v1.67.0", "redis-exporter-1"),
    ("oliver006/redis_exporter:v1.45.0", "redis-exporter-1"),
    ("prom/alertmanager:latest", None),
    ("prometheuscommunity/postgres-exporter:v0.17.1", None),
    ("oliver006/redis_exporter:v1.67.0-alpine", None),
    ("python:3.12-slim", None),
    ("python:3.1", None),
    ("python:3.110-slim", None),
    ("python:3.11-alpine", None),
    ("python:3.11-slim-bullseye", None),
    ("python", None),
    ("postgres:16", None),
    ("postgres:150", None),
    ("postgres:15-alpine", None),
    ("postgres", None),
    ("redis:6.2", None),
    ("redis:7-alpine", None),
    ("prom/prometheus:v3.0.0", None),
    ("prom/prometheus:latest", None),
    ("quay.example.com/postgres:15", None),
    ("mysql:8", None),
])
def test_standin_for(image, key):
    found = standin_for(image)
    assert (found.key if found else None) == key


# base images (a stack's builder or runtime): the real ones carry no HEALTHCHECK either
BASE_IMAGES = {"node-18", "golang-1.19", "distroless-static"}


def test_registry_never_uses_a_real_name():
    for s in STANDINS.values():
        assert s.tag.startswith("kit-standin/")
        assert s.tag not in s.stands_for
        assert standin_for(s.real) is s
        if s.folder is not None:
            dockerfile = (ROOT / "kit/sandbox/standin_images" / s.folder / "Dockerfile").read_text()
            assert "ARG BASE" in dockerfile and "FROM ${BASE}" in dockerfile
            assert "# syntax=" not in dockerfile and "--start-interval" not in dockerfile
            if s.key not in BASE_IMAGES:      # a service stand-in reports its health like the real one
                assert "HEALTHCHECK" in dockerfile


# --------------------------------------------------------------------------- images

@pytest.mark.docker
def test_images_are_labelled(python_image, postgres_image, redis_image, prometheus_image):
    for s in STANDINS.values():
        labels = json.loads(docker("image", "inspect", "--format", "{{json .Config.Labels}}", s.tag).stdout)
        assert labels["org.kit.standin"] == "true"
        assert labels["org.kit.standin.for"] == s.stands_for[0]
        if s.package:                # the distroless stand-in has no dpkg (it is FROM scratch)
            assert labels["org.kit.standin.package"].startswith(f"{s.package}=")
        assert labels[LABEL] == "true"
        for real in s.stands_for:      # no real name was ever given to a stand-in
            found = docker("image", "inspect", "--format", "{{json .Config.Labels}}", real, check=False)
            assert found.returncode != 0 or "org.kit.standin" not in found.stdout


@pytest.mark.docker
def test_python_base_has_python311_and_venv(python_image):
    script = ("import sys, venv, subprocess; assert sys.version_info[:2] == (3, 11), sys.version; "
              "venv.create('/tmp/v', with_pip=True); "
              "print(subprocess.check_output(['/tmp/v/bin/pip', '--version'], text=True))")
    proc = docker("run", "--rm", *TEST_LABELS, "--network", "none", python_image, "python", "-c", script,
                  timeout=120)
    assert "python 3.11" in proc.stdout
    env = docker("run", "--rm", *TEST_LABELS, "--network", "none", python_image, "sh", "-c",
                 "echo $LANG; command -v python3; command -v pip", timeout=60).stdout.split()
    assert env == ["C.UTF-8", "/usr/local/bin/python3", "/usr/local/bin/pip"]


@pytest.mark.docker
def test_concurrent_builders_wait_for_the_lock(redis_image):
    """A second process calling ensure_standin blocks while another holds the build lock."""
    from kit.sandbox.standins import _build_lock
    code = "from kit.sandbox.standins import ensure_standin; print(ensure_standin('redis-7', log=lambda m: None))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with _build_lock():
        other = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        with pytest.raises(subprocess.TimeoutExpired):
            other.wait(timeout=3)             # still blocked on the lock
    out, err = other.communicate(timeout=120)
    assert other.returncode == 0, err
    assert out.strip() == redis_image


# --------------------------------------------------------------------------- postgres

@pytest.mark.docker
def test_postgres_like_the_official_image(postgres_image, tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("s3cret-from-file\n")
    secret.chmod(0o400)                       # compose secrets may be root-only
    cid = ""
    try:
        cid = run_detached(postgres_image, publish=5432,
                           env={"POSTGRES_USER": "kit", "POSTGRES_DB": "shop",
                                "POSTGRES_PASSWORD_FILE": "/run/secrets/pw"},
                           mounts=(f"{secret}:/run/secrets/pw:ro",))
        wait_healthy(cid)
        port = host_port(cid, 5432)

        ok = psql(port, "kit", "shop", "s3cret-from-file",
                  "select current_user, current_database(), "
                  "(select rolpassword like 'SCRAM-SHA-256$%' from pg_authid where rolname = current_user), "
                  "current_setting('listen_addresses')")
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout.strip() == "kit|shop|t|*"

        bad = psql(port, "kit", "shop", "wrong-password", "select 1")
        assert bad.returncode != 0
        assert "password authentication failed" in bad.stderr

        ready = docker("exec", cid, "pg_isready", "-U", "kit", "-d", "shop", check=False)
        assert ready.returncode == 0, ready.stdout + ready.stderr
        assert "accepting connections" in ready.stdout
        assert proc1(cid) == {"name": "postgres", "uid": "999"}     # exec'd, not root
        hba = docker("exec", cid, "sh", "-c", 'tail -n 1 "$PGDATA/pg_hba.conf"').stdout.split()
        assert hba == ["host", "all", "all", "all", "scram-sha-256"]
    finally:
        remove(cid)


@pytest.mark.docker
def test_postgres_refuses_to_start_without_a_password(postgres_image):
    cid = ""
    try:
        cid = run_detached(postgres_image)
        st = wait_exited(cid)
        assert st["ExitCode"] == 1
        assert "superuser password is not specified" in logs(cid)
    finally:
        remove(cid)


@pytest.mark.docker
def test_postgres_stops_fast_and_keeps_its_volume(postgres_image):
    volume = docker("volume", "create", *TEST_LABELS).stdout.strip()
    first = second = ""
    try:
        first = run_detached(postgres_image, publish=5432, mounts=(f"{volume}:/var/lib/postgresql/data",),
                             env={"POSTGRES_PASSWORD": "first"})
        wait_healthy(first)
        start = time.monotonic()
        docker("stop", first, timeout=60)
        stopped_in = time.monotonic() - start
        assert stopped_in < 8, f"docker stop took {stopped_in:.1f}s: SIGINT did not reach postgres"
        assert state(first)["ExitCode"] == 0
        assert "database system is shut down" in logs(first)

        # a second container on the same volume skips initdb: the first password still holds
        second = run_detached(postgres_image, publish=5432, mounts=(f"{volume}:/var/lib/postgresql/data",),
                              env={"POSTGRES_PASSWORD": "second"})
        wait_healthy(second)
        assert "Skipping initialization" in logs(second)
        port = host_port(second, 5432)
        assert psql(port, "postgres", "postgres", "first", "select 1").stdout.strip() == "1"
        assert psql(port, "postgres", "postgres", "second", "select 1").returncode != 0
    finally:
        remove(first, second)
        docker("volume", "rm", "-f", volume, check=False)


# --------------------------------------------------------------------------- redis

@pytest.mark.docker
@pytest.mark.parametrize("command, expect", [
    (("redis-server", "--appendonly", "yes"), {"appendonly": "yes"}),   # a compose `command:` override
    ((), {"appendonly": "no"}),                                         # the image's own CMD
    (("--maxmemory", "10mb"), {"maxmemory": "10485760"}),               # flags only
])
def test_redis_like_the_official_image(redis_image, command, expect):
    cid = ""
    try:
        cid = run_detached(redis_image, *command, publish=6379)
        wait_healthy(cid)
        port = host_port(cid, 6379)
        # from the host through Docker's proxy: not a loopback client, so protected mode must be off
        replies = resp(port, "PING", "CONFIG GET protected-mode", "SET kit standin", "GET kit",
                       *(f"CONFIG GET {k}" for k in expect))
        assert replies[0] == "+PONG"
        assert replies[1] == ["protected-mode", "no"]
        assert replies[3] == "standin"
        assert {r[0]: r[1] for r in replies[4:]} == expect
        assert proc1(cid)["uid"] == "999"                              # the redis user
        inside = docker("exec", cid, "sh", "-c", "redis-cli ping; pwd; stat -c %U .").stdout.split()
        assert inside == ["PONG", "/data", "redis"]
        start = time.monotonic()
        docker("stop", cid, timeout=60)
        assert time.monotonic() - start < 8
    finally:
        remove(cid)


# --------------------------------------------------------------------------- prometheus

@pytest.mark.docker
@pytest.mark.parametrize("command", [
    (),
    ("--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus",   # a compose override
     "--web.console.libraries=/usr/share/prometheus/console_libraries",
     "--web.console.templates=/usr/share/prometheus/consoles", "--web.enable-lifecycle"),
])
def test_prometheus_like_the_official_image(prometheus_image, command):
    cid = ""
    try:
        cid = run_detached(prometheus_image, *command, publish=9090)
        wait_healthy(cid)
        base = f"http://127.0.0.1:{host_port(cid, 9090)}"
        assert http_get(f"{base}/-/ready")[0] == 200
        status, body = http_get(f"{base}/api/v1/status/config")
        assert status == 200 and 'job_name: prometheus' in json.loads(body)["data"]["yaml"]
        reload_status = http_get(f"{base}/-/reload", method="POST")[0]
        assert reload_status == (200 if "--web.enable-lifecycle" in command else 403)
        assert proc1(cid) == {"name": "prometheus", "uid": "65534"}      # nobody, as upstream
        start = time.monotonic()
        docker("stop", cid, timeout=60)
        assert time.monotonic() - start < 8
    finally:
        remove(cid)


# --------------------------------------------------------------------------- alertmanager and exporters
# (the exporters reaching a database and a cache are proven by the observability live check)

@pytest.fixture(scope="module")
def alertmanager_image(docker_engine) -> str:
    return _image("alertmanager-0")


@pytest.mark.docker
def test_alertmanager_like_the_official_image(alertmanager_image):
    cid = ""
    try:
        # the generated compose override's flags
        cid = run_detached(alertmanager_image, "--config.file=/etc/alertmanager/alertmanager.yml",
                           "--storage.path=/alertmanager", publish=9093)
        wait_healthy(cid)
        base = f"http://127.0.0.1:{host_port(cid, 9093)}"
        status, body = http_get(f"{base}/api/v2/status")
        assert status == 200 and "receiver: default" in json.loads(body)["config"]["original"]
        assert docker("exec", cid, "amtool", "--version", check=False).returncode == 0
        assert proc1(cid) == {"name": "alertmanager", "uid": "65534"}    # nobody, as upstream
        start = time.monotonic()
        docker("stop", cid, timeout=60)
        assert time.monotonic() - start < 8
    finally:
        remove(cid)


@pytest.mark.docker
@pytest.mark.parametrize("key, entrypoint, user", [
    ("postgres-exporter-0", ["/bin/postgres_exporter"], "nobody"),
    ("redis-exporter-1", ["/redis_exporter"], "59000:59000"),
])
def test_exporters_have_the_official_entrypoint_and_user(docker_engine, key, entrypoint, user):
    image = _image(key)
    config = json.loads(docker("image", "inspect", "--format", "{{json .Config}}", image).stdout)
    assert config["Entrypoint"] == entrypoint and config["User"] == user
    version = docker("run", "--rm", "--network", "none", *TEST_LABELS, image, "--version", check=False)
    assert version.returncode == 0
