"""The backup family without Docker: the task section's defaults and errors (file:line:field), the
generated plan for Postgres + Redis, a Redis-only service, PITR by RPO, and the static rules
broken on purpose."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kit.cli import main
from kit.families import render_all
from kit.families.backup import checks
from kit.families.backup.options import cron_interval_s, duration_s
from kit.spec import load_spec
from tests.conftest import write_task

PG = "service:\n  name: mini\n  source: src\ndependencies:\n  - {kind: postgres, name: db, version: \"15\"}\n"

ERRORS = [
    ("retention-shorter-than-rpo", PG + "backup:\n  rpo: 3d\n  retention: {daily: 1, weekly: 0, monthly: 0}\n",
     ["task.md:9: backup.retention: the retention keeps backups for 1d, shorter than the RPO 3d"]),
    ("rpo-tighter-than-schedule", PG + "backup:\n  rpo: 1h\n  continuous: false\n",
     ["task.md:8: backup.rpo: an RPO of 1h is tighter than the schedule '0 2 * * *' can give",
      "set backup.continuous: true"]),
    ("unknown-storage-kind", PG + "backup:\n  storage: {kind: ftp}\n",
     ["task.md:8: backup.storage.kind: unknown storage kind 'ftp'; valid values: s3, gcs, azure, local"]),
    ("storage-other-cloud", PG + "cloud: {provider: gcp}\nbackup:\n  storage: {kind: s3}\n",
     ["task.md:9: backup.storage.kind: storage kind 's3' does not match cloud.provider 'gcp'"]),
    ("bad-duration", PG + "backup:\n  rto: soon\n", ["task.md:8: backup.rto: cannot read 'soon' as a duration"]),
    ("bad-cron", PG + "backup:\n  schedule: '0 25 * * *'\n", ["task.md:8: backup.schedule: cannot read '0 25 * * *'"]),
    ("retention-nothing", PG + "backup:\n  retention: {daily: 0, weekly: 0, monthly: 0}\n",
     ["task.md:8: backup.retention: keeps no backup at all"]),
    ("retention-shorter-than-interval", PG + "backup:\n  schedule: '0 2 * * 0'\n  retention: {daily: 3, weekly: 0, monthly: 0}\n",
     ["task.md:9: backup.retention:", "shorter than the interval between full backups (7d)"]),
    ("unencrypted-cloud", PG + "backup:\n  encryption: {enabled: false}\n",
     ["task.md:8: backup.encryption.enabled: backups in a cloud bucket must be encrypted"]),
    ("dr-same-region", PG + "cloud: {provider: aws, region: eu-west-1}\nbackup:\n  dr_region: eu-west-1\n",
     ["task.md:9: backup.dr_region: the DR region 'eu-west-1' is the primary region"]),
    ("redis-mode", PG + "backup:\n  redis: snapshot\n", ["task.md:8: backup.redis: unknown Redis mode 'snapshot'"]),
    ("relative-path", PG + "backup:\n  storage: {kind: local, path: backups}\n",
     ["task.md:8: backup.storage.path: must be an absolute path or one starting with ./"]),
    ("rpo-below-archiving", PG + "backup:\n  rpo: 30s\n",
     ["task.md:8: backup.rpo: an RPO of 30s is below what WAL archiving can give"]),
    ("unknown-key", PG + "backup:\n  rpos: 5m\n", ["task.md:8: backup.rpos: unknown key 'rpos'"]),
]


@pytest.mark.parametrize("case_id,front,expected", ERRORS, ids=[c[0] for c in ERRORS])
def test_bad_backup_section(case_id, front, expected, minimal, capsys):
    write_task(minimal, front)
    code = main(["generate", str(minimal)])
    err = capsys.readouterr().err
    assert code == 2, err
    for fragment in expected:
        assert fragment in err, f"{fragment!r} not in {err!r}"
    assert not (minimal / "kit-out").exists()


def _spec(project: Path, front: str):
    write_task(project, front)
    return load_spec(project, output=Path("/nonexistent/kit-out"))


def test_defaults_for_a_stateful_service(minimal):
    b = _spec(minimal, PG).option("backup")
    assert (b.enabled, b.rpo_s, b.rto_s, b.schedule, b.interval_s) == (True, 900, 3600, "0 2 * * *", 86400)
    assert (b.daily, b.weekly, b.monthly, b.storage_kind, b.encrypted) == (7, 4, 6, "s3", True)
    assert b.continuous and "15m or less" in b.continuous_reason


def test_no_stateful_dependency_no_backup(minimal):
    spec = _spec(minimal, "service:\n  name: mini\n  source: src\n")
    assert not spec.option("backup").enabled
    assert not [f for f in render_all(spec) if f.startswith("backup/")]


def test_rpo_5m_gets_continuous_archiving(minimal):
    files = render_all(_spec(minimal, PG + "backup:\n  rpo: 5m\n"))
    compose = yaml.safe_load(files["backup/compose.backup.yaml"])
    command = compose["services"]["db"]["command"]
    assert "archive_mode=on" in command and "archive_timeout=150" in command
    assert "Point-in-time restore" in files["backup/RESTORE.md"] and "restore.sh \"2026" in files["backup/RESTORE.md"]


def test_relaxed_rpo_full_backups_only(minimal):
    b = _spec(minimal, PG + "backup:\n  rpo: 2d\n").option("backup")
    assert not b.continuous and "meet the RPO" in b.continuous_reason
    files = render_all(_spec(minimal, PG + "backup:\n  rpo: 2d\n"))
    assert "archive_timeout" not in files["backup/compose.backup.yaml"]
    alerts = yaml.safe_load(files["backup/monitoring/backup-alerts.yml"])
    assert "> 172800" in alerts["groups"][0]["rules"][0]["expr"]      # BackupTooOld = the RPO


def test_redis_only_records_the_decision(minimal):
    spec = _spec(minimal, "service:\n  name: mini\n  source: src\ndependencies:\n  - {kind: redis, name: cache}\n"
                          "backup:\n  redis: cache\n")
    files = render_all(spec)
    assert sorted(f for f in files if f.startswith("backup/")) == ["backup/README.md"]
    assert "Redis is a cache: nothing is backed up and nothing is restored" in files["backup/README.md"]
    record = checks.decisions(spec)
    assert record.passed and record.figures["cache"] == "cache: nothing to restore"


def test_example_plan(example_spec):
    files = render_all(example_spec)
    cron = yaml.safe_load(files["backup/k8s/cronjob.yaml"])
    assert cron["spec"]["schedule"] == "0 2 * * *"
    assert not checks.restricted_problems(files["backup/k8s/cronjob.yaml"])
    assert not checks.restricted_problems(files["backup/restore-pod.yaml"])
    assert "restore: allowPrivilegeEscalation is not false" in checks.restricted_problems(
        files["backup/restore-pod.yaml"].replace("allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true"))
    assert not checks.velero_problems(files["backup/k8s/velero/prod.yaml"])
    sa = yaml.safe_load(files["backup/k8s/serviceaccount.yaml"])
    assert sa["automountServiceAccountToken"] is False
    assert "pgbackrest=2.45-1" in files["backup/postgres/Dockerfile"]
    assert "object_lock_enabled = true" in files["backup/terraform/main.tf"]


@pytest.fixture
def example_spec():
    from tests.conftest import EXAMPLE
    return load_spec(EXAMPLE, output=Path("/nonexistent/kit-out"))


def test_gcp_bucket_with_dr_region(minimal):
    spec = _spec(minimal, PG + "cloud: {provider: gcp, region: europe-west1, project: mini-prod-1}\n"
                               "backup:\n  dr_region: europe-west4\n")
    files = render_all(spec)
    tf = files["backup/terraform/main.tf"]
    assert 'data_locations = ["EUROPE-WEST1", "EUROPE-WEST4"]' in tf and "retention_policy" in tf
    assert "mini-prod-1.svc.id.goog[${each.value}/mini-backup]" in tf      # each overlay's namespace
    from kit.families.backup import wiring
    from kit.families.backup.render import k8s_envs
    assert wiring.identity_namespace_problems(tf, "mini", [ns for _e, ns in k8s_envs(spec)]) == []
    assert "mini-backup@mini-prod-1.iam.gserviceaccount.com" in files["backup/k8s/serviceaccount.yaml"]
    assert "repo1-type=gcs" in files["backup/k8s/pgbackrest-config.yaml"]


def test_pod_security_rule_broken(example_spec):
    text = render_all(example_spec)["backup/k8s/cronjob.yaml"]
    broken = text.replace("allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true").replace(
        "runAsNonRoot: true", "runAsNonRoot: false").replace("          automountServiceAccountToken: false\n", "")
    problems = checks.restricted_problems(broken)
    assert "automountServiceAccountToken is not false" in problems
    assert "pgbackrest: allowPrivilegeEscalation is not false" in problems
    assert "pgbackrest: runAsNonRoot is not true" in problems


def test_velero_rule_broken(example_spec):
    text = render_all(example_spec)["backup/k8s/velero/prod.yaml"]
    docs = [d for d in yaml.safe_load_all(text) if d["apiVersion"] == "velero.io/v1"]
    del docs[0]["spec"]["objectStorage"]["bucket"]
    docs[1]["spec"]["template"]["storageLocation"] = "elsewhere"
    problems = checks.velero_problems(yaml.safe_dump_all(docs))
    assert "BackupStorageLocation: spec.objectStorage.bucket must be a non-empty str" in problems
    assert "Schedule shop-api-prod-daily: storageLocation elsewhere is not defined" in problems
    assert "no Schedule" in checks.velero_problems(yaml.safe_dump(docs[0]))


def test_retention_is_tiered_as_pgbackrest_expresses_it(example_spec):
    """Daily schedule, tiers 7/4/6: weekly fulls kept by age for 186 days (about 27), 7 daily diffs;
    not 186 daily fulls (the review's finding)."""
    files = render_all(example_spec)
    b = example_spec.option("backup")
    assert b.retention_conf == [("repo1-retention-full-type", "time"), ("repo1-retention-full", "186"),
                                ("repo1-retention-diff", "7")]
    assert b.fulls_kept == 27
    conf = files["backup/pgbackrest.conf"]
    assert "repo1-retention-full-type=time" in conf and "repo1-retention-diff=7" in conf
    cron = yaml.safe_load(files["backup/k8s/cronjob.yaml"])
    command = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"][2]
    assert 'date -u +%u)" = 7' in command and "backup --type=$type" in command


def _built(files: dict[str, str], tmp_path: Path) -> dict[str, list[dict]]:
    import subprocess
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    built = {}
    for env in ("dev", "staging", "prod"):
        out = subprocess.run(["kubectl", "kustomize", f"k8s/overlays/{env}"], cwd=tmp_path, capture_output=True,
                             text=True, check=True).stdout
        built[env] = [d for d in yaml.safe_load_all(out) if d]
    return built


def _envs(files: dict[str, str]) -> dict[str, list[dict]]:
    return {env: [d for d in yaml.safe_load_all(text) if d] for env, text in checks.env_files(files).items()}


@pytest.mark.tools
def test_in_cluster_backup_is_wired_and_breaks(example_spec, tmp_path):
    """kubectl kustomize builds every overlay with backup/k8s as a component: the TLS pairing holds,
    the objects land in the overlay's namespace; then each link is broken on purpose."""
    from kit.families.backup import wiring
    files = render_all(example_spec)
    assert "../../../backup/k8s" in files["k8s/overlays/prod/kustomization.yaml"]
    built, envs = _built(files, tmp_path), _envs(files)
    for env, objects in built.items():
        assert wiring.tls_pairing_problems(objects, envs[env]) == []
        assert wiring.namespace_problems(env, f"shop-api-{env}", objects, envs[env]) == []
        sts = next(o for o in objects if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "db")
        names = [c["name"] for c in sts["spec"]["template"]["spec"]["containers"]]
        assert names == ["postgres", "pgbackrest"]
        assert "archive_mode=on" in sts["spec"]["template"]["spec"]["containers"][0]["args"]
    assert wiring.runbook_problems(files["backup/RESTORE.md"], built, files) == []

    def broken(mutate, env="prod"):
        objs = list(yaml.safe_load_all(yaml.safe_dump_all(built[env])))
        docs = list(yaml.safe_load_all(yaml.safe_dump_all(envs[env])))
        mutate(objs, docs)
        return "; ".join(wiring.tls_pairing_problems(objs, docs))

    def conf(objs, key, old, new):
        cm = next(o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "shop-api-pgbackrest")
        assert old in cm["data"][key]
        cm["data"][key] = cm["data"][key].replace(old, new)

    assert "tls-server-port is 8433" in broken(lambda o, d: conf(o, "pgbackrest-db.conf", "tls-server-port=8432",
                                                                   "tls-server-port=8433"))
    assert "tls-server-address is localhost" in broken(lambda o, d: conf(o, "pgbackrest-db.conf",
                                                                        "tls-server-address=*\n", ""))
    assert "does not authorise the client CN shop-api-backup" in broken(
        lambda o, d: conf(o, "pgbackrest-db.conf", "tls-server-auth=shop-api-backup=", "tls-server-auth=other="))
    assert "names no pod of a StatefulSet" in broken(lambda o, d: conf(o, "pgbackrest.conf", "pg1-host=db-0.db",
                                                                       "pg1-host=database-0.db"))
    assert "pg1-host-type is ssh" in broken(lambda o, d: conf(o, "pgbackrest.conf", "pg1-host-type=tls\n", ""))

    def not_headless(objs, docs):
        svc = next(o for o in objs if o["kind"] == "Service" and o["metadata"]["name"] == "db")
        svc["spec"]["clusterIP"] = "10.0.0.12"
    assert "Service/db: not headless" in broken(not_headless)

    def no_policy(objs, docs):
        objs[:] = [o for o in objs if o["metadata"]["name"] != "db-from-backup"]
    assert "no NetworkPolicy lets CronJob/shop-api-db-full's pods into db on 8432" in broken(no_policy)

    def open_policy(objs, docs):
        pol = next(o for o in objs if o["metadata"]["name"] == "db-from-backup")
        pol["spec"]["ingress"][0]["from"].append({"podSelector": {"matchLabels": {"app.kubernetes.io/name": "shop-api"}}})
    assert "lets other pods than the backup job reach" in broken(open_policy)

    def wrong_dns(objs, docs):
        cert = next(o for o in objs if o["kind"] == "Certificate" and o["metadata"]["name"] == "shop-api-pgbackrest-server")
        cert["spec"]["dnsNames"] = ["db"]
    assert "do not include pg1-host db-0.db" in broken(wrong_dns)

    def other_issuer(objs, docs):
        cert = next(o for o in objs if o["kind"] == "Certificate" and o["metadata"]["name"] == "shop-api-pgbackrest-client")
        cert["spec"]["issuerRef"]["name"] = "letsencrypt"
    assert "different issuers" in broken(other_issuer)

    def no_sidecar(objs, docs):
        sts = next(o for o in objs if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "db")
        sts["spec"]["template"]["spec"]["containers"] = sts["spec"]["template"]["spec"]["containers"][:1]
    assert "no container runs `pgbackrest server`" in broken(no_sidecar)

    # namespaces: the base's namespace instead of the overlay's, and a Velero Schedule of another one
    prod = yaml.safe_load_all(yaml.safe_dump_all(built["prod"]))
    prod = list(prod)
    next(o for o in prod if o["kind"] == "CronJob")["metadata"]["namespace"] = "shop-api"
    docs = list(yaml.safe_load_all(yaml.safe_dump_all(envs["prod"])))
    next(d for d in docs if d["kind"] == "Schedule")["spec"]["template"]["includedNamespaces"] = ["shop-api"]
    problems = "; ".join(wiring.namespace_problems("prod", "shop-api-prod", prod, docs))
    assert "CronJob/shop-api-db-full is in namespace shop-api, not the overlay's shop-api-prod" in problems
    assert "includes ['shop-api'], not the overlay's namespace [shop-api-prod]" in problems

    # the alerts: the base namespace instead of the overlays'
    alerts = files["backup/monitoring/backup-alerts.yml"]
    namespaces = [f"shop-api-{e}" for e in ("dev", "staging", "prod")]
    assert wiring.alert_namespace_problems(alerts, namespaces) == []
    bad_alerts = alerts.replace('namespace=~"shop-api-dev|shop-api-staging|shop-api-prod"', 'namespace="shop-api"')
    assert "alert BackupTooOld: namespace=\"shop-api\" misses shop-api-dev, shop-api-staging, shop-api-prod" in \
        wiring.alert_namespace_problems(bad_alerts, namespaces)

    # the runbook: a namespace, a StatefulSet, a CronJob and a label no overlay builds
    runbook = files["backup/RESTORE.md"]
    bad = (runbook.replace("-n shop-api-prod scale statefulset/db", "-n shop-api scale statefulset/db")
           .replace("create job --from=cronjob/shop-api-db-full", "create job --from=cronjob/shop-api-full")
           .replace("rollout status statefulset/db", "rollout status statefulset/postgres")
           .replace("-l app.kubernetes.io/name=shop-api-backup", "-l app=backup"))
    problems = "; ".join(wiring.runbook_problems(bad, built, files))
    assert "namespace shop-api is not one an overlay builds" in problems
    assert "no CronJob/shop-api-full in namespace shop-api-prod" in problems
    assert "no StatefulSet/postgres in namespace shop-api-prod" in problems
    assert "no object in shop-api-prod carries the label app=backup" in problems
    pod = files["backup/restore-pod.yaml"]
    bad_pod = {**files, "backup/restore-pod.yaml": pod.replace("claimName: data-db-0", "claimName: data-db-1")
               .replace("serviceAccountName: shop-api-backup", "serviceAccountName: backup")
               .replace("name: shop-api-pgbackrest\n", "name: pgbackrest\n")
               .replace("secretName: shop-api-backup-cipher", "secretName: cipher")}
    problems = "; ".join(wiring.runbook_problems(runbook, built, bad_pod))
    assert "PVC data-db-1 is not one a StatefulSet's volumeClaimTemplates create in shop-api-prod" in problems
    assert "ServiceAccount backup is not in shop-api-prod" in problems
    assert "ConfigMap pgbackrest is not in shop-api-prod" in problems
    assert "nothing in shop-api-prod creates the Secret cipher" in problems
    assert "no such generated Schedule" in "; ".join(wiring.runbook_problems(
        runbook.replace("--from-schedule shop-api-prod-daily", "--from-schedule shop-api-daily"), built, files))
    assert "backup/restore.yaml is not a generated file" in "; ".join(wiring.runbook_problems(
        runbook.replace("-f backup/restore-pod.yaml", "-f backup/restore.yaml"), built, files))


@pytest.mark.parametrize("expr,gap", [("0 2 * * *", 86400), ("*/15 * * * *", 900), ("0 */6 * * *", 21600),
                                      ("0 3 * * 0", 7 * 86400), ("30 1 * * 1-5", 3 * 86400)])
def test_cron_interval(expr, gap):
    assert cron_interval_s(expr) == gap


def test_durations():
    assert [duration_s(v) for v in ("5m", "1h", "2d", "45s", 60)] == [300, 3600, 172800, 45, 60]
    with pytest.raises(ValueError):
        duration_s("0m")


def test_restore_failure_reasons():
    from subprocess import CompletedProcess

    from kit.families.backup.drill import _restore_reason
    lost = CompletedProcess([], 1, "", "ERROR: [055]: unable to load info file '/var/lib/pgbackrest/backup/shop-api/"
                                      "backup.info' or '.copy':\nFileMissingError: unable to open missing file")
    assert _restore_reason(lost).startswith("the restore cannot find its backup: ERROR: [055]: unable to load info file")
    other = CompletedProcess([], 1, "", "ERROR: [038]: unable to restore while PostgreSQL is running")
    assert _restore_reason(other) == "restore failed: ERROR: [038]: unable to restore while PostgreSQL is running"
    assert "not out of recovery" in _restore_reason(CompletedProcess([], 0, "", ""))


def _static(spec, tmp_path, files):
    from kit.core.context import VerifyContext
    from kit.render import write_files
    write_files(files, tmp_path)
    return {r.check: r for r in checks.static_checks(spec, VerifyContext(deliverables=tmp_path, files=files))}


@pytest.mark.tools
def test_static_checks_pass_on_the_example(example_spec, tmp_path):
    records = _static(example_spec, tmp_path, render_all(example_spec))
    assert {r.check: r.reason for r in records.values() if not r.passed} == {}
    assert {"backup.compose_config", "backup.shellcheck", "backup.promtool_test", "backup.k8s_schema",
            "backup.checkov_k8s", "backup.terraform_fmt", "backup.checkov_tf", "backup.tls_pairing",
            "backup.namespaces", "backup.runbook_refs", "backup.velero"} <= set(records)


@pytest.mark.tools
def test_static_checks_catch_broken_files(example_spec, tmp_path):
    files = render_all(example_spec)
    files["backup/restore.sh"] = files["backup/restore.sh"].replace('"${args[@]}"', "${args[@]}")   # SC2068
    files["backup/monitoring/backup-alerts.yml"] = files["backup/monitoring/backup-alerts.yml"].replace(
        "> 0\n", "> 1\n")                                 # one failed job no longer fires: the promtool case fails
    files["backup/k8s/cronjob.yaml"] = files["backup/k8s/cronjob.yaml"].replace("backoffLimit: 2", "backoffLimit: two")
    records = _static(example_spec, tmp_path, files)
    assert records["backup.shellcheck"].status == "failed" and "SC2068" in records["backup.shellcheck"].log
    assert records["backup.promtool_test"].status == "failed"
    assert records["backup.k8s_schema"].status == "failed"


@pytest.mark.parametrize("extra", ["kubernetes:\n  managed: {db: db.example.internal}\n",
                                   "backup:\n  storage: {kind: local, path: /srv/backups}\n"])
def test_no_in_cluster_backup_for_a_managed_database_or_a_local_repository(minimal, extra):
    """A managed Postgres has no StatefulSet to patch; a local repository is compose's host path: neither
    gets backup/k8s, and the overlays do not include it (their quota makes no room for it)."""
    files = render_all(_spec(minimal, PG + extra))
    assert not [rel for rel in files if rel.startswith("backup/k8s/")]
    assert "components:" not in files["k8s/overlays/prod/kustomization.yaml"]
    assert "backup/postgres/Dockerfile" in files and "backup/RESTORE.md" in files


# --- Azure: the backup storage account and the jobs' identity (backup/terraform on cloud.provider azure) ---

AZURE_CLOUD = ("cloud:\n  provider: azure\n  region: westeurope\n"
               "  node_pool: {instance_type: Standard_D4s_v5, min: 2, max: 5}\n")


def _azure_example(tmp_path, dr_region=""):
    """The bundled example moved to Azure (an ACR image, cloud.provider azure), optionally with a DR region."""
    import re

    from tests.conftest import copy_example
    project = copy_example(tmp_path / "azure-shop")
    task = project / ".claude" / "task.md"
    text = re.sub(r"cloud:\n  provider: aws\n  region: eu-west-1\n  node_pool: [^\n]*\n", AZURE_CLOUD, task.read_text())
    text = re.sub(r"image: \S+[^\n]*", "image: shopapi.azurecr.io/shop-api", text, count=1)
    if dr_region:
        head, sep, body = text.partition("\n---\n")
        text = head + f"\nbackup:\n  dr_region: {dr_region}" + sep + body
    task.write_text(text)
    return load_spec(project, output=tmp_path / "kit-out")


def _azure_problems(spec, tf):
    from kit.families.backup import azure
    from kit.families.backup.render import lock_days
    b = spec.option("backup")
    from kit.families.backup.render import k8s_envs
    return azure.storage_problems(tf, b, [ns for _e, ns in k8s_envs(spec)], spec.name, lock_days(b))


@pytest.mark.parametrize("dr_region", ["", "northeurope"])
def test_azure_backup_storage(tmp_path, dr_region):
    spec = _azure_example(tmp_path, dr_region)
    files = render_all(spec)
    tf = files["backup/terraform/main.tf"]
    assert _azure_problems(spec, tf) == []
    from kit.families.iac.render import VERSIONS
    assert f'version = "{VERSIONS["azure"]["azurerm_range"]}"' in tf     # the iac family's azurerm pin
    assert 'account_kind                      = "StorageV2"' in tf and "immutability_period_in_days           = 7" in tf
    assert "tier_to_cool_after_days_since_modification_greater_than = 30" in tf
    assert "delete_after_days_since_modification_greater_than       = 193" in tf   # 6 months + a week
    assert 'subject             = "system:serviceaccount:${each.value}:shop-api-backup"' in tf
    assert 'toset(["shop-api-dev", "shop-api-staging", "shop-api-prod"])' in tf
    assert ("azurerm_storage_object_replication" in tf) == bool(dr_region)
    assert 'location                          = "northeurope"' in tf if dr_region else "CKV_AZURE_206:no backup.dr_region" in tf
    # pgBackRest 2.45 takes a container SAS from a Secret; kit writes no value
    assert "repo1-azure-key-type=sas" in files["backup/k8s/pgbackrest-config.yaml"]
    for rel in ("backup/k8s/cronjob.yaml", "backup/k8s/db-pgbackrest.yaml", "backup/restore-pod.yaml"):
        assert "- secret: {name: shop-api-backup-azure, items: [{key: azure.conf, path: azure.conf}]}" in files[rel], rel
        assert "AZURE_KEY" not in files[rel], rel                     # a file, not an environment variable
    assert "azure.workload.identity/client-id" in files["backup/k8s/serviceaccount.yaml"]
    assert "2.58.0" in files["backup/README.md"] and "sig=" not in tf + files["backup/README.md"]
    assert not checks.restricted_problems(files["backup/k8s/cronjob.yaml"])


AZURE_BREAKS = [
    ("public-blobs", "allow_nested_items_to_be_public   = false", "allow_nested_items_to_be_public   = true",
     "allow_nested_items_to_be_public is not false"),
    ("http", "enable_https_traffic_only         = true", "enable_https_traffic_only         = false", "HTTPS-only is not on"),
    ("tls10", 'min_tls_version                   = "TLS1_2"', 'min_tls_version                   = "TLS1_0"',
     "min_tls_version is not TLS1_2"),
    ("no-versioning", "versioning_enabled  = true", "versioning_enabled  = false", "blob versioning is off"),
    ("short-worm", "immutability_period_in_days           = 7", "immutability_period_in_days           = 1",
     "immutability period is shorter than 7 days"),
    ("no-worm", "resource \"azurerm_storage_container_immutability_policy\"", "resource \"azurerm_storage_container_immutability_policy_gone\"",
     "no time-based immutability policy"),
    ("public-container", 'container_access_type = "private"', 'container_access_type = "blob"', "container_access_type is not private"),
    ("early-delete", "greater_than       = 193", "greater_than       = 20", "deleted before the retention"),
    ("archive", "tier_to_cold_after", "tier_to_archive_after", "Archive tier is offline"),
    ("account-scope", "scope                = azurerm_storage_container.backup.resource_manager_id",
     "scope                = azurerm_storage_account.backup.id", "not the container"),
    ("owner", 'role_definition_name = "Storage Blob Data Contributor"', 'role_definition_name = "Storage Blob Data Owner"',
     "not 'Storage Blob Data Contributor' only"),
    ("other-sa", 'system:serviceaccount:${each.value}:shop-api-backup"', 'system:serviceaccount:default:default"',
     "no federated credential for system:serviceaccount:shop-api-prod:shop-api-backup"),
    ("no-dr", 'resource "azurerm_storage_object_replication"', 'resource "azurerm_storage_object_replication_gone"',
     "no copy in the DR region northeurope"),
]


@pytest.mark.parametrize("case_id,old,new,expected", AZURE_BREAKS, ids=[c[0] for c in AZURE_BREAKS])
def test_azure_storage_rule_broken(tmp_path, case_id, old, new, expected):
    spec = _azure_example(tmp_path, "northeurope")
    tf = render_all(spec)["backup/terraform/main.tf"]
    assert old in tf
    problems = _azure_problems(spec, tf.replace(old, new, 1))
    assert any(expected in p for p in problems), problems


@pytest.mark.tools
def test_azure_static_checks(tmp_path):
    """The family's own Terraform checks on the Azure variant: terraform fmt, checkov (zero failures, every
    skip with its reason) and backup.azure_storage; checkov fails when blobs are made public."""
    spec = _azure_example(tmp_path, "northeurope")
    files = render_all(spec)
    records = _static(spec, tmp_path / "out", files)
    tf_checks = ("backup.terraform_fmt", "backup.checkov_tf", "backup.azure_storage")
    assert {c: records[c].reason for c in tf_checks if not records[c].passed} == {}
    assert {r.check: r.reason for r in records.values() if not r.passed} == {}      # the k8s side too (CKV_K8S_35)
    assert all(s.split(":")[0] and " " in s for s in records["backup.checkov_tf"].figures["skips"])
    files["backup/terraform/main.tf"] = files["backup/terraform/main.tf"].replace(
        "allow_nested_items_to_be_public   = false", "allow_nested_items_to_be_public   = true", 1)
    from kit.core.checkov import run_checkov
    from kit.render import write_files
    write_files({"backup/terraform/main.tf": files["backup/terraform/main.tf"]}, tmp_path / "broken")
    broken = run_checkov("backup.checkov_tf", "backup/terraform", "t", tmp_path / "broken" / "backup/terraform", "terraform")
    assert broken.status == "failed" and "CKV_AZURE_190" in broken.reason



@pytest.mark.parametrize("old, new, words", [
    ('"system:serviceaccount:shop-api-dev:shop-api-backup", ', "", "does not trust shop-api-backup in shop-api-dev"),
    ('"system:serviceaccount:shop-api-prod:shop-api-backup"', '"system:serviceaccount:shop-api:shop-api-backup"',
     "does not trust shop-api-backup in shop-api-prod"),
])
def test_the_backup_identity_trusts_exactly_the_overlays_namespaces(old, new, words):
    """The backup CronJob runs as shop-api-backup in shop-api-<env>: an IRSA trust naming the base
    namespace shop-api is never assumed and every backup fails (the Azure review's finding)."""
    from kit.families import render_all
    from kit.families.backup import wiring
    from kit.spec import load_spec
    from tests.conftest import EXAMPLE
    tf = render_all(load_spec(EXAMPLE))["backup/terraform/main.tf"]
    namespaces = ["shop-api-dev", "shop-api-staging", "shop-api-prod"]
    assert wiring.identity_namespace_problems(tf, "shop-api", namespaces) == []
    broken = tf.replace(old, new)
    assert broken != tf
    assert any(words in p for p in wiring.identity_namespace_problems(broken, "shop-api", namespaces))
