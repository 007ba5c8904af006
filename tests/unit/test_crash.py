"""Crash reasons name the root cause: the exception and the frame that raised it, from the logs
Python (under gunicorn), Node and Go actually print, and the constraint to add when the frame is in
a package the requirements do not pin."""
from __future__ import annotations

from kit.sandbox.crash import hint, root_cause

GUNICORN = """[2026-12-01 07:01:02 +0000] [1] [INFO] Starting gunicorn 23.0.0
[2026-12-01 07:01:02 +0000] [1] [INFO] Listening at: http://0.0.0.0:8000 (1)
[2026-12-01 07:01:02 +0000] [7] [INFO] Booting worker with pid: 7
[2026-12-01 07:01:03 +0000] [7] [ERROR] Exception in worker process
Traceback (most recent call last):
  File "/opt/venv/lib/python3.11/site-packages/gunicorn/arbiter.py", line 608, in spawn_worker
    worker.init_process()
  File "/opt/venv/lib/python3.11/site-packages/gunicorn/util.py", line 370, in import_app
    mod = importlib.import_module(module)
  File "/app/app.py", line 4, in <module>
    from settings import Config
  File "/app/settings.py", line 2, in <module>
    from environs import Env
  File "/opt/venv/lib/python3.11/site-packages/environs/__init__.py", line 14, in <module>
    from marshmallow.fields import Field
  File "/opt/venv/lib/python3.11/site-packages/marshmallow/__init__.py", line 9, in <module>
    from marshmallow.utils import EXCLUDE
ImportError: cannot import name 'EXCLUDE' from 'marshmallow.utils' (/opt/venv/lib/python3.11/site-packages/marshmallow/utils.py)
[2026-12-01 07:01:03 +0000] [7] [INFO] Worker exiting (pid: 7)
[2026-12-01 07:01:03 +0000] [1] [ERROR] Worker (pid:7) exited with code 3
[2026-12-01 07:01:03 +0000] [1] [ERROR] Shutting down: Master
[2026-12-01 07:01:03 +0000] [1] [ERROR] Reason: Worker failed to boot.
"""

NODE = """node:internal/modules/cjs/loader:1228
  throw err;
  ^

Error: Cannot find module 'express-rate-limit'
Require stack:
- /app/src/server.js
    at Module._resolveFilename (node:internal/modules/cjs/loader:1225:15)
    at Module._load (node:internal/modules/cjs/loader:1051:27)
    at Object.<anonymous> (/app/src/server.js:5:19)
"""

NODE_TYPE = """/app/node_modules/pg/lib/client.js:72
TypeError: Cannot read properties of undefined (reading 'split')
    at new Client (/app/node_modules/pg/lib/client.js:72:35)
    at Object.<anonymous> (/app/src/db.js:3:16)
"""

GO = """2026/12/01 07:01:02 listening on :8080
panic: runtime error: invalid memory address or nil pointer dereference
[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x6a1b2c]

goroutine 1 [running]:
main.loadConfig(...)
\t/src/config.go:41
main.main()
\t/src/main.go:18 +0x4c
"""


def test_python_names_the_exception_not_gunicorns_last_line():
    cause = root_cause(GUNICORN)
    assert cause.exception.startswith("ImportError: cannot import name 'EXCLUDE' from 'marshmallow.utils'")
    assert cause.where == "/opt/venv/lib/python3.11/site-packages/marshmallow/__init__.py:9 in <module>"
    assert cause.package == "marshmallow"
    assert "Worker failed to boot" not in str(cause)


def test_the_last_traceback_wins_when_there_are_several():
    log = GUNICORN.replace("ImportError", "KeyError", 0) + GUNICORN.replace(
        "ImportError: cannot import name 'EXCLUDE'", "RuntimeError: second boot failed")
    assert root_cause(log).exception.startswith("RuntimeError: second boot failed")


def test_a_frame_in_the_app_has_no_package():
    log = 'Traceback (most recent call last):\n  File "/app/app.py", line 7, in <module>\n    raise x\nRuntimeError: boom\n'
    cause = root_cause(log)
    assert (cause.exception, cause.where, cause.package) == ("RuntimeError: boom", "/app/app.py:7 in <module>", "")


def test_node_and_go():
    assert str(root_cause(NODE)) == "Error: Cannot find module 'express-rate-limit' (raised at /app/src/server.js:5)"
    cause = root_cause(NODE_TYPE)
    assert cause.package == "pg" and cause.where == "/app/node_modules/pg/lib/client.js:72"
    assert str(root_cause(GO)) == ("panic: runtime error: invalid memory address or nil pointer dereference "
                                   "(raised at /src/config.go:41)")


def test_an_excerpt_that_lost_the_traceback_header_still_gives_the_cause():
    cut = GUNICORN.replace("Traceback (most recent call last):\n", "... (6 earlier lines left out)\n")
    assert root_cause(cut).exception.startswith("ImportError: cannot import name 'EXCLUDE'")


def test_a_log_without_a_crash_has_no_cause():
    assert root_cause("[INFO] Listening at: http://0.0.0.0:8000\n[ERROR] connection refused\n") is None
    assert root_cause("") is None


def test_hint_names_the_unpinned_package_its_version_and_a_constraint():
    text = hint("Marshmallow", "4.0.0", {"flask", "environs"})
    assert "marshmallow 4.0.0, which the requirements do not pin" in text
    assert 'service.constraints: ["marshmallow<4"]' in text
    assert hint("marshmallow", "4.0.0", {"marshmallow"}) == ""          # pinned: its own choice
    assert "with service.constraints" in hint("marshmallow", "", set())


def test_a_name_gone_from_a_drifted_package_blames_that_package():
    log = ('Traceback (most recent call last):\n'
           '  File "/opt/venv/lib/python3.11/site-packages/flask/helpers.py", line 16, in <module>\n'
           '    from werkzeug.urls import url_quote\n'
           "ImportError: cannot import name 'url_quote' from 'werkzeug.urls' (/opt/venv/lib/python3.11/site-packages/"
           "werkzeug/urls.py)\n")
    assert root_cause(log).package == "werkzeug"


def test_gunicorns_own_haltserver_traceback_is_not_the_cause():
    """gunicorn's master prints a HaltServer traceback after the worker's when it exits 1: the
    worker's exception is the cause."""
    master = ("Traceback (most recent call last):\n"
              '  File "/opt/venv/lib/python3.11/site-packages/gunicorn/arbiter.py", line 227, in run\n'
              "    self.halt(reason=inst.reason, exit_status=inst.exit_status)\n"
              "gunicorn.errors.HaltServer: <HaltServer 'Worker failed to boot.' 3>\n")
    cause = root_cause(GUNICORN + master)
    assert cause.exception.startswith("ImportError: cannot import name 'EXCLUDE'"), cause
    assert root_cause(master) is None        # the wrapper alone names no cause: the log's last error line is used
