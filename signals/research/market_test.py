"""Market-level test: do market-wide features predict the market's and the factors' next returns?

For each horizon h (sessions), the target of a feature row entering at the close of session e is the
sum of the factor's daily returns over sessions e+1..e+h (excess returns for the market: the Fama-
French ``Mkt-RF``). Predictive regressions use HAC t-statistics (at least h-1 lags: targets overlap).
The out-of-sample R^2 compares an expanding-window OLS forecast with the expanding historical mean;
both are fit only on pairs whose target had been fully realized by the forecast's entry close.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from signals.research.config import DEFAULT_RESEARCH, ResearchConfig
from signals.research.returns import entry_positions
from signals.research.stats import hac_regression, nw_lags, oos_r2


def feature_at_entry(feature: pd.DataFrame, grid: pd.DatetimeIndex, cfg: ResearchConfig = DEFAULT_RESEARCH) -> tuple[pd.Series, dict]:
    """A market-wide feature (``value``, ``known_at``) as held at each session's close: the latest
    value whose entry close is at or before that session (NaN before the first)."""
    f = feature.dropna(subset=["value"])
    pos = entry_positions(f["known_at"], grid, cfg)
    counts = {"feature_rows": len(feature), "rows_without_value": len(feature) - len(f),
              "rows_after_factor_data": int((pos < 0).sum())}
    held = pd.Series(f["value"].to_numpy(), index=pos)[pos >= 0]
    held = held[~held.index.duplicated(keep="last")].sort_index()
    out = pd.Series(np.nan, index=range(len(grid)))
    out[held.index] = held.to_numpy()
    out = out.ffill()
    out.index = grid
    counts["sessions_with_value"] = int(out.notna().sum())
    return out, counts


def expanding_forecasts(x: np.ndarray, y: np.ndarray, horizon: int, min_train: int) -> tuple[np.ndarray, np.ndarray]:
    """OLS and historical-mean forecasts of ``y[t]`` using pairs ``s`` with ``s + horizon <= t``."""
    n = len(y)
    fc, hm = np.full(n, np.nan), np.full(n, np.nan)
    for t in range(n):
        train = slice(0, max(0, t - horizon + 1))
        xs, ys = x[train], y[train]
        ok = np.isfinite(xs) & np.isfinite(ys)
        if ok.sum() < min_train or not np.isfinite(x[t]):
            continue
        hm[t] = ys[ok].mean()
        if np.ptp(xs[ok]) > 0:
            b, a = np.polyfit(xs[ok], ys[ok], 1)
            fc[t] = a + b * x[t]
        else:
            fc[t] = hm[t]
    return fc, hm


def market_test(features: dict[str, pd.DataFrame], factors: pd.DataFrame, cfg: ResearchConfig = DEFAULT_RESEARCH) -> tuple[pd.DataFrame, dict]:
    """One row per (feature, factor, horizon): slope per SD, HAC t, in-sample R^2, OOS R^2, n."""
    grid = pd.DatetimeIndex(factors.index)
    rets = factors.drop(columns=["RF"], errors="ignore")
    rows, counts = [], {}
    for name, frame in features.items():
        x, c = feature_at_entry(frame, grid, cfg)
        counts[name] = c
        if c["sessions_with_value"] == 0:
            continue
        xz = (x - x.mean()) / x.std() if x.std() > 0 else x * np.nan
        for h in cfg.market.horizons:
            target = rets.rolling(h, min_periods=h).sum().shift(-h)
            for factor in rets.columns:
                y = target[factor]
                reg = hac_regression(y.to_numpy(), xz.to_numpy(), nw_lags(int(y.notna().sum()), h))
                fc, hm = expanding_forecasts(x.to_numpy(), y.to_numpy(), h, cfg.market.min_train)
                rows.append({"feature": name, "factor": factor, "horizon": h, "slope_per_sd": reg["slope"],
                             "t_hac": reg["t"], "r2": reg["r2"], "oos_r2": oos_r2(y.to_numpy(), fc, hm),
                             "n": reg["n"], "n_oos": int(np.isfinite(fc).sum())})
    return pd.DataFrame(rows), counts
