"""The JSON Schema of task.md's front matter: the service and its dependencies, plus each
family's task section (assembled from the registry). Published as
docs/reference/task.schema.json (a test keeps the two equal)."""
from __future__ import annotations

import json
from functools import lru_cache

from kit.families import option_schemas

NAME = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"      # DNS-1123 label
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
PATH_ = r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$"

IMAGE_REPO = (r"^(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
              r"(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_port = {"type": "integer", "minimum": 1, "maximum": 65535}
_path = {"type": "string", "pattern": PATH_, "description": "An absolute URL path, e.g. /healthz"}

BASE_SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://kit.invalid/schemas/task.schema.json",
    "title": "kit task.md front matter",
    "type": "object",
    "additionalProperties": False,
    "required": ["service"],
    "properties": {
        "service": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "pattern": NAME, "maxLength": 63,
                         "description": "a DNS-1123 label: 1-63 lower-case letters, digits and '-', "
                                        "starting and ending with a letter or digit"},
                "source": {"type": "string", "minLength": 1,
                           "description": "The service's source folder, relative to the project root "
                                          "(the folder holding .claude/). Default: the project root."},
                "port": {**_port, "description": "The port the server listens on in the container."},
                "health": {**_path, "description": "HTTP health path that returns 200 only when healthy."},
                "metrics": {**_path, "description": "Prometheus metrics path."},
                "metrics_port": {**_port, "description": "Port of the metrics endpoint when not the app port."},
                "python": {"type": "string", "pattern": r"^3\.(9|10|11|12|13)$",
                           "description": "a Python minor version, one of 3.9, 3.10, 3.11, 3.12, 3.13 "
                                          "(quoted, e.g. \"3.11\")"},
                "stack": {"enum": ["python", "node", "go"],
                          "description": "The service's language stack; detected from requirements.txt or "
                                         "pyproject.toml (python), package.json (node) and go.mod (go) when not given."},
                "node": {"type": "string", "pattern": r"^(18|20|22|24)$",
                         "description": "Node.js: the major version of the base image node:<v>-bookworm-slim "
                                        "(quoted, e.g. \"20\"); default from .nvmrc, .node-version or "
                                        "engines.node"},
                "main": {"type": "string", "pattern": r"^[\w./@-]+$",
                         "description": "Node.js: the file `node` runs, relative to service.source, e.g. "
                                        "src/server.js (default: the start script's file, main, or a server "
                                        "file calling listen()); Go: the main package's folder, e.g. "
                                        "cmd/api, required when there are several"},
                "framework": {"enum": ["flask", "fastapi", "django", "wsgi", "asgi",
                                       "express", "fastify", "koa", "nest", "node",
                                       "net/http", "gin", "echo", "chi", "gorilla"]},
                "app": {"type": "string", "pattern": r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
                        "description": "The WSGI/ASGI object as module:attribute, e.g. app:app"},
                "command": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                            "description": "Override the production start command (exec form)."},
                "constraints": {
                    "oneOf": [
                        {"type": "array", "minItems": 1, "uniqueItems": True,
                         "items": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._-]*\s*(==|!=|<=|>=|<|>|~=)\s*[\w.*+!-]+(\s*,\s*(==|!=|<=|>=|<|>|~=)\s*[\w.*+!-]+)*$",
                                   "description": "a pip constraint: a package and a version specifier, "
                                                  "e.g. werkzeug<3 or marshmallow==3.21.3"}},
                        {"type": "string", "pattern": r"^[\w./-]+\.txt$",
                         "description": "a pip constraints file inside service.source, e.g. constraints.txt"}],
                    "description": "Python: pip constraints applied when the image installs its packages, to hold a "
                                   "package that is not pinned (a dependency of a dependency) without editing the app's "
                                   "requirements: a list of pins, or a constraints file in the source"},
                "workers": {"type": "integer", "minimum": 1, "maximum": 64},
                "threads": {"type": "integer", "minimum": 1, "maximum": 64},
                "secrets": {"type": "array", "uniqueItems": True,
                            "items": {"type": "string", "pattern": ENV_NAME,
                                      "description": "an environment variable name: letters, digits and _, "
                                                     "not starting with a digit (e.g. PG_PASSWORD)"},
                            "description": "Names of secret environment variables. Never values."},
                "env": {"type": "object", "propertyNames": {"pattern": ENV_NAME},
                        "additionalProperties": {"type": ["string", "number", "boolean"]},
                        "description": "Non-secret environment settings."},
                "uid": {"type": "integer", "minimum": 1000, "maximum": 2147483647},
                "image": {"type": "string", "pattern": IMAGE_REPO, "maxLength": 255,
                          "description": "the image repository, without a tag: registry host, then "
                                         "lower-case path parts, e.g. ghcr.io/acme/shop-api"},
                "resources": {"type": "object", "additionalProperties": False,
                              "description": "Limits for one instance: cpu in cores or millicores "
                                             "(0.5, 500m), memory as 256Mi, 1Gi or 500M.",
                              "properties": {"cpu": {"type": ["string", "number"]},
                                             "memory": {"type": ["string", "integer"]}}},
            },
        },
        "dependencies": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["kind"],
                "properties": {
                    "kind": {"enum": ["postgres", "redis"]},
                    "name": {"type": "string", "pattern": NAME, "maxLength": 63,
                             "description": "Hostname the app uses (compose service name)."},
                    "version": {"type": "string", "pattern": r"^\d+(\.\d+)?$"},
                    "database": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"},
                    "user": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"},
                    "password_secret": {"type": "string", "pattern": ENV_NAME},
                },
            },
        },
        "output": {"type": "string", "minLength": 1,
                   "description": "Output folder, relative to the project root. Default: kit-out"},
    },
}


@lru_cache(maxsize=1)
def task_schema() -> dict:
    """The whole schema: the base, then every family's section under its option key."""
    schema = json.loads(json.dumps(BASE_SCHEMA))
    schema["properties"].update(option_schemas())
    return schema


def schema_json() -> str:
    return json.dumps(task_schema(), indent=2, sort_keys=True) + "\n"
