"""A planted signal in synthetic prices is recovered; pure noise is not."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from signals.market import close_instant
from signals.research.events import event_study
from signals.research.market_test import market_test
from signals.research.synthetic import synthetic_study
from signals.research.tearsheet import tear_sheet


def test_planted_signal_recovered_with_large_t():
    prices, feature = synthetic_study(strength=0.3, seed=11)
    s = tear_sheet(feature, prices).summary.set_index("horizon")
    assert s.loc[1, "t_rank_ic"] > 8 and s.loc[1, "mean_rank_ic"] > 0.05
    assert s.loc[1, "ls_spread"] > 0 and s.loc[1, "t_spread"] > 5


@pytest.mark.slow
def test_noise_gives_small_t_in_most_seeds():
    ts = []
    for seed in range(10):
        prices, feature = synthetic_study(strength=0.0, seed=seed, n_sessions=200)
        ts.append(tear_sheet(feature, prices).summary.iloc[0]["t_rank_ic"])
    assert sum(abs(t) < 2 for t in ts) >= 8, ts


def test_event_study_recovers_planted_tone_effect():
    prices, feature = synthetic_study(n_tickers=30, n_sessions=600, strength=1.0, seed=12)
    events = feature[feature["date"].isin(prices.sessions[300:520:10])]
    w = event_study(events, prices).windows.set_index(["window", "model"])
    assert w.loc[("[+0,+1]", "market_model"), "t_tmb"] > 5
    assert abs(w.loc[("[+2,+20]", "market_model"), "t_tmb"]) < 3  # nothing planted after day 0


def test_market_test_recovers_a_predictive_market_feature():
    rng = np.random.default_rng(13)
    prices, _ = synthetic_study(n_tickers=2, n_sessions=700, seed=13)
    grid = prices.sessions
    x = rng.normal(size=len(grid))
    mkt = rng.normal(0, 0.01, len(grid))
    mkt[2:] += 0.004 * x[:-2]  # the value of session D moves the market return of D+2 (day 0 after entry at D+1)
    factors = pd.DataFrame({"Mkt-RF": mkt, "SMB": rng.normal(0, 0.005, len(grid)), "RF": 0.0}, index=grid)
    feature = pd.DataFrame({"value": x, "known_at": close_instant(grid, "16:00", "America/New_York")})
    table, _ = market_test({"planted": feature}, factors)
    row = table.set_index(["factor", "horizon"])
    assert row.loc[("Mkt-RF", 1), "t_hac"] > 6 and row.loc[("Mkt-RF", 1), "oos_r2"] > 0.05
    assert abs(row.loc[("SMB", 1), "t_hac"]) < 3
