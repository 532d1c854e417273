"""Metrics and portfolio arithmetic against values worked out by hand."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from timing.config import PortfolioConfig
from timing.metrics import (
    clark_west,
    hit_rate,
    max_drawdown,
    oos_r2,
    portfolio_metrics,
    rank_ic,
    sharpe_ci,
    sharpe_difference,
)
from timing.portfolio import backtest, target_weights, trade, vol_scale


def test_oos_r2_by_hand():
    # model errors 0,0,1 -> SSE 1; benchmark (2) errors 1,0,1 -> SSE 2; R^2 = 1 - 1/2
    assert oos_r2([1, 2, 3], [1, 2, 2], [2, 2, 2]) == pytest.approx(0.5)
    assert oos_r2([1, 2, 3], [2, 2, 2], [2, 2, 2]) == pytest.approx(0.0)


def test_clark_west_by_hand():
    y = np.array([0.02, -0.01, 0.03, 0.00, 0.01])
    f = np.array([0.01, 0.00, 0.02, 0.01, 0.00])
    b = np.full(5, 0.005)
    c = (y - b) ** 2 - ((y - f) ** 2 - (b - f) ** 2)
    # with zero Newey-West lags the standard error of the mean is sqrt(sum (c - mean)^2) / n
    t_hand = c.mean() / (np.sqrt(np.sum((c - c.mean()) ** 2)) / len(c))
    t, p = clark_west(y, f, b, horizon=1)
    assert t == pytest.approx(t_hand, rel=1e-9)
    assert p == pytest.approx(1 - norm.cdf(t_hand), rel=1e-9)


def test_hit_rate_and_rank_ic():
    assert hit_rate([1, -1, 2, -3], [0.5, 0.2, 1.0, -1.0]) == 0.75
    assert rank_ic([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert rank_ic([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(rank_ic([1, 2, 3], [0.1, 0.1, 0.1]))


def test_max_drawdown_by_hand():
    assert max_drawdown(pd.Series([0.1, -0.5, 0.2])) == pytest.approx(0.55 / 1.1 - 1)
    assert max_drawdown(pd.Series([-0.1, 0.05])) == pytest.approx(-0.1)  # from the starting wealth 1
    assert max_drawdown(pd.Series([0.01, 0.02])) == 0.0


def test_sharpe_and_ci_by_hand():
    r = pd.Series([0.01, -0.02, 0.03, 0.00])
    mean, sd = 0.005, np.std([0.01, -0.02, 0.03, 0.00], ddof=1)
    sr, lo, hi = sharpe_ci(r, 12)
    assert sr == pytest.approx(mean / sd * np.sqrt(12))
    se = np.sqrt((1 + 0.5 * (mean / sd) ** 2) / 4) * np.sqrt(12)
    assert hi - sr == pytest.approx(1.959964 * se, rel=1e-5)
    assert sr - lo == pytest.approx(hi - sr)


def test_portfolio_metrics_by_hand():
    idx = pd.date_range("2000-01-31", periods=24, freq="ME")
    r = pd.Series([0.02, -0.01] * 6 + [-0.02, 0.01] * 6, index=idx)  # 2000 up, 2001 down
    turnover = pd.Series(0.1, index=idx)
    m = portfolio_metrics(r, turnover, 12)
    assert m["ann_return"] == pytest.approx(0.0)
    assert m["ann_vol"] == pytest.approx(r.std(ddof=1) * np.sqrt(12))
    assert m["positive_years"] == 0.5
    assert m["turnover"] == pytest.approx(0.1) and m["turnover_annual"] == pytest.approx(1.2)
    downside = np.sqrt(np.mean(np.minimum(r, 0) ** 2)) * np.sqrt(12)
    assert m["sortino"] == pytest.approx(r.mean() * 12 / downside)


def test_no_trade_band_and_turnover_by_hand():
    targets = np.array([[0.10, 0.0], [0.12, 0.0], [0.30, -0.20]])
    held = trade(targets, 0.05)
    np.testing.assert_allclose(held, [[0.10, 0.0], [0.10, 0.0], [0.30, -0.20]])


def test_turnover_penalty_by_hand():
    targets = np.array([[0.10, 0.0], [0.12, 0.0], [0.30, -0.20]])
    held = trade(targets, band=0.0, penalty=0.05)
    # each move is the target gap less the penalty (soft threshold), gaps under it are not traded
    np.testing.assert_allclose(held, [[0.05, 0.0], [0.07, 0.0], [0.25, -0.15]])


def test_vol_scale_by_hand():
    np.testing.assert_allclose(vol_scale(np.array([0.04, 0.04, 0.04]), np.array([0.02, 0.08, np.nan]), cap=1.5),
                               [1.5, 0.5, 1.0])


def test_weekly_forecast_on_daily_panel_trades_once_a_week():
    idx = pd.bdate_range("2020-01-01", periods=300)
    rng = np.random.default_rng(1)
    rets = pd.DataFrame(rng.normal(0.0003, 0.01, (300, 2)), index=idx, columns=["A", "B"])
    forecasts = pd.DataFrame(rng.normal(0, 0.01, (100, 2)), index=idx[150:250], columns=["A", "B"])
    res = backtest(forecasts, rets, PortfolioConfig(no_trade_band=0.0), horizon=5, periods_per_year=252,
                   from_forecast=True)
    assert list(res.weights.index) == list(idx[150:250:5])  # one decision per 5 sessions
    assert len(res.turnover) == 20
    # the gross return of each decision is its weights times the next 5 sessions' compounded returns
    ahead = (1 + rets).rolling(5).apply(np.prod, raw=True).shift(-5) - 1
    np.testing.assert_allclose(res.gross, (res.weights * ahead.loc[res.weights.index]).sum(axis=1))


def test_sharpe_difference_sign_and_p_value():
    rng = np.random.default_rng(0)
    idx = pd.RangeIndex(480)
    a = pd.Series(rng.normal(0.01, 0.03, 480), idx)
    b = pd.Series(rng.normal(0.0, 0.03, 480), idx)
    diff, p = sharpe_difference(a, b, 12, reps=500)
    hand = (a.mean() / a.std() - b.mean() / b.std()) * np.sqrt(12)
    assert diff == pytest.approx(hand)
    assert p < 0.05  # 1.15 of annual Sharpe apart over 40 years
    same, p_same = sharpe_difference(a, a + rng.normal(0, 1e-4, 480), 12, reps=500)
    assert abs(same) < 0.01 and p_same > 0.2


def test_vol_target_and_cap_by_hand():
    cov = np.diag([0.04**2, 0.03**2])  # monthly variances
    cfg = PortfolioConfig(vol_target=0.10, max_weight=5.0)
    w = target_weights(np.array([0.01, 0.0]), cov, cfg, 12, from_forecast=True)
    assert w[0] == pytest.approx(0.10 / (0.04 * np.sqrt(12)))  # one factor scaled to 10% a year
    assert w[1] == 0.0
    capped = target_weights(np.array([0.01, 0.0]), cov, cfg.model_copy(update={"max_weight": 0.5}), 12, True)
    assert capped[0] == 0.5
    long_only = target_weights(np.array([-0.01, 0.0]), cov, cfg.model_copy(update={"long_only": True}), 12, True)
    assert (long_only == 0).all()


def test_costs_and_turnover_in_backtest():
    idx = pd.date_range("2000-01-31", periods=40, freq="ME")
    rng = np.random.default_rng(0)
    rets = pd.DataFrame(rng.normal(0.005, 0.03, (40, 2)), index=idx, columns=["A", "B"])
    alloc = pd.DataFrame({"A": [1.0] * 8, "B": [0.0] * 4 + [1.0] * 4}, index=idx[24:32])
    cfg = PortfolioConfig(cost_bps=20, no_trade_band=0.0, max_weight=10)
    res = backtest(alloc, rets, cfg, horizon=1, periods_per_year=12, from_forecast=False)
    w = res.weights.to_numpy()
    hand_turnover = np.abs(np.diff(np.vstack([np.zeros(2), w]), axis=0)).sum(axis=1)
    np.testing.assert_allclose(res.turnover, hand_turnover)
    np.testing.assert_allclose(res.costs, 0.002 * hand_turnover)
    # each decision earns the next period's returns
    nxt = rets.shift(-1).loc[alloc.index].to_numpy()
    np.testing.assert_allclose(res.gross, (w * nxt).sum(axis=1))
    np.testing.assert_allclose(res.net, res.gross - res.costs)
    assert res.turnover.iloc[0] == pytest.approx(abs(w[0]).sum())  # buying in from cash is a trade
    assert (res.weights["B"].iloc[:4] == 0).all() and (res.weights["B"].iloc[4:] > 0).all()


def test_sharpe_difference_on_short_or_flat_series():
    idx = pd.RangeIndex(20)
    rng = np.random.default_rng(3)
    a, b = pd.Series(rng.normal(0.01, 0.02, 20), idx), pd.Series(rng.normal(0.0, 0.02, 20), idx)
    diff, p = sharpe_difference(a, b, 52, reps=200)  # short: a T^(1/3) block, still a test
    assert np.isfinite(diff) and 0 <= p <= 1
    assert all(np.isnan(sharpe_difference(a, pd.Series(0.0, idx), 52)))  # a flat book has no Sharpe
    assert all(np.isnan(sharpe_difference(a.iloc[:5], b.iloc[:5], 52)))
