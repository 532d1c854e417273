"""The one ``altsignal`` command.

Each package contributes its subcommands through the ``altsignal.commands`` entry-point group
(see pyproject.toml), the way spaCy discovers registered functions: ``nlp`` owns the root app
but never imports ``signals`` or ``timing`` directly, so the dependency direction holds.
An entry point names a function ``register(app: typer.Typer) -> None``.

Every command runs through one error handler (:class:`_Guarded`), also under typer's test
runner: errors a user can act on print ``error: ...`` (and ``hint: ...``) and exit with their
code (``core.errors``); any other exception is a bug and exits 1; ``--verbose`` adds the
traceback. SIGTERM/SIGINT stop the command and its workers (``core.lifecycle``), exit 143/130.
"""
from __future__ import annotations

import logging
import signal
import sys
import traceback
from importlib.metadata import entry_points

import typer
from typer.core import TyperGroup

from core import lifecycle
from core.errors import EXIT_BUG, EXIT_SIGINT, EXIT_USAGE, AltsignalError, describe_validation
from core.progress import quiet_third_party

_FILE_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError)
_verbose = False  # set by the root callback; read by the error handler


def _report(exc: BaseException, args: list[str]) -> int:
    """Print one line (plus a hint) for ``exc``; return the exit code."""
    from pydantic import ValidationError

    if type(exc).__name__ == "NoArgsIsHelpError":  # a group without a command: its help is printed
        return exc.exit_code
    if _verbose or "--verbose" in args:
        traceback.print_exception(exc, file=sys.stderr)
    if isinstance(exc, AltsignalError):
        line, hint, code = exc.args[0] if exc.args else str(exc), exc.hint, exc.exit_code
    elif isinstance(exc, typer.TyperException):  # typer's own click: usage errors, bad options
        ctx = getattr(exc, "ctx", None)
        line, code = exc.format_message(), exc.exit_code
        hint = f"see `{ctx.command_path} --help`" if ctx is not None else None
    elif isinstance(exc, ValidationError):
        line, hint, code = describe_validation(exc, f"invalid {exc.title}"), None, EXIT_USAGE
    elif isinstance(exc, _FILE_ERRORS):
        where = f": {exc.filename}" if exc.filename else ""
        line, hint, code = f"{exc.strerror or exc}{where}", None, EXIT_USAGE
    else:
        line = f"unexpected {type(exc).__name__}: {exc}"
        hint, code = "this is a bug; rerun with --verbose for the traceback and report it", EXIT_BUG
    typer.echo(f"error: {line}", err=True)
    if hint:
        typer.echo(f"hint: {hint}", err=True)
    return code


class _Guarded(TyperGroup):
    """The root group: runs every command inside the signal guard and the one error handler."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        global _verbose
        _verbose = False  # until the root callback has read this invocation's options
        args = list(sys.argv[1:] if args is None else args)
        with lifecycle.guarded():
            try:
                rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
                code = rv if isinstance(rv, int) else 0
            except (KeyboardInterrupt, typer.Abort):
                code = EXIT_SIGINT
            except Exception as exc:  # noqa: BLE001 - the one place every error is reported
                code = _report(exc, args)
            signum = lifecycle.received()
            if signum is not None:
                lifecycle.stop_children()
                typer.echo(f"interrupted by {signal.Signals(signum).name}; run the same command again to resume",
                           err=True)
                code = 128 + signum
        if standalone_mode and signum is not None:
            lifecycle.exit_now(code)
        if standalone_mode:
            sys.exit(code)
        return code


app = typer.Typer(
    name="altsignal",
    cls=_Guarded,
    help="Alternative-data NLP signal engine: text -> sentiment scores -> point-in-time features -> factor timing.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v",
                                        help="Log debug detail, third-party progress and warnings; show tracebacks.")) -> None:
    global _verbose
    _verbose = verbose
    quiet_third_party(verbose)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


for _ep in sorted(entry_points(group="altsignal.commands"), key=lambda e: e.name):
    _ep.load()(app)


if __name__ == "__main__":  # python -m altsignal.cli, e.g. to run a worktree without reinstalling
    app()
