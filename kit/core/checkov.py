"""checkov, the policy scanner, run from its own venv (scripts/setup.sh installs it there)
and turned into one Evidence record per framework. Skips are inline in the deliverables
(`checkov:skip=CKV_X:reason`), so each one is listed with its reason in the record."""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from kit.config import Settings
from kit.evidence import Evidence, excerpt

NO_REASON = ("", "No comment provided")     # what checkov records for a skip with no reason


def checkov_bin() -> Path:
    return Settings.load().state_dir / "tools" / "checkov" / "bin" / "checkov"


def checkov_version() -> str:
    marker = checkov_bin().parent.parent / ".version"
    return marker.read_text().strip() if marker.is_file() else "unknown"


def run_checkov(check: str, deliverable: str, title: str, directory: Path, framework: str,
                extra: tuple[str, ...] = ()) -> Evidence:
    """Scan `directory` with checkov's `framework` checks: passed only with zero failures and a
    reason on every skip."""
    exe = checkov_bin()
    argv = [str(exe), "-d", str(directory), "--framework", framework, "-o", "json", "--compact",
            "--skip-download", *extra]
    record = Evidence(check=check, deliverable=deliverable, title=title, status="failed",
                      tool=f"checkov {checkov_version()}", command=" ".join(argv[1:]))
    if not exe.exists():
        record.reason = f"checkov is not installed at {exe}: run scripts/setup.sh"
        return record
    start = time.monotonic()
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false",
           "LOG_LEVEL": "ERROR"}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
    record.duration_s = round(time.monotonic() - start, 2)
    try:
        reports = json.loads(proc.stdout or "null")
        if reports is None:
            raise json.JSONDecodeError("empty output", "", 0)
    except json.JSONDecodeError:
        record.reason = f"checkov printed no JSON report (exit {proc.returncode})"
        record.log = excerpt(proc.stdout + proc.stderr)
        return record
    if isinstance(reports, dict) and "results" not in reports:     # nothing to scan
        record.reason = f"checkov found no {framework} files in {directory}"
        return record
    reports = reports if isinstance(reports, list) else [reports]
    failed, skipped, passed = [], [], 0
    for report in reports:
        results = report.get("results", {})
        passed += len(results.get("passed_checks", []))
        failed += results.get("failed_checks", [])
        skipped += results.get("skipped_checks", [])
    record.figures = {"passed": passed, "failed": len(failed), "skipped": len(skipped),
                      "skips": [f"{s['check_id']} {s.get('resource', '')}: "
                                f"{s.get('check_result', {}).get('suppress_comment', '')}".strip()
                                for s in skipped]}
    unexplained = [s["check_id"] for s in skipped
                   if s.get("check_result", {}).get("suppress_comment", "").strip() in NO_REASON]
    if unexplained:
        failed = failed + [{"check_id": c, "check_name": "skipped without a reason"} for c in unexplained]
    if failed:
        record.reason = f"{len(failed)} failed: " + ", ".join(sorted({f['check_id'] for f in failed}))
        record.log = "\n".join(f"{f['check_id']} {f.get('check_name', '')} [{f.get('file_path', '')} "
                               f"{f.get('resource', '')}]" for f in failed[:40])
    elif passed == 0:
        record.reason = "checkov ran no checks"
    else:
        record.status = "passed"
    return record


def checkov_tool():
    """checkov as a tool the families declare (kit doctor reads it)."""
    from kit.core.family import Tool

    def found() -> tuple[bool, str]:
        return checkov_bin().exists(), f"checkov {checkov_version()} at {checkov_bin()}"
    return Tool("checkov", found, "bash scripts/setup.sh installs checkov into its own venv")
