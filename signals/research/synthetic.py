"""Synthetic prices with a planted signal, for tests and demos of the research tools.

Each session D a feature value is drawn per ticker and known at D's 16:00 cutoff, so under the
default entry rule it enters at D+1's close; with ``strength`` > 0 the ticker's return on event day
``planted_day`` after that entry (default 0: the session after entry) loads on the value. Returns
are market beta times a market return plus idiosyncratic noise.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from signals.market import close_instant
from signals.research.config import DEFAULT_RESEARCH, ResearchConfig
from signals.research.prices import Prices, price_panel
from signals.sessions import sessions


def synthetic_study(n_tickers: int = 40, start: str = "2015-01-02", n_sessions: int = 300, strength: float = 0.0,
                    seed: int = 0, planted_day: int = 0, cfg: ResearchConfig = DEFAULT_RESEARCH) -> tuple[Prices, pd.DataFrame]:
    """(prices, feature rows with ``date``, ``entity``, ``value``, ``known_at``)."""
    rng = np.random.default_rng(seed)
    grid = sessions(cfg.sessions.calendar, start, None)[:n_sessions]
    tickers = [f"S{i:03d}" for i in range(n_tickers)]
    value = rng.normal(size=(n_sessions, n_tickers))
    mkt = rng.normal(0.0003, 0.01, n_sessions)
    beta = rng.uniform(0.5, 1.5, n_tickers)
    ret = mkt[:, None] * beta[None, :] + rng.normal(0, 0.015, (n_sessions, n_tickers))
    # Value of session D enters at D+1; event day k is the return of session D+1+k+1.
    lag = 2 + planted_day
    ret[lag:] += strength * 0.01 * value[:-lag]
    close = 100 * np.exp(np.cumsum(np.log1p(ret), axis=0))
    market = pd.Series(1000 * np.exp(np.cumsum(np.log1p(mkt))), index=grid)
    long = pd.DataFrame(close, index=grid, columns=tickers).stack().rename("close").reset_index()
    long.columns = ["date", "ticker", "close"]
    prices = price_panel(long, market, grid[0], grid[-1], tickers, cfg)
    known = close_instant(grid, cfg.sessions.cutoff, cfg.sessions.tz)
    feature = pd.DataFrame({
        "date": np.repeat(grid, n_tickers), "entity": np.tile(tickers, n_sessions), "value": value.ravel(),
        "known_at": np.repeat(known, n_tickers),
    })
    return prices, feature
