"""The entry rule, forward returns from entry, and abnormal returns.

Index convention: ``returns.iloc[t]`` is the return that ends at session t's entry price (close
t-1 -> close t for close entry; open t-1 -> open t for open entry, see :func:`at_entry`). A
position entered at session e earns, on *event day* k >= 0, the return of session e+k+1; its
h-session forward return compounds event days 0..h-1. Days k < 0 happen before entry.

Each day's return splits into an overnight leg (close -> next open) and an intraday leg (open ->
close), :func:`period_legs`: from an open entry day 0 is today's intraday then tonight's overnight;
from a close entry it is tonight's overnight then tomorrow's intraday.
"""
from __future__ import annotations

import dataclasses
from functools import lru_cache

import exchange_calendars as xcals
import numpy as np
import pandas as pd

from core.errors import UsageError
from signals.market import close_instant
from signals.research.config import DEFAULT_RESEARCH, ResearchConfig
from signals.research.prices import Prices


@lru_cache(maxsize=4)
def _closes(calendar: str) -> pd.Series:
    cal = xcals.get_calendar(calendar, start="1990-01-01")
    closes = cal.closes
    return closes.dt.tz_localize("UTC") if closes.dt.tz is None else closes.dt.tz_convert("UTC")


def session_closes(grid: pd.DatetimeIndex, calendar: str = DEFAULT_RESEARCH.sessions.calendar) -> pd.DatetimeIndex:
    """Actual close instant (UTC) of each session, early closes included."""
    closes = _closes(calendar).reindex(pd.DatetimeIndex(grid))
    if closes.isna().any():
        # the grid comes from the feature store: one built on another calendar (24h news, ...) cannot be traded here
        raise UsageError(f"{int(closes.isna().sum())} date(s) of the grid are not {calendar} sessions, first "
                         f"{closes.index[closes.isna()][0].date()}: the feature store's sessions follow another calendar",
                         hint=f"research trades at {calendar} closes: build the store with sessions.calendar = {calendar!r}")
    return pd.DatetimeIndex(closes)


def entry_instants(grid: pd.DatetimeIndex, cfg: ResearchConfig = DEFAULT_RESEARCH) -> pd.DatetimeIndex:
    """The instant (UTC) up to which a value must be known to trade at each session of ``grid``:
    the session's close (close entry) or its open cut-off (open entry)."""
    if cfg.entry.price == "open":
        session_closes(grid, cfg.sessions.calendar)  # the same refusal of off-calendar grids
        return close_instant(grid, cfg.entry.open_cutoff, cfg.sessions.tz)
    return session_closes(grid, cfg.sessions.calendar)


def entry_positions(known_at, grid: pd.DatetimeIndex, cfg: ResearchConfig = DEFAULT_RESEARCH) -> np.ndarray:
    """Position in the session ``grid`` of each value's entry session (-1 when beyond the grid).

    Close entry, ``"after"``: the first close strictly after ``known_at``; ``"at"``: the first
    close at or after. Open entry: the first session whose open cut-off is strictly after
    ``known_at`` (text known before the cut-off trades at that day's open).
    """
    instants = entry_instants(grid, cfg).as_unit("ns").asi8
    t = pd.DatetimeIndex(pd.to_datetime(pd.Series(known_at), utc=True)).as_unit("ns").asi8
    side = "left" if cfg.entry.price == "close" and cfg.entry.rule == "at" else "right"
    pos = np.searchsorted(instants, t, side=side)
    return np.where(pos < len(instants), pos, -1)


def _checked(returns: pd.DataFrame, cfg: ResearchConfig) -> pd.DataFrame:
    """Returns with moves beyond the flag threshold set to NaN (as :func:`price_panel` does for closes)."""
    return returns.mask(returns.abs() > cfg.prices.max_abs_daily_return) if cfg.prices.drop_flagged else returns


def _need_opens(prices: Prices) -> pd.DataFrame:
    if prices.open is None:
        raise UsageError("entry at the open needs open prices, and this price source has none",
                         hint="use --prices stock_prices (OHLC) or a file with an 'open' column, or --entry close")
    return prices.open


def at_entry(prices: Prices, cfg: ResearchConfig = DEFAULT_RESEARCH) -> Prices:
    """``prices`` valued at the entry price: unchanged for close entry; for open entry, opens in place
    of closes and open-to-open returns (the market's too, NaN when the index file has no opens)."""
    if cfg.entry.price == "close":
        return prices
    opens = _need_opens(prices)
    mkt = prices.market_open if prices.market_open is not None else pd.Series(np.nan, index=prices.sessions)
    return dataclasses.replace(prices, close=opens, returns=_checked(opens.pct_change(fill_method=None), cfg),
                               market=mkt, market_returns=mkt.pct_change(fill_method=None))


def period_legs(prices: Prices, cfg: ResearchConfig = DEFAULT_RESEARCH) -> dict[str, pd.DataFrame]:
    """Overnight and intraday legs of the period that starts at each session's entry price (row e =
    event day 0 of an entry at e); they compound to ``at_entry(prices).returns.shift(-1)``."""
    opens = _need_opens(prices)
    overnight = _checked(opens / prices.close.shift(1) - 1, cfg)
    intraday = _checked(prices.close / opens - 1, cfg)
    if cfg.entry.price == "open":
        return {"intraday": intraday, "overnight": overnight.shift(-1)}
    return {"overnight": overnight.shift(-1), "intraday": intraday.shift(-1)}


def forward_returns(returns: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """Return from the close of each session over the next ``horizon`` sessions (NaN if any is missing)."""
    logr = np.log1p(returns)
    ahead = logr.rolling(horizon, min_periods=horizon).sum().shift(-horizon)
    return np.expm1(ahead)


def excess(returns: pd.DataFrame, market_returns: pd.Series) -> pd.DataFrame:
    """Market-adjusted returns (each column minus the market's return of the same session)."""
    return returns.sub(market_returns, axis=0)


def market_model(stock: np.ndarray, market: np.ndarray, min_obs: int) -> tuple[float, float, int]:
    """OLS ``stock = alpha + beta * market`` over the sessions where both exist: (alpha, beta, n).

    Returns NaN coefficients when fewer than ``min_obs`` sessions are available.
    """
    ok = np.isfinite(stock) & np.isfinite(market)
    n = int(ok.sum())
    if n < min_obs:
        return np.nan, np.nan, n
    beta, alpha = np.polyfit(market[ok], stock[ok], 1)
    return float(alpha), float(beta), n


def event_day_matrix(values: np.ndarray, entries: np.ndarray, columns: np.ndarray, days: np.ndarray) -> np.ndarray:
    """``out[i, j]`` = return of event day ``days[j]`` after entry ``entries[i]`` in column ``columns[i]``
    of the sessions x series array ``values`` (NaN off the grid)."""
    idx = entries[:, None] + days[None, :] + 1
    ok = (idx >= 0) & (idx < len(values)) & (entries[:, None] >= 0)
    out = np.full(idx.shape, np.nan)
    rows, cols = np.nonzero(ok)
    out[rows, cols] = values[idx[rows, cols], columns[rows]]
    return out
