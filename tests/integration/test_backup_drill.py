"""The DR drill with generated scripts broken on purpose: each fault must fail the drill with a
clear reason, and nothing may be left behind (success, failure, interrupt). The drill on the
unbroken example runs in test_run_example (kit run)."""
from __future__ import annotations

from pathlib import Path

import pytest

from kit.families import render_all
from kit.families.backup import drill
from kit.sandbox.standins import ensure_standin
from kit.spec import load_spec
from tests.conftest import EXAMPLE
from tests.integration.helpers import assert_nothing_left

pytestmark = [pytest.mark.docker]


@pytest.fixture(scope="module")
def example(docker_engine):
    spec = load_spec(EXAMPLE, output=Path("/nonexistent/kit-out"))
    return spec, render_all(spec), ensure_standin("postgres-15", log=lambda *_: None)


def _by_id(records):
    return {r.check: r for r in records}


def _broken(files, rel, old, new):
    assert old in files[rel], f"the fault needs {old!r} in {rel}"
    return {**files, rel: files[rel].replace(old, new)}


def test_backup_job_that_writes_nothing(example):
    spec, files, standin = example
    # a job that runs, reports success and backs nothing up
    files = _broken(files, "backup/backup.sh", "pgbackrest --stanza=shop-api backup \"--type=$BACKUP_TYPE\" >&2", "true")
    files = _broken(files, "backup/backup.sh", 'if [ "${size:-0}" -le 0 ]; then', "if false; then")
    records = _by_id(drill.run_drill(spec, files, standin))
    assert records["backup.drill.backup"].status == "failed"
    assert "the backup job wrote nothing" in records["backup.drill.backup"].reason
    assert records["backup.drill.restore"].status == "failed"
    assert "the restore cannot find its backup" in records["backup.drill.restore"].reason
    assert records["backup.drill.cleanup"].passed
    assert_nothing_left()


def test_restore_that_cannot_find_its_backup(example):
    spec, files, standin = example
    # the restore job mounts another (empty) repository volume
    restore = files["backup/compose.backup.yaml"].split("  db-restore:")[1]
    fixed = restore.replace("- backup-repo:/var/lib/pgbackrest", "- elsewhere:/var/lib/pgbackrest")
    text = files["backup/compose.backup.yaml"].replace(restore, fixed).replace(
        "volumes:\n  db-socket: {}\n", "volumes:\n  db-socket: {}\n  elsewhere: {}\n")
    records = _by_id(drill.run_drill(spec, {**files, "backup/compose.backup.yaml": text}, standin))
    assert records["backup.drill.backup"].passed
    assert records["backup.drill.restore"].status == "failed"
    assert "the restore cannot find its backup" in records["backup.drill.restore"].reason
    assert records["backup.drill.data"].status == "skipped"
    assert records["backup.drill.cleanup"].passed
    assert_nothing_left()


def test_restore_with_missing_rows(example):
    spec, files, standin = example
    # "latest" quietly restores the backup alone: the WAL after it (batch B) is not replayed
    files = _broken(files, "backup/restore.sh", "\tlatest) args=() ;;", "\tlatest) args=(--type=immediate --target-action=promote) ;;")
    records = _by_id(drill.run_drill(spec, files, standin))
    assert records["backup.drill.restore"].passed
    data = records["backup.drill.data"]
    assert data.status == "failed" and "restore came back with missing rows: batch B: 100 of 100 rows missing" in data.reason
    assert records["backup.drill.pitr"].status == "failed"
    assert records["backup.drill.rpo"].status == "failed"
    assert records["backup.drill.cleanup"].passed
    assert_nothing_left()


def test_interrupted_drill_leaves_nothing(example, monkeypatch):
    spec, files, standin = example

    def interrupt(self):
        raise KeyboardInterrupt
    monkeypatch.setattr(drill.Drill, "backup", interrupt)     # the database and its volumes exist by then
    with pytest.raises(KeyboardInterrupt):
        drill.run_drill(spec, files, standin)
    assert_nothing_left()
