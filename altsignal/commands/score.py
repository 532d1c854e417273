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

from altsignal import cli_options as opt
from nlp.scoring.config import EngineConfig, JobConfig

log = logging.getLogger(__name__)


def infer_mapping(files: list[Path], source: str, encoding: str):
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
        input: list[str] = typer.Option(..., "--input", "-i", help="File, folder or glob of Parquet/JSONL/CSV, or a preset (sample:news, ...) (repeatable)."),
        out: Path = typer.Option(..., "--out", "-o", help="Output folder (resumable: rerun the same command after a crash)."),
        source: str = typer.Option("auto", help="news | social | transcript | auto (from the input's columns)."),
        model: Optional[str] = typer.Option(None, help="default, fast or a model artifact folder; default: the shipped default model."),
        numeric: Optional[str] = opt.config_option(EngineConfig, "numeric", "--numeric", help=opt.NUMERIC_HELP),
        engine: Optional[str] = opt.config_option(JobConfig, "engine_kind", "--engine", help="local | ray (Ray Data; RAY_ADDRESS picks a cluster)."),
        ray_concurrency: Optional[int] = opt.config_option(JobConfig, "ray_concurrency", help="Model-holding Ray actors."),
        device: Optional[str] = opt.config_option(EngineConfig, "device", help="cpu | cuda."),
        batch_tokens: Optional[int] = opt.config_option(EngineConfig, "batch_tokens", help="Padded tokens per model call (part of the job's identity)."),
        chunk_rows: Optional[int] = typer.Option(None, help="Documents per output part (default 20000; transcripts 200)."),
        threads: Optional[int] = typer.Option(None, help="Intra-op threads (default: all cores of this process)."),
        id_col: Optional[str] = opt.ID_COL,
        text_col: Optional[str] = opt.TEXT_COL,
        time_col: Optional[str] = opt.TIME_COL,
        entities_col: Optional[str] = opt.ENTITIES_COL,
        entity_sep: Optional[str] = opt.ENTITY_SEP,
        title_col: Optional[str] = opt.TITLE_COL,
        timezone: Optional[str] = opt.TIMEZONE,
        time_format: Optional[str] = opt.TIME_FORMAT,
        encoding: Optional[str] = opt.ENCODING,
        earliest: Optional[datetime] = opt.EARLIEST,
        latest: Optional[datetime] = opt.LATEST,
        max_chars: Optional[int] = opt.config_option(JobConfig, "max_chars", help="Longer texts are rejected."),
        keep_html: bool = typer.Option(False, "--keep-html", help="Do not strip HTML tags/entities."),
        keep_non_english: bool = typer.Option(False, "--keep-non-english", help="Score texts flagged non-English."),
        no_entities: bool = typer.Option(False, "--no-entities", help="Keep only the reader's tickers."),
        no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or add to the cross-job score cache "
                                      "($ALTSIGNAL_SCORE_CACHE; rows are identical either way)."),
        embed: bool = typer.Option(False, "--embed", help="Also write document embeddings (embeddings/part-*.parquet; "
                                   "nlp.embeddings): sentence-transformers vectors of the texts as scored."),
        embed_model: Optional[str] = opt.config_option(JobConfig, "embed_model", "--embed-model",
                                                       help="Local sentence-transformers folder for --embed (never downloaded)."),
        entity_model: Optional[str] = opt.config_option(
            JobConfig, "entity_model", "--entity-model",
            help="Entity-level rows too: one per (unit, ticker it names), from this model (`entity` = the shipped one)."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    ) -> None:
        """Score documents with a sentiment model; write Score rows, document aggregates, rejects."""
        from pydantic import ValidationError

        from core.errors import UsageError, describe_validation
        from core.paths import check_distinct
        from nlp.contracts import SOURCES
        from nlp.readers.documents import PRESETS, ColumnMapping
        from nlp.readers.records import expand_paths
        from nlp.scoring.job import JobSpec, run_job

        if source != "auto" and source not in SOURCES:
            raise UsageError(f"--source {source!r} is not one of {['auto', *SOURCES]}")
        columns = opt.mapping_fields(id_col=id_col, text_col=text_col, time_col=time_col, entities_col=entities_col,
                                     entity_sep=entity_sep, title_col=title_col, timezone=timezone,
                                     time_format=time_format, encoding=encoding, earliest=earliest, latest=latest)
        options = {k: v for k, v in columns.items() if k not in ("doc_id", "text", "published_at")}
        try:  # the reading options first: the input's header is read in --encoding to infer the mapping
            reading = ColumnMapping.model_validate({"doc_id": "-", "text": "-", "published_at": "-"} | options)
        except ValidationError as exc:
            raise UsageError(describe_validation(exc, "bad reading option"), hint="see `altsignal score --help`") from exc
        # A preset names its file (sample:news is the packaged sample news), as in `data load`.
        files = expand_paths([str(PRESETS[i].path()) if i in PRESETS else i for i in input])
        check_distinct({"--out": out}, {"--input": files})
        if id_col and text_col and time_col:
            if source == "auto":
                raise typer.BadParameter("--source auto needs a recognised layout; with explicit columns name the source")
            mapping = ColumnMapping.model_validate(columns)
        else:
            source, mapping = infer_mapping(files, source, reading.encoding)
            mapping = ColumnMapping.model_validate(mapping.model_dump() | options)
        from nlp.models import model_path

        model = model_path(model)
        config = JobConfig(
            engine=EngineConfig(**opt.given(numeric=numeric, device=device, batch_tokens=batch_tokens, threads=threads)),
            **opt.given(engine_kind=engine, ray_concurrency=ray_concurrency, chunk_rows=chunk_rows, max_chars=max_chars),
            strip_html=not keep_html, flag_non_english=not keep_non_english, resolve_entities=not no_entities,
            use_cache=not no_cache, embed=embed, **opt.given(embed_model=embed_model, entity_model=entity_model),
        )
        manifest = run_job(JobSpec([str(f) for f in files], source, mapping, model, out, config), progress=not quiet)
        c = manifest["counts"]
        typer.echo(
            f"scored {c['docs_scored']:,} documents ({c['units_scored']:,} units, {c['entity_rows']:,} entity rows, "
            f"{c['units_deduplicated']:,} "
            f"deduplicated, {c['truncated']:,} truncated, {c['html_stripped']:,} HTML-stripped); rejected "
            f"{c['docs_rejected'] + c['reader_rejects']:,}; skipped {c['docs_skipped']:,} already scored "
            f"({c['chunks_skipped']} chunks) -> {out}"
        )
        if manifest["score_cache"]:
            cache = manifest["score_cache"]
            typer.echo(f"score cache: {cache['hits']:,} texts reused, {cache['misses']:,} computed ({cache['folder']})")
        for bad in manifest["unreadable_files"]:
            typer.echo(f"skipped {bad['path']}: {bad['reason']}")
        if manifest["reject_reasons"]:
            typer.echo(f"reject reasons: {manifest['reject_reasons']} (details in {out / 'rejects.jsonl'})")
        if manifest["reject_reasons"].get("undecodable bytes"):
            typer.echo(f"hint: some rows are not valid {mapping.encoding} text; if the input has another encoding "
                       "(e.g. latin-1, cp1252), pass --encoding")
