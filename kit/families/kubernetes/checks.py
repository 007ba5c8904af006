"""Kubernetes checks: kustomize builds every overlay, kubernetes-validate --strict against the
task's version and the two before, checkov's Kubernetes policies, and cross-file consistency."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import yaml

from kit.core.checkov import run_checkov
from kit.core.context import VerifyContext
from kit.core.k8s import OVERLAYS, build_overlay
from kit.evidence import Evidence
from kit.families.kubernetes.render import backup_in_cluster
from kit.families.kubernetes.rulebook import RULES, Rule
from kit.families.kubernetes.rules import consistency_problems
from kit.model import Spec


def static_checks(spec: Spec, ctx: VerifyContext) -> list[Evidence]:
    k = spec.option("kubernetes")
    records, built = [], {}
    for env in OVERLAYS:
        record, objects = build_overlay(ctx.deliverables, env)
        records.append(record)
        if record.passed:
            built[env] = objects
    ctx.facts["k8s_objects"] = built
    if not built:
        return records
    # the backup family's component adds cert-manager's Issuer and Certificate (pgBackRest's TLS)
    crd_kinds = k.crd_kinds + (("Issuer", "Certificate") if backup_in_cluster(spec) else ())
    records += [validate(built, ver, crd_kinds) for ver in k.versions]
    with tempfile.TemporaryDirectory(prefix="kit-k8s-") as tmp:
        for env, objects in built.items():
            (Path(tmp) / f"{env}.yaml").write_text(yaml.safe_dump_all(objects, sort_keys=False))
        records.append(run_checkov("kubernetes.checkov", "k8s/", "checkov finds no failing Kubernetes policy "
                                   "in any overlay", Path(tmp), "kubernetes"))
    records.append(consistency(spec, ctx, built))
    records += [rule_evidence(rule, spec, built) for rule in RULES]
    return records


# CRD kinds whose published schema kit ships: validated against it instead of being skipped
CRD_SCHEMAS = ("ScaledObject",)


def crd_schema_problems(obj: dict) -> list[str]:
    from jsonschema import Draft202012Validator

    from kit.families.scaling.autoscalers import scaledobject_schema
    errors = Draft202012Validator(scaledobject_schema()).iter_errors(obj)
    return [f"{e.message[:160]} at {'.'.join(map(str, e.path)) or '(root)'} (KEDA's CRD schema)"
            for e in sorted(errors, key=lambda e: list(e.path))]


def validate(built: dict[str, list[dict]], version: str, crd_kinds: tuple[str, ...]) -> Evidence:
    """Every object of every overlay against the API schemas of one Kubernetes version, strict
    (unknown fields fail). A kind with no schema fails unless kit ships its CRD's schema (KEDA's
    ScaledObject, validated against it, unknown fields failing too) or it is a CRD kind the task declared."""
    import kubernetes_validate as kv
    from kubernetes_validate.utils import SchemaNotFoundError, ValidationError
    start, problems, crds, crds_validated, count = time.monotonic(), [], set(), set(), 0
    for env, objects in built.items():
        for obj in objects:
            count += 1
            where = f"{env}: {obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
            try:
                kv.validate(obj, f"{version}.0", strict=True)
            except SchemaNotFoundError:
                if obj.get("kind") in CRD_SCHEMAS:
                    problems += [f"{where}: {p}" for p in crd_schema_problems(obj)]
                    crds_validated.add(f"{obj['kind']} ({obj.get('apiVersion')})")
                elif obj.get("kind") in crd_kinds:
                    crds.add(f"{obj['kind']} ({obj.get('apiVersion')})")
                else:
                    problems.append(f"{where}: no schema for {obj.get('apiVersion')} {obj.get('kind')}")
            except ValidationError as exc:
                problems.append(f"{where}: {exc.message} at {'.'.join(map(str, exc.path)) or '(root)'}")
    return Evidence(f"kubernetes.validate.{version}", "k8s/",
                    f"every object of every overlay validates against Kubernetes {version} (--strict)",
                    "failed" if problems else "passed", tool=f"kubernetes-validate {kv.__version__}",
                    command=f"kubernetes_validate.validate(obj, '{version}.0', strict=True)",
                    duration_s=round(time.monotonic() - start, 3),
                    reason=f"{len(problems)} object(s) invalid" if problems else "",
                    figures={"objects": count, "invalid": len(problems),
                             "crd_kinds_not_validated": sorted(crds),
                             "crd_kinds_validated_against_their_crd": sorted(crds_validated)},
                    log="\n".join(problems[:40]))


def consistency(spec: Spec, ctx: VerifyContext, built: dict[str, list[dict]]) -> Evidence:
    problems = []
    for env, objects in built.items():
        problems += [f"{env}: {p}" for p in consistency_problems(spec, objects, ctx.files["Dockerfile"],
                                                                        ctx.files.get("docker/kit-init/main.go", ""))]
    return Evidence("kubernetes.consistency", "k8s/",
                    "selectors match the pod labels; ports, probe path and Ingress backends agree "
                    "with the Service and the Dockerfile; every pod meets the restricted standard",
                    "failed" if problems else "passed", tool="kit", reason="; ".join(problems[:5]),
                    figures={"overlays": len(built), "problems": len(problems)}, log="\n".join(problems[:40]))


def rule_evidence(rule: Rule, spec: Spec, built: dict[str, list[dict]]) -> Evidence:
    """One rule another system enforces, over every built overlay: its own record, which fails."""
    start = time.monotonic()
    problems = [f"{env}: {p}" for env, objects in built.items() for p in rule.check(spec, objects)]
    return Evidence(f"kubernetes.rule.{rule.id}", "k8s/", rule.title, "failed" if problems else "passed",
                    tool="kit", command=f"{rule.check.__module__}.{rule.check.__name__}",
                    duration_s=round(time.monotonic() - start, 3), reason="; ".join(problems[:3]),
                    figures={"overlays": len(built), "problems": len(problems), "source": rule.source},
                    log="\n".join(problems[:40]))
