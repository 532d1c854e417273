"""Old CLI spellings, kept for one release (0.2 removes them).

The CLI speaks one vocabulary (docs/configuration.md, "CLI vocabulary"): ``--out`` for every output folder or
file, ``--id-col/--text-col/--time-col/--entities-col`` for every column mapping, and commands
grouped as ``altsignal data|models|score|features|timing|research|run``. Names used before that
still work, hidden from ``--help``, and print one ``deprecated:`` line on stderr naming the
new spelling, so scripts keep running while their owners update them.
"""
from __future__ import annotations

import functools
from typing import Callable, TypeVar

import typer

from core.config_files import warn_renamed
from core.errors import UsageError

T = TypeVar("T")


def renamed_option(new: T | None, old: T | None, new_flag: str, old_flag: str, *, required: bool = False) -> T | None:
    """The value of an option given as ``new_flag`` or (deprecated) ``old_flag``.

    Declare the old flag as a hidden option defaulting to None, and the new one with default None
    when ``required`` (typer cannot require "one of two" itself).
    """
    if old is not None:
        if new is not None:
            raise UsageError(f"{old_flag} and {new_flag} are the same option; give only {new_flag}")
        warn_renamed(old_flag, new_flag)
        return old
    if new is None and required:
        raise UsageError(f"missing option {new_flag}")
    return new


def alias_command(app: typer.Typer, old_name: str, command: Callable, new_path: str) -> None:
    """Register ``command`` again as ``old_name`` on ``app``: hidden, printing a deprecation line first."""

    @functools.wraps(command)
    def alias(*args, **kwargs):
        warn_renamed(f"altsignal {old_name}", new_path)
        return command(*args, **kwargs)

    app.command(old_name, hidden=True)(alias)
