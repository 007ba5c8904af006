"""Backup and DR: what work.md's Integration Notes say (prerequisites, risks, rollback)."""
from __future__ import annotations

from kit.core.family import Integration
from kit.model import Spec


def integration(spec: Spec) -> Integration:
    if not any(d.kind == "postgres" for d in spec.dependencies):
        return Integration()
    prereq = ("The backup bucket and the backup jobs' identity from `backup/terraform/` (applied before the first "
              "backup), the encryption passphrase as a secret, and Velero in the cluster for `backup/k8s/velero.yaml`.",
              "PostgreSQL must run the image built from `backup/postgres/Dockerfile` (pgBackRest inside it, WAL "
              "archiving on): in compose through `backup/compose.backup.yaml`.")
    if spec.option("backup").storage_kind == "azure":
        prereq += ("On Azure, pgBackRest 2.45 needs a container SAS (at most 90 days) as the Secret "
                   "`<service>-backup-azure` (key `azure.conf`, `repo1-azure-key=<SAS>`) in each namespace, rotated before it expires "
                   "(`backup/README.md`); managed identity needs pgBackRest >= 2.58.0.",)
    risks = ("In Kubernetes the backup CronJob needs a pgBackRest TLS server beside PostgreSQL in the database "
             "pod, which `k8s/` does not add yet: the in-cluster manifests are generated, not wired in.",
             "The drill proves the compose procedure on stand-ins; practise `backup/RESTORE.md` on staging.")
    rollback = ("A bad restore is undone by restoring again to an earlier point (`backup/restore.sh <time>`); "
                "the bucket keeps every backup for the retention period (object lock).",)
    return Integration(prereq, risks, rollback)
