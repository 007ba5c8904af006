"""Backup and disaster recovery family: pgBackRest for Postgres (continuous WAL archiving when the
RPO asks for it, scheduled full backups; compose jobs and scripts, a Kubernetes CronJob), Redis's
persistence decision, Velero, the backup bucket on AWS, GCP and Azure, backup alerts with promtool tests and a
restore runbook; proven by a DR drill in the sandbox that destroys the database and restores it."""
from __future__ import annotations

from kit.core.family import ChecklistItem, Criterion, Family, Option, Tool
from kit.core.tools import version_probe
from kit.families.backup import checks, drill, options
from kit.families.backup.notes import integration
from kit.families.backup.render import render_backup, work_notes

FAMILY = Family(
    name="backup", title="Backup and DR", notebook="70_backup_dr", template="backup/default",
    render=render_backup, option=Option("backup", options.SCHEMA, options.parse),
    static_checks=(checks.static_checks,), sandbox_checks=(drill.sandbox_checks,),
    needs=("container",),
    checklist=(
        ChecklistItem("Backups are generated for every stateful dependency and pass their linters "
                      "(docker compose config, shellcheck, promtool, kubernetes-validate, checkov, Velero structure); "
                      "in the cluster they are wired (the CronJob, pgBackRest's TLS server in the db pod, certificates "
                      "and NetworkPolicies agree, in each overlay's namespace; the runbook names real objects)",
                      ("backup.decisions", "backup.compose_config", "backup.shellcheck", "backup.promtool_rules", "backup.promtool_test",
                       "backup.k8s_schema", "backup.velero", "backup.pod_security", "backup.checkov_k8s",
                       "backup.tls_pairing", "backup.namespaces", "backup.runbook_refs")),
        ChecklistItem("The DR drill restores the database from the generated backup within the RTO and RPO",
                      ("backup.drill.*",)),
    ),
    criteria=(
        Criterion(r"backup|restore|disaster|\bdr\b|\brpo\b|\brto\b", ("backup.drill.*",), 70),
    ),
    tools=(
        Tool("shellcheck", version_probe(["shellcheck", "--version"]),
             "apt-get install -y --no-install-recommends shellcheck (or bash scripts/setup.sh)"),
        Tool("promtool", version_probe(["promtool", "--version"]),
             "apt-get install -y --no-install-recommends prometheus (or bash scripts/setup.sh)"),
        Tool("kubernetes-validate", version_probe(["kubernetes-validate", "--version"]),
             "pip install 'kubernetes-validate>=1.37,<1.38' into kit's venv (or bash scripts/setup.sh)"),
        Tool("docker compose v2", version_probe(["docker", "compose", "version"]),
             "bash scripts/setup.sh installs the plugin from Debian trixie's package"),
    ),
    work_notes=work_notes,
    purposes=(
        ("backup/README.md", "the backup plan: tool, schedule, retention, storage, encryption and the decisions"),
        ("backup/RESTORE.md", "restore runbook: full, point-in-time and single-table restores"),
        ("backup/backup.sh", "the backup job: a full pgBackRest backup, failing when nothing was written"),
        ("backup/restore.sh", "the restore procedure the drill runs: latest, immediate or a point in time"),
        ("backup/compose.backup.yaml", "compose override: WAL archiving on the database, backup and restore jobs"),
        ("backup/pgbackrest.conf", "pgBackRest's repository, retention and encryption settings"),
        ("backup/postgres/Dockerfile", "PostgreSQL with pgBackRest (pinned) for archiving and restores"),
        ("backup/k8s/velero/*", "Velero BackupStorageLocation and Schedule for each environment's namespace and its volumes"),
        ("backup/k8s/db-pgbackrest.yaml", "the db StatefulSet patch: archive_command and pgBackRest's TLS server sidecar"),
        ("backup/k8s/*", "the Kustomize component every overlay includes: the backup CronJob with its ServiceAccount, "
                         "NetworkPolicies, configuration and certificates"),
        ("backup/restore-pod.yaml", "the one-shot in-cluster restore Pod the runbook applies"),
        ("backup/monitoring/backup-alerts.test.yml", "promtool tests of the backup alerts"),
        ("backup/monitoring/*", "BackupTooOld (RPO breached) and BackupJobFailed alerts"),
        ("backup/terraform/*", "the backup bucket or Azure storage account (versioning, lock, encryption, lifecycle, DR replica) "
                                 "and the jobs' identity"),
        ("backup/*", "backup and restore"),
    ),
    integration=integration,
)
