"""IaC family: Terraform per cloud in one shape, the real tools pass it, and each check fails
on a deliberately broken file."""
from __future__ import annotations

import dataclasses
import re

import pytest

from kit.core.context import VerifyContext
from kit.families.iac import checks
from kit.families.iac.options import DEFAULT_INSTANCE, DEFAULT_REGION
from kit.families.iac.render import render_iac
from kit.families.iac.rules import RULES
from kit.families.iac.terraform import inventory
from kit.render import write_files
from kit.spec import load_spec

PLATFORM = "terraform/modules/platform/main.tf"
STAGING = "terraform/environments/staging/versions.tf"


def on_cloud(spec, provider):
    cloud = dataclasses.replace(spec.option("cloud"), provider=provider, region=DEFAULT_REGION[provider],
                                instance_type=DEFAULT_INSTANCE[provider])
    return dataclasses.replace(spec, options={**spec.options, "cloud": cloud})


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    from tests.conftest import copy_example
    return load_spec(copy_example(tmp_path_factory.mktemp("iac") / "shop-api"))


def run(spec, files, out):
    write_files(files, out)
    return {r.check: r for r in checks.static_checks(spec, VerifyContext(out, files))}


def test_same_shape_on_every_cloud(spec):
    shapes = {}
    for cloud in ("aws", "gcp", "azure"):
        files = render_iac(on_cloud(spec, cloud))
        shapes[cloud] = sorted(files)
        assert files == render_iac(on_cloud(spec, cloud))                     # deterministic
    assert shapes["aws"] == shapes["gcp"] == shapes["azure"]
    assert "terraform/environments/prod/versions.tf" in shapes["aws"]


@pytest.mark.tools
@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_every_cloud_passes_and_validate_is_never_faked(spec, cloud, tmp_path):
    records = run(on_cloud(spec, cloud), render_iac(on_cloud(spec, cloud)), tmp_path)
    bad = [(c, r.reason, r.log[:400]) for c, r in records.items() if r.status == "failed"]
    assert bad == []
    assert records["iac.checkov"].figures["failed"] == 0 and records["iac.checkov"].figures["passed"] > 0
    assert all(": " in s and s.split(": ", 1)[1] for s in records["iac.checkov"].figures["skips"])
    assert {f"iac.rule.{rule}" for rule in RULES} <= set(records)
    validate = [r for c, r in records.items() if c.startswith("iac.validate.")]
    assert len(validate) == 4
    for record in validate:       # providers are not downloadable here: skipped, saying why
        assert record.status == "passed" or (record.status == "skipped" and record.reason)


def test_inventory_reads_the_plan(spec):
    inv = inventory(render_iac(spec))
    types = {(b["folder"], b["type"]) for b in inv.blocks}
    assert ("terraform/modules/platform", "aws_ecr_repository") in types
    assert ("terraform/bootstrap", "aws_s3_bucket") in types
    modules = {b["source"]: b.get("version") for b in inv.blocks if b["kind"] == "module"}
    assert modules["terraform-aws-modules/eks/aws"] == "20.31.6"
    assert modules["terraform/modules/platform"] == ""
    assert inv.settings["terraform/environments/prod"]["backend"]["key"] == "shop-api/prod/terraform.tfstate"


BROKEN = [
    ("pinned", STAGING, 'version = "5.80.0"', 'version = "~> 5.0"', "is not an exact version"),
    ("pinned", PLATFORM, 'version = "20.31.6"', 'version = "~> 20.0"', "is not pinned to a release"),
    ("pinned", STAGING, 'required_version = ">= 1.10.0, < 2.0.0"\n', "", "no required_version"),
    ("variables", "terraform/modules/platform/variables.tf",
     '  description = "EKS Kubernetes minor version, e.g. 1.31."\n', "", "has no description"),
    ("variables", "terraform/modules/platform/variables.tf", "  type        = list(string)\n", "", "has no type"),
    ("backend", STAGING, "    use_lockfile = true\n", "", "does not lock the state"),
    ("secrets", PLATFORM, '  name                 = var.registry_repository\n',
     '  name                 = var.registry_repository\n  password             = "hunter2"\n', "literal credential"),
    ("outputs", "terraform/modules/platform/outputs.tf", '  description = "Kubernetes API endpoint."\n', "",
     "has no description"),
]


@pytest.mark.parametrize("rule,path,old,new,reason", BROKEN, ids=[f"{b[0]}-{i}" for i, b in enumerate(BROKEN)])
def test_each_rule_broken_fails(spec, rule, path, old, new, reason):
    files = render_iac(spec)
    assert old in files[path]
    problems = RULES[rule][1](inventory({**files, path: files[path].replace(old, new, 1)}))
    assert any(reason in p for p in problems), problems


@pytest.mark.tools
def test_fmt_parse_and_checkov_catch_broken_files(spec, tmp_path):
    files = render_iac(spec)
    broken = dict(files)
    broken[PLATFORM] = files[PLATFORM].replace('image_tag_mutability = "IMMUTABLE"', 'image_tag_mutability = "MUTABLE"')
    broken["terraform/bootstrap/main.tf"] = files["terraform/bootstrap/main.tf"].replace(
        "  # checkov:skip=CKV_AWS_18:", "  # no skip:")
    broken["terraform/bootstrap/outputs.tf"] = files["terraform/bootstrap/outputs.tf"].replace(
        "  value       =", "  value =", 1)
    # staging breaks: prod owns the registry (create_registry), so checkov still sees it there
    broken["terraform/environments/staging/main.tf"] = files["terraform/environments/staging/main.tf"] + "module {\n"
    records = run(spec, broken, tmp_path)
    assert records["iac.fmt"].status == "failed"
    assert records["iac.parse"].status == "failed" and "environments/staging/main.tf" in records["iac.parse"].reason
    assert records["iac.checkov"].status == "failed"
    assert "CKV_AWS_51" in records["iac.checkov"].reason and "CKV_AWS_18" in records["iac.checkov"].reason


@pytest.mark.tools
def test_missing_terraform_is_a_clear_failure(spec, tmp_path, monkeypatch):
    monkeypatch.setattr(checks, "terraform_bin", lambda: str(tmp_path / "no-terraform"))
    files = {k: v for k, v in render_iac(spec).items() if k.startswith("terraform/bootstrap/")}
    records = run(spec, files, tmp_path / "out")
    assert records["iac.fmt"].status == "failed" and "not installed" in records["iac.fmt"].reason
    assert records["iac.validate.bootstrap"].status == "failed"
    assert "terraform is not installed" in records["iac.validate.bootstrap"].reason


def _hcl(text):
    import io

    import hcl2
    return hcl2.load(io.StringIO(text))


def _module(text, name):
    return next(m[f'"{name}"'] for m in _hcl(text)["module"] if f'"{name}"' in m)


def test_eks_gets_the_ebs_csi_driver_with_its_own_role(spec):
    """StatefulSet volumes need a CSI driver: the add-on runs with an IRSA role from the pinned
    iam module, and asks for a default StorageClass."""
    text = render_iac(spec)[PLATFORM]
    addon = _module(text, "eks")["cluster_addons"]["aws-ebs-csi-driver"]
    assert "module.ebs_csi_irsa.iam_role_arn" in addon["service_account_role_arn"]
    assert "defaultStorageClass" in addon["configuration_values"]
    irsa = _module(text, "ebs_csi_irsa")
    assert irsa["source"].startswith('"terraform-aws-modules/iam/aws//') and irsa["attach_ebs_csi_policy"] is True
    assert irsa["version"] == '"5.44.0"'
    assert "kube-system:ebs-csi-controller-sa" in str(irsa["oidc_providers"])


def test_deploy_role_trusts_only_this_repository_and_environment(spec):
    files = render_iac(spec)
    assert 'url            = "https://token.actions.githubusercontent.com"' in files["terraform/bootstrap/main.tf"]
    platform = files[PLATFORM]
    assert '"repo:${var.github_repository}:environment:${var.github_environment}"' in platform
    assert '"token.actions.githubusercontent.com:aud" = "sts.amazonaws.com"' in platform
    entry = _module(platform, "eks")["access_entries"]["github_deploy"]
    assert "aws_iam_role.deploy.arn" in entry["principal_arn"]
    assert "policy_associations" not in entry and entry["kubernetes_groups"] == ["${local.deploy_group}"]
    # prod is deployed by the GitHub environment "production" (ci's OVERLAYS)
    assert 'github_environment = "production"' in files["terraform/environments/prod/main.tf"]
    assert 'github_environment = "staging"' in files["terraform/environments/staging/main.tf"]
    assert 'default     = "acme/shop-api"' in files["terraform/environments/prod/variables.tf"]
    assert "AWS_DEPLOY_ROLE_ARN" in files["terraform/environments/prod/outputs.tf"]
    readme = files["terraform/README.md"]
    assert "api_allowed_cidrs" in readme and "self-hosted runner in this VPC" in readme


def test_deploy_repository_is_a_variable_when_unknown(spec):
    """ci.repository, else OWNER/NAME of a ghcr.io image, else a required variable."""
    ci = dataclasses.replace(spec.option("ci"), repository="")
    other = dataclasses.replace(spec, image="registry.example.com/shop-api", options={**spec.options, "ci": ci})
    files = render_iac(other)
    variables = files["terraform/environments/prod/variables.tf"]
    block = variables[variables.index('variable "github_repository"'):].split("\nvariable ", 1)[0]
    assert "default" not in block and "validation" in block
    assert '# github_repository = "owner/name"' in files["terraform/environments/prod/terraform.tfvars"]


CLOUD_IMAGES = {"aws": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop-api",
                "gcp": "europe-west1-docker.pkg.dev/shop-api-prod/shop/shop-api",
                "azure": "acmeshop.azurecr.io/shop-api"}


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_registry_is_created_by_one_environment_only(spec, cloud):
    """The registry service.image names is created once (ECR and Artifact Registry repositories are
    per account or project, an ACR name is global); the other environments pull from it."""
    files = render_iac(dataclasses.replace(on_cloud(spec, cloud), image=CLOUD_IMAGES[cloud]))
    block = files[PLATFORM].split("_registry\" \"service\" {" if cloud == "azure" else "_repository\" \"service\" {", 1)[1]
    assert "count" in block.split("\n}", 1)[0]
    owners = [env for env in ("staging", "prod")
              if re.search(r"create_registry\s+= true", files[f"terraform/environments/{env}/main.tf"])]
    assert owners == ["prod"]


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_no_registry_when_the_image_is_elsewhere(spec, cloud):
    files = render_iac(dataclasses.replace(on_cloud(spec, cloud), image="ghcr.io/acme/shop-api"))
    for env in ("staging", "prod"):
        assert re.search(r"create_registry\s+= false", files[f"terraform/environments/{env}/main.tf"])


@pytest.mark.tools
@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_checkov_passes_with_the_clouds_registry(spec, cloud, tmp_path):
    """The example's image is ECR: on GCP and Azure checkov would not see a registry resource."""
    s = dataclasses.replace(on_cloud(spec, cloud), image=CLOUD_IMAGES[cloud])
    records = run(s, render_iac(s), tmp_path)
    assert records["iac.checkov"].status == "passed", records["iac.checkov"].log[:600]
    assert records["iac.fmt"].status == "passed", records["iac.fmt"].log[:600]


STATE = [
    ("aws", "terraform/bootstrap/main.tf", "  bucket = local.state_bucket\n", '  bucket = "shop-api-tfstate"\n',
     "does not derive from data.aws_caller_identity"),
    ("aws", STAGING, '    key          = "shop-api/staging', '    bucket       = "shop-api-tfstate"\n    key          = "shop-api/staging',
     "names the fixed bucket 'shop-api-tfstate'"),
    ("gcp", "terraform/bootstrap/main.tf", '"${var.project}-tfstate"', '"shop-api-tfstate"', "does not derive from var.project"),
    ("gcp", STAGING, 'bucket = "shop-api-prod-tfstate"', 'bucket = "shop-api-tfstate"', "names the fixed bucket"),
    ("azure", "terraform/bootstrap/main.tf", "  name                              = local.state_account\n",
     '  name                              = "shopapitfstate"\n', "does not derive from data.azurerm_client_config"),
    ("azure", STAGING, '    container_name      = "tfstate"\n',
     '    container_name      = "tfstate"\n    storage_account_name = "shopapitfstate"\n', "names the fixed storage_account_name"),
]


@pytest.mark.parametrize("cloud,path,old,new,reason", STATE, ids=[f"state-{s[0]}-{i}" for i, s in enumerate(STATE)])
def test_state_store_name_fixed_across_accounts_fails(spec, cloud, path, old, new, reason):
    """Bucket and storage account names are global: the old fixed <service>-tfstate collides in the
    second account; the bootstrap derives the name and the backends take it at init."""
    files = render_iac(on_cloud(spec, cloud))
    assert old in files[path]
    assert RULES["state_name"][1](inventory(files)) == []
    problems = RULES["state_name"][1](inventory({**files, path: files[path].replace(old, new, 1)}))
    assert any(reason in p for p in problems), problems


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_state_store_name_the_task_sets_is_used_everywhere(spec, cloud):
    explicit = dataclasses.replace(spec.option("cloud"), provider=cloud, state_bucket="acme-shop-state")
    files = render_iac(dataclasses.replace(spec, options={**spec.options, "cloud": explicit}))
    name = "acmeshopstate" if cloud == "azure" else "acme-shop-state"
    assert f'default     = "{name}"' in files["terraform/bootstrap/variables.tf"]
    assert f'"{name}"' in files[STAGING]
    assert RULES["state_name"][1](inventory(files)) == []
