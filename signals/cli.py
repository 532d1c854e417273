"""``altsignal features build|show|export``: the feature store on the command line.

    altsignal features build --scores runs/scores/ --db runs/features.duckdb
    altsignal features show --db runs/features.duckdb --entity __MARKET__ --source all --start 2016-09-01
    altsignal features export --db runs/features.duckdb --table daily_features --out out/daily.parquet

Heavy imports (duckdb, pandas, exchange_calendars) happen inside the commands so that
``altsignal --help`` stays fast.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import typer

from signals.config import DEFAULT_CONFIG

log = logging.getLogger(__name__)

features_app = typer.Typer(help="Point-in-time daily sentiment features in a DuckDB feature store.", no_args_is_help=True)


def _run(fn):
    """Turn expected failures (bad input, unknown names) into a one-line error and exit code 2."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from nlp.contracts import ContractError
        from signals.store import StoreError

        try:
            return fn(*args, **kwargs)
        except (StoreError, ContractError, FileNotFoundError, ValueError) as exc:
            log.debug("failed", exc_info=True)
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None

    return wrapper


@features_app.command("build")
@_run
def build(
    scores: str = typer.Option(..., help="Score Parquet file, folder (read recursively) or glob."),
    db: Path = typer.Option(DEFAULT_CONFIG.db_path, help="Feature store file (created if absent)."),
    as_of: Optional[str] = typer.Option(None, help="Build as known at this ISO instant with offset (default now)."),
    model_id: Optional[str] = typer.Option(None, help="Model whose scores to use when several are present."),
    ingested_at: Optional[str] = typer.Option(None, help="Stamp for score rows lacking ingested_at (default now)."),
) -> None:
    """Add score rows to the store and build a new version of the daily features."""
    import pandas as pd
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from signals.store import FeatureStore

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn()) as progress:
        with FeatureStore(db) as store:
            task = progress.add_task(f"adding scores from {scores}", total=None)
            n = store.add_scores(scores, ingested_at=pd.Timestamp(ingested_at) if ingested_at else None)
            progress.update(task, description=f"added {n:,} score rows; building features")
            feats = store.build(as_of=pd.Timestamp(as_of) if as_of else None, model_id=model_id)
            progress.update(task, description=f"built {len(feats):,} feature rows")
            counts = store.counts()
    typer.echo(f"{db}: " + ", ".join(f"{k}={v:,}" for k, v in counts.items()))


@features_app.command("show")
@_run
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

    with FeatureStore(db, read_only=True) as store:
        read = store.monthly if monthly else store.daily
        out = read(start, end, entity or None, source or None, feature or None, pd.Timestamp(as_of) if as_of else None)
    if out.empty:
        typer.echo("no feature rows for this selection")
        return
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        typer.echo(out.tail(rows).to_string(index=False))


@features_app.command("export")
@_run
def export(
    table: str = typer.Option("daily_features", help="documents, scores, daily_features or builds."),
    out: Path = typer.Option(..., help="Parquet file to write (atomically)."),
    db: Path = typer.Option(DEFAULT_CONFIG.db_path, help="Feature store file."),
    as_of: Optional[str] = typer.Option(None, help="daily_features as known at this instant (latest versions only)."),
) -> None:
    """Export one table to Parquet."""
    import pandas as pd

    from signals.store import FeatureStore

    with FeatureStore(db, read_only=True) as store:
        path = store.export(table, out, as_of=pd.Timestamp(as_of) if as_of else None)
    typer.echo(f"wrote {path}")


def register(app: typer.Typer) -> None:
    app.add_typer(features_app, name="features")
