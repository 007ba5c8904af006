"""One error tree. The CLI catches ``KitError`` and prints one clean line; anything
else keeps its traceback."""
from __future__ import annotations


class KitError(Exception):
    """A known failure with a message meant for the user."""

    exit_code = 1

    def user_message(self) -> str:
        return str(self)


class TaskError(KitError):
    """Bad input in a task file: carries the file, the line and the field."""

    exit_code = 2

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 field: str | None = None, hint: str | None = None):
        self.message, self.file, self.line, self.field, self.hint = message, file, line, field, hint
        super().__init__(self.user_message())

    def user_message(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        field = f"{self.field}: " if self.field else ""
        hint = f" ({self.hint})" if self.hint else ""
        return f"{where}{field}{self.message}{hint}"


class DetectionError(TaskError):
    """The source does not show a value kit needs and the task does not give it."""


class RenderError(KitError):
    """A template failed to render; names the template."""

    def __init__(self, template: str, message: str):
        self.template = template
        super().__init__(f"template {template}: {message}")


class SandboxError(KitError):
    """A sandbox run failed (engine missing, build failed, never healthy...).

    Carries the container logs when there are any."""

    exit_code = 3

    def __init__(self, message: str, *, logs: str = ""):
        self.logs = logs
        super().__init__(message)

    def user_message(self) -> str:
        if not self.logs:
            return str(self)
        tail = "\n".join(self.logs.strip().splitlines()[-15:])
        return f"{self}\n--- last log lines ---\n{tail}"


class EngineMissing(SandboxError):
    """No Docker engine answers."""


class CheckFailed(KitError):
    """One or more verification checks failed."""

    exit_code = 4


class NotebookFailed(KitError):
    """A notebook cell raised while papermill executed it."""

    exit_code = 5

    def __init__(self, notebook: str, cell_index: int | None, ename: str, evalue: str, output: str):
        self.notebook, self.cell_index, self.ename, self.evalue, self.output = (
            notebook, cell_index, ename, evalue, output)
        where = f"cell {cell_index}" if cell_index is not None else "a cell"
        super().__init__(f"notebook {notebook}: {where} raised {ename}: {evalue} "
                         f"(executed copy kept at {output})")
