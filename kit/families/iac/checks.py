"""IaC checks: terraform fmt, a python-hcl2 parse of every .tf file, checkov's terraform
policies, kit's rules, and terraform validate where the providers are available offline."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

from kit.config import Settings
from kit.core.checkov import run_checkov
from kit.core.context import VerifyContext
from kit.evidence import Evidence, excerpt, run_tool
from kit.families.iac import access, prerequisites
from kit.families.iac.rules import RULES, SOURCES
from kit.families.iac.terraform import TF_ROOT, Inventory, inventory
from kit.model import Spec

INIT_TIMEOUT = 60          # s; with only a local mirror configured, init fails in well under 1 s


def terraform_bin() -> str:
    return shutil.which("terraform") or "terraform"


def provider_mirror() -> Path:
    """Where provider packages may sit for offline use (KIT_TF_MIRROR, else kit's state dir)."""
    return Settings.load().terraform_mirror


def offline_env(scratch: Path) -> dict[str, str]:
    """Terraform may look for providers only in the local mirror, and never phones home."""
    config = scratch / "offline.tfrc"
    config.write_text('provider_installation {\n  filesystem_mirror {\n'
                      f'    path    = "{provider_mirror()}"\n    include = ["*/*/*"]\n  }}\n}}\n')
    (scratch / "plugin-cache").mkdir(exist_ok=True)
    return {**os.environ, "TF_CLI_CONFIG_FILE": str(config), "TF_PLUGIN_CACHE_DIR": str(scratch / "plugin-cache"),
            "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1", "TF_INPUT": "0"}


def terraform_found() -> tuple[bool, str]:
    found = shutil.which("terraform")
    return found is not None, found or "not found"


def terraform_version() -> str:
    try:
        out = subprocess.run([terraform_bin(), "version"], capture_output=True, text=True, timeout=20,
                             env={**os.environ, "CHECKPOINT_DISABLE": "1"})
    except (OSError, subprocess.TimeoutExpired):
        return "terraform (not found)"
    return out.stdout.splitlines()[0] if out.stdout else "terraform"


def static_checks(spec: Spec, ctx: VerifyContext) -> list[Evidence]:
    inv = inventory(ctx.files)
    root = ctx.deliverables / TF_ROOT
    with tempfile.TemporaryDirectory(prefix="kit-tf-") as tmp:
        env = offline_env(Path(tmp))
        records = [run_tool("iac.fmt", TF_ROOT, "terraform fmt -check finds nothing to reformat",
                            [terraform_bin(), "fmt", "-check", "-recursive", "-diff", "-no-color"],
                            tool=terraform_version(), cwd=root, env=env, timeout=60),
                   parse_record(inv),
                   run_checkov("iac.checkov", TF_ROOT, "checkov terraform policies: zero failures, skips with "
                               "reasons", root, "terraform")]
        records += rule_records(inv)
        records.append(prerequisites_record(spec, ctx.files))
        records.append(deploy_scope_record(ctx.files))
        records += [validate(inv, folder, ctx.deliverables, Path(tmp), env) for folder in inv.folders()]
    return records


def parse_record(inv: Inventory) -> Evidence:
    figures = {"files": inv.files, "resources": sum(b["kind"] == "resource" for b in inv.blocks),
               "modules": sum(b["kind"] == "module" for b in inv.blocks), "variables": len(inv.variables),
               "outputs": len(inv.outputs)}
    ok = inv.files > 0 and not inv.errors
    return Evidence("iac.parse", TF_ROOT, "every .tf file parses as HCL2", "passed" if ok else "failed",
                    tool=f"python-hcl2 {version('python-hcl2')}", figures=figures,
                    reason="" if ok else ("; ".join(f"{k}: {v}" for k, v in inv.errors.items()) or "no .tf files"))


def rule_records(inv: Inventory) -> list[Evidence]:
    out = []
    for rule, (title, check) in RULES.items():
        problems = check(inv)
        out.append(Evidence(f"iac.rule.{rule}", TF_ROOT, title, "failed" if problems else "passed", tool="kit",
                            reason="; ".join(problems[:5]),
                            figures={"problems": len(problems), **({"source": SOURCES[rule]} if rule in SOURCES else {})},
                            log="\n".join(problems)))
    return out


def prerequisites_record(spec: Spec, files: dict[str, str]) -> Evidence:
    """iac.rule.prerequisites: the cluster add-ons k8s/ depends on, each installed by the chosen
    cloud's Terraform or listed in k8s/README.md (kit/families/iac/prerequisites.py)."""
    problems, figures = prerequisites.check(files, spec.option("cloud").provider)
    return Evidence("iac.rule.prerequisites", TF_ROOT, "every cluster add-on the k8s/ manifests depend on is installed by "
                    "the Terraform or listed in k8s/README.md, with the names the manifests use",
                    "failed" if problems else "passed", tool="kit", reason="; ".join(problems[:4]),
                    figures={**figures, "problems": len(problems)}, log="\n".join(problems))


def deploy_scope_record(files: dict[str, str]) -> Evidence:
    """iac.rule.deploy_scope: the CI deploy identity is never cluster admin (kit/families/iac/access.py)."""
    problems = access.check(files)
    return Evidence("iac.rule.deploy_scope", TF_ROOT, "the CI deploy identity acts in its app namespace only: no "
                    "cluster-scoped admin, edit or cluster-admin grant", "failed" if problems else "passed",
                    tool="kit", reason="; ".join(problems[:4]), figures={"problems": len(problems)},
                    log="\n".join(problems))


def registry_modules(inv: Inventory, folder: str) -> list[str]:
    """Registry modules `folder` calls, directly or through its local modules."""
    found: list[str] = []
    for b in inv.blocks:
        if b["kind"] == "module" and b["folder"] == folder:
            local = b["source"].startswith(TF_ROOT + "/")
            found += registry_modules(inv, b["source"]) if local else [f"{b['source']} {b['version']}".strip()]
    return sorted(set(found))


def validate(inv: Inventory, folder: str, deliverables: Path, scratch: Path, env: dict[str, str]) -> Evidence:
    """`terraform init -backend=false` from the local mirror, then `terraform validate`. Without
    the providers (registry.terraform.io is not reachable here) it is skipped, saying why."""
    name = folder.removeprefix(TF_ROOT + "/")
    record = Evidence(f"iac.validate.{name.replace('/', '.')}", folder, f"terraform validate ({name})", "skipped",
                      tool=terraform_version())
    remote = registry_modules(inv, folder)
    if remote:
        record.reason = (f"calls registry modules ({', '.join(remote)}) that cannot be fetched: "
                         "registry.terraform.io is unreachable here, so kit does not try")
        return record
    work = scratch / name.replace("/", "_")
    shutil.copytree(deliverables / TF_ROOT, work / TF_ROOT)
    cwd = work / folder
    init = [terraform_bin(), "init", "-backend=false", "-get=false", "-input=false", "-no-color"]
    record.command = " ".join(init[1:]) + " && terraform validate -no-color"
    start = time.monotonic()
    try:
        proc = subprocess.run(init, cwd=cwd, env=env, capture_output=True, text=True, timeout=INIT_TIMEOUT)
    except FileNotFoundError:
        record.status, record.reason = "failed", "terraform is not installed (scripts/setup.sh checks for it)"
        return record
    except subprocess.TimeoutExpired:
        record.reason = f"terraform init did not finish in {INIT_TIMEOUT} s without the network"
        return record
    if proc.returncode != 0:
        why = next((row for row in proc.stderr.splitlines() if "Error:" in row), "init failed").strip(" │")
        record.reason = (f"the providers are not available offline ({why}): the local mirror "
                         f"{provider_mirror()} does not hold them and registry.terraform.io is unreachable")
        record.log, record.duration_s = excerpt(proc.stderr, 12), round(time.monotonic() - start, 2)
        return record
    checked = run_tool(record.check, folder, record.title, [terraform_bin(), "validate", "-no-color"],
                       tool=record.tool, cwd=cwd, env=env, timeout=120)
    checked.command = record.command
    return checked
