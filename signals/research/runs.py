"""Research runs: a FeatureProvider and a price source in, a :class:`Report` and a summary out.

Each ``*_report`` function reads its features through the provider (point-in-time rows with
``known_at``), runs one analysis and returns ``(report, summary)``; the CLI writes the report and
prints the summary as its final JSON line.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import UsageError
from nlp.contracts import MARKET_ENTITY
from signals.provider import FeatureProvider
from signals.research.books import books
from signals.research.config import DEFAULT_RESEARCH, ResearchConfig
from signals.research.events import MODELS, event_study, window_label
from signals.research.market_test import market_test
from signals.research.prices import Prices
from signals.research.report import Report, band_plot, bar_plot, line_plot
from signals.research.stocknet import run_benchmark
from signals.research.tearsheet import tear_sheet


def entry_note(cfg: ResearchConfig) -> str:
    """The entry rule in words, for every report's header."""
    e = cfg.entry
    if e.price == "open":
        return (f"a row known before {e.open_cutoff} {cfg.sessions.tz} of a session enters at that session's open, "
                "otherwise at the next session's open; returns run open to open")
    if e.rule == "at":
        return "LOOSENED RULE: a row enters at the first close at or after its `known_at`"
    return "a row known at `known_at` enters at the close of the first session strictly after it"


def store_from_scores(scores: list[str | Path], db: str | Path, arrival: str = "published",
                      cutoff: str | None = None) -> dict:
    """Build a feature store from score folders (``altsignal score`` outputs, or any folder of Score
    Parquet files, read recursively). ``arrival="published"``: a historical backfill whose documents
    are taken as known when published (the public sets carry no arrival times). ``cutoff``: the
    sessions' document cut-off (HH:MM New York; default 16:00); a store cut at 09:00 dates each
    session's news from 09:00 the day before, so its rows trade at that session's open (KKX)."""
    import pyarrow.parquet as pq

    from signals.config import DEFAULT_CONFIG
    from signals.store import FeatureStore

    if arrival not in ("published", "now"):
        raise UsageError(f"arrival must be 'published' or 'now', got {arrival!r}")
    cfg = DEFAULT_CONFIG
    if cutoff is not None:
        cfg = cfg.model_copy(update={"sessions": type(cfg.sessions).model_validate({**cfg.sessions.model_dump(), "cutoff": cutoff})})
    with FeatureStore(db, cfg) as store:
        for folder in map(Path, scores):
            root = folder / "scores" if (folder / "scores").is_dir() else folder
            files = sorted(root.rglob("*.parquet"))
            if not files:
                raise UsageError(f"no Score Parquet files under {root}")
            frame = pd.concat([pq.read_table(f, partitioning=None).to_pandas() for f in files], ignore_index=True)
            if arrival == "published":
                frame["ingested_at"] = frame["published_at"]
            store.add_scores(frame)
        store.build()
        return store.counts()


def feature_rows(provider: FeatureProvider, source: str, feature: str, start=None, end=None,
                 entities=None) -> pd.DataFrame:
    """Long rows (``date``, ``entity``, ``value``, ``known_at``, ``event_age``) of one feature of one source."""
    daily = provider.daily(start, end, entities=entities, sources=[source]).reset_index()
    if feature not in daily.columns:
        raise UsageError(f"unknown feature {feature!r}; available: {[c for c in daily.columns if c not in ('date', 'entity', 'source', 'known_at', 'event_age')]}")
    if daily.empty:
        raise UsageError(f"the feature store has no {source!r} rows between {start} and {end}")
    return daily.rename(columns={feature: "value"})[["date", "entity", "value", "known_at", "event_age"]]


def _header(report: Report, prices: Prices | None, cfg: ResearchConfig) -> None:
    report.text(f"Entry rule: {entry_note(cfg)}. Event day k / horizon h count sessions from that "
                "entry; anything before it is labeled *not tradable*.")
    if prices is not None:
        report.counts("Price data issues", prices.issues)
        if len(prices.flags):
            report.table("flagged_moves", prices.flags, show=False)
            report.text(f"{len(prices.flags)} daily moves beyond +/-{cfg.prices.max_abs_daily_return:.0%} are set to NaN "
                        "(list: `tables/flagged_moves.parquet`).")
        if prices.missing_tickers:
            report.text(f"Tickers without prices: {', '.join(prices.missing_tickers[:30])}"
                        f"{' ...' if len(prices.missing_tickers) > 30 else ''}")


def tearsheet_report(provider: FeatureProvider, prices: Prices, source: str, features: list[str], start=None, end=None,
                     cfg: ResearchConfig = DEFAULT_RESEARCH) -> tuple[Report, dict]:
    report = Report(f"Tear sheet: {source} features")
    _header(report, prices, cfg)
    rows, summary = [], {"report": "tearsheet", "source": source}
    for feature in features:
        feat = feature_rows(provider, source, feature, start, end)
        feat = feat[feat["entity"] != MARKET_ENTITY]
        ts = tear_sheet(feat, prices, cfg)
        report.text(f"## {feature}")
        report.counts(f"{feature}: rows", ts.counts)
        if ts.counts["rows_used"] == 0:
            why = ("has a value" if ts.counts["rows_without_value"] == ts.counts["feature_rows"]
                   else "has a price at its entry session")
            report.text(f"**No overlap**: none of the {ts.counts['feature_rows']} rows of {feature} {why}.")
            continue
        report.table(f"{feature}_summary", ts.summary)
        report.table(f"{feature}_ic", ts.ic.reset_index(), show=False)
        report.table(f"{feature}_quantiles", ts.quantiles.reset_index())
        report.table(f"{feature}_decay", ts.decay.reset_index(), show=False)
        report.table(f"{feature}_daily", ts.daily.reset_index(), show=False)
        report.text(f"Coverage {ts.daily['coverage'].mean():.1f} entities per session with data; top-quantile turnover "
                    f"{ts.daily['top_turnover'].mean():.2f}; rank autocorrelation {ts.daily['rank_autocorr'].mean():.2f}.")
        h1 = min(cfg.tearsheet.horizons)
        roll = ts.ic[[f"rank_ic_{h}" for h in cfg.tearsheet.horizons]].rolling(63, min_periods=20).mean()
        report.figure(f"{feature}_ic", line_plot(roll, f"{feature}: rank IC, 63-session mean", "rank IC"))
        report.figure(f"{feature}_decay", bar_plot(ts.decay["mean_rank_ic"], f"{feature}: rank IC decay", "mean rank IC"))
        report.figure(f"{feature}_quantiles", bar_plot(ts.quantiles, f"{feature}: mean forward return by quantile", "return"))
        report.figure(f"{feature}_spread", line_plot(ts.spread[f"spread_{h1}"].fillna(0).cumsum().to_frame(),
                                                     f"{feature}: cumulative top-minus-bottom ({h1}-session)", "sum of returns"))
        tradable = ts.summary[ts.summary["tradable"]]
        for _, r in tradable.iterrows():
            rows.append({"feature": feature, "horizon": int(r["horizon"]), "rank_ic": r["mean_rank_ic"], "t": r["t_rank_ic"],
                         "sessions": int(r["sessions"])})
    if rows:
        best = best_ic(rows, cfg.tearsheet.min_sessions)
        summary["features"] = len(features)
        if best is not None:
            summary.update(best_feature=best["feature"], best_horizon=best["horizon"], best_rank_ic=best["rank_ic"],
                           best_t=best["t"])
        report.table("ic_overview", pd.DataFrame(rows), show=False)
    return report, summary


def best_ic(rows: list[dict], min_sessions: int) -> dict | None:
    """The (feature, horizon) with the largest |t| of rank IC among those measured on at least
    ``min_sessions`` sessions; None when none was."""
    eligible = [r for r in rows if r["sessions"] >= min_sessions and np.isfinite(r["t"])]
    return max(eligible, key=lambda r: abs(r["t"])) if eligible else None


def books_report(provider: FeatureProvider, prices: Prices, source: str, feature: str, start=None, end=None,
                 cfg: ResearchConfig = DEFAULT_RESEARCH, factors: pd.DataFrame | None = None) -> tuple[Report, dict]:
    """Daily long-short book of one per-entity feature (:mod:`signals.research.books`)."""
    bc = cfg.books
    report = Report(f"Long-short books: {source} {feature}")
    _header(report, prices, cfg)
    side = f"top/bottom {bc.top} names" if bc.top else f"top/bottom of {bc.quantiles} quantiles"
    report.text(f"Book: {side}, {bc.weighting}-weighted, held {bc.holding} session(s), costs {bc.cost_bps:g} bps per unit "
                "of traded weight. Value weights and the size split use trailing dollar volume (close x volume), a "
                "liquidity proxy: the price set has no share counts.")
    feat = feature_rows(provider, source, feature, start, end)
    feat = feat[feat["entity"] != MARKET_ENTITY]
    book = books(feat, prices, cfg, factors)
    report.counts("Feature rows", book.counts)
    summary = {"report": "books", "source": source, "feature": feature, "entry": cfg.entry.price,
               "net_sharpe": book.summary["net_sharpe"], "net_t": book.summary["net_t"],
               "turnover": book.summary["turnover"], "gross_sharpe": book.summary["gross_sharpe"],
               "overnight_mean": book.summary["overnight_mean"], "intraday_mean": book.summary["intraday_mean"],
               "overnight_t": book.summary["overnight_t"], "intraday_t": book.summary["intraday_t"],
               "sessions": book.summary["sessions"]}
    if book.daily.empty:
        report.text("**No overlap**: no session has enough valued names with prices to form a book.")
        return report, summary
    report.table("summary", pd.DataFrame([book.summary]))
    if factors is not None:
        report.text("Alpha (`ff_alpha`, daily, HAC t) is against the Fama-French five factors and momentum; they are "
                    "close-to-close, so for an open entry they are half a day out of step with the book.")
        summary.update(ff_alpha=book.summary.get("ff_alpha"), ff_t_alpha=book.summary.get("ff_t_alpha"))
    report.text("Size and volatility halves (below / above the median of the names valued that session):")
    report.table("splits", book.splits)
    report.table("daily", book.daily.reset_index(names="date"), show=False)
    cum = book.daily[["gross", "net", "overnight", "intraday"]].cumsum()
    report.figure("cumulative", line_plot(cum, f"{feature}: cumulative long-short return ({cfg.entry.price} entry)",
                                          "sum of daily returns"))
    return report, summary


def market_report(provider: FeatureProvider, factors: pd.DataFrame, sources: list[str], features: list[str],
                  start=None, end=None, cfg: ResearchConfig = DEFAULT_RESEARCH) -> tuple[Report, dict]:
    report = Report("Market-level test: market-wide features vs next-day and next-week factor returns")
    _header(report, None, cfg)
    grid = factors.loc[start:end] if start or end else factors
    frames = {}
    for source in sources:
        for feature in features:
            rows = feature_rows(provider, source, feature, start, end, entities=[MARKET_ENTITY])
            frames[f"{source}:{feature}"] = rows
    table, counts = market_test(frames, grid, cfg)
    report.counts("Feature rows", counts)
    if table.empty:
        report.text("**No overlap** between the features and the factor returns.")
        return report, {"report": "market", "tests": 0}
    report.table("market_test", table)
    factor = "Mkt-RF" if "Mkt-RF" in set(table["factor"]) else table["factor"].iloc[0]
    t = table[table["factor"] == factor].pivot(index="feature", columns="horizon", values="t_hac")
    fig = bar_plot(t.add_prefix("h="), f"HAC t-statistic of the slope ({factor})", "t")
    report.figure("t_market", fig)
    best = table.loc[table["t_hac"].abs().idxmax()]
    return report, {"report": "market", "tests": len(table), "max_abs_t": abs(best["t_hac"]), "max_t_feature": best["feature"],
                    "max_t_factor": best["factor"], "mean_oos_r2": table["oos_r2"].mean()}


def event_frame(provider: FeatureProvider, source: str, feature: str, start=None, end=None,
                burst_z: float | None = None) -> pd.DataFrame:
    """Events of one source: event-source rows on their own session (earnings calls), else news bursts
    (rows whose ``abnormal_volume`` exceeds ``burst_z``)."""
    rows = feature_rows(provider, source, feature, start, end)
    rows = rows[rows["entity"] != MARKET_ENTITY]
    if burst_z is None:
        return rows[rows["event_age"].fillna(0) == 0].drop(columns="event_age")
    vol = feature_rows(provider, source, "abnormal_volume", start, end).set_index(["date", "entity"])["value"]
    burst = vol.reindex(pd.MultiIndex.from_frame(rows[["date", "entity"]])).to_numpy() > burst_z
    return rows[burst].drop(columns="event_age")


def event_report(events: pd.DataFrame, prices: Prices, title: str, cfg: ResearchConfig = DEFAULT_RESEARCH) -> tuple[Report, dict]:
    report = Report(title)
    _header(report, prices, cfg)
    study = event_study(events, prices, cfg)
    report.counts("Events", study.counts)
    if study.counts["events_used"] == 0:
        report.text("**No overlap**: no event has prices at its entry session.")
        return report, {"report": "events", "events": 0}
    report.text(f"Groups: {cfg.events.groups} tone groups from breakpoints of earlier events only; top-minus-bottom "
                "and the slope per SD of tone are OLS with standard errors clustered by entry date. Windows are event "
                "days after entry; windows starting before day 0 are pre-entry diagnostics (not tradable).")
    report.table("windows", study.windows)
    report.table("events", study.events, show=False)
    report.table("curves", study.curves, show=False)
    for model in MODELS:
        report.figure(f"car_{model}", band_plot(study.curves[study.curves["model"] == model], f"CAR by tone group ({model})"))
    summary = {"report": "events", "events": study.counts["events_used"]}
    mm = study.windows[study.windows["model"] == "market_model"].set_index("window")
    for lo, hi in cfg.events.windows:
        w = window_label(lo, hi)
        summary[f"tmb_{w}"] = mm.loc[w, "top_minus_bottom"]
        summary[f"t_{w}"] = mm.loc[w, "t_tmb"]
    return report, summary


def stocknet_report(prices: Prices, text: pd.DataFrame, cfg: ResearchConfig = DEFAULT_RESEARCH) -> tuple[Report, dict]:
    report = Report("StockNet benchmark (Xu & Cohen, ACL 2018): next-day movement of 87 stocks")
    _header(report, prices, cfg)
    bench = run_benchmark(prices, text, cfg)
    report.counts("Samples", bench.counts)
    report.text("Test-period results (each design scored on test once, with the model chosen on dev):")
    report.table("results", bench.results)
    report.text("Dev-period selection log:")
    report.table("dev", bench.dev)
    report.table("samples", bench.samples, show=False)
    res = bench.results.set_index("design")
    return report, {"benchmark": "stocknet", "accuracy": res.loc["prices + text", "accuracy"],
                    "mcc": res.loc["prices + text", "mcc"], "mcc_no_text": res.loc["prices only", "mcc"],
                    "accuracy_no_text": res.loc["prices only", "accuracy"], "entry": cfg.entry.rule,
                    "n_test": int(res.loc["prices + text", "n"])}
