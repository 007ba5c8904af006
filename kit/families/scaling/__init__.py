"""Scaling family: a step load test run for real (Locust against the app container under its declared
limits, dependencies up through compose), the per-pod capacity within the latency objective, the
sizing derived from it and compared with the generated manifests, a VPA in recommendation mode, the
locustfile as a deliverable, the HPA replayed over a day at the measured capacity, and for the request-rate
mechanisms the prometheus-adapter rule or the KEDA ScaledObject, checked against the rules those systems
enforce (kit/families/scaling/autoscalers.py)."""
from __future__ import annotations

from kit.core.family import ChecklistItem, Criterion, Family, Option, Tool
from kit.core.tools import version_probe
from kit.families.scaling import checks, options
from kit.families.scaling.notes import integration
from kit.families.scaling.render import render_scaling, work_notes

FAMILY = Family(
    name="scaling", title="Scaling and capacity", notebook="75_scaling", template="scaling/default",
    render=render_scaling, option=Option("scaling", options.SCHEMA, options.parse),
    static_checks=(checks.static_checks,), sandbox_checks=(checks.sandbox_checks,),
    needs=("container", "compose"),
    checklist=(
        ChecklistItem("Performance considerations addressed: per-pod capacity measured under the declared "
                      "limits by a load generator that was not the bottleneck, and the replica bounds, requests "
                      "and node pool checked against it",
                      ("scaling.loadtest", "scaling.generator", "scaling.mix", "scaling.sizing")),
    ),
    criteria=(
        Criterion(r"performance|capacity|load test|throughput|latency under load|autoscal|scal(e|ing)",
                  ("scaling.loadtest", "scaling.generator", "scaling.sizing"), 70),
    ),
    tools=(
        Tool("locust", version_probe(["locust", "--version"]),
             "pip install 'locust==2.47.0' into kit's venv (or bash scripts/setup.sh)"),
        Tool("promtool", version_probe(["promtool", "--version"]),
             "apt-get install -y --no-install-recommends prometheus (or bash scripts/setup.sh)"),
    ),
    work_notes=work_notes,
    purposes=(
        ("loadtest/locustfile.py", "the step load test kit ran, to rerun against staging (Locust)"),
        ("loadtest/README.md", "how to rerun the load test and read its figures"),
        ("k8s/scaling/vpa.yaml", "VerticalPodAutoscaler in recommendation mode (updateMode Off)"),
        ("k8s/scaling/prometheus-adapter-rules.yaml", "prometheus-adapter rule serving the request rate per pod "
                                                      "the HPA scales on (mechanism hpa-rps)"),
        ("k8s/overlays/*/scaledobject.yaml", "KEDA ScaledObject with a Prometheus trigger, applied with its overlay "
                                             "(mechanism keda)"),
        ("k8s/scaling/*", "scaling objects"),
        ("loadtest/*", "the load test"),
    ),
    integration=integration,
)
