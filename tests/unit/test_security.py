"""Security family, pure parts: the `security` task section, the Rego evaluated with regopy
(generated manifests admitted, each mutation denied with its rule's message), a policy that
denies the generated manifests failing the verify pass, and the secret scan catching planted
secrets (in the source and in a task value) without printing them."""
from __future__ import annotations

import copy
import re

import pytest
import yaml

from kit.cli import main
from kit.families.security import admission as adm
from kit.families.security import secrets as sec
from kit.families.security.options import SecurityOptions, matches_registry, registry_of
from kit.families.security.rego import RULES
from kit.families.security.render import GATEKEEPER
from tests.conftest import EXAMPLE, copy_project, write_task

GOOD = "service:\n  name: mini\n  source: src\n  image: ghcr.io/acme/mini\n"
# a planted AWS key id in the detect-secrets AWSKeyDetector format (not a real key)
PLANTED = "AKIA" + "QZ7KX2MBVW4RTYLP"


@pytest.mark.parametrize("front,expected", [
    (GOOD + "security:\n  engine: opa\n", "task.md:7: security.engine: got 'opa'; valid values: gatekeeper, kyverno"),
    (GOOD + "security:\n  severity: urgent\n", "task.md:7: security.severity: got 'urgent'"),
    (GOOD + "security:\n  registries: [quay.io/acme]\n",
     "task.md:7: security.registries: service.image ghcr.io/acme/mini is in none of these registries: quay.io/acme"),
    (GOOD + "security:\n  forbidden_capabilities: [net_raw]\n", "task.md:7: security.forbidden_capabilities[0]"),
    (GOOD + "security:\n  identity:\n    subject: '^https://(unclosed'\n",
     "task.md:8: security.identity.subject: is not a regular expression"),
], ids=["engine", "severity", "foreign-registry", "capability-case", "subject-regex"])
def test_bad_security_section(front, expected, minimal, capsys):
    write_task(minimal, front)
    assert main(["generate", str(minimal)]) == 2
    err = capsys.readouterr().err
    assert expected in err, err
    assert not (minimal / "kit-out").exists()


def _spec(project, front=None):
    from kit.spec import load_spec
    if front is not None:
        write_task(project, front)
    return load_spec(project)


def test_defaults_name_the_identity_ci_signs_with(minimal):
    spec = _spec(minimal, GOOD + "ci:\n  repository: acme/mini\n  default_branch: trunk\n")
    sec_opts: SecurityOptions = spec.option("security")
    assert sec_opts.engine == "gatekeeper" and sec_opts.severity == "high"
    assert sec_opts.scan_severities == "HIGH,CRITICAL"
    assert sec_opts.issuer == "https://token.actions.githubusercontent.com"
    assert re.match(sec_opts.subject, "https://github.com/acme/mini/.github/workflows/ci.yml@refs/heads/trunk")
    assert re.match(sec_opts.subject, "https://github.com/acme/mini/.github/workflows/ci.yml@refs/tags/v1.2.0")
    assert not re.match(sec_opts.subject, "https://github.com/evil/mini/.github/workflows/ci.yml@refs/heads/trunk")
    assert not re.match(sec_opts.subject, "https://github.com/acme/mini/.github/workflows/other.yml@refs/heads/trunk")
    # a tag is one segment, as the workflow's tags: ["v*"] glob triggers
    assert not re.match(sec_opts.subject, "https://github.com/acme/mini/.github/workflows/ci.yml@refs/tags/v1/x")
    assert sec_opts.registries == ("ghcr.io",)
    # the CI workflow kit writes really signs keyless in that workflow file
    from kit.families.cicd.render import render_cicd
    assert "cosign sign --yes" in render_cicd(spec)[".github/workflows/ci.yml"]


def test_identity_without_a_repository_fails_closed(minimal):
    """No ci.repository: the default identity names no repository, so it matches no signature (a
    `[^/]+/[^/]+` wildcard would admit an image signed by ANY repository's ci.yml)."""
    for front in (GOOD, GOOD + "ci:\n  provider: gitlab\n"):
        sec_opts = _spec(minimal, front).option("security")
        for owner in ("acme/mini", "evil/mini", "a/b"):
            for url in (f"https://github.com/{owner}/.github/workflows/ci.yml@refs/heads/main",
                        f"https://gitlab.com/{owner}//.gitlab-ci.yml@refs/heads/main"):
                assert not re.match(sec_opts.subject, url), (sec_opts.subject, url)
        assert "fails closed" in sec_opts.identity_source


def test_gitlab_identity_and_task_override(minimal):
    spec = _spec(minimal, GOOD + "ci:\n  provider: gitlab\n  repository: acme/mini\nsecurity:\n  severity: medium\n")
    assert spec.option("security").issuer == "https://gitlab.com"
    assert "gitlab\\.com/acme/mini//\\.gitlab-ci\\.yml" in spec.option("security").subject
    assert spec.option("security").scan_severities == "MEDIUM,HIGH,CRITICAL"
    spec = _spec(minimal, GOOD + "security:\n  identity: {subject: '^me$', issuer: 'https://issuer.example'}\n")
    assert (spec.option("security").subject, spec.option("security").identity_source) == ("^me$", "security.identity")


def test_registry_matching():
    assert registry_of("postgres:15") == "docker.io" and registry_of("ghcr.io/a/b") == "ghcr.io"
    assert matches_registry("ghcr.io/acme/mini", "ghcr.io/acme")
    assert not matches_registry("ghcr.io/acmex/mini", "ghcr.io/acme")


@pytest.fixture(scope="module")
def example_files(tmp_path_factory):
    from kit.families import render_all
    from kit.spec import load_spec
    spec = load_spec(EXAMPLE)
    return spec, render_all(spec)


def _policies(files, rules=RULES):
    templates = [yaml.safe_load(files[f"{GATEKEEPER}/{r.name}/template.yaml"]) for r in rules]
    constraints = [yaml.safe_load(files[f"{GATEKEEPER}/constraints/{r.name}.yaml"]) for r in rules]
    return adm.policies_from(templates, constraints)


def test_generated_pod_admitted_and_each_mutation_denied_with_its_message(example_files):
    files = example_files[1]
    pod = yaml.safe_load(files[f"{GATEKEEPER}/samples/allowed.yaml"])
    policies = {p.name: p for p in _policies(files)}
    for name, policy in policies.items():
        assert adm.evaluate(policy, pod) == [], name
    messages = {
        "root-user": "runs as root (runAsUser: 0)", "latest-tag": "uses the :latest tag",
        "foreign-registry": "is not from an allowed registry", "no-limits": "has no cpu limit",
        "privilege-escalation": "must set allowPrivilegeEscalation: false",
        "host-path": "mounts the host path / (hostPath is not allowed)",
        "added-capability": "adds the capability SYS_ADMIN",
    }
    for m in adm.MUTATIONS:
        denied = adm.evaluate(policies[m.rule], adm.mutate(pod, m.name))
        assert any(messages[m.name] in msg for msg in denied), (m.name, denied)


def test_forbidden_capability_from_the_task_is_denied(minimal):
    spec = _spec(minimal, GOOD + "security:\n  forbidden_capabilities: [NET_BIND_SERVICE]\n")
    from kit.families.security.render import render_security
    files = render_security(spec)
    policy = next(p for p in _policies(files) if p.name == "restricted-capabilities")
    pod = yaml.safe_load(files[f"{GATEKEEPER}/samples/allowed.yaml"])
    assert adm.evaluate(policy, pod) == []
    pod["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] = ["NET_BIND_SERVICE"]
    assert adm.evaluate(policy, pod) == ["container mini adds the capability NET_BIND_SERVICE (allowed: [])"]


def test_dependency_images_admitted_by_name_only(example_files):
    files = example_files[1]
    policy = next(p for p in _policies(files) if p.name == "allowed-registries")
    pod = {"kind": "Pod", "spec": {"containers": [{"name": "db", "image": "postgres:15-bookworm"}]}}
    assert adm.evaluate(policy, pod) == []
    pod["spec"]["containers"][0]["image"] = "postgresql-evil/postgres:15"
    assert adm.evaluate(policy, pod)


def test_gator_suite_cases_cover_every_mutation(example_files):
    files = example_files[1]
    suite = yaml.safe_load(files[f"{GATEKEEPER}/suite.yaml"])
    denied = {c["object"] for t in suite["tests"] for c in t["cases"] if c["assertions"][0]["violations"] == "yes"}
    assert denied == ({f"samples/{m.name}.yaml" for m in adm.MUTATIONS}
                      | {f"samples/deployment-{m.name}.yaml" for m in adm.MUTATIONS} | {"samples/foreign-quay-image.yaml"})
    kyverno = yaml.safe_load(files["k8s/policies/kyverno/tests/kyverno-test.yaml"])
    assert sum(r["result"] == "fail" for r in kyverno["results"]) == len(adm.MUTATIONS)


def test_a_denying_policy_and_a_planted_secret_fail_verify(tmp_path, capsys):
    """One verify pass, two bad inputs: the generated limits rule edited to also demand
    ephemeral-storage limits (which the generated Deployments do not set), and a secret planted in
    a task value. `kit verify --static` fails naming the policy's message and the file and line of
    the secret, never the secret itself."""
    project = copy_project(EXAMPLE, tmp_path / "shop")
    task = project / ".claude" / "task.md"
    task.write_text(task.read_text().replace("    LOG_LEVEL: info\n", f"    LOG_LEVEL: info\n    S3_KEY_ID: {PLANTED}\n"))
    assert main(["generate", str(project)]) == 0
    rel = project / "kit-out" / GATEKEEPER / "require-limits" / "template.yaml"
    text = rel.read_text().replace('["cpu", "memory"]', '["cpu", "memory", "ephemeral-storage"]')
    assert "ephemeral-storage" in text
    rel.write_text(text)
    capsys.readouterr()
    assert main(["verify", str(project), "--static"]) != 0
    out = capsys.readouterr()
    assert "security.admission.overlays" in out.out + out.err
    assert "has no ephemeral-storage limit" in out.out + out.err
    assert re.search(r"compose\.yaml:\d+ \(AWS Access Key\)", out.out + out.err), out.out[-3000:]
    assert PLANTED not in out.out + out.err


def test_secret_in_task_value_and_source_is_caught_without_printing_it(tmp_path):
    from kit.core.context import VerifyContext
    from kit.families import render_all
    from kit.families.security.checks import secrets_files, secrets_source
    from kit.render import write_files
    from kit.spec import load_spec
    project = copy_project(EXAMPLE, tmp_path / "shop")
    task = project / ".claude" / "task.md"
    task.write_text(task.read_text().replace("    LOG_LEVEL: info\n", f"    LOG_LEVEL: info\n    S3_KEY_ID: {PLANTED}\n"))
    (project / "app" / "settings_local.py").write_text(f"# left by a developer\nAWS_ID = '{PLANTED}'\n")
    (project / "app" / ".env").write_text(f"AWS_ID={PLANTED}\n")     # git-ignored, never in the image
    spec = load_spec(project)
    files = render_all(spec)
    out = tmp_path / "out"
    write_files(files, out)
    ctx = VerifyContext(deliverables=out, files=files)
    gen, src = secrets_files(spec, ctx), secrets_source(spec, ctx)
    assert gen.status == "failed" and "(AWS Access Key)" in gen.reason
    where = {f["where"] for f in gen.figures["found"]}
    assert "compose.yaml" in where, where
    assert src.status == "failed" and "settings_local.py:2 (AWS Access Key)" in src.reason
    assert ".env" not in {f["where"] for f in src.figures["found"]}      # .dockerignore keeps it out
    for record in (gen, src):
        assert PLANTED not in repr(record.to_dict())


def test_allowlist_is_narrow():
    found = sec.scan_text("env:\n  DB_PASSWORD: 'hunter2-very-secret-value'\n", "x", ".yaml")
    assert found and not found[0].allowed_by
    allowed = sec.scan_text("volumes:\n  - secret:\n      secretName: shop-api-secrets\n", "x", ".yaml")
    assert all(f.allowed_by for f in allowed)
    inherit = sec.scan_text("jobs:\n  deploy:\n    uses: ./.github/workflows/deploy.yml\n    secrets: inherit\n", "x", ".yml")
    assert all(f.allowed_by for f in inherit)
    given = sec.scan_text("jobs:\n  deploy:\n    secrets: 'hunter2-not-inherit-value'\n", "x", ".yml")
    assert given and not any(f.allowed_by for f in given)


def test_example_generated_files_scan_clean(example_files, tmp_path):
    from kit.core.context import VerifyContext
    from kit.families.security.checks import secrets_files
    from kit.render import write_files
    spec, files = example_files
    write_files(files, tmp_path)
    record = secrets_files(spec, VerifyContext(deliverables=tmp_path, files=files))
    assert record.status == "passed", record.reason
    assert record.figures["files_scanned"] == len(files)


def test_mutations_change_only_what_they_say():
    pod = {"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "a", "image": "r.io/a:1", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}}
    before = copy.deepcopy(pod)
    assert adm.mutate(pod, "latest-tag")["spec"]["containers"][0]["image"] == "r.io/a:latest"
    assert adm.mutate(pod, "foreign-registry")["spec"]["containers"][0]["image"] == "docker.io/attacker/a:1"
    assert "limits" not in adm.mutate(pod, "no-limits")["spec"]["containers"][0]["resources"]
    assert pod == before


def test_dockerignore_matching():
    from kit.families.security.checks import dockerignored
    patterns = [".env", ".env.*", "secrets/", "*.md", "!README.md", "__pycache__"]
    assert dockerignored(".env", patterns) and dockerignored(".env.local", patterns)
    assert dockerignored("secrets/db", patterns) and dockerignored("__pycache__/x.pyc", patterns)
    assert dockerignored("NOTES.md", patterns) and not dockerignored("README.md", patterns)
    assert not dockerignored("app.py", patterns) and not dockerignored("settings_local.py", patterns)


def test_sbom_validation_and_missing_requirement_named():
    import json

    from kit.evidence import Evidence
    from kit.families.security.image import sbom_record
    doc = {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, "components": [
        {"type": "library", "name": "Flask", "version": "3.1.3", "bom-ref": "a",
         "properties": [{"name": "syft:package:type", "value": "python"}]},
        {"type": "library", "name": "libc6", "version": "2.36", "bom-ref": "b",
         "properties": [{"name": "syft:package:type", "value": "deb"}]},
        {"type": "operating-system", "name": "debian", "version": "12", "bom-ref": "c"}]}
    record = sbom_record(Evidence("security.sbom", "x", "x", "failed"), json.dumps(doc), ["flask", "left-pad-py"])
    assert record.status == "failed" and record.reason == "requirements missing from the SBOM: left-pad-py"
    assert record.figures["by_type"] == {"deb": 1, "operating-system": 1, "python": 1}
    assert record.figures["os_packages"] == 1 and record.figures["os"] == "debian 12"
    assert sbom_record(Evidence("security.sbom", "x", "x", "failed"), json.dumps(doc), ["flask"]).passed
    # kit's extra packages come as pinned specifiers (gunicorn==23.0.0): matched by name
    assert sbom_record(Evidence("security.sbom", "x", "x", "failed"), json.dumps(doc), ["Flask[async]==3.1.3"]).passed
    doc["components"][0]["type"] = "bogus"
    bad = sbom_record(Evidence("security.sbom", "x", "x", "failed"), json.dumps(doc), ["flask"])
    assert bad.status == "failed" and "not valid CycloneDX 1.6" in bad.reason


def test_no_secrets_criterion_is_judged_by_the_secret_scan():
    from kit.evidence import Evidence
    from kit.families.security import SECRETS
    from kit.report.acceptance import task_items
    text = "No secrets or sensitive data in output"
    passing = [Evidence(c, "x", c, "passed") for c in SECRETS] + [Evidence("compose.env_example", "x", "x", "passed")]
    item = task_items((text,), passing)[0]
    assert item.checks == SECRETS and item.ticked
    failing = [Evidence(c, "x", c, "failed" if c == "security.secrets.image" else "passed") for c in SECRETS]
    assert task_items((text,), failing)[0].state == "failed"
    # the compose family still judges the .env.example wording
    assert task_items(("A .env.example with placeholders for secrets",), passing)[0].checks[0] == "compose.env_example"


def test_site_gate_fails_naming_file_and_line(minimal, tmp_path):
    from kit.errors import KitError
    from kit.families.security.checks import site_gate
    spec = _spec(minimal, GOOD)
    site = spec.output / "site"
    site.mkdir(parents=True)
    (site / "index.html").write_text("<html><body>\n<p>fine</p>\n</body></html>\n")
    site_gate(spec)
    (site / "work.html").write_text(f"<html>\n<pre>key id {PLANTED}</pre>\n</html>\n")
    with pytest.raises(KitError) as exc:
        site_gate(spec)
    assert "work.html:2 (AWS Access Key)" in str(exc.value) and PLANTED not in str(exc.value)


def test_ci_scan_threshold_follows_security_severity(minimal):
    from kit.families.cicd.render import render_cicd
    spec = _spec(minimal, GOOD + "ci:\n  provider: both\nsecurity:\n  severity: critical\n")
    files = render_cicd(spec)
    assert "severity: CRITICAL\n" in files[".github/workflows/ci.yml"]
    assert "Scan (fails on fixable CRITICAL)" in files[".github/workflows/ci.yml"]
    assert "--severity CRITICAL " in files[".gitlab-ci.yml"]
    default = render_cicd(_spec(minimal, GOOD))[".github/workflows/ci.yml"]
    assert "severity: HIGH,CRITICAL\n" in default and "fixable HIGH and CRITICAL" in default


def test_packages_locked_only_for_other_platforms_are_not_required_in_the_sbom(tmp_path):
    """uv.lock pulls colorama in only on Windows (click's marker): pip skips it in the Linux image,
    so the SBOM check must not ask for it (it failed the uv-locked fixture); a package with one
    unconditional edge stays required."""
    from kit.families.security.image import not_for_linux
    lock = tmp_path / "uv.lock"
    lock.write_text('version = 1\n\n[[package]]\nname = "click"\nversion = "8.1.7"\n'
                    'dependencies = [{ name = "colorama", marker = "sys_platform == \'win32\'" }]\n\n'
                    '[[package]]\nname = "svc"\nversion = "0.1.0"\n'
                    'dependencies = [{ name = "click" }, { name = "tzdata", marker = "sys_platform == \'win32\'" }]\n\n'
                    '[[package]]\nname = "pendulum"\nversion = "3.0.0"\ndependencies = [{ name = "tzdata" }]\n')
    assert not_for_linux(lock) == {"colorama"}
    assert not_for_linux(tmp_path / "missing.lock") == set()


def test_lockfile_integrity_hashes_are_allowlisted_only_in_lockfiles(tmp_path):
    """npm's integrity fields are high-entropy by design (Subresource Integrity of a published
    tarball): allowlisted in lockfiles, still found anywhere else. detect-secrets itself skips
    package-lock.json, but not the copy npm keeps in node_modules/.package-lock.json."""
    from kit.families.security.secrets import scan_paths
    line = '      "integrity": "sha512-7kNnAQcSKbG0xsT8Z5a1QHj2RkG4B7pD3Hs9mBPdvPAq+d3ZjS8EYJqXlqbtUzsJpY3b4Fz1h1X0kQwHcDLRJw==",\n'
    lock = tmp_path / ".package-lock.json"
    lock.write_text('{\n  "packages": {\n    "node_modules/x": {\n' + line + "    }\n  }\n}\n")
    found = scan_paths([lock], tmp_path)
    assert found and all(f.allowed_by.startswith("a package lockfile's integrity hash") for f in found)
    other = tmp_path / "config.json"
    other.write_text(lock.read_text())
    assert any(not f.allowed_by for f in scan_paths([other], tmp_path))
