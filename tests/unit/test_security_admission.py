"""Security family: the rules the admission controllers and kustomize enforce when the policies
meet a cluster, each broken on purpose. regopy accepts Rego v1 in any field and evaluates any
object, so these faults pass its evaluation; only the checks below catch them:
- Gatekeeper parses a template's `rego:` field as Rego v0 (v1 only under code[].source.version);
- kustomize's load restrictor refuses `../` resources (a real `kubectl kustomize` build);
- cert-manager's HTTP-01 solver Pod must be admitted in the app's namespaces, another quay.io image not;
- the policies govern only the overlays' namespaces, and a bad Deployment (not only its Pod) is denied."""
from __future__ import annotations

import copy
import re

import pytest
import yaml

from kit.families.security import addons, checks
from kit.families.security import admission as adm
from kit.families.security.rego import RULES
from kit.families.security.render import GATEKEEPER, KYVERNO, dump
from tests.conftest import EXAMPLE


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    from kit.families import render_all
    from kit.spec import load_spec
    spec = load_spec(EXAMPLE)
    return spec, render_all(spec), tmp_path_factory.mktemp("policies")


def _ctx(generated, edit=None, tmp=None):
    """A verify context over the example's deliverables, `edit(files)` applied first."""
    from kit.core.context import VerifyContext
    from kit.render import write_files
    spec, files, base = generated
    files = dict(files)
    if edit:
        edit(files)
    out = tmp or base / "out"
    write_files(files, out)
    return spec, VerifyContext(deliverables=out, files=files)


def _edit_yaml(files, rel, change):
    doc = yaml.safe_load(files[rel])
    change(doc)
    files[rel] = dump(doc)


def test_templates_carry_rego_v1_under_code_and_the_example_passes_the_rules(generated):
    _spec, files, _ = generated
    for rule in RULES:
        t = yaml.safe_load(files[f"{GATEKEEPER}/{rule.name}/template.yaml"])
        target = t["spec"]["targets"][0]
        assert "rego" not in target
        assert target["code"][0]["engine"] == "Rego" and target["code"][0]["source"]["version"] == "v1"
        assert "import rego.v1" not in target["code"][0]["source"]["rego"]
        assert checks.gatekeeper_rego_problems(rule.name, t) == []
    record = checks.policy_rules(*_ctx(generated))
    assert record.status == "passed", record.reason
    assert record.figures["namespaces"] == ["shop-api-dev", "shop-api-prod", "shop-api-staging"]


def test_rego_v1_in_the_rego_field_fails_the_rules_though_regopy_accepts_it(generated):
    """The fault the review found: v1 text in `rego:`. regopy still evaluates it (so admission
    evidence alone passes); the Gatekeeper rule fails naming the field and the fix."""
    rel = f"{GATEKEEPER}/require-limits/template.yaml"

    def legacy(doc):
        target = doc["spec"]["targets"][0]
        target["rego"] = "package k8srequirelimits\n\nimport rego.v1\n" + target.pop("code")[0]["source"]["rego"].split("\n", 1)[1]
    spec, ctx = _ctx(generated, lambda f: _edit_yaml(f, rel, legacy))
    record = checks.policy_rules(spec, ctx)
    assert record.status == "failed"
    assert "require-limits: targets[0].rego carries Rego v1 syntax" in record.reason
    assert "Gatekeeper >= 3.19" in record.reason
    assert checks.gator_suite(spec, ctx).passed          # regopy alone does not catch it
    # v1 text declared v0 under code is refused as well; v0 text in `rego:` is fine
    t = yaml.safe_load(generated[1][rel])
    t["spec"]["targets"][0]["code"][0]["source"]["version"] = "v0"
    assert "carries Rego v1 syntax with source.version v0" in checks.gatekeeper_rego_problems("x", t)[0]
    v0 = {"spec": {"targets": [{"rego": 'package a\n# if\nviolation[{"msg": m}] {\n  contains(input.x, "if")\n  m := "x"\n}\n'}]}}
    assert checks.gatekeeper_rego_problems("x", v0) == []


@pytest.mark.tools
def test_every_policy_kustomization_builds_and_a_parent_reference_is_refused(generated, tmp_path):
    """A real `kubectl kustomize` of every kustomization under k8s/policies/: the generated ones
    build; the old layout (constraints/kustomization.yaml -> ../<rule>/constraint.yaml) is refused
    by kustomize's load restrictor."""
    spec, ctx = _ctx(generated, tmp=tmp_path / "good")
    record = checks.policy_kustomize(spec, ctx)
    assert record.status == "passed", record.reason
    assert record.figures["objects"] == {"k8s/policies/gatekeeper": len(RULES),
                                         "k8s/policies/gatekeeper/constraints": len(RULES), "k8s/policies/kyverno": 5}

    def old_layout(files):
        for r in RULES:
            files[f"{GATEKEEPER}/{r.name}/constraint.yaml"] = files.pop(f"{GATEKEEPER}/constraints/{r.name}.yaml")
        files[f"{GATEKEEPER}/constraints/kustomization.yaml"] = dump({
            "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "resources": [f"../{r.name}/constraint.yaml" for r in RULES]})
    spec, ctx = _ctx(generated, old_layout, tmp=tmp_path / "old")
    record = checks.policy_kustomize(spec, ctx)
    assert record.status == "failed"
    assert "k8s/policies/gatekeeper/constraints:" in record.reason and "security; file" in record.reason


def test_cert_manager_solver_admitted_and_another_quay_image_denied(generated):
    spec, files, _ = generated
    assert addons.images(spec) == ["quay.io/jetstack/cert-manager-acmesolver:v1.17.2"]
    record = checks.admission_mutations(*_ctx(generated))
    assert record.status == "passed", record.reason
    assert set(record.figures["matrix"]["cert-manager HTTP-01 solver"].values()) == {"admitted"}
    assert "not from an allowed registry" in record.figures["matrix"]["another quay.io image"]["allowed-registries"]
    # Kyverno admits the exact image only
    kyverno = next(p for p in yaml.safe_load_all(files[f"{KYVERNO}/policies.yaml"]) if p["metadata"]["name"] == "allowed-registries")
    pattern = kyverno["spec"]["rules"][0]["validate"]["pattern"]["spec"]["containers"][0]["image"]
    assert "quay.io/jetstack/cert-manager-acmesolver:v1.17.2" in pattern.split(" | ") and "quay.io/*" not in pattern

    def no_images(f):
        _edit_yaml(f, f"{GATEKEEPER}/constraints/allowed-registries.yaml", lambda d: d["spec"]["parameters"].pop("images"))
    record = checks.admission_mutations(*_ctx(generated, no_images))
    assert record.status == "failed"
    assert "cert-manager HTTP-01 solver (quay.io/jetstack/cert-manager-acmesolver:v1.17.2) was denied" in record.reason

    def whole_quay(f):
        _edit_yaml(f, f"{GATEKEEPER}/constraints/allowed-registries.yaml",
                   lambda d: d["spec"]["parameters"]["registries"].append("quay.io"))
    record = checks.admission_mutations(*_ctx(generated, whole_quay))
    assert "another quay.io image (quay.io/attacker/" in record.reason and "was not denied" in record.reason


def test_no_solver_image_without_a_cluster_issuer(minimal):
    from kit.families.security.render import render_security
    from kit.spec import load_spec
    from tests.conftest import write_task
    write_task(minimal, "service:\n  name: mini\n  source: src\n  image: ghcr.io/acme/mini\n")
    spec = load_spec(minimal)
    if spec.option("kubernetes").cluster_issuer:
        pytest.skip("the minimal task names a ClusterIssuer by default")
    files = render_security(spec)
    assert "cert-manager-acmesolver" not in files[f"{GATEKEEPER}/constraints/allowed-registries.yaml"]
    assert f"{GATEKEEPER}/samples/cert-manager-solver.yaml" not in files


def test_bad_deployment_denied_not_only_its_pod(generated):
    _spec, _files, _ = generated
    record = checks.admission_mutations(*_ctx(generated))
    assert record.status == "passed", record.reason
    for m in adm.MUTATIONS:
        assert record.figures["matrix"][f"Deployment: {m.name}"][m.rule] != "admitted", m.name
        assert set(record.figures["workload_kinds"][m.name]) >= {"Deployment", "StatefulSet", "CronJob", "Job"}
        assert "admitted" not in record.figures["workload_kinds"][m.name].values()
    overlays = checks.admission_overlays(*_ctx(generated))
    assert overlays.status == "passed", overlays.reason
    assert any("/Deployment/" in name for name in overlays.figures["matrix"])


def test_constraint_matching_pods_only_admits_a_bad_deployment(generated):
    def pods_only(f):
        _edit_yaml(f, f"{GATEKEEPER}/constraints/require-non-root.yaml",
                   lambda d: d["spec"]["match"].update({"kinds": [{"apiGroups": [""], "kinds": ["Pod"]}]}))
    record = checks.admission_mutations(*_ctx(generated, pods_only))
    assert record.status == "failed"
    found = re.search(r"the Constraint require-non-root does not match ([\w, ]+): such an object breaking it is admitted",
                      record.reason)
    assert found and "Deployment" in found.group(1).split(", "), record.reason


def test_rego_reading_spec_containers_only_admits_a_bad_deployment(generated):
    """Gatekeeper's warning: adding the workload kinds does nothing when the Rego reads
    `spec.containers` only (the library's form, and kit's before)."""
    rel = f"{GATEKEEPER}/no-privilege-escalation/template.yaml"

    def pod_only_rego(doc):
        source = doc["spec"]["targets"][0]["code"][0]["source"]
        _head, body = source["rego"].split("containers contains c if some c in object.get(pod_spec, \"ephemeralContainers\", [])\n")
        source["rego"] = ("package k8snoprivilegeescalation\n\ncontainers contains c if some c in "
                          "input.review.object.spec.containers\n" + body)
    record = checks.admission_mutations(*_ctx(generated, lambda f: _edit_yaml(f, rel, pod_only_rego)))
    assert record.status == "failed"
    assert "a Deployment with privilege-escalation was admitted by no-privilege-escalation" in record.reason


def test_policies_scoped_to_the_overlays_namespaces(generated):
    _spec, files, _ = generated
    for r in RULES:
        c = yaml.safe_load(files[f"{GATEKEEPER}/constraints/{r.name}.yaml"])
        assert c["spec"]["match"]["namespaces"] == ["shop-api-dev", "shop-api-staging", "shop-api-prod"]

    def kyverno_everywhere(f):
        docs = list(yaml.safe_load_all(f[f"{KYVERNO}/policies.yaml"]))
        for d in docs:
            for r in d["spec"]["rules"]:
                for b in r["match"]["any"]:
                    b["resources"].pop("namespaces")
        f[f"{KYVERNO}/policies.yaml"] = yaml.safe_dump_all(docs, sort_keys=False)
    record = checks.policy_rules(*_ctx(generated, kyverno_everywhere))
    assert record.status == "failed"
    assert "kyverno pod-security-restricted/restricted matches the namespaces all" in record.reason

    def constraint_wildcard(f):
        _edit_yaml(f, f"{GATEKEEPER}/constraints/require-limits.yaml",
                   lambda d: d["spec"]["match"].update({"namespaces": ["*"]}))
    record = checks.policy_rules(*_ctx(generated, constraint_wildcard))
    assert "the Constraint require-limits matches the namespaces ['*']" in record.reason

    def kyverno_kinds(f):
        docs = list(yaml.safe_load_all(f[f"{KYVERNO}/policies.yaml"]))
        docs[0]["spec"]["rules"][0]["match"]["any"][0]["resources"]["kinds"] = ["Pod", "Deployment"]
        f[f"{KYVERNO}/policies.yaml"] = yaml.safe_dump_all(docs, sort_keys=False)
    record = checks.policy_rules(*_ctx(generated, kyverno_kinds))
    assert "only [Pod] gets Kyverno's auto-gen rules" in record.reason


def test_wrap_puts_the_pod_where_each_kind_keeps_it():
    pod = {"kind": "Pod", "metadata": {"name": "p", "namespace": "n", "labels": {"app": "a"}},
           "spec": {"containers": [{"name": "a", "image": "r.io/a:1"}]}}
    before = copy.deepcopy(pod)
    assert adm.wrap(pod, "Deployment")["spec"]["template"]["spec"] == pod["spec"]
    assert adm.wrap(pod, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"] == pod["spec"]
    assert adm.pod_of(adm.wrap(pod, "StatefulSet"))["spec"] == pod["spec"]
    assert pod == before


def test_falco_outbound_exemptions_for_in_cluster_peers_are_refused(generated):
    """The review's fault: exempting the dependencies by name and DNS by port in a rule built on
    Falco's `outbound` macro, which already leaves out private destinations."""
    rel = "security/falco_rules.yaml"
    assert checks.falco(*_ctx(generated)).passed

    def dead(f):
        f[rel] = f[rel].replace("outbound and shop_api_container",
                                'outbound and shop_api_container\n    and not fd.sport in (53)\n'
                                '    and not fd.sip.name in ("postgres", "redis")')
    record = checks.falco(*_ctx(generated, dead))
    assert record.status == "failed"
    assert "fd.sport in (53) never applies" in record.reason and "fd.sip.name in (postgres, redis)" in record.reason


def test_threat_model_may_not_claim_what_an_uninstalled_controller_does(generated):
    record = checks.threat_model(*_ctx(generated))
    assert record.status == "passed", record.reason
    assert record.figures["conditional"] >= 3
    rel = "security/threat-model.md"

    def overclaim(f):
        lines = f[rel].splitlines()
        f[rel] = "\n".join(line.rsplit("|", 2)[0] + "| mitigated |" if line.startswith("| cluster | E") else line
                           for line in lines) + "\n"
    record = checks.threat_model(*_ctx(generated, overclaim))
    assert record.status == "failed"
    assert "cluster E (a pod admitted that breaks the restricted profile) is marked 'mitigated'" in record.reason


def test_verify_images_names_registry_credentials(generated):
    from kit.families.security.kyverno import registry_provider
    assert registry_provider("123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop-api") == "amazon"
    assert registry_provider("europe-docker.pkg.dev/p/r/x") == "google" and registry_provider("ghcr.io/a/b") == "github"
    assert registry_provider("registry.example.com/a") == "default"
    _spec, files, _ = generated
    assert "imageRegistryCredentials:\n        providers:\n        - amazon" in files[f"{KYVERNO}/policies.yaml"]
    assert "kyverno-admission-controller" in files["k8s/policies/README.md"]

    def no_creds(f):
        docs = list(yaml.safe_load_all(f[f"{KYVERNO}/policies.yaml"]))
        for d in docs:
            for r in d["spec"]["rules"]:
                for v in r.get("verifyImages") or []:
                    v.pop("imageRegistryCredentials")
        f[f"{KYVERNO}/policies.yaml"] = yaml.safe_dump_all(docs, sort_keys=False)
    record = checks.policy_rules(*_ctx(generated, no_creds))
    assert "kyverno verify-images/verify-signature: verifyImages names no imageRegistryCredentials" in record.reason


def test_signing_into_immutable_tags_is_guarded(generated, minimal):
    """ECR IMMUTABLE refuses a second write of sha256-<digest>.sig (sigstore/cosign#313): the
    pipelines sign only when the digest carries no signature of the repository's workflow yet."""
    record = checks.signing(*_ctx(generated))
    assert record.status == "passed", record.reason
    assert record.figures["immutable_registry"] == ["terraform/modules/platform/main.tf"]

    def unguarded(f):
        text = f[".github/workflows/ci.yml"]
        start = text.index("        run: >-\n          cosign verify")
        end = text.index('|| cosign sign --yes "${IMAGE}@${DIGEST}"\n', start)
        f[".github/workflows/ci.yml"] = text[:start] + '        run: cosign sign --yes "${IMAGE}@${DIGEST}"\n' + \
            text[end + len('|| cosign sign --yes "${IMAGE}@${DIGEST}"\n'):]
    record = checks.signing(*_ctx(generated, unguarded))
    assert record.status == "failed"
    assert ".github/workflows/ci.yml: `cosign sign` runs unconditionally" in record.reason
    # GitLab's job is guarded the same way
    from kit.families.cicd.render import render_cicd
    from kit.spec import load_spec
    from tests.conftest import write_task
    write_task(minimal, "service:\n  name: mini\n  source: src\n  image: ghcr.io/acme/mini\nci:\n  provider: gitlab\n")
    gitlab = render_cicd(load_spec(minimal))[".gitlab-ci.yml"]
    assert checks.GUARDED_SIGN.search(re.sub(r"\s*\n\s*", " ", gitlab))


def test_falco_label_keys_with_a_slash_use_the_bracket_form(generated):
    """The review's fault: k8s.pod.label.app.kubernetes.io/name stops libsinsp's field lexer at '/',
    so the macro, and every rule on it, fails to compile."""
    rel = "security/falco_rules.yaml"
    assert "k8s.pod.label[app.kubernetes.io/name]" in generated[1][rel]

    def dotted(f):
        f[rel] = f[rel].replace("k8s.pod.label[app.kubernetes.io/name]", "k8s.pod.label.app.kubernetes.io/name")
    record = checks.falco(*_ctx(generated, dotted))
    assert record.status == "failed" and "write k8s.pod.label[app.kubernetes.io/name]" in record.reason


def test_kyverno_rules_carry_their_own_failure_action_and_verify_only_the_apps_repository(generated):
    """The review's faults: spec.validationFailureAction is deprecated (per-rule failureAction since
    Kyverno 1.13), and verify-images' `repo*` also caught the unsigned backup image's repository."""
    rel = f"{KYVERNO}/policies.yaml"
    docs = [d for d in yaml.safe_load_all(generated[1][rel]) if d]
    assert all("validationFailureAction" not in d["spec"] for d in docs)
    verify = next(d for d in docs if d["metadata"]["name"] == "verify-images")["spec"]["rules"][0]["verifyImages"][0]
    assert all(ref.endswith((":*", "@*")) for ref in verify["imageReferences"])
    assert checks.structure(*_ctx(generated)).passed

    def loose(f):
        f[rel] = f[rel].replace(verify["imageReferences"][0], verify["imageReferences"][0][:-2] + "*")
    record = checks.structure(*_ctx(generated, loose))
    assert record.status == "failed" and "also match sibling repositories" in record.reason

    def old_field(f):
        f[rel] = f[rel].replace("spec:\n  background:", "spec:\n  validationFailureAction: Enforce\n  background:", 1)
    record = checks.structure(*_ctx(generated, old_field))
    assert record.status == "failed" and "deprecated since Kyverno 1.13" in record.reason


def test_the_sign_once_guard_checks_exactly_the_identity_admission_verifies(generated):
    """The review's fault: the guard accepted any workflow of the repository on any ref, while Kyverno
    and the deploy require ci.yml on main or a v* tag: a digest signed elsewhere was never re-signed."""
    spec = generated[0]
    assert f"--certificate-identity-regexp '{spec.option('security').subject}'" in generated[1][".github/workflows/ci.yml"]

    def loose(f):
        f[".github/workflows/ci.yml"] = f[".github/workflows/ci.yml"].replace(
            f"--certificate-identity-regexp '{spec.option('security').subject}'",
            '--certificate-identity-regexp "^https://github\\.com/${GITHUB_REPOSITORY}/\\.github/workflows/"')
    record = checks.signing(*_ctx(generated, loose))
    assert record.status == "failed" and "another identity than admission verifies" in record.reason
