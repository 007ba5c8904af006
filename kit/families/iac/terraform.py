"""What the generated Terraform declares, read back with python-hcl2: resources, module calls,
variables, outputs, providers and backends, per folder. Used by the checks and the notebook."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import hcl2

TF_ROOT = "terraform"


def unquote(value: Any) -> Any:
    """python-hcl2 keeps string quotes and wraps expressions in ${...}; give the plain text."""
    if isinstance(value, str):
        if len(value) >= 2 and value[0] == value[-1] == '"':
            return value[1:-1]
        if value.startswith("${") and value.endswith("}"):
            return value[2:-1]
    return value


def _label(mapping: dict) -> tuple[str, Any]:
    key = next(k for k in mapping if not k.startswith("__"))
    return unquote(key), mapping[key]


@dataclass
class Inventory:
    blocks: list[dict] = field(default_factory=list)       # resources, data sources and module calls
    variables: list[dict] = field(default_factory=list)
    outputs: list[dict] = field(default_factory=list)
    providers: list[dict] = field(default_factory=list)    # required_providers entries
    settings: dict[str, dict] = field(default_factory=lambda: defaultdict(dict))  # folder -> terraform {}
    locals: dict[str, dict] = field(default_factory=lambda: defaultdict(dict))    # folder -> name -> expression
    errors: dict[str, str] = field(default_factory=dict)   # file -> parse error
    files: int = 0

    def folders(self) -> list[str]:
        seen = {b["folder"] for b in self.blocks} | {v["folder"] for v in self.variables} | set(self.settings)
        return sorted(seen)

    def roots(self) -> list[str]:
        """Root modules (Terraform runs there): every folder outside modules/."""
        return [f for f in self.folders() if "/modules/" not in f + "/"]


def _settings(inv: Inventory, folder: str, block: dict) -> None:
    inv.settings[folder]["required_version"] = unquote(block.get("required_version", ""))
    for group in block.get("required_providers", []):
        for name, spec in group.items():
            if not name.startswith("__"):
                inv.providers.append({"folder": folder, "name": name, "source": unquote(spec.get("source", "")),
                                      "version": unquote(spec.get("version", ""))})
    for backend in block.get("backend", []):
        kind, body = _label(backend)
        inv.settings[folder]["backend"] = {"type": kind, **{k: unquote(v) for k, v in body.items()
                                                           if not k.startswith("__")}}


def _add(inv: Inventory, folder: str, path: str, data: dict) -> None:
    for block in data.get("terraform", []):
        _settings(inv, folder, block)
    for kind in ("resource", "data"):
        for entry in data.get(kind, []):
            rtype, named = _label(entry)
            name, body = _label(named)
            inv.blocks.append({"folder": folder, "file": path, "kind": kind, "type": rtype, "name": name,
                               "inputs": sorted(k for k in body if not k.startswith("__")), "body": body})
    for entry in data.get("module", []):
        name, body = _label(entry)
        source = unquote(body.get("source", ""))
        if source.startswith("."):
            source = _normalise(PurePosixPath(folder) / unquote(body["source"]))
        inv.blocks.append({"folder": folder, "file": path, "kind": "module", "type": "module", "name": name,
                           "source": source, "version": unquote(body.get("version", "")),
                           "inputs": sorted(k for k in body if not k.startswith("__") and k not in ("source", "version")),
                           "body": body})
    for entry in data.get("variable", []):
        name, body = _label(entry)
        inv.variables.append({"folder": folder, "name": name, "type": unquote(body.get("type", "")),
                              "description": unquote(body.get("description", "")),
                              "default": unquote(body.get("default")) if "default" in body else None,
                              "validation": bool(body.get("validation"))})
    for entry in data.get("locals", []):
        inv.locals[folder].update({k: unquote(v) for k, v in entry.items() if not k.startswith("__")})
    for entry in data.get("output", []):
        name, body = _label(entry)
        inv.outputs.append({"folder": folder, "name": name, "description": unquote(body.get("description", "")),
                            "value": unquote(body.get("value", ""))})


def _normalise(path: PurePosixPath) -> str:
    parts: list[str] = []
    for part in path.parts:
        if part == "..":
            parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


def inventory(files: dict[str, str]) -> Inventory:
    """Parse every .tf file under terraform/ (a file that does not parse is listed in errors)."""
    inv = Inventory()
    for path in sorted(p for p in files if p.startswith(TF_ROOT + "/") and p.endswith(".tf")):
        inv.files += 1
        try:
            data = hcl2.loads(files[path])
        except Exception as exc:
            inv.errors[path] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            continue
        _add(inv, str(PurePosixPath(path).parent), path, data)
    return inv
