"""kit's local npm registry (kit.sandbox.npmregistry), driven by the real npm client on the host:
offline for a complete package-lock.json, every tarball integrity-checked, and a tarball the
lockfile does not name is refused (so a passing image build proves the lockfile is complete)."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from kit.errors import SandboxError
from kit.sandbox import npmregistry

pytestmark = [pytest.mark.tools]
EXPRESS = Path(__file__).resolve().parent.parent / "fixtures" / "node" / "express-orders"


def _npm_ci(folder: Path, url: str) -> subprocess.CompletedProcess:
    return subprocess.run(["npm", "ci", "--omit=dev", "--no-audit", "--no-fund", "--ignore-scripts",
                           "--cache", str(folder / ".npm-cache"), "--registry", url],
                          cwd=folder, capture_output=True, text=True, timeout=300)


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("KIT_STATE_DIR", str(tmp_path / "state"))
    for name in ("package.json", "package-lock.json"):
        shutil.copy(EXPRESS / name, tmp_path / name)
    return tmp_path


def test_npm_ci_installs_the_lockfile_from_the_offline_registry(project):
    with npmregistry.serve_registry(project, "package-lock.json") as (url, figures):
        assert url.startswith("http://127.0.0.1:")
        proc = _npm_ci(project, url)
        assert proc.returncode == 0, proc.stderr[-800:]
        assert figures["mode"].startswith("offline")
        assert len(figures["served"]) == figures["tarballs_locked"] > 50
    assert (project / "node_modules" / "express" / "package.json").is_file()
    assert not (project / "node_modules" / "nodemon").exists()        # devDependencies omitted


def test_what_the_lockfile_does_not_name_is_refused(project):
    import urllib.error
    import urllib.request
    with npmregistry.serve_registry(project, "package-lock.json") as (url, figures):
        with urllib.request.urlopen(url + "express/-/express-4.22.3.tgz", timeout=10) as resp:
            assert resp.status == 200
        for path in ("express/-/express-4.0.0.tgz", "express", "left-pad/-/left-pad-1.3.0.tgz"):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(url + path, timeout=10)
            assert err.value.code == 404
        assert figures["served"] == ["express/-/express-4.22.3.tgz"]


def test_a_tarball_that_does_not_match_its_integrity_is_refused(project):
    lock = json.loads((project / "package-lock.json").read_text())
    lock["packages"]["node_modules/express"]["integrity"] = "sha512-" + "A" * 86 + "=="
    (project / "package-lock.json").write_text(json.dumps(lock))
    with pytest.raises(SandboxError, match="does not match the lockfile's integrity"):
        npmregistry.prefill(project / "package-lock.json")
