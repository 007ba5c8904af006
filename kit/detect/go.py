"""Detect a Go web service: go.mod (module, go directive, toolchain, requirements), vendoring,
the main package(s), the port, and health and metrics routes."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from kit.detect.common import source_files
from kit.errors import DetectionError

SKIP_DIRS = {".git", "vendor", "testdata", "node_modules", "kit-out"}
KIT_INIT = "docker/kit-init"            # kit's own static helper (health probe, secrets): not the service
ROUTE = re.compile(r"""\.(?:HandleFunc|Handle|GET|Get|Any|HEAD|Head)\(\s*"(?:GET\s+)?(/[^"]*)\"""")
PORT_PATTERNS = (
    (re.compile(r"""os\.Getenv\("PORT"\)[\s\S]{0,200}?"?:?(\d{2,5})\""""), "PORT env default"),
    (re.compile(r"""flag\.(?:String|Int)(?:Var)?\([^)]*?"(?:port|addr|listen|http)[^"]*"\s*,\s*"?:?(\d{2,5})"?"""),
     "flag default"),
    (re.compile(r"""ListenAndServe\(\s*"[^":]*:(\d{2,5})\""""), "ListenAndServe"),
    (re.compile(r"""\.Run\(\s*":(\d{2,5})"\s*\)"""), "Run(addr)"),
    (re.compile(r"""\bAddr\s*:\s*":(\d{2,5})\""""), "http.Server Addr"),
)
# a listener on the loopback address: reachable only from inside the container (and the
# HEALTHCHECK, which probes 127.0.0.1 inside it, would still say healthy)
LOOPBACK = re.compile(r"""(?:ListenAndServe(?:TLS)?\(|\bAddr\s*:|net\.Listen\(\s*"tcp[46]?"\s*,|\.Run\(|\.Start\()"""
                      r"""\s*"(?:127\.0\.0\.1|localhost|\[::1\]):""")
FRAMEWORKS = (("github.com/gin-gonic/gin", "gin"), ("github.com/labstack/echo", "echo"),
              ("github.com/go-chi/chi", "chi"), ("github.com/gorilla/mux", "gorilla"))


@dataclass(frozen=True)
class GoFacts:
    requirements_file: str = ""          # go.mod
    lock_file: str = ""                  # go.sum when present
    module: str = ""
    go: str = ""                         # the go directive, e.g. 1.22 (patch dropped)
    go_line: int = 0
    toolchain: str = ""                  # the toolchain line, e.g. go1.22.3
    requires: tuple[str, ...] = ()       # external modules
    vendored: bool = False
    mains: tuple[str, ...] = ()          # "." or "cmd/api": folders holding package main with func main
    framework: str = "net/http"
    port: int = 0
    port_origin: str = ""
    reads_port_env: bool = False
    routes: tuple[str, ...] = ()
    metrics_path: str = ""
    metrics_library: str = ""            # client_golang | "" (a hand-written /metrics is still a path)
    handles_sigterm: bool = False
    healthcheck_flag: bool = False       # the service has its own --healthcheck flag
    loopback_at: str = ""                # "cmd/api/main.go:68" when the server listens on 127.0.0.1 only
    warnings: tuple[str, ...] = ()

    @property
    def uses_prometheus(self) -> bool:
        return bool(self.metrics_path)

    @property
    def dependencies(self) -> tuple[str, ...]:
        return self.requires

    @property
    def app(self) -> str:
        return ""

    @property
    def python(self) -> str:
        return ""

    @property
    def syntax_errors(self) -> tuple[str, ...]:
        return ()


def parse_go_mod(path: Path) -> dict:
    """module, go, toolchain and requires of a go.mod; a go.mod without a module line, or with a
    go directive that is not a version, is an error naming the file and line."""
    text = Path(path).read_text(errors="replace")
    out = {"module": "", "go": "", "go_line": 0, "toolchain": "", "requires": []}
    in_require = False
    for number, raw in enumerate(text.splitlines(), 1):
        row = raw.split("//", 1)[0].strip()
        if not row:
            continue
        if in_require:
            if row == ")":
                in_require = False
            elif "// indirect" not in raw:
                out["requires"].append(row.split()[0])
            continue
        word, _, rest = row.partition(" ")
        rest = rest.strip()
        if word == "module":
            out["module"] = rest.strip('"')
        elif word == "go":
            if not re.fullmatch(r"1\.\d+(\.\d+)?(rc\d+)?", rest):
                raise DetectionError(f"the go directive {rest!r} is not a Go version", file=str(path), line=number,
                                     hint="write e.g. `go 1.22`")
            out["go"], out["go_line"] = ".".join(rest.split(".")[:2]), number
        elif word == "toolchain":
            out["toolchain"] = rest
        elif word == "require":
            if rest == "(":
                in_require = True
            elif "// indirect" not in raw:
                out["requires"].append(rest.split()[0])
    if not out["module"]:
        raise DetectionError("has no module line", file=str(path), line=1,
                             hint="go.mod starts with `module example.com/yourservice`")
    return out


def detect_go(source: Path) -> GoFacts:
    source = Path(source)
    mod_path = source / "go.mod"
    if not mod_path.is_file():
        return GoFacts()
    mod = parse_go_mod(mod_path)
    files = list(source_files(source, (".go",), SKIP_DIRS,
                              lambda rel: rel.name.endswith("_test.go") or rel.as_posix().startswith(KIT_INIT + "/")))
    texts = {p: p.read_text(errors="replace") for p in files}
    mains = sorted({p.parent.relative_to(source).as_posix() for p, t in texts.items()
                    if re.search(r"^package main\b", t, re.M) and re.search(r"^func main\(\)", t, re.M)})
    code = "\n".join(texts.values())
    port, origin = 0, ""
    for pattern, name in PORT_PATTERNS:
        match = pattern.search(code)
        if match:
            port, origin = int(match.group(1)), name
            break
    loopback_at = next((f"{p.relative_to(source).as_posix()}:{t[:m.start()].count(chr(10)) + 1}"
                        for p, t in texts.items() for m in [LOOPBACK.search(t)] if m), "")
    routes = tuple(sorted(set(ROUTE.findall(code))))
    client = "github.com/prometheus/client_golang" in mod["requires"] or "promhttp" in code
    metrics = next((r for r in routes if r.rstrip("/").endswith("metrics")), "")
    requires = tuple(sorted(mod["requires"]))
    framework = next((fw for prefix, fw in FRAMEWORKS if any(r.startswith(prefix) for r in requires)), "net/http")
    return GoFacts(
        requirements_file="go.mod", lock_file="go.sum" if (source / "go.sum").is_file() else "",
        module=mod["module"], go=mod["go"], go_line=mod["go_line"], toolchain=mod["toolchain"], requires=requires,
        vendored=(source / "vendor" / "modules.txt").is_file(), mains=tuple(mains), framework=framework,
        port=port, port_origin=origin, reads_port_env='os.Getenv("PORT")' in code, routes=routes,
        metrics_path=metrics, metrics_library="client_golang" if client and metrics else "",
        handles_sigterm="syscall.SIGTERM" in code or "signal.NotifyContext" in code,
        loopback_at=loopback_at, healthcheck_flag=bool(re.search(r"""flag\.Bool\(\s*"healthcheck\"""", code)))
