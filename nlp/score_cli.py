"""``altsignal score``: batch-score documents into Parquet (see nlp.scoring.job for the layout).

Heavy imports (torch, transformers, ray) happen inside the command so ``altsignal --help`` stays
fast.
"""
from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Optional

import typer

log = logging.getLogger(__name__)


def infer_mapping(files: list[Path], source: str, encoding: str = "utf-8"):
    """(source, ColumnMapping) of the first preset whose columns the input has (``source`` may be auto)."""
    from nlp.readers.documents import PRESETS
    from nlp.readers.records import input_columns

    cols = set(input_columns(files[0], encoding))
    for name, preset in PRESETS.items():
        if (source in ("auto", preset.source)) and set(preset.mapping.source_columns()) <= cols:
            log.info("input columns match preset %r: source=%s", name, preset.source)
            return preset.source, preset.mapping
    raise typer.BadParameter(
        f"cannot infer the column mapping of {files[0]} (columns {sorted(cols)}); pass --source and "
        "--id-col/--text-col/--time-col (and --entities-col, --timezone as needed)"
    )


def register(app: typer.Typer) -> None:
    @app.command("score")
    def score(
        input: list[str] = typer.Option(..., "--input", "-i", help="File, folder or glob of Parquet/JSONL/CSV (repeatable)."),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder (resumable: rerun the same command after a crash)."),
        source: str = typer.Option("auto", help="news | social | transcript | auto (from the input's columns)."),
        model: Optional[str] = typer.Option(None, help="default, fast or a model artifact folder; default: the shipped default model."),
        numeric: str = typer.Option("auto", help="auto | fp32 | bf16 | int8 | compile (bf16 through torch.compile) | fp16 (GPU). auto = fastest path that passed the accuracy check."),
        engine: str = typer.Option("local", help="local | ray (Ray Data; RAY_ADDRESS picks a cluster)."),
        ray_concurrency: int = typer.Option(2, help="Model-holding Ray actors."),
        device: str = typer.Option("cpu", help="cpu | cuda."),
        batch_tokens: int = typer.Option(4096, help="Padded tokens per model call (part of the job's identity)."),
        chunk_rows: Optional[int] = typer.Option(None, help="Documents per output part (default 20000; transcripts 200)."),
        threads: Optional[int] = typer.Option(None, help="Intra-op threads (default: all cores of this process)."),
        id_col: Optional[str] = typer.Option(None, help="Column mapping: document id column."),
        text_col: Optional[str] = typer.Option(None, help="Column mapping: text column."),
        time_col: Optional[str] = typer.Option(None, help="Column mapping: publication time column."),
        entities_col: Optional[str] = typer.Option(None, help="Column mapping: ticker(s) column."),
        entity_sep: Optional[str] = typer.Option(None, help="Separator inside the ticker column, e.g. ';'."),
        title_col: Optional[str] = typer.Option(None),
        timezone: Optional[str] = typer.Option(None, help="Zone of naive timestamps (else they are rejected)."),
        time_format: Optional[str] = typer.Option(None, help="strptime layout when times are not ISO-8601."),
        encoding: str = typer.Option("utf-8", help="Encoding of CSV/JSONL files without a byte-order mark (e.g. latin-1)."),
        earliest: Optional[datetime] = typer.Option(None, formats=["%Y-%m-%d"], help="Reject published_at before this day (default 1990-01-01)."),
        latest: Optional[datetime] = typer.Option(None, formats=["%Y-%m-%d"], help="Reject published_at after this day (default: a day after the job started)."),
        max_chars: int = typer.Option(100_000, help="Longer texts are rejected."),
        keep_html: bool = typer.Option(False, "--keep-html", help="Do not strip HTML tags/entities."),
        keep_non_english: bool = typer.Option(False, "--keep-non-english", help="Score texts flagged non-English."),
        no_entities: bool = typer.Option(False, "--no-entities", help="Keep only the reader's tickers."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    ) -> None:
        """Score documents with a sentiment model; write Score rows, document aggregates, rejects."""
        from pydantic import ValidationError

        from nlp.contracts import SOURCES
        from nlp.errors import UsageError, describe_validation
        from nlp.readers.documents import ColumnMapping
        from nlp.readers.records import expand_paths
        from nlp.scoring.config import EngineConfig, JobConfig
        from nlp.scoring.job import JobSpec, run_job

        if source != "auto" and source not in SOURCES:
            raise UsageError(f"--source {source!r} is not one of {['auto', *SOURCES]}")
        options = {k: v for k, v in {
            "entities": entities_col, "entity_sep": entity_sep, "title": title_col, "timezone": timezone,
            "time_format": time_format, "encoding": encoding, "earliest": earliest and earliest.date(),
            "latest": latest and latest.date()}.items() if v is not None}
        try:  # the reading options first: the input's header is read in --encoding to infer the mapping
            ColumnMapping.model_validate({"doc_id": "-", "text": "-", "published_at": "-"} | options)
        except ValidationError as exc:
            raise UsageError(describe_validation(exc, "bad reading option"), hint="see `altsignal score --help`") from exc
        files = expand_paths(input)
        if id_col and text_col and time_col:
            if source == "auto":
                raise typer.BadParameter("--source auto needs a recognised layout; with explicit columns name the source")
            mapping = ColumnMapping.model_validate({"doc_id": id_col, "text": text_col, "published_at": time_col} | options)
        else:
            source, mapping = infer_mapping(files, source, encoding)
            mapping = ColumnMapping.model_validate(mapping.model_dump() | options)
        from nlp.models import model_path

        model = model_path(model)
        config = JobConfig(
            engine=EngineConfig(numeric=numeric, device=device, batch_tokens=batch_tokens, threads=threads),
            engine_kind=engine, ray_concurrency=ray_concurrency, chunk_rows=chunk_rows, max_chars=max_chars,
            strip_html=not keep_html, flag_non_english=not keep_non_english, resolve_entities=not no_entities,
        )
        manifest = run_job(JobSpec([str(f) for f in files], source, mapping, model, out, config), progress=not quiet)
        c = manifest["counts"]
        typer.echo(
            f"scored {c['docs_scored']:,} documents ({c['units_scored']:,} units, {c['units_deduplicated']:,} "
            f"deduplicated, {c['truncated']:,} truncated, {c['html_stripped']:,} HTML-stripped); rejected "
            f"{c['docs_rejected'] + c['reader_rejects']:,}; skipped {c['docs_skipped']:,} already scored "
            f"({c['chunks_skipped']} chunks) -> {out}"
        )
        for bad in manifest["unreadable_files"]:
            typer.echo(f"skipped {bad['path']}: {bad['reason']}")
        if manifest["reject_reasons"]:
            typer.echo(f"reject reasons: {manifest['reject_reasons']} (details in {out / 'rejects.jsonl'})")
        if manifest["reject_reasons"].get("undecodable bytes"):
            typer.echo(f"hint: some rows are not valid {mapping.encoding} text; if the input has another encoding "
                       "(e.g. latin-1, cp1252), pass --encoding")
