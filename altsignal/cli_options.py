"""Options that several commands share, declared once (docs/configuration.md, "CLI vocabulary").

Decisions:

- A column mapping is spelled the same in every command that reads documents (``altsignal score``,
  ``altsignal data load``): ``--id-col/--text-col/--time-col/--entities-col/--title-col`` and the
  reading options beside them. The declarations below are the only ones, and
  :func:`mapping_fields` is the one translation of those options into ``ColumnMapping`` fields.
- Defaults are never restated. An option backed by a field of a typed config defaults to None, so
  the config's own default (or a value from a config file) applies when it is not given, and its
  ``--help`` shows the field's default, read from the model (:func:`config_option`). The
  column-mapping options show none: ``ColumnMapping`` lives with the readers, which import
  pandas, and ``--help`` stays fast by not importing them.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

import typer
from pydantic import BaseModel

NUMERIC_HELP = ("auto | fp32 | bf16 | int8 | compile (bf16 through torch.compile) | fp16 (GPU). "
                "auto = fastest path that passed the accuracy check.")


def given(**options: Any) -> dict[str, Any]:
    """The options the user gave: None, and [] from a repeatable option, mean not given (so the
    config's default, or a config file's value, applies)."""
    return {k: v for k, v in options.items() if v is not None and not (isinstance(v, list) and not v)}


def config_option(model: type[BaseModel], field: str, *flags: str, **kwargs: Any):
    """An option for ``model.field``: default None (the model's default applies), shown in --help."""
    value = model.model_fields[field].get_default(call_default_factory=True)
    shown = False if value is None or value == [] else ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return typer.Option(None, *flags, show_default=shown, **kwargs)


# Column mapping: which input columns make a Document, and how its times are read.
ID_COL = typer.Option(None, "--id-col", help="Id column; several joined with ',' make a composite id.")
TEXT_COL = typer.Option(None, "--text-col", help="Text column.")
TIME_COL = typer.Option(None, "--time-col", help="Publication time column.")
ENTITIES_COL = typer.Option(None, "--entities-col", help="Ticker column (single, separated list or list column).")
ENTITY_SEP = typer.Option(None, "--entity-sep", help="Separator inside the ticker column, e.g. ';'.")
TITLE_COL = typer.Option(None, "--title-col", help="Title column.")
TIMEZONE = typer.Option(None, "--timezone", help="Zone of naive timestamps and dates, e.g. America/New_York "
                        "(without it they are rejected).")
TIME_FORMAT = typer.Option(None, "--time-format", help="strptime layout when times are not ISO-8601.")
ENCODING = typer.Option(None, "--encoding", help="Encoding of CSV/JSONL files without a byte-order mark "
                        "(e.g. latin-1, cp1252).")
EARLIEST = typer.Option(None, "--earliest", formats=["%Y-%m-%d"],
                        help="Reject published_at before this day (default: where the exchange calendars start).")
LATEST = typer.Option(None, "--latest", formats=["%Y-%m-%d"],
                      help="Reject published_at after this day (default: a day after reading).")


def mapping_fields(*, id_col: str | None, text_col: str | None, time_col: str | None, entities_col: str | None,
                   entity_sep: str | None, title_col: str | None, timezone: str | None, time_format: str | None,
                   encoding: str | None, earliest: datetime | None, latest: datetime | None, **more: Any) -> dict:
    """The ``ColumnMapping`` fields of the column-mapping options given (``more``: other fields as is)."""
    return given(
        doc_id=tuple(id_col.split(",")) if id_col and "," in id_col else id_col, text=text_col,
        published_at=time_col, entities=entities_col, entity_sep=entity_sep, title=title_col, timezone=timezone,
        time_format=time_format, encoding=encoding, earliest=earliest and earliest.date(),
        latest=latest and latest.date(), **more)
