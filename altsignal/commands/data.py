"""``altsignal data``: read any supported source into Documents, and write the split manifests.

    altsignal data splits                  # corpora/splits/{fpb,tfns,finentity,sentfin}.json + duplicate counts
    altsignal data splits --check          # verify the committed manifests against the data
    altsignal data load news --out news.parquet --rejects news.rejects.jsonl
    altsignal data load my.csv --source news --id-col id --text-col headline \\
        --time-col time --timezone America/New_York --out x.parquet --rejects r.jsonl

The column-mapping options are ``altsignal score``'s (``altsignal.cli_options``); the spellings used
before (``--doc-id``, ``--text``, ``--published-at``, ``--entities``, ``--title``, ``--publisher``,
``--url``, and ``splits --out-dir``) still work until 0.2, hidden and deprecated.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Optional

import typer

from altsignal import cli_options as opt
from altsignal.renames import renamed_option

data_app = typer.Typer(help="Read, validate and split datasets.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")


@data_app.command("splits")
def splits_cmd(
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder for the manifests (default corpora/splits)."),
    check: bool = typer.Option(False, "--check", help="Only verify the committed manifests; exit 2 on a mismatch."),
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", hidden=True),
) -> None:
    """Compute the canonical splits, write their manifests and print duplicate counts and sizes."""
    from rich.console import Console
    from rich.table import Table

    from nlp import splits

    out = renamed_option(out, out_dir, "--out", "--out-dir")
    console = Console()
    if check:
        for name in splits.SETS:
            splits.verify_manifest(name)  # a mismatch is a SplitManifestError: one line, exit 2
            console.print(f"{name}: manifest matches the data")
        return
    for name in splits.SETS:
        path = splits.write_manifest(name, out)
        console.print(f"wrote {path}")
    fpb, tfns = splits.build_manifest("fpb"), splits.build_manifest("tfns")
    table = Table("set", "rows", "dups", "conflicts", "train", "valid.", "test")
    for level, s in fpb["levels"].items():
        table.add_row(f"fpb:{level}", str(s["rows_in_file"]), str(s["exact_duplicate_groups"]),
                      str(s["conflicting_label_groups"]), *(str(s["splits"][k]["rows"]) for k in splits.SPLITS))
    table.add_row("tfns", f"{tfns['rows_in_file']['train']}+{tfns['rows_in_file']['valid']}",
                  str(sum(tfns["exact_duplicate_groups"].values())), "0",
                  *(str(tfns["splits"][k]["rows"]) for k in splits.SPLITS))
    for name in splits.ENTITY_SETS:
        m = splits.build_manifest(name)
        table.add_row(f"{name} (entity rows)", str(m["rows_in_file"]), "-", str(m["conflicting_label_rows_dropped"]),
                      *(str(m["splits"][k]["rows"]) for k in splits.SPLITS))
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
    out: Path = typer.Option(..., "--out", "-o", help="Document Parquet to write (atomically)."),
    rejects_path: Path = typer.Option(..., "--rejects", help="JSONL file for rejected rows."),
    source: Optional[str] = typer.Option(None, help="Document source: news, social or transcript (a preset's own by default)."),
    id_col: Optional[str] = opt.ID_COL,
    text_col: Optional[str] = opt.TEXT_COL,
    time_col: Optional[str] = opt.TIME_COL,
    entities_col: Optional[str] = opt.ENTITIES_COL,
    entity_sep: Optional[str] = opt.ENTITY_SEP,
    cashtags: Optional[bool] = typer.Option(None, "--cashtags/--no-cashtags", help="Also take $TICKERS from the text."),
    title_col: Optional[str] = opt.TITLE_COL,
    publisher_col: Optional[str] = typer.Option(None, help="Publisher column."),
    url_col: Optional[str] = typer.Option(None, help="URL column."),
    timezone: Optional[str] = opt.TIMEZONE,
    date_only: Optional[str] = typer.Option(None, help="Dates without a time: end_of_day, start_of_day or reject."),
    time_format: Optional[str] = opt.TIME_FORMAT,
    extra: Optional[str] = typer.Option(None, help="Extra columns to carry, ','-separated."),
    encoding: Optional[str] = opt.ENCODING,
    earliest: Optional[datetime] = opt.EARLIEST,
    latest: Optional[datetime] = opt.LATEST,
    chunk_rows: int = typer.Option(50_000, min=1, help="Rows per streamed chunk."),
    doc_id: Optional[str] = typer.Option(None, "--doc-id", hidden=True),
    text: Optional[str] = typer.Option(None, "--text", hidden=True),
    published_at: Optional[str] = typer.Option(None, "--published-at", hidden=True),
    entities: Optional[str] = typer.Option(None, "--entities", hidden=True),
    title: Optional[str] = typer.Option(None, "--title", hidden=True),
    publisher: Optional[str] = typer.Option(None, "--publisher", hidden=True),
    url: Optional[str] = typer.Option(None, "--url", hidden=True),
) -> None:
    """Read a source into Document Parquet plus a rejects file; print the counts."""
    from pydantic import ValidationError
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from core.errors import UsageError, describe_validation
    from core.paths import check_distinct
    from core.rejects import Rejects
    from nlp.readers.documents import PRESETS, ColumnMapping, iter_documents, write_documents
    from nlp.readers.records import expand_paths

    id_col = renamed_option(id_col, doc_id, "--id-col", "--doc-id")
    text_col = renamed_option(text_col, text, "--text-col", "--text")
    time_col = renamed_option(time_col, published_at, "--time-col", "--published-at")
    fields = opt.mapping_fields(
        id_col=id_col, text_col=text_col, time_col=time_col,
        entities_col=renamed_option(entities_col, entities, "--entities-col", "--entities"), entity_sep=entity_sep,
        title_col=renamed_option(title_col, title, "--title-col", "--title"), timezone=timezone,
        time_format=time_format, encoding=encoding, earliest=earliest, latest=latest, cashtags=cashtags,
        publisher=renamed_option(publisher_col, publisher, "--publisher-col", "--publisher"),
        url=renamed_option(url_col, url, "--url-col", "--url"), date_only=date_only,
        extra=tuple(extra.split(",")) if extra else None)
    if spec in PRESETS:
        preset = PRESETS[spec]
        fields = {**preset.mapping.model_dump(), **fields}
        paths, source = preset.path(), source or preset.source
    else:
        missing = [o for o, v in (("--source", source), ("--id-col", id_col), ("--text-col", text_col),
                                  ("--time-col", time_col)) if v is None]
        if missing:
            raise typer.BadParameter(f"{spec!r} is not a preset ({', '.join(PRESETS)}); a file needs {missing}")
        paths = spec
    try:
        mapping = ColumnMapping(**fields)
    except ValidationError as exc:
        raise UsageError(describe_validation(exc, "bad column mapping option"), hint="see `altsignal data load --help`") from exc

    check_distinct({"--out": out, "--rejects": rejects_path}, {"the input": expand_paths(paths)})
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
