"""Synthetic prices with a planted signal, for tests and demos of the research tools.

Each session D a feature value is drawn per ticker and known at D's 16:00 cutoff (or at
``known_time`` local time on D), so under the default entry rule it enters at D+1's close; with
``strength`` > 0 the ticker's return on event day ``planted_day`` after that entry (default 0: the
session after entry) loads on the value. With ``planted_leg`` ("overnight" or "intraday") the value
of D moves that leg of session D + ``planted_day`` instead (overnight of session t: close t-1 ->
open t; intraday: open t -> close t). Returns are market beta times a market return plus
idiosyncratic noise; opens split each session's return into its two legs.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from signals.market import close_instant
from signals.research.config import DEFAULT_RESEARCH, ResearchConfig
from signals.research.prices import Prices, price_panel
from signals.sessions import sessions


def synthetic_study(n_tickers: int = 40, start: str = "2015-01-02", n_sessions: int = 300, strength: float = 0.0,
                    seed: int = 0, planted_day: int = 0, planted_leg: str | None = None, known_time: str | None = None,
                    cfg: ResearchConfig = DEFAULT_RESEARCH) -> tuple[Prices, pd.DataFrame]:
    """(prices with opens and volumes, feature rows with ``date``, ``entity``, ``value``, ``known_at``)."""
    if planted_leg not in (None, "overnight", "intraday"):
        raise ValueError(f"planted_leg must be overnight, intraday or None, got {planted_leg!r}")
    rng = np.random.default_rng(seed)
    grid = sessions(cfg.sessions.calendar, start, None)[:n_sessions]
    tickers = [f"S{i:03d}" for i in range(n_tickers)]
    value = rng.normal(size=(n_sessions, n_tickers))
    mkt = rng.normal(0.0003, 0.01, n_sessions)
    beta = rng.uniform(0.5, 1.5, n_tickers)
    ret = mkt[:, None] * beta[None, :] + rng.normal(0, 0.015, (n_sessions, n_tickers))
    if planted_leg is None:
        # Value of session D enters at D+1; event day k is the return of session D+1+k+1.
        lag = 2 + planted_day
        ret[lag:] += strength * 0.01 * value[:-lag]
    overnight = rng.normal(0, 0.005, (n_sessions, n_tickers))
    intraday = (1 + ret) / (1 + overnight) - 1
    if planted_leg is not None:
        bump = np.zeros_like(ret)
        bump[planted_day:] = strength * 0.01 * value[:n_sessions - planted_day]
        if planted_leg == "overnight":
            overnight = overnight + bump
        else:
            intraday = intraday + bump
        ret = (1 + overnight) * (1 + intraday) - 1
    close = 100 * np.exp(np.cumsum(np.log1p(ret), axis=0))
    prev = np.vstack([close[:1] / (1 + ret[:1]), close[:-1]])
    opens = prev * (1 + overnight)
    volume = rng.lognormal(12, 1, n_tickers)[None, :] * rng.lognormal(0, 0.3, (n_sessions, n_tickers))
    market = pd.Series(1000 * np.exp(np.cumsum(np.log1p(mkt))), index=grid)
    market_open = market.shift(1).fillna(market.iloc[0] / (1 + mkt[0])) * (1 + rng.normal(0, 0.002, n_sessions))
    frame = lambda a: pd.DataFrame(a, index=grid, columns=tickers).stack()  # noqa: E731
    long = pd.DataFrame({"close": frame(close), "open": frame(opens), "volume": frame(volume)}).reset_index()
    long.columns = ["date", "ticker", "close", "open", "volume"]
    prices = price_panel(long, market, grid[0], grid[-1], tickers, cfg, market_open)
    known = close_instant(grid, known_time or cfg.sessions.cutoff, cfg.sessions.tz)
    feature = pd.DataFrame({
        "date": np.repeat(grid, n_tickers), "entity": np.tile(tickers, n_sessions), "value": value.ravel(),
        "known_at": np.repeat(known, n_tickers),
    })
    return prices, feature
