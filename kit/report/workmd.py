"""`.claude/work.md` in the seven sections, in order, built only from the Spec and the evidence."""
from __future__ import annotations

import os
import re
from fnmatch import fnmatch
from pathlib import Path

from kit.core.family import Family
from kit.evidence import Evidence, summarize
from kit.families import families
from kit.families.cicd.layout import at_repository_root, source_dir
from kit.model import Spec
from kit.report.acceptance import Item, standard_items, task_items
from kit.report.paths import scrub
from kit.report.proof import family_proofs, proof_line

SECTIONS = ("Summary & Intent", "Deliverables", "Implementation Details", "Usage Examples", "Testing",
            "Integration Notes", "Acceptance Checklist")
FENCE = {"Dockerfile": "dockerfile", ".tf": "hcl", ".yaml": "yaml", ".yml": "yaml", ".json": "json", ".sh": "sh", ".example": "sh",
         ".dockerignore": "text"}
MARK = {"passed": "[x]", "failed": "[ ]", "unproven": "[ ]", "review": "[ ]"}


def _fence(name: str) -> str:
    return next((lang for suffix, lang in FENCE.items() if name.endswith(suffix)), "text")


def _rel(spec: Spec, path: Path) -> str:
    try:
        return str(Path(path).relative_to(spec.project))
    except ValueError:
        return str(path)


EXCERPT_LINES = 8
WORK_DIR = Path(".claude")          # work.md's folder under the project: its links are relative to it


def render_work_md(spec: Spec, files: dict[str, str], records: list[Evidence], context: dict[str, str]) -> str:
    counts = summarize(records)
    out = [f"# Work: {spec.title}", ""]
    out += _summary(spec, counts, records)
    out += _deliverables(spec, files)
    out += _implementation(spec, files)
    out += _usage(spec, files)
    out += _testing(spec, records)
    out += _integration(spec, context)
    out += _checklist(spec, records)
    return scrub("\n".join(out).rstrip() + "\n", spec)


def destination(spec: Spec, rel: str) -> str:
    """Where a generated file goes, relative to the repository root (the project folder): the
    pipelines at the root, everything else in the service's source folder."""
    if at_repository_root(rel):
        return rel
    src = source_dir(spec)
    return rel if src == "." else f"{src}/{rel}"


def link(spec: Spec, rel: str) -> str:
    """The generated copy of a file, linked from .claude/work.md."""
    return os.path.relpath(spec.output / rel, spec.project / WORK_DIR)


def purpose(rel: str, owner_purposes: tuple[tuple[str, str], ...]) -> str:
    return next((text for pattern, text in owner_purposes if fnmatch(rel, pattern)), "")


def _owners(spec: Spec) -> dict[str, Family]:
    owners = {}
    for family in families().values():
        for rel in family.render(spec):
            owners[rel] = family
    return owners


def _summary(spec: Spec, counts: dict[str, int], records: list[Evidence]) -> list[str]:
    deps = ", ".join(f"{d.kind} ({d.name})" for d in spec.dependencies) or "no dependencies"
    built = ", ".join(p.title.lower() for p in family_proofs(records))
    return ["## Summary & Intent", "",
            f"Containerize **{spec.name}** ({spec.framework}, served by `{spec.command[0]}`) with {deps}, and "
            f"deliver its {built}. Each was checked as far as this machine can, and every claim below rests on "
            "an evidence record.", "",
            "Key decisions:", "", *_decisions(spec), "",
            f"Evidence: **{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped** "
            "(see Testing). How each family was proven (real run; stand-in run, naming the stand-in; emulated, "
            "saying what the emulation leaves out; or static checks only):", "",
            *[proof_line(p) for p in family_proofs(records)], ""]


def _decisions(spec: Spec) -> list[str]:
    health = (f"`{spec.health_path}` over HTTP" if spec.health_path else f"a TCP connect ({spec.health_fallback})")
    out = [f"- Base image `{spec.base_image}`, multi-stage, running as UID {spec.uid}: the final stage holds no "
           "build tools and no root process.",
           f"- Health is {health}, probed by the image's own interpreter: no curl in the image.",
           "- Secrets are files (`/run/secrets/NAME` in compose, an ExternalSecret in Kubernetes): no value is in "
           "any file kit writes."]
    if spec.stack == "python" and getattr(spec.facts, "uses_prometheus", False) and "workers" not in spec.task.data["service"]:
        out.append("- One worker process: prometheus_client keeps metrics per process, so several workers would "
                   "give each scrape one worker's counters. Scale with replicas.")
    if spec.lock_file == "uv.lock" and spec.requirements_file == "pyproject.toml":
        out.append(f"- `{spec.lock_file}` is installed exactly (`uv export --frozen`, hash-checked).")
    if spec.lock_file == "poetry.lock":
        out.append(f"- **`{spec.lock_file}` is not honoured yet**: the image installs from the ranges in "
                   "`pyproject.toml`. Export it to requirements.txt (poetry export) to pin the image.")
    if spec.task.inferred:
        deps = ", ".join(f"{d.kind} (`{d.name}`)" for d in spec.dependencies) or "none"
        out.append(f"- **task.md has no front matter**: kit inferred the service's name (`{spec.name}`), its source "
                   f"folder (`{spec.task.data['service']['source']}`) and its dependencies ({deps}) from the source; "
                   "every other value is detected as for any task. `kit init` prints this front matter to paste "
                   "and correct.")
    for path, given in sorted(spec.task.overridden.items()):
        out.append(f"- `{'.'.join(path)}` is `{given.value!r}` as set by {Path(given.file).name}"
                   f"{':' + str(given.line) if given.line else ''}, not by task.md (a batch override; task.md is "
                   "unchanged).")
    return out


def _deliverables(spec: Spec, files: dict[str, str]) -> list[str]:
    out = ["## Deliverables", "",
           f"Paths are where each file goes in the repository (its root is `{_rel(spec, spec.project) or '.'}`, "
           f"the folder holding `.claude/`); each links to the generated copy in `{_rel(spec, spec.output)}/`.", "",
           "| file | family | purpose |", "|---|---|---|"]
    owners = _owners(spec)
    groups: dict[tuple[str, str], list[str]] = {}
    for rel in sorted(files, key=lambda r: destination(spec, r)):
        family = owners.get(rel)
        pattern = next((g for g, _ in (family.purposes if family else ()) if fnmatch(rel, g)), rel)
        groups.setdefault((family.name if family else "", pattern), []).append(rel)
    for (name, _pattern), rels in groups.items():
        family = families().get(name)
        title, what = (family.title, purpose(rels[0], family.purposes)) if family else ("", "")
        if len(rels) == 1:
            cell = f"[`{destination(spec, rels[0])}`]({link(spec, rels[0])})"
        else:   # files sharing one purpose (per environment, per alert): one row, each file linked
            prefix = os.path.commonpath(rels) if len(rels) > 1 else ""
            prefix = prefix if prefix and prefix not in rels else os.path.dirname(rels[0])
            parts = " · ".join(f"[{os.path.relpath(r, prefix) if prefix else r}]({link(spec, r)})" for r in rels)
            cell = f"`{destination(spec, prefix) if prefix else '.'}/`: {parts}"
        out.append(f"| {cell} | {title} | {what} |")
    out += ["", f"Also written: [`{_rel(spec, spec.output / 'evidence.json')}`]({link(spec, 'evidence.json')}) "
            f"(every check's record) and the site [`{_rel(spec, spec.output / 'site')}/`]"
            f"({link(spec, 'site/index.html')}).", ""]
    return out


def excerpt(text: str, marker: str = "") -> list[str]:
    """Up to EXCERPT_LINES lines: from the first line matching ``marker``, else from the top."""
    lines = text.splitlines()
    start = 0
    if marker:
        rx = re.compile(marker)
        start = next((i for i, line in enumerate(lines) if rx.search(line)), 0)
    return lines[start:start + EXCERPT_LINES]


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
    from kit.families.container.render import node_tool
    tool = node_tool(spec)
    if tool:
        install += (f" by {tool['package']} {tool['version']} ({tool['origin']}), installed with npm in the "
                    "build stage only,")
    if facts.build_script:
        install += f" then built (`{facts.package_manager} run build`, devDependencies dropped after it),"
    out = ["## Implementation Details", "",
           f"- Base image `{spec.base_image}` through `ARG NODE_IMAGE`; packages through `ARG NPM_CONFIG_REGISTRY` "
           f"(a mirror can be set), installed {install} with a BuildKit cache; only production dependencies "
           "reach the final stage.",
           f"- Runs as UID/GID {spec.uid}:{spec.uid}; exec-form `{' '.join(spec.command)}`, "
           "PID 1 receives SIGTERM (the entrypoint `exec`s node)"
           + ("." if facts.handles_sigterm else ": **the app installs no SIGTERM handler**, which node as PID 1 "
              "would ignore (`docker stop` would wait for SIGKILL), so the image preloads kit's minimal init "
              "(`node --require /usr/local/lib/kit/sigterm.cjs`, from `docker/sigterm.cjs`): SIGTERM ends node "
              "as it does outside a container, cutting in-flight requests; add `process.on('SIGTERM', ...)` "
              "closing the server for a graceful drain, and kit stops preloading it."),
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
           f"- Exec-form `{' '.join(spec.command)}`: PID 1 receives SIGTERM (the entrypoint `exec`s the server).",
           f"- Metrics: `{spec.metrics_path or 'none'}` on port {spec.metrics_port}.", ""]
    return out + _family_notes(spec, files)


def _family_notes(spec: Spec, files: dict[str, str]) -> list[str]:
    out: list[str] = []
    for family in families().values():
        notes = family.work_notes(spec) if family.work_notes is not None else []
        shown = [h for h in family.highlights if h.partition("#")[0] in files]
        if not notes and not shown:
            continue
        out += [f"### {family.title}", "", *notes, ""]
        for item in shown:
            rel, _, marker = item.partition("#")
            out += [f"From [`{destination(spec, rel)}`]({link(spec, rel)}):", "",
                    f"```{_fence(rel)}", *excerpt(files[rel], marker), "```", ""]
    return out


def _usage(spec: Spec, files: dict[str, str]) -> list[str]:
    out_dir = _rel(spec, spec.output)
    src = source_dir(spec)
    root_items = sorted({rel.split("/")[0] for rel in files if at_repository_root(rel)})
    src_items = sorted({rel.split("/")[0] for rel in files if not at_repository_root(rel)})
    secret_lines = [f"openssl rand -base64 24 | tr -d '\\n' > secrets/{s}" for s in spec.secrets]
    copy = [f"(cd {out_dir} && cp -r {' '.join(src_items)} {os.path.relpath(spec.source, spec.output)}/)"]
    if root_items:
        copy.append(f"(cd {out_dir} && cp -r {' '.join(root_items)} {os.path.relpath(spec.project, spec.output)}/)")
    pipelines = ", ".join(f"`{t}{'/' if t == '.github' else ''}`" for t in root_items) or "(none)"
    readers = " and ".join(n for t, n in ((".github", "GitHub"), (".gitlab-ci.yml", "GitLab")) if t in root_items)
    return ["## Usage Examples", "",
            "The repository root is the project root (the folder holding `.claude/`). Copy the pipelines "
            f"({pipelines}) to that root, where {readers or 'the CI'} reads them, and every other "
            f"deliverable into the service's source folder `{src}/`, the Docker build context; the "
            f"pipelines build `{src}/Dockerfile` and deploy `{'' if src == '.' else src + '/'}k8s/overlays/`. "
            "From the project root (a test runs these commands in a scratch copy of the example):", "",
            "```sh", *copy,
            f"cd {_rel(spec, spec.source) or '.'}",
            "cp .env.example .env", "mkdir -p secrets", *secret_lines,
            f"DOCKER_BUILDKIT=1 docker build -t {spec.name}:dev .",
            "docker compose up -d --wait",
            f"curl -fsS http://127.0.0.1:${{APP_PORT:-{spec.port}}}{spec.health_path or '/'}",
            "docker compose down", "```", "",
            "Regenerate and re-prove with kit:", "", "```sh",
            f"kit run {_rel(spec, spec.project) or '.'}", f"kit verify {_rel(spec, spec.project) or '.'}   "
            "# exits non-zero when a check fails", "```", ""]


def _testing(spec: Spec, records: list[Evidence]) -> list[str]:
    out = ["## Testing", "", "| family | passed | failed | skipped | proven by |", "|---|---|---|---|---|"]
    for p in family_proofs(records):
        c = p.counts
        out.append(f"| {p.title} | {c['passed']} | {c['failed']} | {c['skipped']} | {p.sentence()} |")
    out += ["", f"Every record, with its command, tool and figures: the site's evidence page "
            f"([`{_rel(spec, spec.output / 'site')}/evidence.html`]({link(spec, 'site/evidence.html')})) and "
            f"`{_rel(spec, spec.output / 'evidence.json')}`.", ""]
    cached = [r for r in records if r.cached_from]
    if cached:
        runs = sorted({r.cached_from for r in cached})
        out += [f"**{len(cached)} of {len(records)} records were reused, not re-run**: nothing their checks read "
                f"changed since {'; '.join(runs)} (kit's cache; `kit run --fresh` re-proves them). Families: "
                + ", ".join(sorted({r.check.split('.')[0] for r in cached})) + ".", ""]
    for r in records:
        if r.fallback:
            out += [f"- Fallback in `{r.check}`: {r.fallback}"]
    warned = [(r.check, w) for r in records if r.status == "passed" for w in (r.figures.get("warnings") or [])]
    if warned:
        out += ["", "Passed with warnings (measured figures that disagree with the generated ones; kit keeps "
                "the task's numbers and says where they differ):", ""]
        out += [f"- `{check}`: {warning}" for check, warning in warned]
    for status in ("failed", "skipped"):
        rows = [r for r in records if r.status == status]
        if rows:
            out += ["", f"{status.capitalize()} checks:", ""]
            out += [f"- `{r.check}`: {r.reason or r.title}" for r in rows]
    for r in records:
        if r.status == "failed" and r.log:
            out += ["", f"`{r.check}` log (last lines):", "", "```text", *r.log.splitlines()[-20:], "```"]
    return out + [""]


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
    notes = [(f.title, f.integration(spec)) for f in families().values() if f.integration is not None]
    for heading, attr in (("Prerequisites", "prerequisites"), ("Risks", "risks"), ("Rollback", "rollback")):
        rows = [f"- {title}: {' '.join(getattr(n, attr))}" for title, n in notes if getattr(n, attr)]
        if rows:
            out += ["", f"### {heading}", "", *rows]
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
