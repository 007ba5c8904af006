"""The `backup` task section: recovery objectives (RPO, RTO), the full-backup schedule, the
retention tiers, where backups go, encryption, an optional DR region and Redis's persistence.

Every key is optional: a service with a stateful dependency (postgres, redis) gets the defaults
below; one without gets no backup at all (`Backup.enabled` False)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING

from kit.errors import TaskError

if TYPE_CHECKING:
    from kit.model import Service
    from kit.task import TaskDoc

DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
STORAGE_KINDS = ("s3", "gcs", "azure", "local")
CLOUD_STORAGE = {"aws": "s3", "gcp": "gcs", "azure": "azure"}
REDIS_MODES = ("aof", "rdb", "cache")
# RPOs at or below this need continuous WAL archiving (point-in-time recovery) by default
PITR_DEFAULT_BELOW_S = 15 * 60
DEFAULTS = {"rpo": "15m", "rto": "1h", "schedule": "0 2 * * *",
            "retention": {"daily": 7, "weekly": 4, "monthly": 6}}
DAY = 86400

SCHEMA: dict = {
    "type": "object", "additionalProperties": False,
    "description": "Backup and disaster recovery (backup/): pgBackRest for Postgres, Redis persistence, "
                   "Velero, the backup bucket, alerts and a restore runbook; proven by a DR drill in the "
                   "sandbox. Every key is optional; defaults apply to any service with a stateful dependency.",
    "properties": {
        "rpo": {"type": ["string", "integer"], "description": "recovery point objective: the most data "
                "(as time) a restore may lose, e.g. 5m, 15m, 24h (default 15m)"},
        "rto": {"type": ["string", "integer"], "description": "recovery time objective: from the loss of "
                "the database to the service healthy again, e.g. 30m, 1h (default 1h)"},
        "schedule": {"type": "string", "description": "cron schedule (5 fields, UTC) of the full backups "
                     "(default '0 2 * * *', daily at 02:00)"},
        "continuous": {"type": "boolean", "description": "continuous WAL archiving for point-in-time "
                       "recovery (default: on when the RPO is 15m or less, or tighter than the schedule)"},
        "retention": {"type": "object", "additionalProperties": False,
                      "description": "how many backups each tier keeps (default daily 7, weekly 4, monthly 6)",
                      "properties": {t: {"type": "integer", "minimum": 0, "maximum": 1000}
                                     for t in ("daily", "weekly", "monthly")}},
        "storage": {"type": "object", "additionalProperties": False,
                    "description": "where backups go: an object-storage bucket in the cloud (s3, gcs, azure; "
                                   "default by cloud.provider) and, for compose, a local path or named volume",
                    "properties": {
                        "kind": {"type": "string", "description": "s3, gcs, azure or local"},
                        "bucket": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$",
                                   "description": "bucket name (default <service>-backup)"},
                        "path": {"type": "string", "description": "compose: a host path for the backup "
                                 "repository (default: the named volume backup-repo)"}}},
        "encryption": {"type": "object", "additionalProperties": False,
                       "description": "backups are encrypted by pgBackRest (aes-256-cbc, passphrase from the "
                                      "secret named here) and at rest by the bucket's KMS key",
                       "properties": {
                           "enabled": {"type": "boolean", "description": "default true; false is refused "
                                       "for cloud storage"},
                           "secret": {"type": "string", "pattern": r"^[A-Z][A-Z0-9_]*$",
                                      "description": "name of the secret holding the repository passphrase "
                                                     "(default PGBACKREST_REPO1_CIPHER_PASS)"},
                           "kms_key": {"type": "string", "description": "an existing KMS key (ARN, id); "
                                       "default: the Terraform creates one"}}},
        "dr_region": {"type": "string", "pattern": r"^[a-z]{2,}[a-z0-9-]*[0-9a-z]$",
                      "description": "a second region the bucket is replicated to"},
        "redis": {"type": "string", "description": "aof, rdb (persistence, and the dump is backed up) or "
                  "cache (nothing to restore: recorded as a decision); default aof"},
    },
}


@dataclass(frozen=True)
class Backup:
    enabled: bool                  # False: no stateful dependency, nothing generated
    rpo_s: int
    rto_s: int
    schedule: str
    interval_s: int                # the longest gap between two scheduled full backups
    continuous: bool
    continuous_reason: str
    daily: int
    weekly: int
    monthly: int
    storage_kind: str              # the cluster's repository: s3 | gcs | azure | local
    bucket: str
    local_path: str                # compose: "" = the named volume backup-repo
    encrypted: bool
    cipher_secret: str
    kms_key: str
    dr_region: str
    redis_mode: str                # aof | rdb | cache | "" (no redis)
    postgres: tuple[str, ...]      # names of the postgres dependencies
    redis: tuple[str, ...]

    @property
    def retention_days(self) -> int:
        """The oldest backup kept, in days: the longest tier."""
        return max(self.daily, self.weekly * 7, self.monthly * 31)

    @property
    def archive_timeout_s(self) -> int:
        """PostgreSQL's archive_timeout: a WAL segment is closed and archived at least this often,
        which bounds the data lost with continuous archiving (half the RPO, 60 s at least)."""
        return max(60, min(self.rpo_s // 2, 3600))

    @property
    def weekly_fulls(self) -> bool:
        """Full backups once a week, differential ones at the other slots: the schedule runs more
        often than weekly."""
        return self.interval_s < 7 * DAY

    @property
    def slots_per_day(self) -> int:
        return max(1, DAY // max(self.interval_s, 1))

    @property
    def retention_conf(self) -> list[tuple[str, str]]:
        """The tiers as pgBackRest expresses them (pgbackrest.org/configuration.html#section-repository:
        repo-retention-full-type 'count' or 'time' (days), repo-retention-full, repo-retention-diff
        (differential backups kept, by count); pgbackrest.org/user-guide.html 'Retention'). pgBackRest
        does not thin old full backups to one a month: it keeps full backups by count or by age.
        So: a full backup each week, kept by age for the longest tier (weekly or monthly), and a
        differential backup at every other slot, the last `daily` days of them kept. Without
        weekly fulls (a schedule of a week or longer), every backup is full, kept by age."""
        conf = [("repo1-retention-full-type", "time"), ("repo1-retention-full", str(self.retention_days))]
        if self.weekly_fulls:
            conf.append(("repo1-retention-diff", str(max(1, self.daily * self.slots_per_day))))
        return conf

    @property
    def fulls_kept(self) -> int:
        """About how many full backups the repository holds at once (one per week, or per slot)."""
        every = 7 * DAY if self.weekly_fulls else max(self.interval_s, 1)
        return max(1, -(-self.retention_days * DAY // every))


def duration_s(value: object) -> int:
    """Seconds from 30s, 15m, 1h, 2d or a bare number of seconds; ValueError otherwise."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = DURATION.match(str(value))
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"cannot read {value!r} as a duration")
    return int(match.group(1)) * UNIT[match.group(2)]


def human(seconds: float) -> str:
    seconds = int(seconds)
    for unit, size in (("d", DAY), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# --------------------------------------------------------------------------- cron

def _cron_field(text: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        base, _, step = part.partition("/")
        if base == "*":
            start, end = low, high
        elif "-" in base:
            a, b = base.split("-", 1)
            start, end = int(a), int(b)
        else:
            start = end = int(base)
            if step:
                end = high
        if not (low <= start <= end <= high):
            raise ValueError(f"{part!r} is outside {low}-{high}")
        values.update(range(start, end + 1, int(step) if step else 1))
        if step and int(step) <= 0:
            raise ValueError("a step must be positive")
    return values


def cron_interval_s(expr: str) -> int:
    """The longest gap between two runs of a 5-field cron schedule, over a 4-week cycle (UTC,
    day-of-month and day-of-week as cron ORs them when both are restricted); ValueError when
    it cannot be read or never runs."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"a cron schedule has 5 fields (minute hour day month weekday), got {len(fields)}")
    try:
        minutes = _cron_field(fields[0], 0, 59)
        hours = _cron_field(fields[1], 0, 23)
        mdays = _cron_field(fields[2], 1, 31)
        months = _cron_field(fields[3], 1, 12)
        wdays = {d % 7 for d in _cron_field(fields[4], 0, 7)}
    except ValueError as exc:
        raise ValueError(f"cannot read {expr!r}: {exc}") from None
    if months != set(range(1, 13)):
        raise ValueError("backups restricted to some months leave the others without any")
    # a 28-day cycle starting on a Monday (weekday 1), days of month 1..28 then 1..28 again
    runs = []
    for day in range(56):
        mday, wday = day % 28 + 1, (day + 1) % 7
        restricted_m, restricted_w = fields[2] != "*", fields[4] != "*"
        if restricted_m and restricted_w:
            ok = mday in mdays or wday in wdays
        else:
            ok = mday in mdays and wday in wdays
        if ok:
            runs += [day * DAY + h * 3600 + m * 60 for h in sorted(hours) for m in sorted(minutes)]
    if not runs:
        raise ValueError(f"{expr!r} never runs")
    # days 29-31 only add runs, so the 28-day cycle gives an upper bound of the gap
    gaps = [b - a for a, b in pairwise(runs)]
    return max(gaps) if gaps else 56 * DAY


# --------------------------------------------------------------------------- parse

def parse(doc: TaskDoc, service: Service) -> Backup:
    raw = doc.data.get("backup")
    deps = list(getattr(service, "dependencies", ()) or ())
    postgres = tuple(d.name for d in deps if d.kind == "postgres")
    redis = tuple(d.name for d in deps if d.kind == "redis")

    def fail(message: str, *path: str, hint: str | None = None) -> TaskError:
        return doc.error(message, "backup", *path, hint=hint)

    if raw is not None and not isinstance(raw, dict):
        raise fail("must be a mapping, e.g. {rpo: 15m, rto: 1h}")
    raw = raw or {}
    enabled = bool(postgres or redis)

    def dur(key: str) -> int:
        try:
            return duration_s(raw.get(key, DEFAULTS[key]))
        except ValueError as exc:
            raise fail(str(exc), key, hint="give a duration such as 5m, 15m, 1h or 1d") from None

    rpo, rto = dur("rpo"), dur("rto")
    schedule = str(raw.get("schedule", DEFAULTS["schedule"]))
    try:
        interval = cron_interval_s(schedule)
    except ValueError as exc:
        raise fail(str(exc), "schedule", hint="e.g. '0 2 * * *' (daily at 02:00 UTC) or '0 */6 * * *'") from None

    continuous_given = raw.get("continuous")
    if continuous_given is None:
        continuous = rpo <= PITR_DEFAULT_BELOW_S or rpo < interval
        reason = (f"the RPO {human(rpo)} is 15m or less" if rpo <= PITR_DEFAULT_BELOW_S else
                  f"the RPO {human(rpo)} is tighter than the full backups' interval {human(interval)}"
                  if rpo < interval else
                  f"the full backups every {human(interval)} meet the RPO {human(rpo)}")
    else:
        continuous = bool(continuous_given)
        reason = "set in the task"
    if not continuous and rpo < interval:
        raise fail(f"an RPO of {human(rpo)} is tighter than the schedule {schedule!r} can give (a full backup "
                   f"every {human(interval)} at worst) and continuous archiving is off", "rpo",
                   hint=f"set backup.continuous: true (WAL archiving, point-in-time recovery), back up at "
                        f"least every {human(rpo)}, or relax the RPO to {human(interval)}")
    if continuous and rpo < 60:
        raise fail(f"an RPO of {human(rpo)} is below what WAL archiving can give (archive_timeout of 60s at "
                   "the least)", "rpo", hint="streaming replication to a standby gives seconds; backups give minutes")

    retention = raw.get("retention") or {}
    tiers = {t: int(retention.get(t, DEFAULTS["retention"][t])) for t in ("daily", "weekly", "monthly")}
    if not any(tiers.values()):
        raise fail("keeps no backup at all", "retention", hint="e.g. {daily: 7, weekly: 4, monthly: 6}")
    window = max(tiers["daily"], tiers["weekly"] * 7, tiers["monthly"] * 31) * DAY
    if window < rpo:
        raise fail(f"the retention keeps backups for {human(window)}, shorter than the RPO {human(rpo)}: "
                   "the backup a restore needs may already be expired", "retention",
                   hint=f"keep at least {-(-rpo // DAY)} daily backups")
    if window < interval:
        raise fail(f"the retention keeps backups for {human(window)}, shorter than the interval between "
                   f"full backups ({human(interval)}): at times no backup would exist", "retention",
                   hint="keep more daily or weekly backups, or back up more often")

    cloud = doc.data.get("cloud") or {}
    provider = cloud.get("provider", "aws") if isinstance(cloud, dict) else "aws"
    storage = raw.get("storage") or {}
    kind = str(storage.get("kind", CLOUD_STORAGE.get(provider, "s3")))
    if kind not in STORAGE_KINDS:
        raise fail(f"unknown storage kind {kind!r}; valid values: {', '.join(STORAGE_KINDS)}", "storage", "kind",
                   hint="s3 (aws), gcs (gcp) or azure (blob) for the cluster; local for a path on the host")
    if kind in CLOUD_STORAGE.values() and kind != CLOUD_STORAGE.get(provider):
        raise fail(f"storage kind {kind!r} does not match cloud.provider {provider!r}, whose Terraform makes "
                   "the bucket", "storage", "kind", hint=f"use {CLOUD_STORAGE.get(provider)!r} or change cloud.provider")
    path = str(storage.get("path", ""))
    if path and not path.startswith(("/", "./")):
        raise fail(f"must be an absolute path or one starting with ./, got {path!r}", "storage", "path")
    name = getattr(service, "name", "service")
    bucket = str(storage.get("bucket", f"{name}-backup"))

    encryption = raw.get("encryption") or {}
    encrypted = bool(encryption.get("enabled", True))
    if not encrypted and kind != "local":
        raise fail("backups in a cloud bucket must be encrypted", "encryption", "enabled",
                   hint="remove the key (encryption is on by default)")
    region = str(cloud.get("region", "")) if isinstance(cloud, dict) else ""
    dr_region = str(raw.get("dr_region", ""))
    if dr_region and dr_region == region:
        raise fail(f"the DR region {dr_region!r} is the primary region", "dr_region",
                   hint="name a second region, e.g. eu-central-1")
    if dr_region and kind == "local":
        raise fail("a DR region needs cloud storage, not local", "dr_region")

    mode = str(raw.get("redis", "aof"))
    if mode not in REDIS_MODES:
        raise fail(f"unknown Redis mode {mode!r}; valid values: {', '.join(REDIS_MODES)}", "redis",
                   hint="aof (append-only file), rdb (snapshots) or cache (nothing to restore)")

    return Backup(enabled=enabled, rpo_s=rpo, rto_s=rto, schedule=schedule, interval_s=interval,
                  continuous=continuous, continuous_reason=reason,
                  daily=tiers["daily"], weekly=tiers["weekly"], monthly=tiers["monthly"],
                  storage_kind=kind, bucket=bucket, local_path=path, encrypted=encrypted,
                  cipher_secret=str(encryption.get("secret", "PGBACKREST_REPO1_CIPHER_PASS")),
                  kms_key=str(encryption.get("kms_key", "")), dr_region=dr_region,
                  redis_mode=mode if redis else "", postgres=postgres, redis=redis)
