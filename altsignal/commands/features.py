"""``altsignal features build|show|export|health``: the feature store on the command line.

    altsignal features build --scores runs/scores/ --db runs/features.duckdb
    altsignal features show --db runs/features.duckdb --entity __MARKET__ --source all --start 2016-09-01
    altsignal features export --db runs/features.duckdb --table daily_features --out out/daily.parquet

Heavy imports (duckdb, pandas, exchange_calendars) happen inside the commands so that
``altsignal --help`` stays fast. DuckDB's errors about the store file (locked, damaged) come
out of the store as ``core.errors`` classes too (:func:`signals.store.store_errors`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from signals.config import DEFAULT_CONFIG

features_app = typer.Typer(help="Point-in-time daily sentiment features in a DuckDB feature store.", no_args_is_help=True)


def _instant(value: str | None, option: str):
    """``value`` parsed as an instant (None stays None), or a usage error naming the option."""
    from core.instants import parse_instant

    return parse_instant(value, option)


@features_app.command("build")
def build(
    scores: str = typer.Option(..., help="Score Parquet file, folder (read recursively; a scoring job's --out "
                               "folder is read from its scores/) or glob."),
    db: Path = typer.Option(DEFAULT_CONFIG.db_path, help="Feature store file (created if absent)."),
    as_of: Optional[str] = typer.Option(None, help="Build as known at this ISO instant with offset (default now)."),
    model_id: Optional[str] = typer.Option(None, help="Model whose scores to use when several are present."),
    ingested_at: Optional[str] = typer.Option(None, help="Stamp for score rows lacking ingested_at (default now)."),
    feed: Optional[str] = typer.Option(None, help="Feed the rows came from, for rows without a feed column (default: "
                                       "their source). A document is identified by (feed, source, doc_id)."),
    rejects: Optional[Path] = typer.Option(None, help="Where refused score rows go, with reasons "
                                           "(default <db>.rejects.jsonl; written only when rows are refused)."),
) -> None:
    """Add score rows to the store and build a new version of the daily features, in one transaction.

    Rows already in the store are not added again; unusable rows are refused with a reason.
    """
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from core.paths import check_distinct
    from signals.store import FeatureStore, new_store, store_errors

    stamp, t = _instant(ingested_at, "--ingested-at"), _instant(as_of, "--as-of")
    rejects = rejects or db.with_name(db.name + ".rejects.jsonl")
    check_distinct({"--db": db, "--rejects": rejects}, {"--scores": [scores]})
    # store_errors: the commit itself can meet a damaged file (the methods report their own reads).
    with new_store(db), store_errors(db), Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn()) as progress:
        with FeatureStore(db) as store:
            task = progress.add_task(f"adding scores from {scores}", total=None)
            with store.transaction():  # a failed build leaves the store as it was, scores included
                added = store.add_scores(scores, ingested_at=stamp, feed=feed)
                progress.update(task, description=f"added {added.added:,} score rows; building features")
                feats = store.build(as_of=t, model_id=model_id)
            progress.update(task, description=f"built: {len(feats):,} feature rows computed")
            counts = store.counts()
    typer.echo(added.summary("score rows"))
    if len(added.rejects):
        typer.echo(f"refused rows and reasons: {added.rejects.write(rejects)}")
    typer.echo(f"{db}: " + ", ".join(f"{k}={v:,}" for k, v in counts.items()))


@features_app.command("show")
def show(
    db: Path = typer.Option(DEFAULT_CONFIG.db_path, help="Feature store file."),
    entity: list[str] = typer.Option(None, help="Entity (ticker or __MARKET__); repeatable."),
    source: list[str] = typer.Option(None, help="Source (news, social, transcript, all); repeatable."),
    feature: list[str] = typer.Option(None, help="Feature column; repeatable (default all)."),
    start: Optional[str] = typer.Option(None),
    end: Optional[str] = typer.Option(None),
    as_of: Optional[str] = typer.Option(None, help="Show what was known at this ISO instant with offset."),
    monthly: bool = typer.Option(False, help="Month-end samples instead of daily rows."),
    rows: int = typer.Option(20, help="Rows to print (the last ones)."),
) -> None:
    """Print feature rows (point-in-time as of --as-of)."""
    import pandas as pd

    from signals.store import FeatureStore

    t = _instant(as_of, "--as-of")  # options are checked before the store is opened
    with FeatureStore(db, read_only=True) as store:
        read = store.monthly if monthly else store.daily
        out = read(start, end, entity or None, source or None, feature or None, t)
    if out.empty:
        typer.echo("no feature rows for this selection")
        return
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        typer.echo(out.tail(rows).to_string(index=False))


@features_app.command("export")
def export(
    table: str = typer.Option("daily_features", help="documents, scores, daily_features or builds."),
    out: Path = typer.Option(..., "--out", "-o", help="Parquet file to write (atomically)."),
    db: Path = typer.Option(DEFAULT_CONFIG.db_path, help="Feature store file."),
    as_of: Optional[str] = typer.Option(None, help="daily_features as known at this instant (latest versions only)."),
) -> None:
    """Export one table to Parquet."""
    from core.paths import check_distinct
    from signals.store import FeatureStore

    t = _instant(as_of, "--as-of")
    check_distinct({"--out": out}, {"--db": [db]})
    with FeatureStore(db, read_only=True) as store:
        path = store.export(table, out, as_of=t)
    typer.echo(f"wrote {path}")


@features_app.command("annotate")
def annotate(
    db: Path = typer.Option(DEFAULT_CONFIG.db_path, help="Feature store whose documents and scores are annotated."),
    text_db: Path = typer.Option(..., "--text-db", help="Store of the derived sources to create (its folder gets annotations.parquet)."),
    documents: Optional[Path] = typer.Option(None, "--documents", exists=True, dir_okay=False,
                                             help="Document Parquet (`altsignal data load`) with the texts, for a store of scores only."),
    overrides: list[str] = typer.Option([], "--set", metavar="KEY=VALUE",
                                        help="Override a field of signals.annotations.AnnotationConfig, e.g. window_sessions=10."),
) -> None:
    """Novelty, event type and relevance of every document; build the store of derived sources
    (<source>.novel/.stale, one per event type, .relevant) for features, research and timing."""
    import pandas as pd

    from core.config_files import apply_overrides, validated
    from signals.annotations import AnnotationConfig, build_text_store
    from signals.store import new_store

    cfg = validated(AnnotationConfig, apply_overrides({}, overrides, AnnotationConfig), "--set")
    with new_store(text_db):
        out = build_text_store(db, text_db, cfg, documents=pd.read_parquet(documents) if documents else None)
    typer.echo(f"annotated {out['documents']:,} documents ({100 * out['stale_share']:.1f}% stale rows); "
               f"event types {out['event_types']}; wrote {text_db} and {text_db.parent / 'annotations.parquet'}")


@features_app.command("health")
def health(
    out: Path = typer.Option(..., "--out", "-o", help="Folder for health.md, health.png and the health.parquet history."),
    db: Path = typer.Option(DEFAULT_CONFIG.db_path, help="Feature store file."),
    as_of: Optional[str] = typer.Option(None, help="Check the data known at this instant (default: now)."),
    job: list[Path] = typer.Option([], "--job", help="A scoring job folder of this run: its rejects and model "
                                   "fingerprint are checked (repeatable)."),
    overrides: list[str] = typer.Option([], "--set", metavar="KEY=VALUE",
                                        help="Override a threshold of signals.health.HealthConfig, e.g. psi_breach=0.3."),
) -> None:
    """Health checks of the latest session: volume, rejects, score drift (PSI), fresh entities,
    model fingerprint. Exit 4 when a check breaches (outputs are written first)."""
    import pandas as pd

    from core.config_files import apply_overrides, validated
    from core.errors import EXIT_HEALTH
    from signals.health import HealthConfig, check_store, worst_status

    cfg = validated(HealthConfig, apply_overrides({}, overrides, HealthConfig), "--set")
    when = _instant(as_of, "--as-of") or pd.Timestamp.now(tz="UTC")
    table, report = check_store(db, when, out, job, cfg)
    status = worst_status(table)
    typer.echo(f"health of session {table['session'].iloc[0].date()}: {status} -> {report}")
    if status == "breach":
        raise typer.Exit(EXIT_HEALTH)


def register(app: typer.Typer) -> None:
    app.add_typer(features_app, name="features")
