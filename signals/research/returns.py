"""The entry rule, forward returns from entry, and abnormal returns.

Index convention: ``returns.iloc[t]`` is session t's close-to-close return (close t-1 -> close t).
A position entered at the close of session e earns, on *event day* k >= 0, the return of session
e+k+1; its h-session forward return compounds event days 0..h-1. Days k < 0 happen before entry.
"""
from __future__ import annotations

from functools import lru_cache

import exchange_calendars as xcals
import numpy as np
import pandas as pd

from core.errors import UsageError
from signals.research.config import DEFAULT_RESEARCH, ResearchConfig


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


def entry_positions(known_at, grid: pd.DatetimeIndex, cfg: ResearchConfig = DEFAULT_RESEARCH) -> np.ndarray:
    """Position in the session ``grid`` of each value's entry close (-1 when beyond the grid).

    ``"after"``: the first close strictly after ``known_at``; ``"at"``: the first close at or after.
    """
    closes = session_closes(grid, cfg.sessions.calendar).as_unit("ns").asi8
    t = pd.DatetimeIndex(pd.to_datetime(pd.Series(known_at), utc=True)).as_unit("ns").asi8
    pos = np.searchsorted(closes, t, side="right" if cfg.entry.rule == "after" else "left")
    return np.where(pos < len(closes), pos, -1)


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
