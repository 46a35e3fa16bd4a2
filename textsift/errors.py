"""User-facing errors.

Every error a user can cause (bad config, bad data, bad run directory) is a ``TextsiftError``: the CLI
prints its message on one line and exits non-zero, without a traceback. Messages say what was expected,
what was found, where (file and line), and how to fix it.
"""
from __future__ import annotations


class TextsiftError(Exception):
    """A problem the user can fix; ``str(err)`` is the complete message."""


class DataError(TextsiftError):
    """A problem in an input data file, located by file and (when known) line."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        self.path, self.line, self.detail = path, line, message
        where = f"{path}:{line}: " if path and line else (f"{path}: " if path else "")
        super().__init__(where + message)


class ConfigError(TextsiftError):
    """One or more problems in a config; all are reported at once, each with its dotted path."""

    def __init__(self, problems: list[str], source: str | None = None):
        self.problems = problems
        head = f"{source}: " if source else ""
        if len(problems) == 1:
            super().__init__(f"{head}invalid config: {problems[0]}")
        else:
            lines = "\n".join(f"  - {p}" for p in problems)
            super().__init__(f"{head}{len(problems)} problems in config:\n{lines}")


class NotFittedError(TextsiftError):
    """A model or component was used before it was trained or loaded."""
