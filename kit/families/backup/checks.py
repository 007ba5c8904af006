"""Backup static checks: shellcheck on the scripts, promtool on the alerts and their tests,
kubernetes-validate on the CronJob and its objects, Velero's objects against the fields its CRDs
require, the restricted Pod Security profile, terraform fmt and checkov on the bucket, and the
decisions (tool, Redis) as records."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import yaml

from kit.core.checkov import run_checkov
from kit.core.context import VerifyContext
from kit.core.tools import tool_version, venv_tool
from kit.evidence import Evidence, run_tool
from kit.families.backup import azure, wiring
from kit.families.backup.options import human
from kit.families.backup.render import (
    PGBACKREST_VERSION,
    _cloud,
    backup_of,
    in_cluster,
    k8s_envs,
    lock_days,
    postgres_of,
)
from kit.model import Spec
from kit.sandbox.engine import docker_cli

SCRIPTS = ("backup/backup.sh", "backup/restore.sh")
K8S = ("backup/k8s/serviceaccount.yaml", "backup/k8s/pgbackrest-config.yaml", "backup/k8s/cronjob.yaml",
       "backup/k8s/networkpolicy.yaml", "backup/restore-pod.yaml")     # the complete objects of the component (no CRD kinds, no patch)
ENVS = "backup/k8s/velero"
ALERTS, ALERT_TESTS = "backup/monitoring/backup-alerts.yml", "backup/monitoring/backup-alerts.test.yml"
TF = "backup/terraform"

# Velero's CRDs (github.com/vmware-tanzu/velero, config/crd/v1/bases/velero.io_backupstoragelocations.yaml:
# spec.required [objectStorage, provider], objectStorage.required [bucket]; velero.io_schedules.yaml:
# spec.required [schedule, template]); kit checks these fields and their types, not the whole schema.
VELERO_RULES = {
    "BackupStorageLocation": (("spec", "provider", str), ("spec", "objectStorage", dict),
                              ("spec", "objectStorage", "bucket", str)),
    "Schedule": (("spec", "schedule", str), ("spec", "template", dict),
                 ("spec", "template", "includedNamespaces", list), ("spec", "template", "ttl", str)),
}


def static_checks(spec: Spec, ctx: VerifyContext) -> list[Evidence]:
    b = backup_of(spec)
    if not b.enabled:
        return [Evidence("backup.decisions", "backup/", "backup plan", "skipped",
                         reason="the service has no stateful dependency (postgres, redis): nothing to back up")]
    records = [decisions(spec)]
    if postgres_of(spec) is None:
        return records
    root = ctx.deliverables
    records.append(run_tool("backup.shellcheck", ", ".join(SCRIPTS), "shellcheck: the backup and restore scripts",
                            ["shellcheck", "-x", "-S", "style", *SCRIPTS], cwd=root,
                            tool=f"shellcheck {tool_version(['shellcheck', '--version'])}"))
    records.append(run_tool("backup.compose_config", "backup/compose.backup.yaml", "docker compose accepts "
                            "compose.yaml with backup/compose.backup.yaml on top (config --quiet), every profile",
                            [docker_cli(), "compose", "-f", "compose.yaml", "-f", "backup/compose.backup.yaml",
                             "--profile", "backup", "--profile", "restore", "config", "--quiet"],
                            tool="docker compose", cwd=root))
    prom = f"promtool {tool_version(['promtool', '--version'])}"
    records.append(run_tool("backup.promtool_rules", ALERTS, "promtool check rules: the backup alerts",
                            ["promtool", "check", "rules", ALERTS], tool=prom, cwd=root))
    records.append(run_tool("backup.promtool_test", ALERT_TESTS, "promtool test rules: BackupTooOld and "
                            "BackupJobFailed fire on failing series and stay silent otherwise",
                            ["promtool", "test", "rules", Path(ALERT_TESTS).name], tool=prom,
                            cwd=root / Path(ALERT_TESTS).parent))
    if "backup/k8s/kustomization.yaml" in ctx.files:
        records.append(kubernetes_validate(ctx.files))
        records.append(velero_structure(ctx.files))
        records += wired(spec, ctx)
    if "backup/k8s/kustomization.yaml" in ctx.files:
        records.append(pod_security(ctx.files))
        # the complete objects only, in the namespace an overlay gives them (the component names none):
        # the StatefulSet patch (db-pgbackrest.yaml) is checked where it lands, in the built overlays
        # (kubernetes.checkov)
        rels = [rel for rel in K8S if rel in ctx.files]
        namespace = (k8s_envs(spec) or [("", spec.name)])[-1][1]
        records.append(run_checkov("backup.checkov_k8s", "backup/k8s/", "checkov kubernetes policies on the "
                                   "backup CronJob and its objects (in the prod overlay's namespace): zero "
                                   "failures, skips with reasons",
                                   _tmp_tree({rel: with_namespace(ctx.files[rel], namespace) for rel in rels}, rels)
                                   / "backup/k8s", "kubernetes"))
    if f"{TF}/main.tf" in ctx.files:
        records.append(run_tool("backup.terraform_fmt", TF, "terraform fmt -check: the backup bucket",
                                ["terraform", "fmt", "-check", "-diff", TF], cwd=root,
                                env={**os.environ, "CHECKPOINT_DISABLE": "1"},
                                tool=f"terraform {tool_version(['terraform', 'version'])}"))
        records.append(run_checkov("backup.checkov_tf", TF, "checkov terraform policies on the backup bucket: "
                                   "zero failures, skips with reasons", root / TF, "terraform"))
        if _cloud(spec)[0] == "azure":
            records.append(azure.storage_record(ctx.files[f"{TF}/main.tf"], b,
                                                [ns for _e, ns in k8s_envs(spec)] or [spec.name], spec.name, lock_days(b)))
    return records


def decisions(spec: Spec) -> Evidence:
    """The plan's decisions as a record: what protects each stateful dependency, and why."""
    b = backup_of(spec)
    figures: dict[str, object] = {"rpo": human(b.rpo_s), "rto": human(b.rto_s), "schedule": b.schedule,
                                  "continuous_archiving": b.continuous, "retention_days": b.retention_days}
    parts = []
    pg = postgres_of(spec)
    if pg is not None:
        figures[pg.name] = f"pgBackRest {PGBACKREST_VERSION}"
        parts.append(f"{pg.name}: pgBackRest {PGBACKREST_VERSION}, "
                     f"{'continuous WAL archiving (PITR)' if b.continuous else 'full backups'} ({b.continuous_reason})")
    for r in b.redis:
        figures[r] = "cache: nothing to restore" if b.redis_mode == "cache" else f"{b.redis_mode} persistence"
        parts.append(f"{r}: " + ("a cache, nothing is backed up or restored (backup.redis: cache)"
                                 if b.redis_mode == "cache" else f"{b.redis_mode.upper()} persistence, RDB copy"))
    return Evidence("backup.decisions", "backup/README.md", "backup plan: " + "; ".join(parts), "passed",
                    tool="kit", figures=figures, proof="static")


def kubernetes_validate(files: dict[str, str]) -> Evidence:
    tool = venv_tool("kubernetes-validate")
    rels = [rel for rel in K8S if rel in files]
    record = run_tool("backup.k8s_schema", ", ".join(rels), "the backup CronJob, ServiceAccount, ConfigMap and "
                      "NetworkPolicies validate against Kubernetes' schemas (strict)", [tool, "--strict", *rels],
                      tool=f"kubernetes-validate {tool_version([tool, '--version'])}",
                      cwd=_tmp_tree(files, rels))
    if record.passed and "warn" in record.log.lower():
        record.status, record.reason = "failed", "kubernetes-validate warned (unknown kind or removed API)"
    return record


def with_namespace(text: str, namespace: str) -> str:
    """The objects as an overlay's namespace transformer leaves them."""
    docs = [d for d in yaml.safe_load_all(text) if d]
    for d in docs:
        d.setdefault("metadata", {}).setdefault("namespace", namespace)
    return yaml.safe_dump_all(docs, sort_keys=False)


def _tmp_tree(files: dict[str, str], rels: list[str]) -> Path:
    tmp = Path(tempfile.mkdtemp(prefix="kit-backup-k8s-"))
    import atexit
    import shutil
    atexit.register(shutil.rmtree, tmp, True)     # the tools read it during this check; gone at exit
    for rel in rels:
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp / rel).write_text(files[rel])
    return tmp


def env_files(files: dict[str, str]) -> dict[str, str]:
    """environment -> backup/k8s/velero/ENV.yaml's text."""
    return {Path(rel).stem: text for rel, text in sorted(files.items()) if rel.startswith(f"{ENVS}/")}


def velero_structure(files: dict[str, str]) -> Evidence:
    envs = env_files(files)
    problems = [f"{env}: {p}" for env, text in envs.items() for p in velero_problems(text)] if envs \
        else ["no backup/k8s/velero/ENV.yaml"]
    return Evidence("backup.velero", f"{ENVS}/", "Velero's Schedule and BackupStorageLocation carry the fields and "
                    "types Velero's CRDs require (structural check, not the full CRD schema)",
                    "failed" if problems else "passed", tool="kit (rules from Velero's CRDs)",
                    reason="; ".join(problems), proof="static",
                    figures={"source": "github.com/vmware-tanzu/velero config/crd/v1/bases"})


def velero_problems(text: str) -> list[str]:
    docs = [d for d in yaml.safe_load_all(text) if (d and str(d.get("apiVersion", "")).startswith("velero.io"))
            or (d and d.get("kind") in VELERO_RULES)] if text else []
    problems, kinds = [], set()
    for doc in docs:
        kind = doc.get("kind")
        kinds.add(kind)
        if doc.get("apiVersion") != "velero.io/v1":
            problems.append(f"{kind}: apiVersion must be velero.io/v1")
        for rule in VELERO_RULES.get(kind, ()):
            *path, typ = rule
            node = doc
            for key in path:
                node = node.get(key) if isinstance(node, dict) else None
            if not isinstance(node, typ) or (typ in (str, list) and not node):
                problems.append(f"{kind}: {'.'.join(path)} must be a non-empty {typ.__name__}")
    for kind in VELERO_RULES:
        if kind not in kinds:
            problems.append(f"no {kind}")
    schedules = [d for d in docs if d.get("kind") == "Schedule"]
    locations = {d["metadata"]["name"] for d in docs if d.get("kind") == "BackupStorageLocation"}
    for s in schedules:
        loc = ((s.get("spec") or {}).get("template") or {}).get("storageLocation")
        if loc and loc not in locations:
            problems.append(f"Schedule {s['metadata']['name']}: storageLocation {loc} is not defined")
    return problems


def overlays(spec: Spec, ctx: VerifyContext) -> tuple[dict[str, list[dict]], list[str]]:
    """env -> the objects `kubectl kustomize k8s/overlays/ENV` builds (the kubernetes family's build when
    it ran, else built here once), and the overlays that did not build."""
    from kit.core.k8s import build_overlay
    built = dict(ctx.facts.get("k8s_objects") or {})
    cache = ctx.facts.setdefault("backup.overlays", {})
    failed = []
    for env, _ in k8s_envs(spec):
        if env in built or f"k8s/overlays/{env}/kustomization.yaml" not in ctx.files:
            continue
        if env not in cache:
            cache[env] = build_overlay(ctx.deliverables, env)
        record, objects = cache[env]
        if record.passed:
            built[env] = objects
        else:
            failed.append(f"{env}: {record.reason} {record.log[:300]}")
    return built, failed


def wired(spec: Spec, ctx: VerifyContext) -> list[Evidence]:
    """The in-cluster backup as the overlays build it: the TLS pairing, the namespaces, the runbook."""
    if not in_cluster(spec):
        return []
    built, failed = overlays(spec, ctx)
    envs = {env: [d for d in yaml.safe_load_all(text) if d] for env, text in env_files(ctx.files).items()}
    namespaces = dict(k8s_envs(spec))
    tls = [f"{env}: {p}" for env, objs in built.items() for p in wiring.tls_pairing_problems(objs, envs.get(env, []))]
    ns = [p for env, objs in built.items() for p in wiring.namespace_problems(env, namespaces[env], objs, envs.get(env, []))]
    ns += wiring.alert_namespace_problems(ctx.files.get(ALERTS, ""), list(namespaces.values()))
    ns += wiring.identity_namespace_problems(ctx.files.get("backup/terraform/main.tf", ""), spec.name,
                                             list(namespaces.values()))
    refs = wiring.runbook_problems(ctx.files.get("backup/RESTORE.md", ""), built, ctx.files)
    tool, built_by = "kit (rules from pgBackRest's server and pg-host options)", "kubectl kustomize k8s/overlays/ENV"
    src = {"source": "pgbackrest.org/command.html#command-server; pgbackrest.org/configuration.html (pg-host-*, "
                     "tls-server-*); pgBackRest src/common/io/tls/client.c (tlsClientHostVerify)",
           "overlays": sorted(built)}

    def record(check: str, where: str, title: str, problems: list[str], tool: str) -> Evidence:
        problems = failed + problems if not built or failed else problems
        return Evidence(check, where, title, "failed" if problems or not built else "passed", tool=tool,
                        reason="; ".join(problems[:8]) or ("" if built else "no overlay built"), proof="static",
                        figures=src, command=built_by, log="\n".join(problems))
    return [
        record("backup.tls_pairing", "backup/k8s/", "the backup CronJob's pg1-host settings, the database pod's "
               "`pgbackrest server` (tls-server-*), the certificates, the Service port and the NetworkPolicies "
               "agree in every overlay", tls, tool),
        record("backup.namespaces", "backup/k8s/", "the backup objects land in each overlay's namespace, each "
               "Velero Schedule includes exactly that namespace, the backup alerts select those namespaces, and the "
               "cloud identity (IRSA, workload identity, federated credential) trusts the backup ServiceAccount in "
               "exactly those namespaces", ns, "kit (kustomize's namespace transformer, "
               "Velero's includedNamespaces)"),
        record("backup.runbook_refs", "backup/RESTORE.md", "every object the runbook's kubectl commands name exists, "
               "in that namespace, in what the overlays build", refs, "kit (static)"),
    ]


def pod_security(files: dict[str, str]) -> Evidence:
    """The restricted Pod Security Standard (kubernetes.io/docs/concepts/security/pod-security-standards/,
    'Restricted'): runAsNonRoot, allowPrivilegeEscalation false, capabilities drop ALL, seccomp
    RuntimeDefault or Localhost; and no service account token in the pods."""
    problems = restricted_problems(files.get("backup/k8s/cronjob.yaml", ""))
    problems += [f"restore Pod: {p}" for p in restricted_problems(files.get("backup/restore-pod.yaml", ""))]
    return Evidence("backup.pod_security", "backup/k8s/cronjob.yaml, backup/restore-pod.yaml", "the backup CronJob's "
                    "pods and the restore Pod meet the restricted Pod Security profile and mount no API token", "failed" if problems else "passed",
                    tool="kit (Pod Security Standards: restricted)", reason="; ".join(problems), proof="static")


def restricted_problems(text: str) -> list[str]:
    problems = []
    for doc in (d for d in yaml.safe_load_all(text) if d):
        pod = doc.get("spec") or {} if doc.get("kind") == "Pod" else \
            (((doc.get("spec") or {}).get("jobTemplate") or {}).get("spec") or {}).get("template", {}).get("spec", {})
        psc = pod.get("securityContext") or {}
        if pod.get("automountServiceAccountToken") is not False:
            problems.append("automountServiceAccountToken is not false")
        for c in pod.get("containers", []) + pod.get("initContainers", []):
            sc = c.get("securityContext") or {}
            name = c.get("name")
            if not (sc.get("runAsNonRoot") or psc.get("runAsNonRoot")):
                problems.append(f"{name}: runAsNonRoot is not true")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{name}: allowPrivilegeEscalation is not false")
            if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
                problems.append(f"{name}: capabilities do not drop ALL")
            seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
            if seccomp not in ("RuntimeDefault", "Localhost"):
                problems.append(f"{name}: seccompProfile is not RuntimeDefault or Localhost")
            if sc.get("runAsUser") == 0 or psc.get("runAsUser") == 0:
                problems.append(f"{name}: runs as user 0")
    return problems


def has_tools() -> bool:
    return all(shutil.which(t) for t in ("shellcheck", "promtool"))
