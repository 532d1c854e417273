"""Daily stock prices on the exchange calendar, with every data problem counted.

Sources (:func:`load_prices`):

* ``"stock_prices"``: ``$ALTSIGNAL_DATASETS/stock_prices/daily_prices_to2018.parquet`` (stooq,
  split- and dividend-adjusted ``close``; its ``adj_close`` is empty, see its PROVENANCE.md);
* ``"stocknet"``: the StockNet raw Yahoo prices in ``dated_social`` (``Adj Close``);
* a path to a Parquet/CSV file with ``date``, ``ticker`` and ``close`` columns (``open`` and
  ``volume`` are read when present).

Entry at the open (:class:`signals.research.config.EntryConfig`) needs opens: ``stock_prices`` has
them (adjusted like its closes); the StockNet set's opens are unadjusted beside adjusted closes, so
it is read without them.

The market benchmark is the S&P 500 (``vix_and_market/^GSPC.csv``, or any Yahoo-layout file).

Nothing is silently dropped: rows off the calendar, duplicates, non-positive prices, gaps inside a
ticker's history, daily moves beyond the flag threshold (unadjusted splits, decimal glitches) and
requested tickers without any price are counted in :attr:`Prices.issues`; flagged returns become NaN
(by default) so they never reach a statistic.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import UsageError
from core.paths import dataset_path
from signals.market import load_sp500
from signals.research.config import DEFAULT_RESEARCH, ResearchConfig
from signals.sessions import sessions

log = logging.getLogger(__name__)

NAMED_SOURCES = {
    "stock_prices": (("stock_prices", "daily_prices_to2018.parquet"),
                     {"date": "date", "ticker": "ticker", "close": "close", "open": "open", "volume": "volume"}),
    "stocknet": (("dated_social", "stocknet_prices_raw.parquet"), {"Date": "date", "ticker": "ticker", "Adj Close": "close"}),
}
MARKET_FILE = ("vix_and_market", "^GSPC.csv")
REQUIRED = {"date": "date", "ticker": "ticker", "close": "close"}
OPTIONAL = ("open", "volume")


@dataclass
class Prices:
    """Closes on a session grid (rows = sessions, columns = tickers) and the market close.

    ``returns`` are close-to-close returns of each session (NaN across gaps and for flagged moves);
    ``issues`` counts every problem found; ``flags`` lists the flagged moves. ``open``,
    ``market_open`` and ``volume`` are None when the source has none.
    """

    close: pd.DataFrame
    market: pd.Series
    returns: pd.DataFrame
    market_returns: pd.Series
    issues: dict[str, int] = field(default_factory=dict)
    flags: pd.DataFrame = field(default_factory=pd.DataFrame)
    missing_tickers: list[str] = field(default_factory=list)
    open: pd.DataFrame | None = None
    market_open: pd.Series | None = None
    volume: pd.DataFrame | None = None

    @property
    def sessions(self) -> pd.DatetimeIndex:
        return self.close.index



def read_prices(source: str | Path, tickers=None, start=None, end=None) -> pd.DataFrame:
    """Long price rows (``date``, ``ticker``, ``close``, and ``open``/``volume`` where the source has
    them) of a named source or a file."""
    if str(source) in NAMED_SOURCES:
        parts, cols = NAMED_SOURCES[str(source)]
        path = dataset_path(*parts)
        raw = pd.read_parquet(path, columns=list(cols))
    else:
        path = Path(source)
        if not path.exists():
            raise UsageError(f"price file {path} not found", hint=f"name one of {sorted(NAMED_SOURCES)} or a Parquet/CSV path")
        raw = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        cols = {**REQUIRED, **{c: c for c in OPTIONAL if c in raw.columns}}
    missing = sorted(set(cols) - set(raw.columns))
    if missing:
        raise UsageError(f"{path}: price file lacks column(s) {missing} (needs date, ticker, close)")
    out = raw[list(cols)].rename(columns=cols)
    out["date"] = pd.to_datetime(out["date"]).astype("datetime64[ns]")
    out["ticker"] = out["ticker"].astype(str)
    if tickers is not None:
        out = out[out["ticker"].isin(set(tickers))]
    if start is not None:
        out = out[out["date"] >= pd.Timestamp(start)]
    if end is not None:
        out = out[out["date"] <= pd.Timestamp(end)]
    return out.reset_index(drop=True)


def read_market(source: str | Path | None = None) -> pd.DataFrame:
    """S&P 500 ``close`` (and ``open`` when the file has it) by session date (Yahoo layout; default
    the shared ``^GSPC.csv``)."""
    path = dataset_path(*MARKET_FILE) if source is None else Path(source)
    return load_sp500(path)


def price_panel(long: pd.DataFrame, market: pd.Series, start, end, tickers=None,
                cfg: ResearchConfig = DEFAULT_RESEARCH, market_open: pd.Series | None = None) -> Prices:
    """Put long price rows on the session grid of ``[start, end]`` and count what is wrong with them.

    ``market``: the index's closes; ``market_open``: its opens (needed for entry at the open)."""
    grid = sessions(cfg.sessions.calendar, start, end)
    if len(grid) < 2:
        raise UsageError(f"no trading sessions between {start} and {end}")
    issues: dict[str, int] = {}
    rows = long[(long["date"] >= grid[0]) & (long["date"] <= grid[-1])]
    off = ~rows["date"].isin(grid)
    issues["rows_off_calendar"] = int(off.sum())
    rows = rows[~off]
    dup = rows.duplicated(["date", "ticker"], keep="first")
    issues["duplicate_rows"] = int(dup.sum())
    rows = rows[~dup]
    bad = ~(rows["close"] > 0)
    issues["non_positive_or_missing_close"] = int(bad.sum())
    rows = rows[~bad]
    close = rows.pivot(index="date", columns="ticker", values="close").reindex(grid)
    close.columns.name = None
    wanted = sorted(set(tickers)) if tickers is not None else list(close.columns)
    extra = {}
    for col in OPTIONAL:
        if col in rows.columns:
            wide = rows.pivot(index="date", columns="ticker", values=col).reindex(index=grid, columns=wanted)
            wide.columns.name = None
            # an open outside (0, inf) cannot be traded at; a glitch there is counted like a bad close
            extra[col] = wide.where(wide > 0) if col == "open" else wide
    if "open" in extra:
        issues["non_positive_or_missing_open"] = int((extra["open"].isna() & close.reindex(columns=wanted).notna()).sum().sum())
    missing_tickers = sorted(set(wanted) - set(close.columns))
    issues["tickers_without_prices"] = len(missing_tickers)
    close = close.reindex(columns=wanted)
    issues["tickers_with_prices"] = int(close.notna().any().sum())
    issues["gap_sessions"] = _inner_gaps(close)

    returns = close.pct_change(fill_method=None)
    big = returns.abs() > cfg.prices.max_abs_daily_return
    flags = returns.where(big).stack().dropna().rename("return").reset_index()
    flags.columns = ["date", "ticker", "return"]
    issues["flagged_moves"] = len(flags)
    if cfg.prices.drop_flagged:
        returns = returns.mask(big)
    mkt = market.reindex(grid)
    issues["market_missing_sessions"] = int(mkt.isna().sum())
    if missing_tickers:
        log.warning("%d ticker(s) have no prices: %s", len(missing_tickers), missing_tickers[:10])
    return Prices(close=close, market=mkt, returns=returns, market_returns=mkt.pct_change(fill_method=None),
                  issues=issues, flags=flags, missing_tickers=missing_tickers, open=extra.get("open"),
                  market_open=None if market_open is None else market_open.reindex(grid), volume=extra.get("volume"))


def load_prices(source: str | Path = "stock_prices", tickers=None, start=None, end=None,
                market: str | Path | None = None, cfg: ResearchConfig = DEFAULT_RESEARCH) -> Prices:
    """Read a price source and the market, and build the checked session panel."""
    long = read_prices(source, tickers, start, end)
    if long.empty:
        raise UsageError(f"price source {source} has no rows for these tickers between {start} and {end}")
    start = start if start is not None else long["date"].min()
    end = end if end is not None else long["date"].max()
    mkt = read_market(market)
    return price_panel(long, mkt["close"], start, end, tickers, cfg, mkt.get("open"))


def _inner_gaps(close: pd.DataFrame) -> int:
    """Sessions without a price strictly inside each ticker's first..last priced session."""
    have = close.notna().to_numpy()
    if not have.size:
        return 0
    seen_before = np.maximum.accumulate(have, axis=0)
    seen_after = np.maximum.accumulate(have[::-1], axis=0)[::-1]
    return int((seen_before & seen_after & ~have).sum())
