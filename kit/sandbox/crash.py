"""Why an app died at start, from its log: the exception that killed it and the frame that raised
it, not the server's last line ("Worker failed to boot"). Python tracebacks, Node's uncaught errors
and Go panics; "" when the log shows none of them."""
from __future__ import annotations

import re
from dataclasses import dataclass

PY_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>\S+)')
PY_EXCEPTION = re.compile(r"^(?P<type>[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning|NotFound|"
                          r"Failure)|[A-Za-z_][\w.]*\.\w+Error): ?(?P<message>.*)$|^(?P<bare>[A-Z]\w*Error)$")
SITE = re.compile(r"/(?:site|dist)-packages/(?P<package>[A-Za-z0-9_.-]+?)(?:/|\.py)")
NODE_ERROR = re.compile(r"^(?:Uncaught )?(?P<type>[A-Z]\w*(?:Error|Exception)|Error)(?: \[[A-Z_]+\])?: (?P<message>.+)$")
NODE_FRAME = re.compile(r"^\s+at (?:.+? \()?(?P<file>/[^():]+):(?P<line>\d+):\d+\)?$")
GO_PANIC = re.compile(r"^(?:panic|fatal error): (?P<message>.+)$")
GO_FRAME = re.compile(r"^\t(?P<file>/\S+\.go):(?P<line>\d+)")


@dataclass(frozen=True)
class Cause:
    exception: str          # e.g. "ImportError: cannot import name 'x' from 'y'"
    where: str = ""         # file:line (function) of the frame that raised it
    package: str = ""       # the installed package the frame is in, when it is one

    def __str__(self) -> str:
        out = self.exception
        if self.where:
            out += f" (raised at {self.where})"
        return out


def root_cause(log: str) -> Cause | None:
    rows = (log or "").splitlines()
    return _python(rows) or _node(rows) or _go(rows)


# what a server raises when its worker died: the wrapper, never the cause (gunicorn's master prints
# its own HaltServer traceback after the worker's, and exits 1)
WRAPPERS = re.compile(r"^(gunicorn\.errors\.HaltServer|SystemExit|KeyboardInterrupt)\b")


def _python(rows: list[str]) -> Cause | None:
    starts = [i for i, r in enumerate(rows) if r.strip().startswith("Traceback (most recent call last):")]
    if not starts:      # an excerpt that lost the header still has the frames
        starts = [i - 1 for i, r in enumerate(rows) if PY_FRAME.match(r)][:1]
    found = [cause for start in reversed(starts) if (cause := _traceback(rows, start)) is not None]
    return next((c for c in found if not WRAPPERS.match(c.exception)), found[0] if found else None)


def _traceback(rows: list[str], start: int) -> Cause | None:
    frame = None
    for row in rows[start + 1:]:
        found = PY_FRAME.match(row)
        if found:
            frame = found
            continue
        if row.startswith((" ", "\t")) or not row.strip():
            continue
        text = re.sub(r"^\[[^\]]*\] \[\d+\] \[\w+\] ", "", row.strip())      # gunicorn's log prefix
        exc = PY_EXCEPTION.match(text)
        if exc:
            where, package = "", ""
            if frame:
                where = f"{frame['file']}:{frame['line']} in {frame['func']}"
                site = SITE.search(frame["file"])
                package = site["package"].split(".")[0] if site else ""
            # an installed package that no longer has the name the caller imports: that package drifted
            moved = re.match(r"ImportError: cannot import name '[^']+' from '([A-Za-z_]\w*)", text)
            if moved and (package or not frame):
                package = moved.group(1)
            return Cause(text[:300], where, package)
        if not text.startswith(("During handling", "The above exception")):
            return None
    return None


def _first_frame(rows: list[str], pattern: re.Pattern, skip: str) -> str:
    """file:line of the first frame matching `pattern` whose text does not contain `skip` (the
    runtime's own frames)."""
    for row in rows:
        frame = pattern.match(row)
        if frame and skip not in row:
            return f"{frame['file']}:{frame['line']}"
    return ""


def _node(rows: list[str]) -> Cause | None:
    for index, row in enumerate(rows):
        if not NODE_ERROR.match(row.strip()):
            continue
        where = _first_frame(rows[index + 1:index + 12], NODE_FRAME, "node:internal")
        if where or "Cannot find module" in row:
            site = re.search(r"/node_modules/(?P<package>(?:@[^/]+/)?[^/]+)/", where)
            return Cause(row.strip()[:300], where, site["package"] if site else "")
    return None


def _go(rows: list[str]) -> Cause | None:
    for index, row in enumerate(rows):
        if GO_PANIC.match(row.strip()):
            return Cause(row.strip()[:300], _first_frame(rows[index + 1:index + 20], GO_FRAME, "/runtime/"))
    return None


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def hint(name: str, version: str, pinned: set[str]) -> str:
    """When the frame that raised is inside an installed distribution the requirements do not name,
    name it, the version installed, and the constraint to add."""
    name = normalize(name)
    if not name or name in pinned:
        return ""
    if version:
        major = version.split(".")[0]
        return (f"the error comes from {name} {version}, which the requirements do not pin (a dependency of a "
                f"dependency, resolved to its newest release); hold it back without editing the app, e.g. "
                f"service.constraints: [\"{name}<{major}\"] in task.md, if an older release worked")
    return (f"the error comes from {name}, which the requirements do not pin; hold it at the release that worked "
            "with service.constraints in task.md")


def installed_python_distribution(image: str, module: str) -> tuple[str, str]:
    """The distribution that provides the top-level `module` inside the built image, and its version
    (no network; the container is removed at once); ("", "") if unknown."""
    from kit.sandbox.engine import LABEL, docker
    probe = ("import importlib.metadata as m, sys; d = m.packages_distributions().get(sys.argv[1], [sys.argv[1]])[0]; "
             "print(d, m.version(d))")
    proc = docker("run", "--rm", "--network", "none", "--label", f"{LABEL}=true", "--entrypoint", "python",
                  image, "-c", probe, module, check=False, timeout=60)
    parts = proc.stdout.split()
    return (parts[0], parts[1]) if proc.returncode == 0 and len(parts) == 2 else ("", "")
