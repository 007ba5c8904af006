"""iac.rule.node_autoscaling: a node pool with room to grow has something that grows it. Passes on
every cloud as generated; fails when the EKS pieces (the cluster-autoscaler release, the discovery
tags, its IRSA role and tag-scoped policy) or GKE's / AKS's autoscaling are taken away."""
from __future__ import annotations

import pytest

from kit.errors import TaskError
from kit.families.iac import addons, autoscaling, checks
from kit.families.iac.render import render_iac
from kit.families.iac.rules import RULES
from kit.families.iac.terraform import inventory
from tests.unit.test_iac import on_cloud

PLATFORM = "terraform/modules/platform/main.tf"
ADDONS = "terraform/modules/platform/addons.tf"
rule = RULES["node_autoscaling"][1]


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    from kit.spec import load_spec
    from tests.conftest import copy_example
    return load_spec(copy_example(tmp_path_factory.mktemp("iac-as") / "shop-api"))


def _without_block(text: str, header: str) -> str:
    """The text with the top-level block starting at `header` removed (up to its closing brace)."""
    start = text.index(header)
    end = text.index("\n}\n", start) + 3
    return text[:start] + text[end:]


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_generated_terraform_passes_on_every_cloud(spec, cloud):
    files = render_iac(on_cloud(spec, cloud))
    assert rule(inventory(files)) == []
    record = {r.check: r for r in checks.rule_records(inventory(files))}["iac.rule.node_autoscaling"]
    assert record.status == "passed" and record.figures["problems"] == 0
    assert "kubernetes/autoscaler" in record.figures["source"] and "learn.microsoft.com" in record.figures["source"]


def test_aws_release_matches_the_kubernetes_minor_and_discovers_this_cluster(spec):
    files = render_iac(spec)
    version = spec.option("cloud").kubernetes_version
    pinned = addons.CLUSTER_AUTOSCALER_CHARTS[version]
    assert pinned["app_version"].rsplit(".", 1)[0] == version          # the app's minor is the cluster's
    assert f'version    = "{pinned["version"]}"' in files[ADDONS]
    assert 'name  = "autoDiscovery.clusterName"\n    value = module.eks.cluster_name' in files[ADDONS]
    main = files[PLATFORM]
    assert '"k8s.io/cluster-autoscaler/${local.cluster_name}" = "owned"' in main
    assert '"aws:ResourceTag/k8s.io/cluster-autoscaler/${local.cluster_name}" = "owned"' in main
    assert '["kube-system:cluster-autoscaler"]' in main
    for chart in addons.CLUSTER_AUTOSCALER_CHARTS.values():
        assert chart["version"].count(".") == 2 and chart["app_version"].count(".") == 2


def test_gcp_and_azure_install_no_cluster_autoscaler(spec):
    for cloud in ("gcp", "azure"):
        files = render_iac(on_cloud(spec, cloud))
        assert "cluster-autoscaler" not in files[ADDONS]
        assert "scales itself" in files["terraform/README.md"]
    assert "Karpenter" in render_iac(spec)["terraform/README.md"]


BROKEN_AWS = [
    ("release removed", ADDONS, lambda t: _without_block(t, 'resource "helm_release" "cluster_autoscaler"'),
     "no cluster-autoscaler helm_release"),
    ("discovery tags removed", PLATFORM,
     lambda t: t.replace('        "k8s.io/cluster-autoscaler/enabled"               = "true"\n', ""),
     "lacks the auto-discovery tags"),
    ("cluster tag removed", PLATFORM,
     lambda t: t.replace('        "k8s.io/cluster-autoscaler/${local.cluster_name}" = "owned"\n      }', "      }", 1),
     "lacks the auto-discovery tags"),
    ("discovery names no cluster", ADDONS,
     lambda t: t.replace("value = module.eks.cluster_name", 'value = "other"'), "autoDiscovery.clusterName"),
    ("no IRSA annotation", ADDONS,
     lambda t: t.replace("eks\\\\.amazonaws\\\\.com/role-arn", "team"), "has no IRSA role"),
    ("role trusts another account", PLATFORM,
     lambda t: t.replace('["kube-system:cluster-autoscaler"]', '["kube-system:other"]'),
     "does not trust the service account"),
    ("no scaling permission", PLATFORM,
     lambda t: t.replace('"autoscaling:SetDesiredCapacity", ', ""), "may not call"),
    ("scaling not tag-scoped", PLATFORM,
     lambda t: t.replace("Condition = {", "Unused = {", 1), "not restricted by the node groups' tag"),
]


@pytest.mark.parametrize("why,path,breaks,reason", BROKEN_AWS, ids=[b[0] for b in BROKEN_AWS])
def test_aws_broken_on_purpose_fails(spec, why, path, breaks, reason):
    files = render_iac(spec)
    broken = breaks(files[path])
    assert broken != files[path], why
    problems = rule(inventory({**files, path: broken}))
    assert any(reason in p for p in problems), problems


def test_aws_fixed_size_group_needs_no_autoscaler(spec):
    files = render_iac(spec)
    broken = _without_block(files[ADDONS], 'resource "helm_release" "cluster_autoscaler"')
    fixed = files[PLATFORM].replace("max_size       = max(var.node_min_size, var.node_max_size)",
                                    "max_size       = var.node_min_size")
    assert fixed != files[PLATFORM]
    assert rule(inventory({**files, ADDONS: broken, PLATFORM: fixed})) == []


def test_gcp_autoscaling_off_fails(spec):
    files = render_iac(on_cloud(spec, "gcp"))
    broken = files[PLATFORM].replace('    auto_upgrade = true\n', '    auto_upgrade = true\n    autoscaling  = false\n')
    assert broken != files[PLATFORM]
    assert any("autoscaling = false" in p for p in rule(inventory({**files, PLATFORM: broken})))


def test_gcp_node_pool_resource_without_autoscaling_fails():
    text = ('resource "google_container_node_pool" "extra" {\n  name       = "extra"\n  cluster    = "c"\n'
            '  node_count = 3\n}\n')
    assert any("no autoscaling block" in p for p in autoscaling.node_autoscaling(inventory({"terraform/x/main.tf": text})))
    fixed = text.replace("  node_count = 3\n", "  autoscaling {\n    min_node_count = 1\n    max_node_count = 3\n  }\n")
    assert autoscaling.node_autoscaling(inventory({"terraform/x/main.tf": fixed})) == []


def test_azure_autoscaling_off_fails(spec):
    files = render_iac(on_cloud(spec, "azure"))
    broken = files[PLATFORM].replace("enable_auto_scaling = true", "enable_auto_scaling = false")
    assert broken != files[PLATFORM]
    assert any("enable_auto_scaling is not true" in p for p in rule(inventory({**files, PLATFORM: broken})))


def test_bounds():
    assert autoscaling.may_grow("${var.node_min_size}", "${max(var.node_min_size, var.node_max_size)}")
    assert autoscaling.may_grow(2, 5) and not autoscaling.may_grow(3, 3) and not autoscaling.may_grow("${var.a}", "${var.a}")


def test_task_with_a_kubernetes_minor_kit_pins_no_autoscaler_for_is_an_error(tmp_path):
    from kit.spec import load_spec
    from tests.conftest import copy_example
    root = copy_example(tmp_path / "shop-api")
    task = root / ".claude" / "task.md"
    text = task.read_text()
    assert text.count('version: "1.33"') == 1                  # kubernetes.version; cloud follows it
    task.write_text(text.replace('version: "1.33"', 'version: "1.29"'))
    with pytest.raises(TaskError, match="cluster-autoscaler"):
        load_spec(root)


def test_record_fails_with_the_problem(spec, tmp_path):
    files = render_iac(spec)
    files[ADDONS] = _without_block(files[ADDONS], 'resource "helm_release" "cluster_autoscaler"')
    record = {r.check: r for r in checks.rule_records(inventory(files))}["iac.rule.node_autoscaling"]
    assert record.status == "failed" and record.figures["problems"] == 1
    assert "no cluster-autoscaler helm_release" in record.reason


def test_aws_release_refuses_another_kubernetes_minor_at_plan_time(spec):
    text = render_iac(spec)[ADDONS]
    version = spec.option("cloud").kubernetes_version
    assert f'condition     = var.kubernetes_version == "{version}"' in text


def test_default_terraform_for_an_unpinned_minor_says_it_does_not_scale(tmp_path):
    """No cloud section: the Terraform is kit's default (EKS). For a Kubernetes minor kit pins no
    autoscaler for, nothing is installed, the README says so and the rule fails: never a release
    whose minor differs from the cluster's."""
    import re

    from kit.spec import load_spec
    from tests.conftest import copy_example
    root = copy_example(tmp_path / "shop-api")
    task = root / ".claude" / "task.md"
    text = re.sub(r"(?ms)^cloud:\n(  .*?\n)+", "", task.read_text().replace('version: "1.33"', 'version: "1.31"'))
    assert "\ncloud:" not in text
    task.write_text(text)
    files = render_iac(load_spec(root))
    assert "cluster-autoscaler" not in files[ADDONS].split("# - NOT the Cluster Autoscaler")[1].split("resource")[1:][0]
    assert "NOTHING scales it" in files["terraform/README.md"]
    assert any("no cluster-autoscaler helm_release" in p for p in rule(inventory(files)))
