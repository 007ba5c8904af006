"""Bad task input: a clear error naming file, line and field, a non-zero exit, nothing written."""
from __future__ import annotations

import pytest

from kit.cli import main
from tests.conftest import write_task

GOOD_SERVICE = "service:\n  name: mini\n  source: src\n"

CASES = [
    # id, task.md text (None: write raw), expected fragments
    ("unknown-key", "service:\n  name: mini\n  source: src\n  prot: 8000\n",
     ["task.md:5: service.prot: unknown key 'prot'", "did you mean 'port'?"]),
    ("unknown-top-key", GOOD_SERVICE + "dependencis: []\n",
     ["task.md:5: dependencis: unknown key", "did you mean 'dependencies'?"]),
    ("port-zero", GOOD_SERVICE + "  port: 0\n", ["task.md:5: service.port: must be 1-65535, got 0"]),
    ("port-too-big", GOOD_SERVICE + "  port: 70000\n", ["task.md:5: service.port: must be 1-65535, got 70000"]),
    ("port-wrong-type", GOOD_SERVICE + "  port: eighty\n",
     ["task.md:5: service.port: must be of type integer, got str 'eighty'"]),
    ("bad-name", "service:\n  name: Shop_API\n  source: src\n",
     ["task.md:3: service.name: invalid value 'Shop_API'", "DNS-1123"]),
    ("name-missing", "service:\n  source: src\n", ["task.md:2: service: 'name' is a required property"]),
    ("secret-value-map", GOOD_SERVICE + "  secrets:\n    PGPASSWORD: hunter2\n",
     ["task.md:5: service.secrets: secret values are not allowed"]),
    ("secret-value-inline", GOOD_SERVICE + "  secrets: [PGPASSWORD=hunter2]\n",
     ["task.md:5: service.secrets[0]: a secret value was given"]),
    ("secret-in-env", GOOD_SERVICE + "  env:\n    API_TOKEN: abc123\n",
     ["task.md:6: service.env.API_TOKEN: API_TOKEN looks like a secret", "add API_TOKEN to service.secrets"]),
    ("health-not-a-path", GOOD_SERVICE + "  health: healthz\n",
     ["task.md:5: service.health: invalid value 'healthz'", "did you mean '/healthz'?"]),
    ("dependency-kind", GOOD_SERVICE + "dependencies:\n  - kind: mysql\n",
     ["task.md:6: dependencies[0].kind: got 'mysql'; valid values: postgres, redis"]),
    ("dependency-dup-name", GOOD_SERVICE + "dependencies:\n  - {kind: postgres, name: db}\n  - {kind: redis, name: db}\n",
     ["task.md:7: dependencies[1].name: name 'db' is used twice"]),
    ("front-matter-list", "- just\n- a list\n", ["task.md:2: front matter must be a mapping"]),
    ("invalid-yaml", "service:\n  name: [unclosed\n", ["task.md:", "front matter is not valid YAML"]),
    ("duplicate-key", GOOD_SERVICE + "  port: 8000\n  port: 9000\n",
     ["task.md:6: service.port: duplicate key 'port' (first at line 5)", "YAML would silently use the last"]),
    ("url-password", GOOD_SERVICE + "  env:\n    DATABASE_URL: postgres://app:hunter2@db:5432/app\n",
     ["task.md:6: service.env.DATABASE_URL: the URL in DATABASE_URL carries a password", "service.secrets"]),
    ("secret-also-env", GOOD_SERVICE + "  secrets: [PGPASSWORD]\n  env:\n    PGPASSWORD: ''\n",
     ["task.md:7: service.env.PGPASSWORD: PGPASSWORD is a secret and cannot also be a plain setting"]),
    ("port-env-contradiction", GOOD_SERVICE + "  port: 8000\n  env:\n    PORT: '9999'\n",
     ["task.md:7: service.env.PORT: PORT=9999 contradicts service.port 8000", "set service.port instead"]),
    ("python-float", GOOD_SERVICE + "  python: 3.10\n",
     ["task.md:5: service.python: must be of type string, got float 3.1", "quote it"]),
    ("name-too-long", "service:\n  name: " + "a" * 70 + "\n  source: src\n",
     ["task.md:3: service.name:", "1-63 lower-case letters"]),
    ("app-not-defined", GOOD_SERVICE + "  app: app:application\n",
     ["task.md:5: service.app: app.py defines no 'application'"]),
    ("app-module-missing", GOOD_SERVICE + "  app: server:app\n", ["task.md:5: service.app: module 'server' not found"]),
    ("source-is-a-file", "service:\n  name: mini\n  source: src/app.py\n",
     ["task.md:4: service.source:", "is a file, not a folder"]),
    ("cpu-does-not-parse", GOOD_SERVICE + "  resources:\n    cpu: two\n",
     ["task.md:6: service.resources.cpu: 'two' is not a CPU quantity: write cores (0.5, 2) or millicores (500m)"]),
    ("memory-does-not-parse", GOOD_SERVICE + "  resources:\n    memory: 512MB\n",
     ["task.md:6: service.resources.memory: '512MB' is not a memory quantity: write e.g. 256Mi, 1Gi or 500M"]),
    ("missing-source", "service:\n  name: mini\n  source: nowhere\n",
     ["task.md:4: service.source: source folder", "does not exist"]),
    ("ci-provider", GOOD_SERVICE + "ci:\n  provider: jenkins\n",
     ["task.md:6: ci.provider: got 'jenkins'; valid values: both, github, gitlab"]),
    ("cloud-provider", GOOD_SERVICE + "cloud:\n  provider: digitalocean\n",
     ["task.md:6: cloud.provider: got 'digitalocean'; valid values: aws, azure, gcp"]),
    ("image-not-a-reference", GOOD_SERVICE + "  image: ghcr.io/Acme/Shop API:latest\n",
     ["task.md:5: service.image: invalid value 'ghcr.io/Acme/Shop API:latest'", "without a tag"]),
    ("ci-environments-order", GOOD_SERVICE + "ci:\n  environments: [prod, staging]\n",
     ["task.md:6: ci.environments: environments ['prod', 'staging'] are not in promotion order"]),
    ("cloud-k8s-version", GOOD_SERVICE + "kubernetes:\n  version: \"1.33\"\ncloud:\n  kubernetes_version: \"1.31\"\n",
     ["task.md:8: cloud.kubernetes_version: 1.31 differs from kubernetes.version 1.33"]),
    ("cloud-node-pool", GOOD_SERVICE + "cloud:\n  node_pool: {min: 5, max: 2}\n",
     ["task.md:6: cloud.node_pool: min 5 is larger than max 2"]),
]


def _project(tmp_path, minimal):
    return minimal


@pytest.mark.parametrize("case_id,front,expected", CASES, ids=[c[0] for c in CASES])
def test_bad_front_matter(case_id, front, expected, minimal, capsys):
    write_task(minimal, front)
    code = main(["generate", str(minimal)])
    err = capsys.readouterr().err
    assert code == 2, err
    for fragment in expected:
        assert fragment in err, f"{fragment!r} not in {err!r}"
    assert not (minimal / "kit-out").exists(), "nothing may be written on bad input"


def test_no_front_matter_and_no_service_names_the_key_to_add(minimal, capsys):
    import shutil
    shutil.rmtree(minimal / "src")
    (minimal / ".claude" / "task.md").write_text("# Just markdown\n\nNo front matter here.\n")
    assert main(["generate", str(minimal)]) == 2
    err = capsys.readouterr().err
    assert "task.md: service.source: the task has no front matter and no folder" in err
    assert not (minimal / "kit-out").exists()


def test_unclosed_front_matter(minimal, capsys):
    (minimal / ".claude" / "task.md").write_text("---\nservice:\n  name: mini\n")
    assert main(["generate", str(minimal)]) == 2
    assert "front matter is not closed" in capsys.readouterr().err


def test_task_file_missing(tmp_path, capsys):
    assert main(["generate", str(tmp_path)]) == 2
    assert "task.md: task file not found" in capsys.readouterr().err


def test_not_utf8(minimal, capsys):
    (minimal / ".claude" / "task.md").write_bytes(b"---\nservice:\n  name: \xff\xfe\n---\n")
    assert main(["generate", str(minimal)]) == 2
    assert "not UTF-8" in capsys.readouterr().err


def test_undetectable_stack(minimal, capsys):
    (minimal / "src" / "requirements.txt").unlink()
    assert main(["generate", str(minimal)]) == 2
    err = capsys.readouterr().err
    assert "cannot detect the stack: no requirements.txt, pyproject.toml or package.json" in err
    assert "service.source" in err
    assert not (minimal / "kit-out").exists()


def test_undetectable_framework_names_the_key(minimal, capsys):
    (minimal / "src" / "requirements.txt").write_text("requests==2.32.3\n")
    (minimal / "src" / "app.py").write_text("print('no web framework here')\n")
    assert main(["generate", str(minimal)]) == 2
    err = capsys.readouterr().err
    assert "cannot detect the web framework" in err and "service.app" in err


def test_bom_is_accepted(minimal, capsys):
    task = minimal / ".claude" / "task.md"
    task.write_bytes(b"\xef\xbb\xbf" + task.read_bytes())
    assert main(["generate", str(minimal)]) == 0


def test_syntax_error_in_source_is_named(minimal, capsys):
    (minimal / "src" / "app.py").write_text("from flask import Flask\napp = Flask(__name__\n")
    assert main(["generate", str(minimal)]) == 2
    err = capsys.readouterr().err
    assert "the source does not parse:" in err and "app.py:2:" in err and "fix the syntax error" in err


def test_output_folder_of_the_user_is_never_replaced(minimal, capsys):
    write_task(minimal, GOOD_SERVICE + "output: docs\n")
    (minimal / "docs").mkdir()
    (minimal / "docs" / "runbook.md").write_text("precious")
    assert main(["run", str(minimal), "--static"]) == 2
    assert "was not made by kit" in capsys.readouterr().err
    assert (minimal / "docs" / "runbook.md").read_text() == "precious"


def test_output_folder_cannot_be_the_source(minimal, capsys):
    write_task(minimal, GOOD_SERVICE + "output: src\n")
    assert main(["run", str(minimal), "--static"]) == 2
    assert "is or contains the source folder" in capsys.readouterr().err


@pytest.mark.parametrize("row", [
    "- Connect with DATABASE_URL=postgres://app:hunter2secret@db:5432/app",
    "Use PGPASSWORD=s3cr3tvalue for the database.",
    "The key is AKIAABCDEFGHIJKLMNOP.",
    "API_TOKEN: ghp_abcdef123456",
])
def test_secret_value_in_the_markdown_is_refused(row, minimal, capsys):
    write_task(minimal, GOOD_SERVICE, body=f"# T\n## Context\n\n{row}\n")
    assert main(["generate", str(minimal)]) == 2
    err = capsys.readouterr().err
    assert "task.md:9: (Markdown body): the Markdown holds what looks like a secret value" in err
    assert not (minimal / "kit-out").exists()


def test_placeholders_and_names_in_the_markdown_are_fine(minimal):
    write_task(minimal, GOOD_SERVICE, body="# T\n## Context\n\nSet PGPASSWORD=change-me in .env; "
               "`PGPASSWORD` is a secret; DATABASE_URL=postgres://db:5432/app\n")
    assert main(["generate", str(minimal)]) == 0
