"""Adding a family is cheap: in a scratch copy of the repository, a toy family added in exactly
five places (its package, its template folder, its notebook, its docs page, its test) gets its
task section in the schema, its files generated, its check run by the one verify pass, its page
title, its checklist item and its tool in `kit doctor`, and passes the layout test."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

from tests.conftest import ROOT

PACKAGE = '''
"""Toy family: one greeting file, one check."""
from kit.core.family import ChecklistItem, Family, Option, Tool
from kit.evidence import Evidence
from kit.render import render_variant

SCHEMA = {"type": "object", "additionalProperties": False,
          "properties": {"greeting": {"type": "string", "minLength": 1}}}


def parse(doc, service):
    return (doc.data.get("toy") or {}).get("greeting", f"hello {service.name}")


def render(spec):
    return render_variant("toy", "default", {"greeting": spec.option("toy")})


def check(spec, ctx):
    text = ctx.files["toy/greeting.txt"]
    return [Evidence("toy.greeting", "toy/greeting.txt", "the greeting names the service",
                     "passed" if spec.name in text else "failed", tool="kit")]


FAMILY = Family(name="toy", title="Toy greetings", notebook="65_toy", template="toy/default", render=render,
                option=Option("toy", SCHEMA, parse), static_checks=(check,),
                checklist=(ChecklistItem("The toy greets the service by name", ("toy.greeting",)),),
                tools=(Tool("toy-tool", lambda: (True, "toy-tool 1.0"), "nothing to fix"),))
'''

SCRIPT = '''
import sys
from pathlib import Path
from kit.errors import TaskError
from kit.spec import load_spec
from kit.task_schema import task_schema
from kit.pipeline import generate, verify
from kit.publish import page_titles
from kit.report.acceptance import standard_items
from kit.doctor import family_tools
project = Path(sys.argv[1])
assert "toy" in task_schema()["properties"]
spec = load_spec(project)
assert spec.option("toy") == "hi shop-api", spec.option("toy")
files = generate(spec)
assert files["toy/greeting.txt"] == "hi shop-api\\n"
records = verify(spec, ["toy"], sandbox=False)
assert [(r.check, r.status) for r in records] == [("toy.greeting", "passed")], records
assert page_titles()["65_toy"] == "Toy greetings"
items = {i.text: i.state for i in standard_items(records)}
assert items["The toy greets the service by name"] == "passed"
assert any(f.name == "toy-tool (toy)" and f.ok for f in family_tools())
task = project / ".claude" / "task.md"
task.write_text(task.read_text().replace("greeting: hi shop-api", "greeting: 3"))
try:
    load_spec(project)
except TaskError as exc:
    assert exc.field == "toy.greeting" and exc.line, (exc.field, exc.line)
else:
    raise AssertionError("a bad toy section was accepted")
print("toy family ok")
'''


def test_a_toy_family_needs_five_places(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(ROOT, repo, ignore=shutil.ignore_patterns(".git", ".venv", "kit-out", ".kit-out.*", "site",
                                                              "__pycache__", ".pytest_cache", ".ruff_cache"))
    # 1. the package
    (repo / "kit" / "families" / "toy").mkdir()
    (repo / "kit" / "families" / "toy" / "__init__.py").write_text(textwrap.dedent(PACKAGE).lstrip())
    # 2. the template folder
    (repo / "templates" / "toy" / "default").mkdir(parents=True)
    (repo / "templates" / "toy" / "default" / "manifest.yaml").write_text(
        "family: toy\nvariant: default\nfiles:\n  toy/greeting.txt: greeting.txt.j2\n"
        "variables:\n  greeting: {type: str, description: the greeting}\n")
    (repo / "templates" / "toy" / "default" / "greeting.txt.j2").write_text("{{ greeting }}\n")
    # 3. the notebook (a copy of a family notebook's shape)
    nb = json.loads((ROOT / "notebooks" / "50_iac.ipynb").read_text())
    (repo / "notebooks" / "65_toy.ipynb").write_text(json.dumps(nb))
    # 4. the docs page, 5. its test
    (repo / "docs" / "families" / "toy.md").write_text("# Toy family\n")
    (repo / "tests" / "unit" / "test_toy.py").write_text("import kit.families.toy  # noqa: F401\n")

    project = repo / "examples" / "shop-api"
    task = project / ".claude" / "task.md"
    text = task.read_text()
    task.write_text(text.replace("\n---\n", "\ntoy:\n  greeting: hi shop-api\n---\n", 1))
    env = {**os.environ, "PYTHONPATH": str(repo)}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(project)], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "toy family ok" in proc.stdout, proc.stdout + proc.stderr
    layout = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "tests/unit/test_consistency.py::test_every_family_is_one_package_with_template_notebook_docs_and_tests",
                             "tests/unit/test_layout.py::test_no_upward_import"],
                            cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert layout.returncode == 0, layout.stdout + layout.stderr
