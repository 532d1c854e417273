"""Research statistics against values computed by hand on small cases."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from signals.research.config import DEFAULT_RESEARCH, EventConfig
from signals.research.events import event_study
from signals.research.prices import price_panel
from signals.research.stats import clustered_regression, mean_t, oos_r2
from signals.research.stocknet import _score
from signals.research.tearsheet import ic_series
from signals.sessions import session_cutoffs, sessions


def test_ic_and_rank_ic_by_hand():
    # x - mean = [-2,-1,0,1,2]; y - mean = [-.02,0,-.01,.02,.01]: sum(dx dy) = .08, sqrt(10 * .001) = .1 -> 0.8.
    # Ranks of y are [1,3,2,5,4]: sum d^2 = 4, Spearman = 1 - 6*4/(5*24) = 0.8.
    feat = pd.DataFrame([[1, 2, 3, 4, 5, np.nan], [5, 4, 3, 2, 1, 9.0]])
    fwd = pd.DataFrame([[0.01, 0.03, 0.02, 0.05, 0.04, 0.5], [0.01, 0.02, 0.03, 0.04, 0.05, np.nan]])
    ic, ric = ic_series(feat, fwd, min_n=3)
    assert ic[0] == pytest.approx(0.8) and ric[0] == pytest.approx(0.8)
    # Second row: a perfect inverse relation over the jointly finite cells (the NaN pair is ignored).
    assert ic[1] == pytest.approx(-1.0) and ric[1] == pytest.approx(-1.0)
    ic_few, _ = ic_series(feat, fwd, min_n=6)
    assert np.isnan(ic_few).all()


def test_newey_west_t_by_hand():
    # y = [1,-1,2,0,3]: mean 1, e = [0,-2,1,-1,2], sum e^2 = 10, sum e_t e_(t-1) = -5; one Bartlett lag
    # (weight 1/2): S = 10 + 2 * 0.5 * (-5) = 5, var(mean) = S / T^2 = 0.2, t = 1 / sqrt(0.2) = sqrt(5).
    m, t, n = mean_t([1, -1, 2, 0, 3], lags=1)
    assert m == pytest.approx(1.0) and n == 5
    assert t == pytest.approx(math.sqrt(5))
    # With no lags it is the plain (biased-variance) t: var = 10 / 25 -> t = 1 / sqrt(0.4).
    assert mean_t([1, -1, 2, 0, 3], lags=0)[1] == pytest.approx(1 / math.sqrt(0.4))


def test_clustered_top_minus_bottom_is_the_difference_of_means():
    y = [0.01, 0.03, 0.02, -0.01, -0.02, 0.0, 0.04, -0.03]
    top = [1, 1, 1, 0, 0, 0, 1, 0]
    res = clustered_regression(y, top, groups=[1, 1, 2, 2, 3, 3, 4, 4])
    assert res["slope"] == pytest.approx(np.mean([0.01, 0.03, 0.02, 0.04]) - np.mean([-0.01, -0.02, 0.0, -0.03]))
    assert res["clusters"] == 4 and np.isfinite(res["t"])


def test_oos_r2_by_hand():
    y = np.array([1.0, 2.0, 3.0])
    # Errors (0, 0, 1) against benchmark errors (1, 1, 1): 1 - 1/3.
    assert oos_r2(y, np.array([1.0, 2.0, 2.0]), np.array([2.0, 1.0, 2.0])) == pytest.approx(2 / 3)


def _one_ticker_prices(stock: np.ndarray, market: np.ndarray, grid):
    long = pd.DataFrame({"date": grid, "ticker": "AAA", "close": stock})
    return price_panel(long, pd.Series(market, index=grid), grid[0], grid[-1], ["AAA"])


def test_car_by_hand():
    grid = sessions("XNYS", "2015-01-02", "2015-04-30")
    rng = np.random.default_rng(0)
    m = rng.normal(0, 0.01, len(grid))
    m[0] = 0.0
    r = 0.001 + 1.5 * m  # exactly the market model inside the estimation window ...
    e = 50  # entry session
    r[e + 1], r[e + 2] = 0.03, -0.01  # ... and two event-day returns set by hand
    market = 100 * np.cumprod(1 + m)
    stock = 50 * np.cumprod(1 + r)
    prices = _one_ticker_prices(stock, market, grid)
    cfg = DEFAULT_RESEARCH.model_copy(update={"events": EventConfig(windows=((0, 1),), estimation=(-45, -2),
                                                                     min_estimation=20, curve_days=(0, 3))})
    # Known just before the close of session e - 1 would enter at e - 1; known at e - 1's close (16:00
    # exactly) enters strictly after it: at e.
    events = pd.DataFrame({"entity": ["AAA"], "value": [1.0], "known_at": session_cutoffs(grid[[e - 1]])})
    study = event_study(events, prices, cfg)
    row = study.events.iloc[0]
    assert row["entry_date"] == grid[e]
    assert row["beta"] == pytest.approx(1.5)
    mkt_r = market[1:] / market[:-1] - 1
    expected_mm = sum(r[k] - (0.001 + 1.5 * m[k]) for k in (e + 1, e + 2))
    expected_ma = sum(r[k] - mkt_r[k - 1] for k in (e + 1, e + 2))
    assert row["car_market_model_[+0,+1]"] == pytest.approx(expected_mm, abs=1e-10)
    assert row["car_market_adjusted_[+0,+1]"] == pytest.approx(expected_ma, abs=1e-12)


class _Fixed:
    def __init__(self, pred):
        self.pred = np.asarray(pred)

    def predict(self, X):
        return self.pred


def test_mcc_and_accuracy_by_hand():
    # TP 3, FN 1, TN 3, FP 1: MCC = (3*3 - 1*1) / sqrt(4*4*4*4) = 0.5; accuracy 6/8.
    y = np.array([1, 1, 1, 0, 0, 0, 1, 0])
    s = _score(_Fixed([1, 0, 1, 0, 1, 0, 1, 0]), np.zeros((8, 1)), y)
    assert s["mcc"] == pytest.approx(0.5) and s["accuracy"] == pytest.approx(0.75) and s["n"] == 8


def test_best_ic_ignores_horizons_measured_on_too_few_sessions():
    from signals.research.runs import best_ic

    rows = [{"feature": "tone", "horizon": 5, "rank_ic": 0.69, "t": 22.3, "sessions": 4},
            {"feature": "mean_score", "horizon": 21, "rank_ic": 0.09, "t": 1.3, "sessions": 38},
            {"feature": "mean_score", "horizon": 1, "rank_ic": 0.05, "t": float("nan"), "sessions": 41}]
    assert best_ic(rows, min_sessions=20)["feature"] == "mean_score"
    assert best_ic(rows, min_sessions=50) is None
