"""The package layout holds: kit's modules import only downward through the layers below, with
no cycle, and ruff finds nothing."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

# lowest first; a module may import its own layer or a lower one, never a higher one
LAYERS = (
    ("kit.errors", "kit.yamlpos", "kit.fsutil", "kit.resources", "kit.config"),
    ("kit.evidence", "kit.render", "kit.detect", "kit.task", "kit.infer"),
    ("kit.model",),
    ("kit.sandbox", "kit.core", "kit.nbview"),
    ("kit.families.*",),                                   # the family packages
    ("kit.families", "kit.task_schema", "kit.spec"),       # the registry and what it assembles
    ("kit.pipeline", "kit.report", "kit.notebooks", "kit.diff", "kit.cache"),
    ("kit.publish", "kit.api", "kit.doctor", "kit.profile"),
    ("kit.run", "kit.batch"),
    ("kit.cli", "kit"),
)


def layer(module: str) -> int:
    if module.startswith("kit.families."):
        return 4
    for index, names in enumerate(LAYERS):
        if any(module == n or module.startswith(n + ".") for n in names if not n.endswith("*")):
            return index
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every kit module `path` imports at run time (inside functions too), not the names it
    imports only for type checking."""
    tree = ast.parse(path.read_text())
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("kit")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kit") and not node.level:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                known = (ROOT / Path(*candidate.split("."))).with_suffix(".py").is_file() or \
                    (ROOT / Path(*candidate.split(".")) / "__init__.py").is_file()
                found.add(candidate if known else node.module)
    return found


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports(p) for p in sorted((ROOT / "kit").rglob("*.py"))}


def test_no_upward_import():
    upward = [f"{mod} (layer {layer(mod)}) imports {dep} (layer {layer(dep)})"
              for mod, deps in graph().items() for dep in sorted(deps) if layer(dep) > layer(mod)]
    assert upward == []


def test_a_family_package_does_not_import_the_registry_or_the_orchestration():
    for mod, deps in graph().items():
        if mod.startswith("kit.families."):
            assert "kit.families" not in deps and "kit.pipeline" not in deps, mod


def test_no_import_cycle():
    edges = graph()
    seen: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        seen[node] = 1
        stack.append(node)
        for dep in sorted(edges.get(node, ())):
            if dep not in edges:
                continue
            assert seen.get(dep) != 1, "import cycle: " + " -> ".join(stack[stack.index(dep):] + [dep])
            if dep not in seen:
                visit(dep)
        stack.pop()
        seen[node] = 2
    for node in edges:
        if node not in seen:
            visit(node)


def test_the_checker_sees_a_planted_upward_import_and_cycle(tmp_path, monkeypatch):
    """Plant both faults in a scratch copy of two modules: the checks above must catch them."""
    import tests.unit.test_layout as layout
    fake = tmp_path / "kit"
    (fake / "families" / "toy").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "families" / "__init__.py").write_text("")
    (fake / "families" / "toy" / "__init__.py").write_text("from kit.pipeline import verify\n")
    (fake / "pipeline.py").write_text("from kit.families.toy import FAMILY\n")
    monkeypatch.setattr(layout, "ROOT", tmp_path)
    edges = layout.graph()
    assert "kit.pipeline" in edges["kit.families.toy"]
    upward = [(m, d) for m, deps in edges.items() for d in deps if layout.layer(d) > layout.layer(m)]
    assert upward == [("kit.families.toy", "kit.pipeline")]
    try:
        layout.test_no_import_cycle()
    except AssertionError as exc:
        assert "kit.families.toy -> kit.pipeline -> kit.families.toy" in str(exc)
    else:
        raise AssertionError("the planted cycle was not found")


def test_ruff_is_clean():
    ruff = Path(sys.executable).with_name("ruff")
    proc = subprocess.run([str(ruff), "check", "--no-cache", str(ROOT)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
