"""Forecast and portfolio metrics, written to be checked by hand on small inputs.

Forecasts (per factor, over the out-of-sample rows):
- ``oos_r2 = 1 - sum (y - f)^2 / sum (y - b)^2`` with ``b`` the historical-mean forecast made
  in the same walk-forward (Campbell & Thompson 2008).
- Clark & West (2007) MSPE-adjusted test of "model beats the nested historical mean":
  ``c_t = (y - b)^2 - [(y - f)^2 - (b - f)^2]`` regressed on a constant, Newey-West standard
  error with ``horizon - 1`` lags (statsmodels), one-sided p-value ``1 - Phi(t)``.
- hit rate: share of rows with ``sign(f) == sign(y)``; rank IC: Spearman correlation of f and y
  through time (one factor at a time, so it is a time-series rank correlation).
Portfolios (per-period returns ``r``, ``q`` periods a year):
- annual return ``mean(r) q``; volatility ``std(r, ddof=1) sqrt(q)``; Sharpe = their ratio, with
  the Lo (2002) i.i.d. 95% interval ``SR +- 1.96 sqrt((1 + SR_p^2 / 2) / T) sqrt(q)``
  (``SR_p`` the per-period Sharpe);
- Sortino ``mean(r) q / (sqrt(mean(min(r, 0)^2)) sqrt(q))``;
- maximum drawdown of wealth ``prod(1 + r)`` from its running peak (starting wealth 1), a
  negative number; Calmar = compound annual growth / |max drawdown|;
- turnover: mean ``sum_k |dw_k|`` per period and per year; share of calendar years with a
  positive compounded return.
Comparisons of two strategies over the same periods (Ledoit & Wolf 2008, bootstrap form):
- Sharpe difference ``SR_a - SR_b`` (annualized) with a two-sided p-value from a circular block
  bootstrap of the *pairs* of returns (arch), which keeps their correlation and the
  autocorrelation within blocks; the block length is Politis-White's (arch's
  ``optimal_block_length``, at least 1; ``T^(1/3)`` under 50 periods; no test under 8 periods or
  for a series with no variance). ``p`` is the share of bootstrap differences, centred
  at the sample difference, at least as far from zero as the sample difference.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.api as sm
from arch.bootstrap import CircularBlockBootstrap, optimal_block_length
from scipy import stats


def oos_r2(y: np.ndarray, forecast: np.ndarray, benchmark: np.ndarray) -> float:
    y, f, b = (np.asarray(a, dtype=float) for a in (y, forecast, benchmark))
    return float(1.0 - np.sum((y - f) ** 2) / np.sum((y - b) ** 2))


def clark_west(y: np.ndarray, forecast: np.ndarray, benchmark: np.ndarray, horizon: int = 1) -> tuple[float, float]:
    """(t statistic, one-sided p-value) of the Clark-West test; small p = model beats benchmark."""
    y, f, b = (np.asarray(a, dtype=float) for a in (y, forecast, benchmark))
    c = (y - b) ** 2 - ((y - f) ** 2 - (b - f) ** 2)
    fit = sm.OLS(c, np.ones_like(c)).fit(cov_type="HAC", cov_kwds={"maxlags": max(horizon - 1, 0)})
    t = float(fit.tvalues[0])
    return t, float(1.0 - stats.norm.cdf(t))


def hit_rate(y: np.ndarray, forecast: np.ndarray) -> float:
    return float(np.mean(np.sign(np.asarray(y)) == np.sign(np.asarray(forecast))))


def rank_ic(y: np.ndarray, forecast: np.ndarray) -> float:
    if np.std(forecast) == 0:
        return float("nan")  # a constant forecast has no ranking
    return float(stats.spearmanr(forecast, y).statistic)


def forecast_table(realised: pd.DataFrame, forecasts: pd.DataFrame, benchmark: pd.DataFrame,
                   horizon: int) -> pd.DataFrame:
    """One row per factor: oos_r2, cw_t, cw_p, hit_rate, rank_ic, n."""
    rows = {}
    for f in forecasts.columns:
        y = realised.loc[forecasts.index, f].to_numpy()
        fc, b = forecasts[f].to_numpy(), benchmark.loc[forecasts.index, f].to_numpy()
        t, p = clark_west(y, fc, b, horizon)
        rows[f] = {"oos_r2": oos_r2(y, fc, b), "cw_t": t, "cw_p": p, "hit_rate": hit_rate(y, fc),
                   "rank_ic": rank_ic(y, fc), "n": len(y)}
    return pd.DataFrame(rows).T


def max_drawdown(r: pd.Series) -> float:
    wealth = np.cumprod(1.0 + np.asarray(r, dtype=float))
    peak = np.maximum.accumulate(np.concatenate([[1.0], wealth]))[1:]
    return float(np.min(wealth / peak - 1.0))


def sharpe_ci(r: pd.Series, periods_per_year: float, level: float = 0.95) -> tuple[float, float, float]:
    r = np.asarray(r, dtype=float)
    sr_p = r.mean() / r.std(ddof=1)
    se = np.sqrt((1.0 + 0.5 * sr_p**2) / len(r)) * np.sqrt(periods_per_year)
    z = stats.norm.ppf(0.5 + level / 2)
    sr = sr_p * np.sqrt(periods_per_year)
    return float(sr), float(sr - z * se), float(sr + z * se)


def portfolio_metrics(r: pd.Series, turnover: pd.Series, periods_per_year: float) -> dict[str, float]:
    arr = r.to_numpy(dtype=float)
    q = periods_per_year
    ann_ret = arr.mean() * q
    vol = arr.std(ddof=1) * np.sqrt(q)
    sr, lo, hi = sharpe_ci(r, q)
    downside = np.sqrt(np.mean(np.minimum(arr, 0.0) ** 2)) * np.sqrt(q)
    cagr = float(np.prod(1.0 + arr) ** (q / len(arr)) - 1.0)
    mdd = max_drawdown(r)
    yearly = (1.0 + r).groupby(r.index.year).prod() - 1.0
    return {
        "ann_return": float(ann_ret), "ann_vol": float(vol), "sharpe": sr, "sharpe_lo": lo, "sharpe_hi": hi,
        "sortino": float(ann_ret / downside) if downside > 0 else float("nan"),
        "cagr": cagr, "max_drawdown": mdd, "calmar": cagr / abs(mdd) if mdd < 0 else float("nan"),
        "turnover": float(turnover.mean()), "turnover_annual": float(turnover.mean() * q),
        "positive_years": float((yearly > 0).mean()), "n": len(arr),
    }


def _sharpe_gap(pairs: np.ndarray, q: float) -> float:
    mean, sd = pairs.mean(axis=0), pairs.std(axis=0, ddof=1)
    return float((mean[0] / sd[0] - mean[1] / sd[1]) * np.sqrt(q))


def sharpe_difference(a: pd.Series, b: pd.Series, periods_per_year: float, reps: int = 2000,
                      seed: int = 0) -> tuple[float, float]:
    """(annualized Sharpe of ``a`` minus that of ``b``, two-sided block-bootstrap p-value)."""
    pairs = pd.concat([a, b], axis=1).dropna().to_numpy(dtype=float)
    if len(pairs) < 8 or (pairs.std(axis=0, ddof=1) == 0).any():
        return float("nan"), float("nan")  # no Sharpe ratio, or too few periods to resample
    diff = _sharpe_gap(pairs, periods_per_year)
    if len(pairs) >= 50:
        block = max(1, int(np.ceil(optimal_block_length(pairs)["circular"].max())))
    else:  # Politis-White needs a longer series to estimate its autocorrelations
        block = int(np.ceil(len(pairs) ** (1 / 3)))
    boot = CircularBlockBootstrap(block, pairs, seed=seed)
    draws = boot.apply(lambda x: np.array([_sharpe_gap(x, periods_per_year)]), reps=reps)[:, 0]
    return diff, float(np.mean(np.abs(draws - diff) >= abs(diff)))
