"""Read .claude/task.md: YAML front matter (validated, with line numbers) + Markdown sections."""
from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from kit.errors import TaskError
from kit.yamlpos import DuplicateKey, line_for, load_with_lines

SECTIONS = ("Requirements", "Context", "Acceptance criteria", "Technical constraints",
            "Integration requirements")
URL_PASSWORD = re.compile(r"://[^/\s:@]+:[^@\s/]+@")
SECRET_WORDS = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIAL)", re.I)


@dataclass(frozen=True)
class TaskDoc:
    """The parsed task: raw front matter, where each value is, and the Markdown body."""

    path: Path
    data: dict[str, Any]
    lines: dict[tuple, int]
    title: str
    sections: dict[str, str]
    acceptance: tuple[str, ...]
    overridden: dict[tuple, Override] = field(default_factory=dict)   # path -> where it was set
    inferred: bool = False         # no front matter: kit inferred `data` from the source (kit.infer)

    def line(self, *path: Any) -> int | None:
        return line_for(self.lines, path)

    def error(self, message: str, *path: Any, hint: str | None = None, field: str | None = None,
              kind: type[TaskError] = TaskError) -> TaskError:
        """The error for the value at `path` in the front matter: this file, the line of the
        deepest part of `path` that the file has, and the dotted field (`field` overrides it)."""
        dotted = field or _dotted(list(path)) or None
        given = next((self.overridden[tuple(path[:n])] for n in range(len(path), 0, -1)
                      if tuple(path[:n]) in self.overridden), None)
        if given is not None:     # the value came from an override, not the task file: point there
            return kind(f"{message} (the value set by {given.origin}, overriding {self.path.name})",
                        file=given.file, line=given.line, field=dotted, hint=hint)
        line = next((found for n in range(len(path), 0, -1) if (found := self.line(*path[:n]))), None)
        return kind(message, file=str(self.path), line=line, field=dotted, hint=hint)


@dataclass(frozen=True)
class Override:
    """A task value set from outside the task file (a batch file's `set:`, or `kit run --set`), so
    a fleet can vary one field without anyone editing the service's task.md."""

    field: str                     # dotted path into the front matter, e.g. kubernetes.version
    value: Any
    file: str                      # where it was given: the batch file, or "command line"
    line: int | None = None

    @property
    def origin(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


OVERRIDES_ENV = "KIT_TASK_OVERRIDES"     # JSON; the notebooks' kernels inherit it from `kit run`


def overrides_to_env(overrides: tuple[Override, ...]) -> str:
    return json.dumps([{"field": o.field, "value": o.value, "file": o.file, "line": o.line} for o in overrides])


def overrides_from_env() -> tuple[Override, ...]:
    raw = os.environ.get(OVERRIDES_ENV, "")
    return tuple(Override(**item) for item in json.loads(raw)) if raw else ()


def parse_set(items: list[str]) -> tuple[Override, ...]:
    """`--set kubernetes.version="1.31"`: the value is read as YAML, as in the task file."""
    found = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise TaskError(f"--set {item!r}: expected FIELD=VALUE", file="command line",
                            field=key.strip() or None, hint='e.g. --set kubernetes.version="1.31"')
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise TaskError(f"--set {key}: the value is not YAML ({exc})", file="command line",
                            field=key.strip()) from None
        found.append(Override(key.strip(), parsed, "command line"))
    return tuple(found)


def apply_overrides(path: Path, data: dict, overrides: tuple[Override, ...]) -> dict[tuple, Override]:
    """Set each override's value into the front matter data (in memory; the file is never edited)."""
    done: dict[tuple, Override] = {}
    for override in overrides:
        keys = tuple(override.field.split("."))
        node = data
        for depth, key in enumerate(keys[:-1]):
            node = node.setdefault(key, {}) if isinstance(node, dict) else None
            if not isinstance(node, dict):
                raise TaskError(f"cannot set {override.field}: {'.'.join(keys[:depth + 1])} in {path.name} is "
                                "not a mapping", file=override.file, line=override.line, field=override.field,
                                hint="set a field inside a section, e.g. kubernetes.version")
        node[keys[-1]] = override.value
        done[keys] = override
    return done


def read_task(path: Path, schema: dict, overrides: tuple[Override, ...] = (),
              infer: Any = None) -> TaskDoc:
    """`infer(path) -> dict`: the front matter to use when the file has none (a prose-only task);
    without it, a missing front matter is an error."""
    path = Path(path)
    if not path.is_file():
        raise TaskError("task file not found", file=str(path),
                        hint="create .claude/task.md with YAML front matter (see docs/task-format.md)")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")     # a BOM from a Windows editor is not an error
    except UnicodeDecodeError as exc:
        raise TaskError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=str(path)) from None
    if infer is not None and (not text.strip() or text.splitlines()[0].strip() != "---"):
        _refuse_secrets_in_body(path, text, 1)
        data = infer(path)
        overridden = apply_overrides(path, data, overrides)
        doc = TaskDoc(path, data, {}, *_parse_body(text), overridden=overridden, inferred=True)
        validate_front_matter(doc, schema)
        return doc
    front, body, body_line = _split_front_matter(text, path)
    try:
        data, lines = load_with_lines(front, first_line=2)
    except DuplicateKey as dup:
        field = ".".join(map(str, (*dup.path, dup.key)))
        raise TaskError(str(dup), file=str(path), line=dup.line, field=field,
                        hint="keep one of them: YAML would silently use the last") from None
    except yaml.YAMLError as exc:  # carries a mark with the line
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise TaskError(f"front matter is not valid YAML: {problem}", file=str(path), line=line,
                        hint="fix the YAML syntax") from None
    if not isinstance(data, dict):
        raise TaskError("front matter must be a mapping (key: value lines)", file=str(path), line=2)
    _refuse_secrets_in_body(path, body, body_line)
    overridden = apply_overrides(path, data, overrides)
    doc = TaskDoc(path, data, lines, *_parse_body(body), overridden=overridden)
    validate_front_matter(doc, schema)
    return doc


def _split_front_matter(text: str, path: Path) -> tuple[str, str, int]:
    rows = text.splitlines(keepends=True)
    if not rows or rows[0].strip() != "---":
        raise TaskError("no YAML front matter: the file must start with a line '---'", file=str(path),
                        line=1, hint="add '---', the service: block, and a closing '---'")
    for index, row in enumerate(rows[1:], start=1):
        if row.strip() in ("---", "..."):
            return "".join(rows[1:index]), "".join(rows[index + 1:]), index + 2
    raise TaskError("front matter is not closed: no second '---' line", file=str(path), line=1,
                    hint="end the front matter with a line '---'")


AWS_KEY = re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")
ASSIGNED_SECRET = re.compile(r"\b([A-Z][A-Z0-9_]*(?:PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY)[A-Z0-9_]*)\s*[=:]\s*"
                             r"['\"]?([^\s'\"`<>]{4,})")
PLACEHOLDERS = {"change-me", "changeme", "placeholder", "xxx", "xxxx", "redacted", "secret", "password"}


def _refuse_secrets_in_body(path: Path, body: str, first_line: int) -> None:
    """The Markdown is quoted into work.md and the site: a value in it would be published."""
    for offset, row in enumerate(body.splitlines()):
        line = first_line + offset
        found = URL_PASSWORD.search(row) or AWS_KEY.search(row)
        assigned = ASSIGNED_SECRET.search(row)
        if assigned and assigned.group(2).lower().strip(".,;") not in PLACEHOLDERS \
                and not assigned.group(2).startswith(("$", "{", "<")):
            found = assigned
        if found:
            raise TaskError("the Markdown holds what looks like a secret value; kit quotes the task in work.md "
                            "and the site, so it would be published", file=str(path), line=line,
                            field="(Markdown body)",
                            hint="replace the value with a placeholder (change-me) and name the secret in "
                                 "service.secrets")


def _parse_body(body: str) -> tuple[str, dict[str, str], tuple[str, ...]]:
    title, current, sections = "", None, {}
    for row in body.splitlines():
        if row.startswith("# ") and not title:
            title = row[2:].strip()
        elif row.startswith("## "):
            current = row[3:].strip()
            sections[current] = ""
        elif current is not None:
            sections[current] += row + "\n"
    sections = {k: v.strip() for k, v in sections.items()}
    accept_key = next((k for k in sections if k.lower().startswith("acceptance")), None)
    items = []
    for row in (sections.get(accept_key, "") if accept_key else "").splitlines():
        match = re.match(r"^\s*(?:[-*+]|\d+[.)])\s+(?:\[[ xX]\]\s*)?(.+)$", row)
        if match:
            items.append(match.group(1).strip())
    return title, sections, tuple(items)


def validate_front_matter(doc: TaskDoc, schema: dict) -> None:
    """Schema-check the front matter against `schema` (kit.task_schema assembles it from the
    families); raise the first error, sorted by line."""
    _refuse_secret_values(doc)
    errors = sorted(Draft202012Validator(schema).iter_errors(doc.data),
                    key=lambda e: (doc.line(*e.absolute_path) or 0, list(map(str, e.absolute_path))))
    if errors:
        raise _task_error(doc, errors[0])


def _refuse_secret_values(doc: TaskDoc) -> None:
    service = doc.data.get("service")
    if not isinstance(service, dict):
        return
    secrets = service.get("secrets")
    if isinstance(secrets, dict):
        raise doc.error("secret values are not allowed in task.md; list the names only", "service", "secrets",
                        hint=f"write secrets: [{', '.join(map(str, secrets))}] and put values in .env")
    if isinstance(secrets, list):
        for index, item in enumerate(secrets):
            if isinstance(item, dict) or (isinstance(item, str) and "=" in item):
                raise doc.error("a secret value was given; list the name only", "service", "secrets", index,
                                hint="secrets are named, never given: values go in .env or a secret store")
    env = service.get("env")
    if isinstance(env, dict):
        for key, value in env.items():
            if isinstance(value, str) and URL_PASSWORD.search(value):
                raise doc.error(f"the URL in {key} carries a password", "service", "env", key,
                                hint="leave the password out of the URL and declare it in service.secrets "
                                     "(for Postgres: PGPASSWORD, which libpq reads itself)")
            if SECRET_WORDS.search(str(key)) and value not in (None, ""):
                raise doc.error(f"{key} looks like a secret and has a value in task.md", "service", "env", key,
                                hint=f"remove the value and add {key} to service.secrets")


def _task_error(doc: TaskDoc, error: ValidationError) -> TaskError:
    path = list(error.absolute_path)
    field_name = _dotted(path)
    line = doc.line(*path)
    message, hint = error.message, None
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        bad = extra[0] if extra else "?"
        line = doc.line(*path, bad) or line
        field_name = _dotted(path + [bad])
        valid = sorted(error.schema.get("properties", {}))
        close = difflib.get_close_matches(str(bad), valid, n=1)
        message = f"unknown key {bad!r}"
        hint = f"did you mean {close[0]!r}?" if close else f"valid keys: {', '.join(valid)}"
    elif error.validator == "required":
        message = error.message
        hint = "add it to the front matter"
    elif error.validator in ("minimum", "maximum") and "minimum" in error.schema and "maximum" in error.schema:
        message = f"must be {error.schema['minimum']}-{error.schema['maximum']}, got {error.instance!r}"
    elif error.validator == "type":
        message = f"must be of type {error.validator_value}, got {type(error.instance).__name__} {error.instance!r}"
        hint = _type_hint(path, error)
    elif error.validator == "enum":
        message = f"got {error.instance!r}; valid values: {', '.join(map(str, error.validator_value))}"
    elif error.validator in ("oneOf", "anyOf") and error.context:
        from jsonschema.exceptions import best_match
        # the branch whose type the value has says what is wrong with it (not "is not a string")
        sub = best_match([e for e in error.context if e.validator != "type"] or error.context)
        description = sub.schema.get("description") or error.schema.get("description", "")
        message = f"invalid value {sub.instance!r}: {description}" if description else sub.message
    elif error.validator == "pattern":
        description = error.schema.get("description", f"pattern {error.validator_value}")
        message = f"invalid value {error.instance!r}: {description}"
        if error.validator_value.startswith("^/") and isinstance(error.instance, str):
            hint = f"a path starts with '/': did you mean '/{error.instance.lstrip('/')}'?"
    keys = tuple(field_name.split(".")) if field_name else ()
    given = next((doc.overridden[keys[:n]] for n in range(len(keys), 0, -1) if keys[:n] in doc.overridden), None)
    if given is not None:
        return TaskError(f"{message} (the value set by {given.origin}, overriding {doc.path.name})",
                         file=given.file, line=given.line, field=field_name, hint=hint)
    return TaskError(message, file=str(doc.path), line=line, field=field_name or "(front matter)",
                     hint=hint)


def _type_hint(path: list[Any], error: ValidationError) -> str:
    if isinstance(error.instance, float) and error.validator_value == "string":
        return f"YAML read a number: quote it, e.g. \"{error.instance}\" (3.10 unquoted becomes 3.1)"
    if error.validator_value == "integer":
        return "write a whole number without quotes, e.g. 8000"
    if error.validator_value == "array":
        return "write a list, e.g. [A, B] or one '- item' per line"
    if error.validator_value == "object":
        return "write a mapping of key: value lines"
    return f"write a {error.validator_value}"


def _dotted(path: list[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
