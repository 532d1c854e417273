"""The one ``altsignal`` command.

Each package contributes its subcommands through the ``altsignal.commands`` entry-point group
(see pyproject.toml), the way spaCy discovers registered functions: ``nlp`` owns the root app
but never imports ``signals`` or ``timing`` directly, so the dependency direction holds.
An entry point names a function ``register(app: typer.Typer) -> None``.
"""
from __future__ import annotations

import logging
from importlib.metadata import entry_points

import typer

app = typer.Typer(
    name="altsignal",
    help="Alternative-data NLP signal engine: text -> sentiment scores -> point-in-time features -> factor timing.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug detail.")) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


for _ep in sorted(entry_points(group="altsignal.commands"), key=lambda e: e.name):
    _ep.load()(app)
