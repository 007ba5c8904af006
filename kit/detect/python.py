"""Detect a Python web service: dependencies, framework, app object, routes, version."""
from __future__ import annotations

import ast
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from kit.detect.common import read_utf8, source_files
from kit.errors import DetectionError

SKIP_DIRS = {".git", ".venv", "venv", "env", "node_modules", "__pycache__", ".tox", "build", "dist",
             "site-packages", ".mypy_cache", ".pytest_cache", "tests", "test"}
HEALTH_CANDIDATES = ("/healthz", "/health", "/livez", "/readyz", "/ready", "/ping", "/status",
                     "/health/live", "/health/ready", "/api/health")
FRAMEWORK_BY_DEP = (("django", "django"), ("fastapi", "fastapi"), ("starlette", "asgi"),
                    ("flask", "flask"))
ROUTE_CALL = re.compile(r"""\.(?:route|get|api_route|add_url_rule|add_route)\(\s*['"](/[^'"]*)['"]""")
DJANGO_PATH = re.compile(r"""(?:re_)?path\(\s*r?['"]\^?([^'"$]*)\$?['"]""")


@dataclass(frozen=True)
class PythonFacts:
    """What the source shows. Empty values mean 'not shown'."""

    requirements_file: str = ""          # requirements.txt | pyproject.toml
    lock_file: str = ""                  # uv.lock | poetry.lock
    dependencies: tuple[str, ...] = ()   # normalized distribution names
    python: str = ""                     # "3.11" when the source pins it
    framework: str = ""                  # flask | fastapi | django | wsgi | asgi
    app: str = ""                        # module:attribute
    routes: tuple[str, ...] = ()
    uses_prometheus: bool = False
    syntax_errors: tuple[str, ...] = ()   # "path:line: message" for files Python cannot parse


def read_toml(path: Path) -> dict:
    """A TOML file of the service's source; one kit cannot read is an error naming the file and
    line, never silently read as empty (which would drop every dependency)."""
    text = read_utf8(path)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        at = re.search(r"line (\d+)", str(exc))
        line = int(at.group(1)) if at else (len(text.splitlines()) if "end of document" in str(exc) else None)
        raise DetectionError(f"is not valid TOML: {exc}", file=str(path), line=line,
                             hint="fix the TOML syntax: kit reads this file for the service's dependencies, "
                                  "its Python version and its build backend") from None


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def detect_python(source: Path, project: Path | None = None) -> PythonFacts:
    source = Path(source)
    req_file, deps = _dependencies(source)
    lock = next((n for n in ("uv.lock", "poetry.lock") if (source / n).is_file()), "")
    if req_file == "pyproject.toml" and lock:
        deps |= _locked_names(source / lock)   # e.g. a server pulled in by a locked dependency
    framework = next((fw for dep, fw in FRAMEWORK_BY_DEP if dep in deps), "")
    files = list(_python_files(source))
    errors: list[str] = []
    app = _find_app(source, files, framework, errors)
    if not framework and app:
        framework = "wsgi"
    routes = tuple(sorted(set(_routes(files))))
    return PythonFacts(requirements_file=req_file, lock_file=lock, dependencies=tuple(sorted(deps)),
                       python=_python_version(source, project), framework=framework, app=app, routes=routes,
                       uses_prometheus="prometheus-client" in deps or _mentions(files, "prometheus_client"),
                       syntax_errors=tuple(errors))


def _dependencies(source: Path) -> tuple[str, set[str]]:
    req = source / "requirements.txt"
    if req.is_file():
        names = set()
        for row in req.read_text(errors="replace").splitlines():
            row = row.split("#", 1)[0].strip()
            if not row or row.startswith("-"):
                continue
            match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)", row)
            if match:
                names.add(normalize(match.group(1)))
        return "requirements.txt", names
    pyproject = source / "pyproject.toml"
    if pyproject.is_file():
        data = read_toml(pyproject)
        specs = list(data.get("project", {}).get("dependencies", []))
        poetry = data.get("tool", {}).get("poetry", {}).get("dependencies", {})
        specs += [k for k in poetry if k.lower() != "python"]
        names = {normalize(re.match(r"^[A-Za-z0-9._-]+", s).group(0)) for s in specs
                 if re.match(r"^[A-Za-z0-9._-]+", s)}
        return "pyproject.toml", names
    return "", set()


def _locked_names(lock: Path) -> set[str]:
    data = read_toml(lock)
    return {normalize(p["name"]) for p in data.get("package", []) if isinstance(p, dict) and "name" in p}


SUPPORTED_MINORS = (9, 13)           # Python 3.9 .. 3.13


def _python_version(source: Path, project: Path | None) -> str:
    candidates = [source / n for n in (".python-version", "runtime.txt")]
    if project is not None and project != source:
        candidates.append(project / ".python-version")
    for path in candidates:
        if path.is_file():
            match = re.search(r"3\.(\d+)", path.read_text())
            if match:
                return f"3.{match.group(1)}"
    pyproject = source / "pyproject.toml"
    if pyproject.is_file():
        requires = read_toml(pyproject).get("project", {}).get("requires-python", "")
        upper = re.search(r"<\s*3\.(\d+)", requires)
        if upper:
            return f"3.{int(upper.group(1)) - 1}"
        exact = re.search(r"==\s*3\.(\d+)", requires)
        if exact:
            return f"3.{exact.group(1)}"
        # a floor only (">=3.12"): the floor itself, when it is a Python the base images have; an
        # older default image would make `pip install .` refuse the project
        lower = re.search(r">=\s*3\.(\d+)", requires)
        if lower and SUPPORTED_MINORS[0] <= int(lower.group(1)) <= SUPPORTED_MINORS[1]:
            return f"3.{lower.group(1)}"
    return ""


def _python_files(source: Path):
    yield from source_files(source, (".py",), SKIP_DIRS)


def _mentions(files: list[Path], word: str) -> bool:
    return any(word in p.read_text(errors="replace") for p in files)


def _find_app(source: Path, files: list[Path], framework: str, errors: list[str]) -> str:
    """Find `name = Flask(...)` / `FastAPI(...)` / Django's WSGI module."""
    if framework == "django":
        for path in files:
            if path.name == "wsgi.py" and "get_wsgi_application" in path.read_text(errors="replace"):
                return f"{_module(source, path)}:application"
        return ""
    constructors = {"Flask", "FastAPI", "Starlette", "Quart"}
    ranked = sorted(files, key=lambda p: (p.name not in ("app.py", "main.py", "wsgi.py", "asgi.py"),
                                          len(p.parts), str(p)))
    for path in ranked:
        try:
            tree = ast.parse(path.read_text(errors="replace"))
        except SyntaxError as exc:
            errors.append(f"{path}:{exc.lineno}: {exc.msg}")
            continue
        for node in tree.body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                func = node.value.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                if name in constructors and isinstance(node.targets[0], ast.Name):
                    return f"{_module(source, path)}:{node.targets[0].id}"
    return ""


def _module(source: Path, path: Path) -> str:
    return ".".join(path.relative_to(source).with_suffix("").parts)


def _routes(files: list[Path]):
    for path in files:
        text = path.read_text(errors="replace")
        yield from ROUTE_CALL.findall(text)
        if path.name == "urls.py":
            for found in DJANGO_PATH.findall(text):
                yield "/" + found.lstrip("^/")


def health_from_routes(routes: tuple[str, ...]) -> str:
    for candidate in HEALTH_CANDIDATES:
        if candidate in routes or candidate + "/" in routes:
            return candidate if candidate in routes else candidate + "/"
    return ""
