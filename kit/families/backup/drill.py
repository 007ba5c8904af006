"""The DR drill: the generated backup configuration and scripts, run for real in the sandbox.

1. bring the database up with backup/compose.backup.yaml on top of compose.yaml (the image is the
   generated backup/postgres/Dockerfile built FROM the Postgres stand-in);
2. write known rows (batch A) straight to the database and keep their exact text;
3. take a backup with the generated backup/backup.sh;
4. write more rows after it (batch B); with continuous archiving the drill closes the WAL segment
   with pg_switch_wal(), which archive_timeout would do within its bound, and waits for it to be
   archived; then a last batch C that no archive holds yet (writes in flight at the disaster);
5. destroy the database: its container and its volume;
6. restore with the generated backup/restore.sh;
7. wait until the database is out of recovery and, when the container family built the app's image,
   until restore.sh has started the rest of the stack and the app answers its health path (the app
   is not running during the writes: the rows go straight to the database);
8. compare the rows with the text kept in step 2 and 4, byte for byte.

RTO = destruction to healthy (app and database, or the database alone when there is no app image); RPO = the rows and seconds lost; both compared with the task's
targets. A restore that misses rows the backup or the archive holds fails. Everything the drill
makes is labelled with the run and removed afterwards (success, failure or interrupt).
"""
from __future__ import annotations

import hashlib
import json
import secrets as pysecrets
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kit.core.context import VerifyContext
from kit.errors import SandboxError
from kit.evidence import Evidence, excerpt
from kit.families.backup.options import human
from kit.families.backup.render import backup_of, postgres_of
from kit.model import Spec
from kit.sandbox.compose_run import leftovers
from kit.sandbox.engine import LABEL, docker, docker_cli, docker_env, image_exists, run_labels

OVERRIDE = "compose.kit-drill.yaml"
PROJECT_PREFIX = "kitdr-"
ROWS = {"A": 200, "B": 100, "C": 20}
TABLE = "kit_drill"


class DrillStop(Exception):
    """A step that makes the rest of the drill meaningless."""


@dataclass
class Drill:
    spec: Spec
    files: dict[str, str]
    standin: str
    app_image: str = ""                                      # "" = restore and check the database only
    dep_images: dict[str, str] = field(default_factory=dict)  # other dependencies' real image -> stand-in
    project: str = field(default_factory=lambda: PROJECT_PREFIX + uuid.uuid4().hex[:10])
    staged: Path | None = None
    image: str = ""
    t0: float = field(default_factory=time.monotonic)
    timeline: list[dict] = field(default_factory=list)
    records: list[Evidence] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)     # batch -> exact COPY text before
    log: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ plumbing
    @property
    def b(self):
        return backup_of(self.spec)

    @property
    def pg(self):
        return postgres_of(self.spec)

    def mark(self, step: str) -> float:
        t = round(time.monotonic() - self.t0, 2)
        self.timeline.append({"step": step, "t_s": t})
        return t

    def env(self) -> dict[str, str]:
        env = docker_env()
        env.pop("DOCKER_BUILDKIT", None)
        env.update({"COMPOSE_FILE": f"compose.yaml:backup/compose.backup.yaml:{OVERRIDE}",
                    "COMPOSE_PROJECT_NAME": self.project, "BACKUP_REDIS": "0", "RESTORE_SERVICES": self.pg.name})
        if self.app_image:          # restore.sh starts the whole stack, as it does for users
            env.pop("RESTORE_SERVICES")
        return env

    def compose(self, *args: str, check: bool = True, timeout: float = 180, input: str | None = None):
        proc = subprocess.run([docker_cli(), "compose", *args], cwd=self.staged, env=self.env(),
                              capture_output=True, text=True, timeout=timeout, input=input)
        if check and proc.returncode != 0:
            raise SandboxError(f"`docker compose {' '.join(args[:4])}` failed (exit {proc.returncode})",
                               logs=proc.stdout + proc.stderr)
        return proc

    def script(self, name: str, *args: str, timeout: float = 300) -> tuple[subprocess.CompletedProcess, float]:
        start = time.monotonic()
        try:
            proc = subprocess.run(["bash", f"backup/{name}", *args], cwd=self.staged, env=self.env(),
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            proc = subprocess.CompletedProcess(exc.cmd, 124, str(exc.stdout or ""), f"timed out after {timeout}s")
        return proc, round(time.monotonic() - start, 2)

    def sql(self, query: str, check: bool = True) -> str:
        env = dict(self.pg.env)
        user = env.get("POSTGRES_USER", "postgres")
        db = env.get("POSTGRES_DB", user)
        proc = self.compose("exec", "-T", self.pg.name, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", user,
                            "-d", db, "-tA", input=query, check=check, timeout=60)
        return proc.stdout

    def record(self, check: str, title: str, ok: bool, reason: str = "", **figures) -> Evidence:
        rec = Evidence(check, "backup/", title, "passed" if ok else "failed", tool="docker compose, pgBackRest",
                       reason="" if ok else reason, figures=figures, proof="stand-in",
                       standins={self.pg.image: self.standin, **self.dep_images})
        self.records.append(rec)
        return rec

    # ------------------------------------------------------------------ steps
    def stage(self) -> None:
        self.staged = Path(tempfile.mkdtemp(prefix="kit-drill-"))
        for rel, text in self.files.items():
            if rel == "compose.yaml" or rel.startswith("backup/"):
                path = self.staged / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
        secrets = self.staged / "secrets"
        secrets.mkdir()
        for name in self.spec.secrets:
            (secrets / name).write_text("kit-drill-" + pysecrets.token_hex(8))
        (secrets / self.b.cipher_secret).write_text(f"[global]\nrepo1-cipher-pass=kit-drill-{pysecrets.token_hex(16)}\n")
        for path in secrets.iterdir():
            path.chmod(0o644)       # bind-mounted secrets are read by the postgres user (uid 999)

    def build(self) -> None:
        """The generated backup/postgres/Dockerfile FROM the stand-in; tagged by a hash of both, so
        later drills reuse it."""
        folder = self.staged / "backup/postgres"
        standin_id = docker("image", "inspect", "--format", "{{.Id}}", self.standin, timeout=30).stdout.strip()
        digest = hashlib.sha256((folder / "Dockerfile").read_bytes() + standin_id.encode()).hexdigest()[:12]
        self.image = f"kit-drill/{self.pg.name}-pgbackrest:{digest}"
        start = time.monotonic()
        if not image_exists(self.image):
            # --network host: apt's traffic leaves from the host, never from a container's own address
            docker("build", "-q", "--network", "host", "--label", f"{LABEL}=true",
                   "--build-arg", f"POSTGRES_IMAGE={self.standin}",
                   "-t", self.image, str(folder), timeout=900)
        self.build_s = round(time.monotonic() - start, 2)

    def write_override(self) -> None:
        labels = run_labels()
        image = {"image": self.image, "pull_policy": "never", "labels": labels}
        services = {self.pg.name: {**image, "healthcheck": {"interval": "1s", "start_period": "60s"}},
                    f"{self.pg.name}-backup": dict(image), f"{self.pg.name}-restore": dict(image)}
        data = yaml.safe_load(self.files["backup/compose.backup.yaml"]) or {}
        named = [self.pg.volume, *(data.get("volumes") or {})]
        if self.app_image:
            # the sandbox's changes to the app and the other dependencies, as in the compose check:
            # the built image, stand-ins, a loopback port chosen by Docker, a 1 s health interval
            services[self.spec.name] = {"image": self.app_image, "pull_policy": "never", "labels": labels,
                                        "restart": "no", "ports": [f"127.0.0.1::{self.spec.port}"],
                                        "healthcheck": {"interval": "1s", "start_period": "60s"}}
            for dep in self.spec.dependencies:
                if dep.name != self.pg.name:
                    services[dep.name] = {"image": self.dep_images[dep.image], "pull_policy": "never",
                                          "labels": labels, "healthcheck": {"interval": "1s"}}
                    named.append(dep.volume)
        volumes = {v: {"labels": labels} for v in named}
        if self.b.local_path:            # the drill never writes to a host path: a labelled volume instead
            volumes["backup-repo"] = {"labels": labels, "driver": "local", "driver_opts": {}}
        override = {"services": services, "volumes": volumes, "networks": {"backend": {"labels": labels}}}
        text = yaml.safe_dump(override, sort_keys=True).replace("    ports:\n", "    ports: !override\n")
        if self.b.local_path:
            text = text.replace("    driver_opts: {}\n", "    driver_opts: !reset {}\n")
        (self.staged / OVERRIDE).write_text(text)

    def up(self) -> None:
        self.compose("up", "-d", "--wait", self.pg.name, timeout=240)
        # compose.yaml's healthcheck asks pg_isready over the unix socket, which the entrypoint's
        # temporary init server already answers; the final server is the one listening on TCP
        env = dict(self.pg.env)
        user = env.get("POSTGRES_USER", "postgres")
        deadline = time.monotonic() + 120
        while self.compose("exec", "-T", self.pg.name, "pg_isready", "-q", "-h", "127.0.0.1", "-U", user,
                           check=False, timeout=30).returncode != 0:
            if time.monotonic() > deadline:
                raise DrillStop(f"{self.pg.name} did not accept TCP connections within 120s of healthy")
            time.sleep(0.3)
        self.mark("database up")

    def write(self, batch: str) -> None:
        if batch == "A":
            self.sql(f"CREATE TABLE {TABLE} (id integer PRIMARY KEY, batch text NOT NULL, payload text NOT NULL, "
                     "written_at timestamptz NOT NULL DEFAULT clock_timestamp());")
        first = sum(n for b, n in ROWS.items() if b < batch) + 1
        self.sql(f"INSERT INTO {TABLE} (id, batch, payload) SELECT g, '{batch}', md5(random()::text) || "
                 f"repeat(chr(65 + g % 26), g % 40) FROM generate_series({first}, {first + ROWS[batch] - 1}) g;")
        self.kept[batch] = self.dump(batch)
        self.mark(f"wrote batch {batch} ({ROWS[batch]} rows)")

    def dump(self, batch: str) -> str:
        return self.sql(f"COPY (SELECT id, batch, payload, written_at FROM {TABLE} WHERE batch = '{batch}' "
                        "ORDER BY id) TO STDOUT;")

    def backup(self) -> bool:
        started = self.sql("SELECT extract(epoch FROM now())::bigint;").strip()
        self.mark("backup started")
        proc, seconds = self.script("backup.sh")
        self.mark("backup done")
        info = self.repository_info()
        newest = info[-1] if info else {}
        size = int(((newest.get("info") or {}).get("repository") or {}).get("delta") or 0)
        stop = int((newest.get("timestamp") or {}).get("stop") or 0)
        fresh = bool(newest) and stop >= int(started or 0)
        reason = ("" if proc.returncode == 0 else f"backup.sh failed (exit {proc.returncode}): "
                  f"{_last_line(proc)}; ")
        if not fresh or size <= 0:
            reason += ("the backup job wrote nothing: the repository holds no backup taken by this run"
                       + (f" (backup.sh exited {proc.returncode})" if proc.returncode == 0 else ""))
        ok = proc.returncode == 0 and fresh and size > 0
        rec = self.record("backup.drill.backup", "the generated backup job (backup/backup.sh) writes a full "
                          "backup into the repository", ok, reason, backup_bytes=size,
                          backup_size=_size(size), backup_duration_s=seconds, label=newest.get("label", ""),
                          backups_in_repository=len(info))
        rec.command = "bash backup/backup.sh"
        rec.log = excerpt(proc.stdout + proc.stderr)
        return ok

    def repository_info(self) -> list[dict]:
        proc = self.compose("--profile", "backup", "run", "--rm", "-T", f"{self.pg.name}-backup", "info",
                            "--output=json", check=False, timeout=120)
        try:
            stanzas = json.loads(proc.stdout or "[]")
        except json.JSONDecodeError:
            return []
        return [bk for st in stanzas for bk in (st.get("backup") or [])]

    def after_backup(self) -> None:
        self.write("B")
        if self.b.continuous:
            segment = self.sql("SELECT pg_walfile_name(pg_switch_wal());").strip()
            deadline = time.monotonic() + 30
            archived = ""
            while time.monotonic() < deadline:
                archived = self.sql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver;").strip()
                if archived >= segment:
                    break
                time.sleep(0.3)
            self.archived = archived >= segment
            self.mark(f"WAL segment {segment} archived" if self.archived else f"WAL segment {segment} NOT archived")
        self.write("C")
        self.last_write = float(self.sql(f"SELECT extract(epoch FROM max(written_at)) FROM {TABLE};").strip())

    def destroy(self) -> float:
        # a crash, not a shutdown: SIGKILL, so PostgreSQL archives nothing more on its way out
        t = self.mark("database destroyed (container and volume)")
        self.compose("kill", "-s", "KILL", self.pg.name, timeout=60)
        self.compose("rm", "-f", self.pg.name, timeout=60)
        volume = f"{self.project}_{self.pg.volume}"
        docker("volume", "rm", volume, timeout=60)
        if docker("volume", "inspect", volume, check=False).returncode == 0:
            raise DrillStop(f"the volume {volume} survived its removal")
        return t

    def restore(self) -> bool:
        start = self.mark("restore started")
        proc, seconds = self.script("restore.sh", "latest")
        healthy, reason = False, ""
        if proc.returncode == 0:
            state = self.sql("SELECT pg_is_in_recovery();", check=False).strip()
            healthy = state == "f"
            if healthy and self.app_image:
                healthy, reason = self.app_healthy()
        t = self.mark(("app and database healthy" if self.app_image else "database healthy") if healthy
                      else "restore failed")
        reason = "" if healthy else (reason or _restore_reason(proc))
        rec = self.record("backup.drill.restore", "the generated restore procedure (backup/restore.sh latest) brings "
                          "the database back from the repository after its container and volume were destroyed",
                          healthy, reason, restore_duration_s=seconds, exit_code=proc.returncode)
        rec.command = "bash backup/restore.sh latest"
        rec.log = excerpt(proc.stdout + proc.stderr)
        self.healthy_at = t if healthy else None
        del start
        return healthy

    def app_healthy(self) -> tuple[bool, str]:
        """restore.sh waited for every service's healthcheck; the app's health path must answer 200."""
        from kit.sandbox.health import http_get
        out = self.compose("port", self.spec.name, str(self.spec.port), check=False, timeout=30).stdout.strip()
        port = out.rsplit(":", 1)[-1] if out else ""
        if not port.isdigit():
            return False, f"the app publishes no port after the restore ({out or 'nothing'})"
        path = self.spec.health_path or "/"
        status, _, body = http_get(f"http://127.0.0.1:{port}{path}", timeout=5)
        self.app_status = status
        return status == 200, f"the app's {path} answered {status} after the restore: {body[:200]}"

    def verify(self, destroyed_at: float) -> None:
        b = self.b
        expected = ["A", "B"] if b.continuous else ["A"]
        problems, back = [], {}
        for batch in ROWS:
            now = self.dump(batch)
            back[batch] = len(now.splitlines())
            if batch in expected and now != self.kept[batch]:
                have = set(now.splitlines())
                missing = [line for line in self.kept[batch].splitlines() if line not in have]
                problems.append(f"batch {batch}: {len(missing)} of {ROWS[batch]} rows missing or different "
                                f"(e.g. id {missing[0].split(chr(9))[0]})" if missing else
                                f"batch {batch}: rows differ from what was written")
        checksums = {k: hashlib.sha256(v.encode()).hexdigest()[:16] for k, v in self.kept.items()}
        self.record("backup.drill.data", "the rows the backup" + (" and the WAL archive hold" if b.continuous else
                    " holds") + " are back byte for byte (sha256 of COPY text per batch)", not problems,
                    "restore came back with missing rows: " + "; ".join(problems), expected_batches=expected,
                    rows_written={k: ROWS[k] for k in ROWS}, rows_back=back, checksums=checksums)
        if b.continuous:
            ok = back["B"] == ROWS["B"] and getattr(self, "archived", False)
            self.record("backup.drill.pitr", "point-in-time recovery: rows written after the full backup are "
                        "replayed from the archived WAL", ok,
                        "the WAL segment holding batch B was not archived" if not getattr(self, "archived", False)
                        else f"{ROWS['B'] - back['B']} rows of batch B missing after WAL replay",
                        rows_after_backup=ROWS["B"], rows_replayed=back["B"])
        written = sum(ROWS.values())
        restored = sum(back.values())
        latest = self.sql(f"SELECT coalesce(extract(epoch FROM max(written_at)), 0) FROM {TABLE};").strip()
        seconds_lost = round(max(0.0, self.last_write - float(latest or 0)), 2)
        self.record("backup.drill.rpo", f"data lost within the RPO {human(b.rpo_s)}", seconds_lost <= b.rpo_s
                    and not problems, f"{seconds_lost}s of writes lost, more than the RPO {human(b.rpo_s)}"
                    if seconds_lost > b.rpo_s else "rows the backup holds are missing",
                    rows_lost=written - restored, seconds_lost=seconds_lost, rpo_target_s=b.rpo_s)
        rto = round(self.healthy_at - destroyed_at, 2)
        scope = ("the database restored, then the app started by restore.sh and answering its health path"
                 if self.app_image else "the database only: the app image was not built, so it is not started")
        self.record("backup.drill.rto", f"back within the RTO {human(b.rto_s)}: destruction to healthy ({scope})",
                    rto <= b.rto_s,
                    f"{rto}s from destruction to healthy, more than the RTO {human(b.rto_s)}",
                    rto_s=rto, rto_target_s=b.rto_s, app_started=bool(self.app_image),
                    app_health_status=getattr(self, "app_status", None), timeline=list(self.timeline))

    def cleanup(self) -> None:
        if self.staged is None:
            return
        try:
            self.compose("--profile", "backup", "--profile", "restore", "down", "-v", "--remove-orphans",
                         "--timeout", "5", check=False, timeout=120)
        finally:
            shutil.rmtree(self.staged, ignore_errors=True)


def _size(n: int) -> str:
    return f"{n / 1048576:.1f} MiB" if n >= 1048576 else f"{n / 1024:.1f} KiB"


def _last_line(proc: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in (proc.stderr or proc.stdout or "").splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "no output"


def _restore_reason(proc: subprocess.CompletedProcess) -> str:
    text = (proc.stdout or "") + (proc.stderr or "")
    # pgBackRest's words when the repository has no backup for the stanza (or no stanza at all)
    lost = ("unable to find", "no backup", "unable to load info file", "does not exist", "FileMissingError")
    for line in text.splitlines():
        if any(needle in line for needle in lost):
            return f"the restore cannot find its backup: {line.strip()[:300]}"
    for line in text.splitlines():
        if "ERROR" in line:
            return f"restore failed: {line.strip()[:300]}"
    if proc.returncode == 0:
        return "restore.sh exited 0 but the database is not out of recovery"
    return f"restore.sh failed (exit {proc.returncode}): {_last_line(proc)}"


def run_drill(spec: Spec, files: dict[str, str], standin: str, app_image: str = "",
              dep_images: dict[str, str] | None = None) -> list[Evidence]:
    drill = Drill(spec, files, standin, app_image, dict(dep_images or {}))
    destroyed_at = None
    try:
        drill.stage()
        drill.build()
        drill.write_override()
        drill.up()
        drill.write("A")
        drill.backup()
        drill.after_backup()
        destroyed_at = drill.destroy()
        if drill.restore():
            drill.verify(destroyed_at)
        else:
            for check in ("data", "rpo", "rto"):
                drill.records.append(Evidence(f"backup.drill.{check}", "backup/", f"drill: {check}", "skipped",
                                              reason="the restore failed, nothing to measure", proof=""))
    except (SandboxError, DrillStop, subprocess.TimeoutExpired) as exc:
        logs = getattr(exc, "logs", "") or ""
        drill.records.append(Evidence("backup.drill.run", "backup/", "the DR drill ran to its end", "failed",
                                      reason=str(exc), log=excerpt(logs), proof="stand-in",
                                      standins={drill.pg.image: standin}))
    finally:
        project = drill.project
        drill.cleanup()
        left = leftovers(project)
        ok = not any(left.values())
        drill.records.append(Evidence("backup.drill.cleanup", "backup/", "the drill left no container, network "
                                      "or volume behind", "passed" if ok else "failed",
                                      reason="" if ok else f"left behind: {left}", figures=left, proof="stand-in"))
    timeline = drill.timeline
    for rec in drill.records:
        rec.figures.setdefault("project", drill.project)
    if drill.records:
        drill.records[0].figures["timeline"] = timeline
    return drill.records


def sandbox_checks(spec: Spec, ctx: VerifyContext) -> list[Evidence]:
    b = backup_of(spec)
    pg = postgres_of(spec)
    if not b.enabled or pg is None:
        reason = ("no stateful dependency" if not b.enabled else
                  "no Postgres: Redis " + ("is a cache, nothing to restore (decision)" if b.redis_mode == "cache"
                                           else "persistence is not drilled"))
        return [Evidence("backup.drill.run", "backup/", "the DR drill", "skipped", reason=reason)]
    from kit.core.session import existing_image
    app_image = existing_image(spec, ctx)
    dep_images = {d.image: ctx.standin(d.image) for d in spec.dependencies if d.name != pg.name} if app_image else {}
    return run_drill(spec, ctx.files, ctx.standin(pg.image), app_image, dep_images)
