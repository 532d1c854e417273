"""Test statistics (statsmodels underneath): Newey-West means, clustered regressions, OOS R^2."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import statsmodels.api as sm


def nw_lags(n: int, horizon: int = 1) -> int:
    """HAC lag length: at least ``horizon - 1`` (overlapping returns), else Newey-West (1994)'s rule."""
    return max(horizon - 1, int(math.floor(4 * (max(n, 1) / 100) ** (2 / 9))))


def mean_t(values, lags: int) -> tuple[float, float, int]:
    """Mean of a series and its Newey-West (Bartlett kernel) t-statistic: (mean, t, n)."""
    y = pd.Series(values, dtype=float).dropna().to_numpy()
    if len(y) < 3 or np.allclose(y, y[0]):
        return (float(y.mean()) if len(y) else np.nan), np.nan, len(y)
    fit = sm.OLS(y, np.ones_like(y)).fit(cov_type="HAC", cov_kwds={"maxlags": lags, "use_correction": False})
    return float(fit.params[0]), float(fit.tvalues[0]), len(y)


def hac_regression(y, x, lags: int) -> dict:
    """OLS of y on [1, x] with HAC standard errors: slope, its t, R^2, n."""
    frame = pd.DataFrame({"y": y, "x": x}).dropna()
    if len(frame) < 10:
        return {"slope": np.nan, "t": np.nan, "r2": np.nan, "n": len(frame)}
    fit = sm.OLS(frame["y"].to_numpy(), sm.add_constant(frame["x"].to_numpy())).fit(
        cov_type="HAC", cov_kwds={"maxlags": lags, "use_correction": False})
    return {"slope": float(fit.params[1]), "t": float(fit.tvalues[1]), "r2": float(fit.rsquared), "n": len(frame)}


def clustered_regression(y, x, groups) -> dict:
    """OLS of y on [1, x] with standard errors clustered by ``groups``: slope, t, p, n, clusters."""
    frame = pd.DataFrame({"y": y, "x": x, "g": groups}).dropna()
    n_groups = frame["g"].nunique()
    if len(frame) < 5 or n_groups < 3 or frame["x"].nunique() < 2:
        return {"slope": np.nan, "t": np.nan, "p": np.nan, "n": len(frame), "clusters": n_groups}
    codes = pd.factorize(frame["g"])[0]
    fit = sm.OLS(frame["y"].to_numpy(), sm.add_constant(frame["x"].to_numpy(dtype=float))).fit(
        cov_type="cluster", cov_kwds={"groups": codes})
    return {"slope": float(fit.params[1]), "t": float(fit.tvalues[1]), "p": float(fit.pvalues[1]),
            "n": len(frame), "clusters": n_groups}


def oos_r2(y: np.ndarray, forecast: np.ndarray, benchmark: np.ndarray) -> float:
    """Out-of-sample R^2 of ``forecast`` against the ``benchmark`` forecast (Campbell & Thompson)."""
    ok = np.isfinite(y) & np.isfinite(forecast) & np.isfinite(benchmark)
    if ok.sum() < 2:
        return np.nan
    return float(1 - np.sum((y[ok] - forecast[ok]) ** 2) / np.sum((y[ok] - benchmark[ok]) ** 2))


def factor_alpha(y: pd.Series, factors: pd.DataFrame, lags: int) -> dict:
    """OLS of ``y`` on a constant and the ``factors`` (same index) with HAC errors: daily alpha, its t,
    the loadings, R^2 and n."""
    frame = pd.concat([y.rename("_y"), factors], axis=1, join="inner").dropna()
    if len(frame) <= factors.shape[1] + 10:
        return {"alpha": np.nan, "t_alpha": np.nan, "r2": np.nan, "n": len(frame)}
    fit = sm.OLS(frame["_y"], sm.add_constant(frame[factors.columns])).fit(
        cov_type="HAC", cov_kwds={"maxlags": lags, "use_correction": False})
    return {"alpha": float(fit.params["const"]), "t_alpha": float(fit.tvalues["const"]), "r2": float(fit.rsquared),
            "n": len(frame), **{f"beta_{c}": float(fit.params[c]) for c in factors.columns}}
