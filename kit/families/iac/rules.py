"""kit's own Terraform rules, on the parsed inventory: each returns the problems it found."""
from __future__ import annotations

import re
from collections.abc import Callable

from kit.families.iac.terraform import Inventory

EXACT = re.compile(r"^\d+\.\d+\.\d+$")
BOUNDED = re.compile(r">=\s*\d+(\.\d+)*\s*,\s*<\s*\d+(\.\d+)*")
SECRET_KEYS = re.compile(r"^(access_key|secret_key|password|client_secret|token|private_key|"
                         r"admin_password|credentials|sas_token|access_token)$")
LOCKING = {"s3": lambda b: b.get("use_lockfile") is True or bool(b.get("dynamodb_table")),
           "gcs": lambda b: True, "azurerm": lambda b: True}   # gcs and azurerm lock natively


def pinned(inv: Inventory) -> list[str]:
    """Roots pin providers exactly, shared modules bound them; registry modules pin a release;
    every folder sets required_version."""
    problems = []
    roots = set(inv.roots())
    for p in inv.providers:
        ok = EXACT.match(p["version"]) if p["folder"] in roots else BOUNDED.search(p["version"])
        if not ok:
            want = "an exact version" if p["folder"] in roots else "a '>= x, < y' range"
            problems.append(f"{p['folder']}: provider {p['name']} version {p['version']!r} is not {want}")
    for b in inv.blocks:
        if b["kind"] == "module" and not b["source"].startswith("terraform/") and not EXACT.match(b["version"]):
            problems.append(f"{b['folder']}: module {b['name']} ({b['source']}) is not pinned to a release")
    for folder in inv.folders():
        if not inv.settings.get(folder, {}).get("required_version"):
            problems.append(f"{folder}: no required_version")
    return problems


def variables(inv: Inventory) -> list[str]:
    """Every variable has a type and a description; shared-module inputs without a default validate."""
    problems = []
    for v in inv.variables:
        where = f"{v['folder']}: variable {v['name']}"
        if not v["type"]:
            problems.append(f"{where} has no type")
        if not v["description"]:
            problems.append(f"{where} has no description")
        if "/modules/" in v["folder"] + "/" and v["default"] is None and not v["validation"] and v["type"] != "bool":
            problems.append(f"{where} is required but has no validation")
    return problems


def backend(inv: Inventory) -> list[str]:
    """Every environment keeps its state in a remote backend that locks."""
    problems = []
    for folder in inv.roots():
        if folder.endswith("/bootstrap"):
            continue                    # creates the backend's storage: local state by design
        conf = inv.settings.get(folder, {}).get("backend")
        if not conf:
            problems.append(f"{folder}: no remote backend")
        elif conf["type"] not in LOCKING or not LOCKING[conf["type"]](conf):
            problems.append(f"{folder}: backend {conf['type']} does not lock the state")
    return problems


def no_secrets(inv: Inventory) -> list[str]:
    """No credential attribute with a literal value, no secret-like variable with a default."""
    problems = []
    for b in inv.blocks:
        for key, value in b["body"].items():
            if SECRET_KEYS.match(key) and isinstance(value, str) and value.startswith('"'):
                problems.append(f"{b['folder']}: {b['type']}.{b['name']}.{key} is a literal credential")
    for v in inv.variables:
        if SECRET_KEYS.match(v["name"]) and v["default"] not in (None, ""):
            problems.append(f"{v['folder']}: variable {v['name']} has a default value")
    return problems


def outputs(inv: Inventory) -> list[str]:
    """Every output is described, and every root and module has some."""
    problems = [f"{o['folder']}: output {o['name']} has no description" for o in inv.outputs if not o["description"]]
    with_outputs = {o["folder"] for o in inv.outputs}
    problems += [f"{f}: no outputs" for f in inv.folders() if f not in with_outputs]
    return problems


RULES: dict[str, tuple[str, Callable[[Inventory], list[str]]]] = {
    "pinned": ("providers and modules pinned, required_version set", pinned),
    "variables": ("variables typed and described; required module inputs validated", variables),
    "backend": ("each environment's state in a remote backend with locking", backend),
    "secrets": ("no credentials in the code: they come from the environment", no_secrets),
    "outputs": ("outputs described, in every root and module", outputs),
}
