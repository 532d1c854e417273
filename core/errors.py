"""Errors a user can act on, and the exit codes the CLI gives them.

Every error that a user can fix (bad input, a bad option, a busy or corrupt store, a bad config)
derives from :class:`AltsignalError`. The CLI's one top-level handler prints such an error as a
single line, ``error: <message>`` plus ``hint: <hint>`` when there is one, and exits with its
``exit_code``; any other exception is a bug: one line saying so, exit 1. ``--verbose`` shows
the traceback of every error. Interruptions are ``core.lifecycle``'s: exit 130 or 143.

Exit codes (documented in docs/reliability.md, stable for schedulers):

- 0: success;
- 1: an unexpected error (a bug: please report the traceback);
- 2: a usage, input or configuration error (:class:`UsageError` and its kin);
- 3: the store is busy (another process holds its lock) or damaged (:class:`StoreBusyError`);
- 4: the command finished and wrote its outputs, but a health check breached its threshold
  (``altsignal features health``; ``signals.health``), so a scheduler can alert;
- 130 / 143: interrupted by SIGINT / SIGTERM; a re-run resumes.
"""
from __future__ import annotations

EXIT_OK = 0
EXIT_BUG = 1
EXIT_USAGE = 2
EXIT_STORE = 3
EXIT_HEALTH = 4
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class AltsignalError(Exception):
    """An error the user can act on; the CLI prints it as one line and exits with ``exit_code``."""

    exit_code: int = EXIT_USAGE

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


class UsageError(AltsignalError, ValueError):
    """A bad option, input file, output folder or configuration (exit 2)."""


class UnknownNameError(UsageError, KeyError):
    """An unknown set, split, preset or baseline name (exit 2); still a ``KeyError`` to callers."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0]) if self.args else ""


class MissingFileError(UsageError, FileNotFoundError):
    """A file or folder the user named is missing or is not what it should be (exit 2); still a
    ``FileNotFoundError`` to callers."""


class StoreBusyError(AltsignalError):
    """The feature store is locked by another process, or cannot be opened (exit 3)."""

    exit_code = EXIT_STORE


def describe_validation(exc, where: str) -> str:
    """One line for a pydantic ``ValidationError``: ``where``, then each bad field and why."""
    parts = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        parts.append(f"{field}: {err['msg'].removeprefix('Value error, ')}")
    return f"{where}: " + "; ".join(parts)
