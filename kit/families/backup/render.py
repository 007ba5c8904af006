"""Backup family: pgBackRest for Postgres (compose jobs and scripts, Kubernetes CronJob), Redis's
persistence decision, Velero, backup alerts with promtool tests, the restore runbook and, on AWS, GCP
and Azure, the backup bucket (storage account) and the jobs' identity (backup/terraform/)."""
from __future__ import annotations

from kit.families.backup.options import DAY, Backup, human
from kit.model import Dependency, Spec
from kit.render import render_variant

# Debian bookworm's pgbackrest (apt-cache policy pgbackrest: 2.45-1), the image's base distribution
PGBACKREST_VERSION = "2.45-1"
VELERO_PROVIDER = {"s3": "aws", "gcs": "gcp", "azure": "azure", "local": "aws"}
GRACE_S = 3600      # a full backup may take this long past its slot before it counts as missing
# pgBackRest's TLS server (pgbackrest.org/command.html#command-server): tls-server-port's default
TLS_PORT = 8432
# the azurerm provider range the iac family pins (kit.families.iac.render.VERSIONS["azure"]; the iac
# family imports this module, so the value is repeated here and a unit test keeps the two equal)
AZURERM_RANGE = ">= 3.117.0, < 4.0.0"
# pgBackRest 2.45 reaches Azure with a SAS (repo1-azure-key-type=sas): the longest life kit lets it have
AZURE_SAS_DAYS = 90
PG_UID = 999        # the official postgres image's user (k8s/'s StatefulSet runs as it)


def backup_type_sh(b: Backup) -> str:
    """The shell that prints the backup type of this run: full at the first slot of each Sunday (UTC),
    diff at the others; full every time when the schedule is weekly or rarer."""
    if not b.weekly_fulls:
        return "echo full"
    window = min(24, max(1, b.interval_s // 3600))
    return (f'if [ "$(date -u +%u)" = 7 ] && [ "$(date -u +%H)" -lt {window} ]; '
            "then echo full; else echo diff; fi")


def backup_type_doc(b: Backup) -> str:
    if not b.weekly_fulls:
        return "every backup is full (the schedule runs weekly or less often)"
    return ("a full backup at the first slot of each Sunday (UTC), a differential one at the other slots: "
            "the retention tiers in pgBackRest's terms (backup/README.md)")


def k8s_envs(spec: Spec) -> list[tuple[str, str]]:
    """(environment, namespace) of every overlay of k8s/: the namespaces backup/k8s lands in."""
    try:
        k = spec.option("kubernetes")
    except KeyError:
        return []
    return [(e.name, f"{k.namespace}-{e.name}") for e in k.environments]


def in_cluster(spec: Spec) -> bool:
    """PostgreSQL runs in the cluster (not managed by the cloud) and the repository is object storage:
    backup/k8s wires pgBackRest into it. A local repository is compose's (a host path): in the cluster
    the CronJob and the database pod would need one volume between them."""
    pg = postgres_of(spec)
    try:
        managed = dict(spec.option("kubernetes").managed)
    except KeyError:
        return False
    return pg is not None and pg.name not in managed and backup_of(spec).storage_kind != "local"


def backup_of(spec: Spec) -> Backup:
    return spec.option("backup")


def postgres_of(spec: Spec) -> Dependency | None:
    return next((d for d in spec.dependencies if d.kind == "postgres"), None)


def too_old_s(b: Backup) -> int:
    """BackupTooOld's threshold: without continuous archiving the newest full backup is the recovery
    point, so the RPO itself; with it, WAL carries the RPO and a full backup is overdue one interval
    plus an hour after the previous one."""
    return b.interval_s + GRACE_S if b.continuous else b.rpo_s


def retention_rows(b: Backup) -> list[tuple[str, int, str]]:
    return [("daily", b.daily, f"{b.daily} days"), ("weekly", b.weekly, f"{b.weekly * 7} days"),
            ("monthly", b.monthly, f"about {b.monthly * 31} days")]


def k8s_repo(spec: Spec, b: Backup, region: str) -> list[tuple[str, str]]:
    if b.storage_kind == "s3":
        return [("repo1-type", "s3"), ("repo1-path", "/pgbackrest"), ("repo1-s3-bucket", b.bucket),
                ("repo1-s3-region", region), ("repo1-s3-endpoint", f"s3.{region}.amazonaws.com"),
                ("repo1-s3-key-type", "web-id")]
    if b.storage_kind == "gcs":
        return [("repo1-type", "gcs"), ("repo1-path", "/pgbackrest"), ("repo1-gcs-bucket", b.bucket),
                ("repo1-gcs-key-type", "auto")]
    if b.storage_kind == "azure":
        return [("repo1-type", "azure"), ("repo1-path", "/pgbackrest"), ("repo1-azure-container", b.bucket),
                ("repo1-azure-account", azure_account(b.bucket)), ("repo1-azure-key-type", "sas")]
    return [("repo1-type", "posix"), ("repo1-path", "/var/lib/pgbackrest")]


CIPHER_SECRET = "PGBACKREST_CIPHER_PASS"


def secret_store(spec: Spec) -> dict[str, str]:
    """Where the cluster's repository passphrase comes from: an ExternalSecret from the store k8s/base
    reads (named as the kubernetes family names the app's secrets), or a names-only Secret."""
    from kit.families.kubernetes.secret_names import cloud_of, remote_key
    try:
        k = spec.option("kubernetes")
    except KeyError:
        return {"secrets_mode": "plain", "secret_store": "", "cipher_key": ""}
    return {"secrets_mode": k.secrets, "secret_store": k.secret_store,
            "cipher_key": remote_key(spec.name, CIPHER_SECRET, cloud_of(spec))}


def image_tag(pg: Dependency) -> str:
    """The backup image's tag: the PostgreSQL version it is built on and the pgBackRest package."""
    return f"{pg.version}-pgbackrest{PGBACKREST_VERSION}"


def _cloud(spec: Spec) -> tuple[str, str]:
    try:
        cloud = spec.option("cloud")
        return cloud.provider, cloud.region
    except KeyError:
        return "aws", "eu-west-1"


def render_backup(spec: Spec) -> dict[str, str]:
    b = backup_of(spec)
    if not b.enabled:
        return {}
    pg = postgres_of(spec)
    if pg is None:
        return render_variant("backup", "redis", {"name": spec.name, "b": b, "redis": list(b.redis)})
    provider, region = _cloud(spec)
    env = dict(pg.env)
    tls = {"pg_host": f"{pg.name}-0.{pg.name}", "tls_port": TLS_PORT, "client_cn": f"{spec.name}-backup",
           "server_secret": f"{spec.name}-pgbackrest-server-tls", "client_secret": f"{spec.name}-pgbackrest-client-tls"}
    files = render_variant("backup", "default", {**tls,
        "name": spec.name, "b": b, "pg": pg, "pg_user": env.get("POSTGRES_USER", "postgres"),
        "pg_db": env.get("POSTGRES_DB", env.get("POSTGRES_USER", "postgres")),
        "pg_secret": pg.secret or "PGPASSWORD", "redis": list(b.redis),
        "pgbackrest_version": PGBACKREST_VERSION, "image": f"{spec.image}-pgbackrest",
        "image_tag": image_tag(pg), "pg_uid": PG_UID, "pgdata": f"{pg.data_path}/pgdata",
        "retention_conf": b.retention_conf, "envs": k8s_envs(spec),
        "cluster": in_cluster(spec),
        "alert_ns": "|".join(n for _, n in k8s_envs(spec)) or spec.name,
        "test_ns": (k8s_envs(spec) or [("", spec.name)])[-1][1],
        "backup_type_sh": backup_type_sh(b), "backup_type_doc": backup_type_doc(b), **secret_store(spec),
        "region": region, "provider": provider,
        "project": spec.option("cloud").project if provider == "gcp" else "", "k8s_repo": k8s_repo(spec, b, region),
        "velero_provider": VELERO_PROVIDER[b.storage_kind], "retention": retention_rows(b),
        "ttl_hours": b.retention_days * 24, "too_old_s": too_old_s(b), "cron": b.schedule,
        "archive_timeout": b.archive_timeout_s, "human": human,
    })
    if in_cluster(spec):
        for env_name, namespace in k8s_envs(spec):
            out = render_variant("backup", "env", {
                "name": spec.name, "env": env_name, "namespace": namespace, "b": b,
                "velero_provider": VELERO_PROVIDER[b.storage_kind], "provider": provider, "region": region,
                "ttl_hours": b.retention_days * 24, "cron": b.schedule})
            files[f"backup/k8s/velero/{env_name}.yaml"] = out["env.yaml"]
        if not b.encrypted:
            files.pop("backup/k8s/cipher-secret.yaml", None)
    else:
        files = {path: text for path, text in files.items() if not path.startswith("backup/k8s/")}
    # the namespaces the backup ServiceAccount runs in: every overlay's (the CronJob, the db's archive-push
    # and the restore Pod use <name>-backup there); the identities trust exactly those
    namespaces = [ns for _env, ns in k8s_envs(spec)] or [spec.name]
    if provider == "aws" and b.storage_kind == "s3":
        days = b.retention_days
        transitions = [(d, cls) for d, cls in ((30, "STANDARD_IA"), (90, "GLACIER_IR")) if days > d]
        files.update(render_variant("backup", "aws", {
            "name": spec.name, "b": b, "region": region, "transitions": transitions,
            "expire_days": days + 7, "lock_days": lock_days(b), "namespaces": namespaces,
        }))
    if provider == "gcp" and b.storage_kind == "gcs":
        days = b.retention_days
        transitions = [(d, cls) for d, cls in ((30, "NEARLINE"), (90, "COLDLINE")) if days > d]
        files.update(render_variant("backup", "gcp", {
            "name": spec.name, "b": b, "region": region, "project": spec.option("cloud").project,
            "transitions": transitions, "expire_days": days + 7, "lock_days": lock_days(b),
            "namespaces": namespaces,
        }))
    if provider == "azure" and b.storage_kind == "azure":
        days = b.retention_days
        # Cool and Cold are online tiers (read at once, as STANDARD_IA/GLACIER_IR and NEARLINE/COLDLINE are);
        # Archive is not: a restore would wait hours for rehydration, past any RTO
        transitions = [(d, tier) for d, tier in ((30, "cool"), (90, "cold")) if days > d]
        files.update(render_variant("backup", "azure", {
            "name": spec.name, "b": b, "region": region, "account": azure_account(b.bucket),
            "azurerm_range": AZURERM_RANGE, "transitions": transitions,
            "expire_days": days + 7, "lock_days": lock_days(b), "sas_days": AZURE_SAS_DAYS,
            "namespaces": namespaces,
        }))
    return files


def lock_days(b: Backup) -> int:
    """The bucket's lock (object lock, retention policy, WORM policy): the daily tier, a week without one."""
    return max(1, min(b.daily or 7, b.retention_days))


def azure_account(bucket: str) -> str:
    """The storage account's name: the bucket without '-' (3-24 lowercase letters and digits)."""
    return bucket.replace("-", "")[:24]


def work_notes(spec: Spec) -> list[str]:
    b = backup_of(spec)
    if not b.enabled:
        return ["No stateful dependency: no backup is generated."]
    notes = [f"RPO {human(b.rpo_s)}, RTO {human(b.rto_s)}, full backups `{b.schedule}` (every "
             f"{human(b.interval_s)} at worst); continuous WAL archiving {'on' if b.continuous else 'off'} "
             f"({b.continuous_reason}); retention {b.daily} daily / {b.weekly} weekly / {b.monthly} monthly "
             f"({b.retention_days} days)."]
    if postgres_of(spec) is not None:
        notes.append(f"Retention as pgBackRest expresses it: {', '.join(f'{k}={v}' for k, v in b.retention_conf)} "
                     f"({backup_type_doc(b)}).")
        notes.append(f"Postgres: pgBackRest {PGBACKREST_VERSION} (Debian bookworm) in the database image, "
                     "chosen over WAL-G (no Debian package) and Barman (a separate server pulling over "
                     "SSH/streaming); backup/README.md gives the reasons.")
        notes.append("The DR drill (Postgres stand-in with pgBackRest built from the generated "
                     "backup/postgres/Dockerfile) writes rows straight to the database, destroys it, restores it "
                     "with backup/restore.sh, which then starts the app and the other dependencies; the RTO runs to "
                     "the app answering its health path (the database alone when the app image did not build).")
        provider, _ = _cloud(spec)
        if (provider, b.storage_kind) not in (("aws", "s3"), ("gcp", "gcs"), ("azure", "azure")):
            notes.append(f"No backup bucket Terraform for {provider}/{b.storage_kind}: AWS S3, GCS and Azure "
                         "Blob only.")
        if provider == "azure" and b.storage_kind == "azure":
            notes.append(f"Azure: pgBackRest {PGBACKREST_VERSION} reaches the container with a SAS "
                         f"(repo1-azure-key-type=sas, at most {AZURE_SAS_DAYS} days, a secret rotated by hand: "
                         "backup/README.md); managed identities need pgBackRest >= 2.58.0, so the managed "
                         "identity backup/terraform creates is for that upgrade and shared-key authorization "
                         "stays on until then.")
        if in_cluster(spec):
            notes.append("Kubernetes: backup/k8s is a Kustomize component every overlay includes: the db StatefulSet "
                         "gets archive_command and pgBackRest's TLS server as a sidecar (cert-manager certificates), "
                         "the CronJob reaches it over mutual TLS; checked statically on the built overlays "
                         "(backup.tls_pairing, backup.namespaces, backup.runbook_refs), not run in a cluster. "
                         "The generated CI's publish job pushes the backup image once (not signed, not pinned by digest).")
    for r in b.redis:
        notes.append(f"Redis {r}: " + ("declared a cache, nothing to back up or restore (decision)."
                                      if b.redis_mode == "cache" else
                                      f"{b.redis_mode.upper()} persistence; RDB snapshot copied by backup.sh "
                                      "(not drilled)."))
    return notes


__all__ = ["DAY", "PGBACKREST_VERSION", "render_backup", "work_notes"]
