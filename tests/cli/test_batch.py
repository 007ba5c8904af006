"""`kit batch`: a batch file with per-project outputs and task overrides, runs in parallel, one
failing project never stops the others, finished projects are kept on the next batch unless their
inputs changed, and a fleet page rolls the results up."""
from __future__ import annotations

import json
import shutil

import pytest

from kit.batch import Job, Outcome, fingerprint, read_batch_file, rollup, write_fleet_page
from kit.cli import main
from kit.errors import TaskError
from kit.task import Override


def _write(path, text):
    path.write_text(text)
    return path


def test_batch_file_gives_outputs_and_overrides_with_their_lines(minimal, tmp_path):
    shutil.copytree(minimal, tmp_path / "b")
    batch = _write(tmp_path / "fleet.yaml", f"""jobs: 2
projects:
  - {minimal}
  - path: b
    name: second
    out: outs/b
    set:
      kubernetes.version: "1.33"
""")
    jobs, n = read_batch_file(batch)
    assert n == 2
    assert [j.name for j in jobs] == [minimal.name, "second"]
    assert jobs[0].out == minimal / "kit-out" and jobs[1].out == (tmp_path / "outs" / "b").resolve()
    assert jobs[1].overrides == (Override("kubernetes.version", "1.33", str(batch), 8),)


@pytest.mark.parametrize("text, line, field, words", [
    ("projects: []\n", 1, "projects", "non-empty"),
    ("projects:\n  - nowhere\n", 2, "projects[0].path", "does not exist"),
    ("projects:\n  - path: .\n    outt: x\n", 3, "projects[0].outt", "unknown key 'outt'"),
    ("jobs: 0\nprojects:\n  - .\n", 1, "jobs", "at least 1"),
    ("projects:\n  - path: .\n    set: [a]\n", 3, "projects[0].set", "maps task fields"),
    ("projects:\n  - .\n  - .\n", None, "out", "same output folder"),
])
def test_bad_batch_files_name_the_line_and_field(tmp_path, text, line, field, words):
    batch = _write(tmp_path / "fleet.yaml", text)
    with pytest.raises(TaskError) as caught:
        read_batch_file(batch)
    assert caught.value.field == field and caught.value.line == line and words in str(caught.value)


def test_an_override_error_points_at_the_batch_file_not_task_md(minimal, tmp_path, monkeypatch):
    from kit.spec import load_spec
    from kit.task import OVERRIDES_ENV, overrides_to_env
    monkeypatch.setenv(OVERRIDES_ENV, overrides_to_env((Override("kubernetes.version", 1.33, "fleet.yaml", 7),)))
    with pytest.raises(TaskError) as caught:
        load_spec(minimal)
    err = caught.value
    assert (err.file, err.line, err.field) == ("fleet.yaml", 7, "kubernetes.version")
    assert "overriding task.md" in str(err) and "quote it" in err.hint
    assert "kubernetes" not in (minimal / ".claude" / "task.md").read_text()      # never edited


def test_fingerprint_changes_with_the_source_and_the_overrides_not_the_output(minimal):
    job = Job(minimal, minimal / "kit-out")
    first = fingerprint(job)
    (minimal / "kit-out").mkdir()
    (minimal / "kit-out" / "evidence.json").write_text("{}")
    assert fingerprint(job) == first
    assert fingerprint(Job(minimal, minimal / "kit-out", (Override("a.b", 1, "f"),))) != first
    (minimal / ".claude" / "work.md").write_text("# Work\n")                   # kit's own report
    (minimal / ".claude" / "tasks").mkdir(exist_ok=True)
    (minimal / ".claude" / "tasks" / "context_session_1.md").write_text("entry\n")
    assert fingerprint(job) == first
    app = next((minimal / "src").glob("*.py"))
    app.write_text(app.read_text() + "\n# one more line\n")
    assert fingerprint(job) != first


def test_fleet_page_has_a_row_per_service_and_the_rollup(tmp_path):
    outcomes = [Outcome("a", "/p/a", "/p/a/out", "failed", 4, 10.0, {"passed": 9, "failed": 2, "skipped": 0},
                        ["container.trivy", "k8s.kubeconform"], [{"label": "Image size", "value": 51, "unit": "MB"}]),
                Outcome("b", "/p/b", "/p/b/out", "failed", 4, 12.0, {"passed": 10, "failed": 1, "skipped": 0},
                        ["container.trivy"]),
                Outcome("c", "/p/c", "/p/c/out", "error", 2, 0.5, message="task.md:3: service.port: <bad>")]
    assert rollup(outcomes) == [("container.trivy", ["a", "b"]), ("k8s.kubeconform", ["a"])]
    page = write_fleet_page(tmp_path, outcomes).read_text()
    assert page.count('<tr class="') == 3 and "1 stopped with an error" in page
    assert "task.md:3: service.port: &lt;bad&gt;" in page            # escaped, never raw HTML
    assert "Image size: 51 MB" in page
    data = json.loads((tmp_path / "fleet.json").read_text())
    assert data["failing_checks"]["container.trivy"] == ["a", "b"]


@pytest.mark.tools
def test_batch_runs_on_keeps_going_past_a_failure_and_resumes(minimal, tmp_path, capsys):
    shutil.copytree(minimal, tmp_path / "b")
    shutil.copytree(minimal, tmp_path / "broken")
    task = tmp_path / "broken" / ".claude" / "task.md"
    task.write_text(task.read_text().replace("name: mini", "name: mini\n  port: 99999"))
    batch = _write(tmp_path / "fleet.yaml", f"""projects:
  - {minimal}
  - path: broken
  - path: b
    name: mini-133
    out: outs/b
    set:
      kubernetes.version: "1.33"
      cloud.kubernetes_version: "1.33"
""")
    fleet = tmp_path / "fleet"
    assert main(["batch", "--static", "-j", "2", "--out", str(fleet), str(batch)]) == 4
    out = capsys.readouterr().out
    assert out.count(" passed ") == 2 and "broken" in out and "error" in out
    data = json.loads((fleet / "fleet.json").read_text())
    status = {s["name"]: s for s in data["services"]}
    assert status["broken"]["status"] == "error" and "99999" in status["broken"]["message"]
    assert status["mini-133"]["status"] == "passed" and status[minimal.name]["status"] == "passed"
    assert "1.33" in (tmp_path / "outs" / "b" / "k8s" / "base" / "namespace.yaml").read_text() \
        or "1.33" in (tmp_path / "outs" / "b" / "k8s" / "README.md").read_text()
    work = (tmp_path / "b" / ".claude" / "work.md").read_text()
    assert "`kubernetes.version` is `'1.33'` as set by fleet.yaml:8" in work
    page = (fleet / "index.html").read_text()
    assert 'href="../outs/b/site/index.html"' in page
    # the next batch keeps the two finished runs and re-runs the one that stopped with an error
    task.write_text(task.read_text().replace("99999", "99998"))
    assert main(["batch", "--static", "--out", str(fleet), str(batch)]) == 4
    out = capsys.readouterr().out
    assert out.count("(kept: unchanged)") == 2 and "99998" in out
    # --fresh runs everything again
    assert main(["batch", "--static", "--fresh", "--out", str(fleet), str(minimal)]) == 0
    assert "kept" not in capsys.readouterr().out
    # the site can be rebuilt from the executed notebooks alone
    shutil.rmtree(minimal / "kit-out" / "site")
    assert main(["publish", str(minimal)]) == 0
    assert (minimal / "kit-out" / "site" / "index.html").is_file()


def test_fleet_gathers_output_folders_made_elsewhere(tmp_path, capsys):
    from kit.evidence import Evidence, save_evidence
    a, b, c = tmp_path / "runs" / "shop", tmp_path / "runs" / "billing", tmp_path / "runs" / "crashed"
    save_evidence([Evidence("container.build", "Dockerfile", "b", "passed", figures={"size_mb": 51})],
                  a / "evidence.json")
    save_evidence([Evidence("container.build", "Dockerfile", "b", "failed", reason="exit code 1")],
                  b / "evidence.json")
    c.mkdir(parents=True)
    assert main(["fleet", str(a), str(b), str(c), "--out", str(tmp_path / "fleet")]) == 4
    out = capsys.readouterr().out
    assert "shop" in out and "billing" in out and "no evidence.json" in out
    data = json.loads((tmp_path / "fleet" / "fleet.json").read_text())
    assert [s["status"] for s in data["services"]] == ["passed", "failed", "error"]
    assert data["failing_checks"] == {"container.build": ["billing"]}
    assert data["services"][0]["figures"] == [{"label": "Image size", "value": 51, "unit": "MB",
                                               "check": "container.build"}]
