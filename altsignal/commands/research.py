"""``altsignal research ...``: what the text features are worth against returns.

    altsignal research store --scores runs/scores_tweets --db runs/research/tweets.duckdb
    altsignal research tearsheet --db runs/research/tweets.duckdb --source social --feature tone
    altsignal research market --db runs/research/tweets.duckdb --source social --feature tone
    altsignal research events --db runs/research/calls.duckdb --source transcript --feature mean_score
    altsignal research stocknet --db runs/research/tweets.duckdb
    altsignal research events-eval --split test --out runs/research/events_eval

Each command writes ``<out>/report.md`` (``events-eval``: ``events_eval.md`` and ``.json``) with PNG figures and Parquet tables and prints one JSON line
last. Heavy imports happen inside the commands so that ``altsignal --help`` stays fast.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

research_app = typer.Typer(help="Signal research: tear sheets, market tests, event studies, the StockNet benchmark.",
                           no_args_is_help=True)

_DB = typer.Option(..., help="Feature store built with `altsignal research store` (or `features build`).")
_PRICES = typer.Option("stock_prices", help="stock_prices | stocknet (shared datasets) | a Parquet/CSV with date, ticker, close.")
_MARKET = typer.Option(None, help="Market index file in Yahoo layout (default: the shared vix_and_market/^GSPC.csv).")
_ENTRY = typer.Option("close", help="close (default): enter at the first close strictly after known_at; open: at the open of "
                      "the session whose --open-cutoff comes after known_at; at: loosened close entry, at or after known_at.")
_OPEN_CUTOFF = typer.Option("09:30", help="Open entry: text known before this New York time trades at that day's open "
                            "(09:00 = Ke, Kelly & Xiu), else at the next open.")
_START = typer.Option(None, help="First feature date (ISO).")
_END = typer.Option(None, help="Last feature date (ISO).")


def _config(entry: str, open_cutoff: str = "09:30", **sections):
    from pydantic import ValidationError

    from core.errors import UsageError
    from signals.research.config import DEFAULT_RESEARCH, EntryConfig

    if entry not in ("close", "open", "at"):
        raise UsageError(f"--entry must be close, open or at, got {entry!r}")
    try:
        rule = EntryConfig(price="open" if entry == "open" else "close", rule="at" if entry == "at" else "after",
                           open_cutoff=open_cutoff)
    except ValidationError as exc:
        raise UsageError(f"--open-cutoff {open_cutoff}: {exc.errors()[0]['msg']}") from None
    update = {"entry": rule}
    for name, values in sections.items():
        update[name] = getattr(DEFAULT_RESEARCH, name).model_copy(update=values)
    return DEFAULT_RESEARCH.model_copy(update=update)


def _close_only(cfg, command: str, why: str) -> None:
    from core.errors import UsageError

    if cfg.entry.price == "open":
        raise UsageError(f"research {command} has no open entry: {why}", hint="use --entry close (or at)")


def _provider(db: Path):
    from core.errors import UsageError
    from signals.provider import FeatureProvider

    if not db.exists():
        raise UsageError(f"feature store {db} not found", hint="build it with `altsignal research store --scores ... --db ...`")
    return FeatureProvider(db, market_source=None, macro_source=None)


def _prices(provider, source: str, market: Optional[Path], start, end, pad_before: int, pad_after: int, cfg):
    import pandas as pd

    from nlp.contracts import MARKET_ENTITY
    from signals.research.prices import load_prices

    first, last = provider.store.date_span()
    lo = pd.Timestamp(start) if start else first
    hi = pd.Timestamp(end) if end else last
    tickers = [e for e in provider.store.entities() if e != MARKET_ENTITY]
    return load_prices(source, tickers, lo - pd.Timedelta(days=pad_before), hi + pd.Timedelta(days=pad_after), market, cfg)


def _finish(report, summary: dict, out: Path) -> None:
    from signals.research.report import summary_line

    path = report.write(out)
    typer.echo(f"report: {path}")
    typer.echo(summary_line(summary))


@research_app.command("store")
def store(
    scores: list[Path] = typer.Option(..., help="Score output folder of `altsignal score` (repeatable)."),
    db: Path = typer.Option(..., help="Feature store to create or extend."),
    arrival: str = typer.Option("published", help="published: documents known when published (backfill); now: keep the scorer's ingested_at."),
    cutoff: Optional[str] = typer.Option(None, help="Document cut-off of each session, HH:MM New York (default 16:00; 09:00 or "
                                         "09:30 dates pre-open news to that day, for --entry open). Use a new --db per cut-off."),
) -> None:
    """Build a feature store from score folders (a backfill takes each document as known when published)."""
    from signals.research.runs import store_from_scores

    counts = store_from_scores([str(s) for s in scores], db, arrival, cutoff)
    typer.echo(f"{db}: " + ", ".join(f"{k}={v:,}" for k, v in counts.items()))


@research_app.command("sample-calls")
def sample_calls(
    input: Path = typer.Option(None, help="Transcripts Parquet (default: the shared MAEC calls)."),
    per_call: int = typer.Option(16, min=1, help="Sentences (lines) kept per call, evenly spaced."),
    out: Path = typer.Option(..., "--out", "-o", help="Parquet file to write (same columns, shorter text)."),
) -> None:
    """Keep evenly spaced sentences of each call, so a whole corpus can be scored on a CPU budget."""
    from core.paths import dataset_path
    from signals.research.sampling import sample_file

    n = sample_file(input or dataset_path("earnings_transcripts", "maec_transcripts.parquet"), out, per_call)
    typer.echo(f"wrote {n:,} calls with at most {per_call} sentences each -> {out}")


@research_app.command("lexicon")
def lexicon(
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the Score rows (then `research store --scores` it)."),
    preset: str = typer.Option("transcripts", help="Document preset to read: transcripts (MAEC), social (StockNet), news."),
    method: str = typer.Option("lm", help="lm (Loughran-McDonald net tone, for calls) | vader (for social media) | "
                               "sestm (a model of `altsignal models train-sestm`, see --model)."),
    model: Optional[Path] = typer.Option(None, help="SESTM model folder (--method sestm): only documents published after "
                                         "its training period are scored."),
) -> None:
    """Whole-document lexicon (or SESTM) tone as Score rows, one unit per document."""
    from core.atomic import atomic_path
    from core.rejects import Rejects
    from nlp.readers.documents import load_preset
    from signals.research.lexicon import lexicon_scores

    if method not in ("lm", "vader", "sestm"):
        raise typer.BadParameter(f"--method must be lm, vader or sestm, got {method!r}")
    if (method == "sestm") != (model is not None):
        raise typer.BadParameter("--model goes with --method sestm, and --method sestm needs --model")
    rejects = Rejects()
    docs = load_preset(preset, rejects)
    refused = 0
    if method == "sestm":
        from nlp.registry import scorers
        from signals.research.sestm import sestm_scores

        rows, refused = sestm_scores(docs, scorers.get("sestm").load(model))
    else:
        rows = lexicon_scores(docs, method)
    folder = out / "scores" / f"source={docs['source'].iloc[0]}"
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / "part-0.parquet") as tmp:
        rows.to_parquet(tmp, index=False)
    typer.echo(f"scored {len(rows):,} documents with {method} ({len(rejects)} rejected: {rejects.counts()}"
               + (f"; {refused:,} published inside or before the model's training period not scored" if method == "sestm" else "")
               + f") -> {out}")


@research_app.command("tearsheet")
def tearsheet(
    db: Path = _DB,
    source: str = typer.Option("social", help="Feature source: news, social, transcript or all."),
    feature: list[str] = typer.Option(["tone", "mean_score", "abnormal_volume"], help="Feature column (repeatable)."),
    prices: str = _PRICES, market: Optional[Path] = _MARKET, start: Optional[str] = _START, end: Optional[str] = _END,
    entry: str = _ENTRY, open_cutoff: str = _OPEN_CUTOFF,
    out: Path = typer.Option(Path("runs/research/tearsheet"), "--out", "-o", help="Report folder."),
) -> None:
    """Cross-sectional tear sheet (IC, rank IC, decay, quantiles, turnover, coverage) of per-ticker features."""
    from signals.research.runs import tearsheet_report

    cfg = _config(entry, open_cutoff)
    provider = _provider(db)
    px = _prices(provider, prices, market, start, end, 10, 45, cfg)
    report, summary = tearsheet_report(provider, px, source, feature, start, end, cfg)
    _finish(report, summary, out)


@research_app.command("books")
def books(
    db: Path = _DB,
    source: str = typer.Option("news", help="Feature source: news, social, transcript or a derived source."),
    feature: str = typer.Option("tone", help="Per-entity feature column that ranks the names."),
    prices: str = _PRICES, market: Optional[Path] = _MARKET, start: Optional[str] = _START, end: Optional[str] = _END,
    entry: str = _ENTRY, open_cutoff: str = _OPEN_CUTOFF,
    top: int = typer.Option(0, min=0, help="Names per side (0: use --quantiles)."),
    quantiles: int = typer.Option(5, min=2, help="Long the top and short the bottom of this many quantiles (when --top 0)."),
    min_entities: int = typer.Option(5, min=2, help="Sessions with fewer valued names form no book."),
    weighting: str = typer.Option("equal", help="equal | value (trailing dollar volume, a liquidity proxy)."),
    holding: int = typer.Option(1, min=1, help="Sessions each day's book is held (overlapping books averaged)."),
    cost_bps: float = typer.Option(10.0, min=0, help="Cost in bps per unit of traded weight."),
    factors: Optional[Path] = typer.Option(None, help="Ken French daily files folder for the alpha (default: the shared fama_french)."),
    out: Path = typer.Option(Path("runs/research/books"), "--out", "-o", help="Report folder."),
) -> None:
    """Daily long-short books on a per-entity feature: net Sharpe, Newey-West t, turnover, legs, FF alpha, splits."""
    from core.errors import UsageError
    from core.paths import dataset_path
    from signals.market import load_french
    from signals.research.runs import books_report

    if weighting not in ("equal", "value"):
        raise UsageError(f"--weighting must be equal or value, got {weighting!r}")
    cfg = _config(entry, open_cutoff, books={"top": top, "quantiles": quantiles, "min_entities": min_entities, "weighting": weighting,
                                              "holding": holding, "cost_bps": cost_bps})
    provider = _provider(db)
    px = _prices(provider, prices, market, start, end, 120, 30, cfg)
    ff = load_french("daily", factors or dataset_path("fama_french"))
    report, summary = books_report(provider, px, source, feature, start, end, cfg, ff)
    _finish(report, summary, out)


@research_app.command("market")
def market(
    db: Path = _DB,
    source: list[str] = typer.Option(["all"], help="Feature source (repeatable)."),
    feature: list[str] = typer.Option(["tone", "mean_score", "abnormal_volume"], help="Feature column (repeatable)."),
    factors: Optional[Path] = typer.Option(None, help="Ken French daily files folder (default: the shared fama_french)."),
    start: Optional[str] = _START, end: Optional[str] = _END, entry: str = _ENTRY,
    min_train: int = typer.Option(252, help="Sessions before the first out-of-sample forecast."),
    out: Path = typer.Option(Path("runs/research/market"), "--out", "-o", help="Report folder."),
) -> None:
    """Predictive regressions of next-day / next-week market and factor returns on market-wide features."""
    from core.paths import dataset_path
    from signals.market import load_french
    from signals.research.runs import market_report

    cfg = _config(entry, market={"min_train": min_train})
    _close_only(cfg, "market", "the factor returns are close to close")
    provider = _provider(db)
    ff = load_french("daily", factors or dataset_path("fama_french"))
    report, summary = market_report(provider, ff, source, feature, start, end, cfg)
    _finish(report, summary, out)


def _window(text: str) -> tuple[int, int]:
    try:
        lo, hi = (int(v) for v in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"a window is 'first,last' event days, e.g. 0,1; got {text!r}") from None
    return lo, hi


@research_app.command("events")
def events(
    db: Path = _DB,
    source: str = typer.Option("transcript", help="transcript (each call is an event), news (bursts, see --burst-z), or a "
                               "derived source of `features annotate` such as news.analyst_up (each row is an event)."),
    feature: str = typer.Option("mean_score", help="Tone column that sorts events into groups."),
    window: list[str] = typer.Option(["0,1", "2,20", "2,60", "-2,-1"], help="Event-day window 'first,last' after entry (repeatable)."),
    burst_z: Optional[float] = typer.Option(None, help="News bursts: rows whose abnormal_volume exceeds this (default for news: 2)."),
    prices: str = _PRICES, market: Optional[Path] = _MARKET, start: Optional[str] = _START, end: Optional[str] = _END,
    entry: str = _ENTRY, open_cutoff: str = _OPEN_CUTOFF,
    out: Path = typer.Option(Path("runs/research/events"), "--out", "-o", help="Report folder."),
) -> None:
    """Event study: CAR after document events by tone tercile, top-minus-bottom test clustered by date."""
    from signals.research.runs import event_frame, event_report

    cfg = _config(entry, open_cutoff, events={"windows": tuple(_window(w) for w in window)})
    provider = _provider(db)
    # a derived source (signals.annotations: news.analyst_up, news.novel, ...) is its own event: every row
    if source != "transcript" and "." not in source and burst_z is None:
        burst_z = cfg.events.news_burst_z
    ev = event_frame(provider, source, feature, start, end, burst_z)
    px = _prices(provider, prices, market, start, end, 450, 130, cfg)
    report, summary = event_report(ev, px, f"Event study: {source} events by {feature} group", cfg)
    _finish(report, summary, out)


@research_app.command("stocknet")
def stocknet(
    db: Path = _DB,
    prices: str = typer.Option("stocknet", help="Price source for labels and price features (the paper used StockNet's adjusted closes)."),
    market: Optional[Path] = _MARKET, entry: str = _ENTRY,
    out: Path = typer.Option(Path("runs/research/stocknet"), "--out", "-o", help="Report folder."),
) -> None:
    """StockNet benchmark: binary next-day movement from 5 sessions of tweets and prices (paper splits)."""
    import pandas as pd

    from core.errors import UsageError
    from signals.research.runs import stocknet_report

    cfg = _config(entry)
    _close_only(cfg, "stocknet", "the benchmark's labels are close-to-close movements")
    sc = cfg.stocknet
    provider = _provider(db)
    start, end = pd.Timestamp(sc.train[0]) - pd.Timedelta(days=30), pd.Timestamp(sc.test[1])
    rows = provider.daily(start, end, sources=["social"]).reset_index()
    if rows.empty:
        raise UsageError(f"{db} has no social (tweet) rows between {start.date()} and {end.date()}")
    text = rows[["date", "entity", "known_at", "n_docs", "mean_score", "tone", "share_pos", "share_neg"]]
    px = _prices(provider, prices, market, str(start.date()), str(end.date()), 0, 0, cfg)
    report, summary = stocknet_report(px, text, cfg)
    _finish(report, summary, out)


@research_app.command("events-eval")
def events_eval(
    split: str = typer.Option("test", help="Labeled split to score: dev (tuning) or test (report once)."),
    min_similarity: Optional[float] = typer.Option(None, help="Prototype cosine below which a text is 'other' (default: nlp.events.DEFAULT_MIN_SIMILARITY)."),
    out: Path = typer.Option(Path("runs/research/events_eval"), "--out", "-o", help="Report folder (events_eval.md, events_eval.json)."),
) -> None:
    """Event typing (rules, prototypes, both, majority) on the hand-labeled news/tweet sample in corpora/events."""
    import json

    from core.errors import UsageError
    from nlp.events import DEFAULT_MIN_SIMILARITY, events_eval_report

    if split not in ("dev", "test"):
        raise UsageError(f"--split must be dev or test, got {split!r}")
    summary = events_eval_report(split, out, DEFAULT_MIN_SIMILARITY if min_similarity is None else min_similarity)
    typer.echo(f"report: {out / 'events_eval.md'}")
    typer.echo(json.dumps({"split": split, "n": summary["n"], "macro_f1": summary["macro_f1"], "accuracy": summary["accuracy"]}))


def register(app: typer.Typer) -> None:
    app.add_typer(research_app, name="research")
