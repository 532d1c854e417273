"""``altsignal data``: read any supported source into Documents, and write the split manifests.

    altsignal data splits                  # corpora/splits/{fpb,tfns}.json + duplicate counts
    altsignal data splits --check          # verify the committed manifests against the data
    altsignal data load news --out news.parquet --rejects news.rejects.jsonl
    altsignal data load my.csv --source news --doc-id id --text headline \\
        --published-at time --timezone America/New_York --out x.parquet --rejects r.jsonl
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Optional

import typer

data_app = typer.Typer(help="Read, validate and split datasets.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")


@data_app.command("splits")
def splits_cmd(
    out_dir: Optional[Path] = typer.Option(None, help="Folder for the manifests (default corpora/splits)."),
    check: bool = typer.Option(False, "--check", help="Only verify the committed manifests; exit 2 on a mismatch."),
) -> None:
    """Compute the canonical splits, write their manifests and print duplicate counts and sizes."""
    from rich.console import Console
    from rich.table import Table

    from nlp import splits

    console = Console()
    if check:
        for name in splits.SETS:
            splits.verify_manifest(name)  # a mismatch is a SplitManifestError: one line, exit 2
            console.print(f"{name}: manifest matches the data")
        return
    for name in splits.SETS:
        path = splits.write_manifest(name, out_dir)
        console.print(f"wrote {path}")
    fpb, tfns = splits.build_manifest("fpb"), splits.build_manifest("tfns")
    table = Table("set", "rows", "dups", "conflicts", "train", "valid.", "test")
    for level, s in fpb["levels"].items():
        table.add_row(f"fpb:{level}", str(s["rows_in_file"]), str(s["exact_duplicate_groups"]),
                      str(s["conflicting_label_groups"]), *(str(s["splits"][k]["rows"]) for k in splits.SPLITS))
    table.add_row("tfns", f"{tfns['rows_in_file']['train']}+{tfns['rows_in_file']['valid']}",
                  str(sum(tfns["exact_duplicate_groups"].values())), "0",
                  *(str(tfns["splits"][k]["rows"]) for k in splits.SPLITS))
    console.print(table)
    u = fpb["union"]
    console.print(f"fpb union: {u['distinct_texts']} distinct sentences, {u['distinct_keys']} keys, "
                  f"{u['near_duplicate_groups']} near-duplicate groups ({u['texts_in_near_duplicate_groups']} texts, "
                  f"{u['near_duplicate_groups_with_different_labels']} with different labels)")
    n = tfns["near_duplicate_groups"]
    console.print(f"tfns: near-duplicate groups train {n['train']}, valid {n['valid']}; "
                  f"{n['keys_shared_by_train_and_valid']} keys shared by train and valid -> "
                  f"{tfns['train_rows_dropped_as_near_duplicates_of_test']} train rows dropped")


@data_app.command("load")
def load_cmd(
    spec: str = typer.Argument(..., help="A preset (news, social, transcripts, sample:news, ...) or a file/folder/glob."),
    out: Path = typer.Option(..., "--out", help="Document Parquet to write (atomically)."),
    rejects_path: Path = typer.Option(..., "--rejects", help="JSONL file for rejected rows."),
    source: Optional[str] = typer.Option(None, help="Document source: news, social or transcript."),
    doc_id: Optional[str] = typer.Option(None, help="Id column; several joined with ',' make a composite id."),
    text: Optional[str] = typer.Option(None, help="Text column."),
    published_at: Optional[str] = typer.Option(None, help="Timestamp column."),
    entities: Optional[str] = typer.Option(None, help="Ticker column (single, separated list or list column)."),
    entity_sep: Optional[str] = typer.Option(None, help="Separator inside the ticker column, e.g. ';'."),
    cashtags: Optional[bool] = typer.Option(None, "--cashtags/--no-cashtags", help="Also take $TICKERS from the text."),
    title: Optional[str] = typer.Option(None),
    publisher: Optional[str] = typer.Option(None),
    url: Optional[str] = typer.Option(None),
    timezone: Optional[str] = typer.Option(None, help="Zone of naive timestamps / dates (e.g. America/New_York)."),
    date_only: Optional[str] = typer.Option(None, help="end_of_day (default), start_of_day or reject."),
    time_format: Optional[str] = typer.Option(None, help="strptime layout when not ISO-8601."),
    extra: Optional[str] = typer.Option(None, help="Extra columns to carry, ','-separated."),
    encoding: Optional[str] = typer.Option(None, help="Encoding of CSV/JSONL files without a byte-order mark (default utf-8)."),
    earliest: Optional[datetime] = typer.Option(None, formats=["%Y-%m-%d"], help="Reject published_at before this day (default 1990-01-01)."),
    latest: Optional[datetime] = typer.Option(None, formats=["%Y-%m-%d"], help="Reject published_at after this day (default: a day after now)."),
    chunk_rows: int = typer.Option(50_000, min=1, help="Rows per streamed chunk."),
) -> None:
    """Read a source into Document Parquet plus a rejects file; print the counts."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from pydantic import ValidationError

    from nlp.errors import UsageError, describe_validation
    from nlp.readers.documents import PRESETS, ColumnMapping, iter_documents, write_documents
    from nlp.rejects import Rejects

    given = {k: v for k, v in dict(
        doc_id=tuple(doc_id.split(",")) if doc_id and "," in doc_id else doc_id, text=text,
        published_at=published_at, entities=entities, entity_sep=entity_sep, cashtags=cashtags, title=title,
        publisher=publisher, url=url, timezone=timezone, date_only=date_only, time_format=time_format,
        extra=tuple(extra.split(",")) if extra else None, encoding=encoding,
        earliest=earliest and earliest.date(), latest=latest and latest.date(),
    ).items() if v is not None}
    if spec in PRESETS:
        preset = PRESETS[spec]
        given = {**preset.mapping.model_dump(), **given}
        paths, source = preset.path(), source or preset.source
    else:
        missing = [o for o, v in (("--source", source), ("--doc-id", doc_id), ("--text", text),
                                  ("--published-at", published_at)) if v is None]
        if missing:
            raise typer.BadParameter(f"{spec!r} is not a preset ({', '.join(PRESETS)}); a file needs {missing}")
        paths = spec
    try:
        mapping = ColumnMapping(**given)
    except ValidationError as exc:
        raise UsageError(describe_validation(exc, "bad column mapping option"), hint="see `altsignal data load --help`") from exc

    rejects = Rejects()
    console = Console(stderr=True)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task(f"reading {spec}", total=None)

        def counted(frames):
            done = 0
            for df in frames:
                done += len(df)
                bar.update(task, description=f"reading {spec}: {done} documents, {len(rejects)} rejects")
                yield df

        n = write_documents(counted(iter_documents(paths, mapping, source, rejects, chunk_rows)), out, mapping.extra)
    rejects.write(rejects_path)
    typer.echo(f"{spec}: {n} documents -> {out}; {len(rejects)} rejects -> {rejects_path}")
    for reason, count in sorted(rejects.counts().items()):
        typer.echo(f"  {count:>7}  {reason}")
