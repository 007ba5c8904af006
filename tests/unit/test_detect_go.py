"""The Go stack: go.mod, the main package(s), port and routes; the distroless image with its static
probe; the sandbox's honest skips (Go 1.19 toolchain, no module proxy); bad input."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kit.cli import main
from kit.detect.go import detect_go, parse_go_mod
from kit.errors import DetectionError
from kit.families import render_all
from kit.families.container.checks import consistency, go_sandbox_skip
from kit.spec import load_spec
from tests.conftest import copy_project

GO = Path(__file__).resolve().parent.parent / "fixtures" / "go"


def test_stdlib_service_facts_and_image():
    facts = detect_go(GO / "stdlib-notes")
    assert (facts.module, facts.go, facts.requires, facts.vendored) == (
        "git.internal.example/platform/notes", "1.19", (), False)
    assert facts.mains == (".",) and (facts.port, facts.port_origin) == (8080, "flag default")
    assert facts.reads_port_env and facts.handles_sigterm
    assert {"/healthz", "/metrics"} <= set(facts.routes)
    spec = load_spec(GO / "stdlib-notes", output=Path("/nonexistent"))
    assert (spec.stack, spec.base_image, spec.uid, spec.command) == ("go", "golang:1.19", 65532, ("/app/server",))
    files = render_all(spec)
    df = files["Dockerfile"]
    assert "ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot" in df and "ARG GOPROXY=" in df
    assert "CGO_ENABLED=0" in df and 'go build -trimpath -ldflags "-s -w" -o /out/server .' in df
    assert 'CMD ["/app/kit-init", "health"]' in df and "USER 65532:65532" in df and "curl -" not in df
    assert 'healthURL  = "http://127.0.0.1:8080/healthz"' in files["docker/kit-init/main.go"]
    assert consistency(spec, df, files).status == "passed"
    broken = dict(files, **{"docker/kit-init/main.go": files["docker/kit-init/main.go"].replace("8080", "9999")})
    assert "does not probe port 8080" in consistency(spec, df, broken).reason
    assert go_sandbox_skip(spec) == ""                       # stdlib only, go 1.19: buildable here
    m = spec.option("slo").metrics                          # the hand-written exposition's counter
    assert (m.requests, m.status_label) == ("notes_http_requests_total", "code")
    assert '["CMD", "/app/kit-init", "health"]' in files["compose.yaml"]
    # a hand-written exposition has no process collector: no CPU, memory or restart alert or panel on it
    assert spec.option("slo").process_metrics is False
    alerts = files["monitoring/rules/alerts.yml"]
    assert "TargetDown" in alerts and "process_" not in alerts and "HighCpuUsage" not in alerts
    assert "process_cpu_seconds_total" not in files["monitoring/grafana/dashboards/service.json"]


def test_two_binaries_need_service_main(tmp_path, capsys):
    project = copy_project(GO / "two-binaries", tmp_path / "p")
    assert main(["generate", str(project)]) == 2
    err = capsys.readouterr().err
    assert "service.main: several main packages: cmd/api, cmd/worker" in err and not (project / "kit-out").exists()
    task = project / ".claude" / "task.md"
    task.write_text(task.read_text().replace("  name: billing\n", "  name: billing\n  main: cmd/api\n"))
    spec = load_spec(project)
    assert (spec.app, spec.port, spec.framework, spec.metrics_path) == ("cmd/api", 9000, "chi", "/metrics")
    assert "-o /out/server ./cmd/api" in render_all(spec)["Dockerfile"]
    assert "Go module proxy is not reachable" in go_sandbox_skip(spec)     # chi, client_golang, not vendored
    task.write_text(task.read_text().replace("main: cmd/api", "main: cmd/nope"))
    assert main(["generate", str(project)]) == 2
    assert "cmd/nope is not a main package" in capsys.readouterr().err


def test_go_directive_too_new_is_skipped_with_both_versions():
    spec = load_spec(GO / "too-new", output=Path("/nonexistent"))
    assert spec.base_image == "golang:1.23" and spec.facts.toolchain == "go1.23.6"
    why = go_sandbox_skip(spec)
    assert "go directive 1.23" in why and "(1.19, Debian bookworm's golang-go" in why
    assert "/healthz" in spec.facts.routes and spec.port == 8081         # "GET /healthz" (Go 1.22 pattern)


def test_go_mod_without_main_package_is_an_error(tmp_path, capsys):
    project = tmp_path / "lib"
    (project / ".claude").mkdir(parents=True)
    (project / ".claude" / "task.md").write_text("---\nservice:\n  name: lib\n---\n# Lib\n\nA library.\n")
    (project / "go.mod").write_text("module example.org/lib\n\ngo 1.19\n")
    (project / "lib.go").write_text("package lib\n\nfunc Add(a, b int) int { return a + b }\n")
    assert main(["generate", str(project)]) == 2
    err = capsys.readouterr().err
    assert "go.mod: no main package" in err and not (project / "kit-out").exists()


def test_go_mod_errors_name_file_and_line(tmp_path):
    (tmp_path / "go.mod").write_text("// comment\nmodule x\n\ngo one.twenty\n")
    with pytest.raises(DetectionError) as err:
        parse_go_mod(tmp_path / "go.mod")
    assert err.value.line == 4 and "not a Go version" in err.value.message
    (tmp_path / "go.mod").write_text("go 1.21\n")
    with pytest.raises(DetectionError, match="has no module line"):
        parse_go_mod(tmp_path / "go.mod")


@pytest.mark.tools
def test_hadolint_passes_the_go_image(tmp_path):
    from kit.core.tools import venv_tool
    path = tmp_path / "Dockerfile"
    path.write_text(render_all(load_spec(GO / "stdlib-notes", output=tmp_path))["Dockerfile"])
    proc = subprocess.run([venv_tool("hadolint"), "--failure-threshold", "warning", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize("listen, line", [
    ('srv := &http.Server{\n\t\tAddr:    "127.0.0.1:" + port,\n\t\tHandler: mux,\n\t}\n\tlog.Fatal(srv.ListenAndServe())', 14),
    ('log.Fatal(http.ListenAndServe("localhost:8080", mux))', 13),
])
def test_a_server_on_loopback_only_is_an_error_naming_file_and_line(tmp_path, capsys, listen, line):
    """Found on a real public service tried as a new user would: http.Server{Addr: "127.0.0.1:" +
    port}. In a container nothing outside reaches it, and the HEALTHCHECK (which probes
    127.0.0.1 inside) would still pass."""
    project = tmp_path / "svc"
    (project / "cmd" / "api").mkdir(parents=True)
    (project / ".claude").mkdir()
    (project / ".claude" / "task.md").write_text("---\nservice:\n  name: svc\n---\n# Svc\n\nAn API.\n")
    (project / "go.mod").write_text("module example.com/svc\n\ngo 1.19\n")
    (project / "cmd" / "api" / "main.go").write_text(
        'package main\n\nimport (\n\t"log"\n\t"net/http"\n\t"os"\n)\n\nfunc main() {\n\tport := os.Getenv("PORT")\n'
        '\tmux := http.NewServeMux()\n\tmux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {})\n'
        f"\t{listen}\n}}\n")
    assert detect_go(project).loopback_at == f"cmd/api/main.go:{line}"
    assert main(["generate", str(project)]) == 2
    err = capsys.readouterr().err
    assert f"cmd/api/main.go:{line}" in err and "listens on 127.0.0.1/localhost only" in err
    assert not (project / "kit-out").exists()
    (project / "cmd" / "api" / "main.go").write_text(
        (project / "cmd" / "api" / "main.go").read_text().replace('"127.0.0.1:"', '":"').replace('"localhost:', '":'))
    assert detect_go(project).loopback_at == ""
