"""`.claude/work.md` in the seven sections, in order, built only from the Spec and the evidence."""
from __future__ import annotations

import os
from pathlib import Path

from kit.evidence import Evidence, short_figures, summarize
from kit.families import families
from kit.families.cicd.layout import at_repository_root, source_dir
from kit.model import Spec
from kit.report.acceptance import Item, standard_items, task_items
from kit.report.proof import family_proofs, proof_line

SECTIONS = ("Summary & Intent", "Deliverables", "Implementation Details", "Usage Examples", "Testing",
            "Integration Notes", "Acceptance Checklist")
FENCE = {"Dockerfile": "dockerfile", ".yaml": "yaml", ".yml": "yaml", ".json": "json", ".sh": "sh", ".example": "sh",
         ".dockerignore": "text"}
MARK = {"passed": "[x]", "failed": "[ ]", "unproven": "[ ]", "review": "[ ]"}


def _fence(name: str) -> str:
    return next((lang for suffix, lang in FENCE.items() if name.endswith(suffix)), "text")


def _rel(spec: Spec, path: Path) -> str:
    try:
        return str(Path(path).relative_to(spec.project))
    except ValueError:
        return str(path)


def render_work_md(spec: Spec, files: dict[str, str], records: list[Evidence], context: dict[str, str]) -> str:
    counts = summarize(records)
    out = [f"# Work: {spec.title}", ""]
    out += _summary(spec, counts, records)
    out += _deliverables(spec, files)
    out += _implementation(spec, files)
    out += _usage(spec, files)
    out += _testing(records)
    out += _integration(spec, context)
    out += _checklist(spec, records)
    return "\n".join(out).rstrip() + "\n"


def _summary(spec: Spec, counts: dict[str, int], records: list[Evidence]) -> list[str]:
    deps = ", ".join(f"{d.kind} ({d.name})" for d in spec.dependencies) or "no dependencies"
    return ["## Summary & Intent", "",
            f"Containerize **{spec.name}** ({spec.framework}, served by `{spec.command[0]}`) with {deps}, "
            "generate its infrastructure deliverables, and prove each one as far as this machine can.",
            "",
            f"Evidence: **{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped** "
            f"(see Testing). Output folder: `{_rel(spec, spec.output)}`.", "",
            "How each family was proven (real run; stand-in run, naming the stand-in; emulated, saying what "
            "the emulation leaves out; or static checks only):", "",
            *[proof_line(p) for p in family_proofs(records)], ""]


def _deliverables(spec: Spec, files: dict[str, str]) -> list[str]:
    out = ["## Deliverables", "", "| file | family |", "|---|---|"]
    owners = {}
    for family in families().values():
        for rel in family.render(spec):
            owners[rel] = family.title
    out += [f"| `{_rel(spec, spec.output / rel)}` | {owners.get(rel, '')} |" for rel in sorted(files)]
    out += [f"| `{_rel(spec, spec.output / 'evidence.json')}` | every check's record |",
            f"| `{_rel(spec, spec.output / 'site')}/` | the published site |", ""]
    return out


def _implementation(spec: Spec, files: dict[str, str]) -> list[str]:
    health = (f"`{spec.health_path}` over HTTP" if spec.health_path else f"a TCP connect ({spec.health_fallback})")
    if spec.stack == "node":
        return _node_implementation(spec, files, health)
    if spec.stack == "go":
        return _go_implementation(spec, files, health)
    return _python_implementation(spec, files, health)


def _go_implementation(spec: Spec, files: dict[str, str], health: str) -> list[str]:
    facts = spec.facts
    out = ["## Implementation Details", "",
           f"- Builder `{spec.base_image}` through `ARG GO_IMAGE` (go.mod's go directive {facts.go or '(none)'}"
           + (f", toolchain {facts.toolchain}" if facts.toolchain else "") + "); modules through `ARG GOPROXY` "
           + ("(vendored: `-mod=vendor`, nothing downloaded)" if facts.vendored else "(a mirror can be set)")
           + f"; `CGO_ENABLED=0 go build -trimpath -ldflags \"-s -w\"` of `{spec.app}`.",
           "- Final image `gcr.io/distroless/static-debian12:nonroot` through `ARG RUNTIME_IMAGE`: no shell, no "
           f"package manager; runs as UID/GID {spec.uid}:{spec.uid}.",
           f"- `docker/kit-init/main.go`, built static in the builder: the HEALTHCHECK (`kit-init health`: {health}) "
           "and the entrypoint (`kit-init exec`: exports mounted secrets, then execs the server, which is PID 1 "
           "and receives SIGTERM)"
           + ("." if facts.handles_sigterm else "; **the server handles no SIGTERM**: as PID 1 it ignores it, so "
              "`docker stop` waits for SIGKILL; use signal.NotifyContext and http.Server.Shutdown."),
           f"- Metrics: `{spec.metrics_path or 'none'}` on port {spec.metrics_port}"
           + (f" ({facts.metrics_library})." if facts.metrics_library else "."), ""]
    return out + _family_notes(spec, files)


def _node_implementation(spec: Spec, files: dict[str, str], health: str) -> list[str]:
    facts = spec.facts
    install = (f"exactly from `{spec.lock_file}` ({facts.lock_kind})" if spec.lock_file else
               "**without a lockfile** (package.json's ranges resolved at build time: commit a lockfile)")
    out = ["## Implementation Details", "",
           f"- Base image `{spec.base_image}` through `ARG NODE_IMAGE`; packages through `ARG NPM_CONFIG_REGISTRY` "
           f"(a mirror can be set), installed {install} with a BuildKit npm cache; only production dependencies "
           "reach the final stage.",
           f"- Runs as UID/GID {spec.uid}:{spec.uid}; exec-form `{' '.join(spec.command)}`, "
           "PID 1 receives SIGTERM (the entrypoint `exec`s node)"
           + ("." if facts.handles_sigterm else ": **the app installs no SIGTERM handler**, so node as PID 1 "
              "ignores it and `docker stop` waits for SIGKILL; add `process.on('SIGTERM', ...)` closing the "
              "server, or run the container with `--init`."),
           *([f"- Entry: {facts.entry_note}."] if facts.entry_note else []),
           *([f"- Native modules ({', '.join(facts.native_modules)}): python3, make and g++ are installed in "
              "the build stage only."] if facts.native_modules else []),
           f"- Health: {health}, probed by Node's own http module (no curl in the image).",
           f"- Metrics: `{spec.metrics_path or 'none'}` on port {spec.metrics_port}"
           + (f" ({facts.metrics_library})." if facts.metrics_library else "."),
           "- Secrets are mounted as files (`/run/secrets/NAME`, readable by the app's UID) and exported as "
           "`NAME` by the entrypoint; no real value is in any file kit writes (`.env.example` holds the "
           "placeholder `change-me`).", ""]
    return out + _family_notes(spec, files)


def _python_implementation(spec: Spec, files: dict[str, str], health: str) -> list[str]:
    out = ["## Implementation Details", "",
           f"- Base image `{spec.base_image}` through `ARG PYTHON_IMAGE`; packages through `ARG PIP_INDEX_URL` "
           "(a mirror can be set); a multi-stage build installs into `/opt/venv` with a BuildKit pip cache.",
           f"- Runs as UID/GID {spec.uid}:{spec.uid}; exec-form `{' '.join(spec.command)}`, "
           "PID 1 receives SIGTERM (the entrypoint `exec`s the server).",
           f"- Health: {health}, probed by Python's own urllib (no curl in the image).",
           *(["- One worker process by default: prometheus_client keeps metrics per process, so with several "
              "workers each scrape would see one worker's counters. Scale with replicas, or set "
              "`service.workers` together with prometheus_client's multiprocess mode."]
             if spec.facts.uses_prometheus and "workers" not in spec.task.data["service"] else []),
           *([f"- `{spec.lock_file}` is installed exactly (`uv export --frozen`, hash-checked)."]
             if spec.lock_file == "uv.lock" and spec.requirements_file == "pyproject.toml" else []),
           *([f"- **`{spec.lock_file}` is not honoured yet**: the image installs from the ranges in "
              "`pyproject.toml`. Export it to requirements.txt (poetry export) to pin the image."]
             if spec.lock_file == "poetry.lock" else []),
           f"- Metrics: `{spec.metrics_path or 'none'}` on port {spec.metrics_port}.",
           "- Secrets are mounted as files (`/run/secrets/NAME`, readable by the app's UID) and exported as "
           "`NAME` by the entrypoint; no real value is in any file kit writes (`.env.example` holds the "
           "placeholder `change-me`).", ""]
    return out + _family_notes(spec, files)


def _family_notes(spec: Spec, files: dict[str, str]) -> list[str]:
    out: list[str] = []
    for family in families().values():
        if family.work_notes is not None:
            out += [f"### {family.title}", "", *family.work_notes(spec), ""]
    pages = sorted(rel for rel in files if rel.endswith(".md"))   # runbooks: site pages, not inlined
    for rel in sorted(set(shown_files(spec, files)) - set(pages)):
        out += [f"### `{rel}`", "", f"```{_fence(rel)}", files[rel].rstrip(), "```", ""]
    if pages:
        out += ["Markdown deliverables, published as site pages rather than inlined here: "
                + ", ".join(f"`{rel}`" for rel in pages) + ".", ""]
    return out


def shown_files(spec: Spec, files: dict[str, str]) -> list[str]:
    """Files shown in full: every file of a family without highlights, else its highlights."""
    shown = []
    for family in families().values():
        own = family.render(spec)
        shown += [rel for rel in own if rel in files and (not family.highlights or rel in family.highlights)]
    return shown


def _usage(spec: Spec, files: dict[str, str]) -> list[str]:
    out_dir = _rel(spec, spec.output)
    src = source_dir(spec)
    root_files = sorted(p for p in files if at_repository_root(p))
    src_files = sorted(p for p in files if not at_repository_root(p))
    secret_lines = [f"openssl rand -base64 24 | tr -d '\\n' > secrets/{s}" for s in spec.secrets]
    copy = [f"(cd {out_dir} && cp --parents {' '.join(src_files)} {os.path.relpath(spec.source, spec.output)}/)"]
    if root_files:
        copy.append(f"(cd {out_dir} && cp --parents {' '.join(root_files)} {os.path.relpath(spec.project, spec.output)}/)")
    return ["## Usage Examples", "",
            f"The repository root is the project root (the folder holding `.claude/`). Copy the pipelines "
            "(`.github/`, `.gitlab-ci.yml`) to that root, where GitHub and GitLab read them, and every other "
            f"deliverable into the service's source folder `{src}/`, the Docker build context; the "
            f"pipelines build `{src}/Dockerfile` and deploy `{'' if src == '.' else src + '/'}k8s/overlays/`. "
            "From the project root:", "",
            "```sh", *copy,
            f"cd {_rel(spec, spec.source) or '.'}",
            "cp .env.example .env", "mkdir -p secrets", *secret_lines,
            f"DOCKER_BUILDKIT=1 docker build -t {spec.name}:dev .",
            "docker compose up -d --wait",
            f"curl -fsS http://127.0.0.1:{spec.port}{spec.health_path or '/'}",
            "docker compose down", "```", "",
            "Regenerate and re-prove with kit:", "", "```sh",
            f"kit run {_rel(spec, spec.project) or '.'}", f"kit verify {_rel(spec, spec.project) or '.'}   "
            "# exits non-zero when a check fails", "```", ""]


def _testing(records: list[Evidence]) -> list[str]:
    out = ["## Testing", "", "| check | status | proof | tool | figures |", "|---|---|---|---|---|"]
    for r in records:
        figures = short_figures(r)
        out.append(f"| `{r.check}` | {r.status} | {r.proof or '-'} | {r.tool} | {figures} |")
    out.append("")
    standins = {k: v for r in records for k, v in r.standins.items()}
    if standins:
        out += ["Stand-ins used in the sandbox (no registry is reachable here; the deliverables name the real "
                "images):", ""] + [f"- `{real}` -> `{local}`" for real, local in sorted(standins.items())] + [""]
    for r in records:
        if r.fallback:
            out += [f"- Fallback in `{r.check}`: {r.fallback}"]
    for r in records:
        if r.status != "passed":
            out += [f"### `{r.check}`: {r.status}", "", r.reason or "", ""]
            if r.log:
                out += ["```text", r.log, "```", ""]
    return out


def _integration(spec: Spec, context: dict[str, str]) -> list[str]:
    out = ["## Integration Notes", "",
           f"- The app listens on port {spec.port}; compose publishes it on 127.0.0.1 only (`APP_PORT`).",
           "- Environment: " + ", ".join(f"`{k}={v}`" for k, v in spec.all_env()) + "."]
    if spec.secrets:
        out.append("- Secrets (values never in any file kit writes): " + ", ".join(f"`{s}`" for s in spec.secrets)
                   + "; compose reads them from `secrets/NAME`.")
    for dep in spec.dependencies:
        out.append(f"- `{dep.name}`: {dep.kind} `{dep.image}`, data in volume `{dep.volume}`, "
                   "app settings " + ", ".join(f"`{k}`" for k, _ in dep.app_env) + ".")
    task_notes = spec.task.sections.get("Integration requirements", "")
    if task_notes:
        out += ["", "From the task's integration requirements:", "", task_notes]
    for label, text in context.items():
        quoted = [f"> **{row.lstrip('#').strip()}**" if row.startswith("#") else f"> {row}"
                  for row in text.splitlines()]     # a quoted heading must not become one of ours
        out += ["", f"Context carried from `{label}`:", "", *quoted]
    return out + [""]


def _checklist(spec: Spec, records: list[Evidence]) -> list[str]:
    out = ["## Acceptance Checklist", ""]
    for item in standard_items(records):
        out.append(_line(item))
    criteria = task_items(spec.task.acceptance, records)
    if criteria:
        out += ["", "From the task's acceptance criteria:", ""]
        out += [_line(item) for item in criteria]
    return out + [""]


def _line(item: Item) -> str:
    proof = f" (`{'`, `'.join(item.checks)}`)" if item.checks else ""
    level = {"real": "real run", "stand-in": "stand-in run", "emulated": "emulated", "static": "static check only"}
    proof += f" [{level[item.proof]}]" if item.proof else ""
    note = f" — {item.note}" if item.note else ""
    if item.state == "review":
        return f"- [ ] {item.text} — needs human review: no check can prove this"
    return f"- {MARK[item.state]} {item.text}{proof}{note}"
