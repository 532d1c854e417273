"""Books over many tasks, and forecast combinations.

Books follow ``timing.portfolio`` (its ``target_weights``, ``trade`` and ``vol_scale``), with what
a zoo needs on top:
- the covariance of each decision date is estimated once (scikit-learn's ``LedoitWolf`` on the
  last ``portfolio.cov_window`` months) and shared by every strategy;
- only *live* tasks are held: those with a return in the decision month and at least 24 in the
  window (a missing month inside the window counts as zero); others get weight 0;
- costs per task: ``portfolio.cost_bps`` unless ``zoo.cost_bps_by_group`` / ``zoo.cost_bps_file``
  name another, charged on each task's own turnover;
- the theme book: each theme's return is the equal-weight mean of its live tasks, its forecast the
  mean of theirs, and the same construction allocates across themes.

Combinations (Rapach, Strauss & Zhou 2010): ``combination`` is the equal-weight mean of its
members' forecasts; ``combination_dmspe`` weights member m of theme g at decision t by
``1 / sum_s theta^(t-1-s) e_{m,g,s}^2`` over the decisions s whose target month ended by t
(Stock & Watson 2004), equal weights until ``dmspe_holdout`` such months exist. In the test
part the weights are frozen at the last validation decision: they use no test-part outcome.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.covariance import LedoitWolf

from timing.portfolio import PortfolioResult, target_weights, trade, vol_scale


def covariances(returns: pd.DataFrame, dates: pd.DatetimeIndex, window: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per decision date: (live task positions, Ledoit-Wolf covariance of their monthly returns)."""
    arr = returns.to_numpy(dtype=float)
    rows = returns.index.get_indexer(dates)
    out = []
    for r in rows:
        past = arr[max(0, r - window + 1): r + 1]
        live = np.flatnonzero(np.isfinite(arr[r]) & (np.isfinite(past).sum(axis=0) >= 24))
        out.append((live, LedoitWolf().fit(np.nan_to_num(past[:, live])).covariance_))
    return out


def book(signals: pd.DataFrame, returns: pd.DataFrame, covs, pcfg, from_forecast: bool,
         cost_bps: np.ndarray, vol_managed: bool = False) -> PortfolioResult:
    """Weights (held after band and penalty), gross and net returns for decisions ``signals.index``."""
    dates = signals.index
    K = returns.shape[1]
    sig = signals[returns.columns].to_numpy(dtype=float)
    targets = np.zeros((len(dates), K))
    recent = (returns ** 2).rolling(6, min_periods=6).mean().reindex(dates).to_numpy() * 12
    for i, (live, cov) in enumerate(covs):
        if len(live) == 0:
            continue
        w = target_weights(np.nan_to_num(sig[i, live]), cov, pcfg, 12.0, from_forecast)
        if vol_managed:
            w = np.clip(w * vol_scale(np.diag(cov) * 12, recent[i, live], pcfg.max_vol_scale), -pcfg.max_weight, pcfg.max_weight)
        targets[i, live] = w
    weights = trade(targets, pcfg.no_trade_band, pcfg.turnover_penalty)
    prev = np.vstack([np.zeros(K), weights[:-1]])
    traded = np.abs(weights - prev)
    turnover = traded.sum(axis=1)
    costs = (traded * cost_bps / 1e4).sum(axis=1)
    nxt = returns.shift(-1).reindex(dates).to_numpy(dtype=float)
    gross = (weights * np.nan_to_num(nxt)).sum(axis=1)
    idx = pd.DatetimeIndex(dates)
    return PortfolioResult(pd.DataFrame(weights, index=idx, columns=returns.columns), pd.Series(gross, idx),
                           pd.Series(gross - costs, idx), pd.Series(turnover, idx), pd.Series(costs, idx))


def theme_frames(frame: pd.DataFrame, groups: pd.Series) -> pd.DataFrame:
    """Equal-weight mean per theme of the tasks present (NaN-skipping) in each row."""
    return frame.T.groupby(groups.reindex(frame.columns).to_numpy()).mean().T


def cost_vector(ids: list[str], groups: pd.Series, default: float, by_group: dict[str, float],
                file: str | None) -> np.ndarray:
    costs = pd.Series(default, index=ids, dtype=float)
    for g, c in by_group.items():
        costs[groups.reindex(ids).to_numpy() == g] = c
    if file is not None:
        from core.paths import resolve_data_path

        table = pd.read_csv(resolve_data_path(file), dtype={"id": str})  # columns id, cost_bps
        costs.update(table.set_index("id")["cost_bps"].astype(float).reindex(ids).dropna())
    return costs.to_numpy()


def equal_combination(forecasts: dict[str, pd.DataFrame], members: tuple[str, ...]) -> pd.DataFrame:
    return sum(forecasts[m] for m in members) / len(members)


def dmspe_weights(forecasts: dict[str, pd.DataFrame], members: tuple[str, ...], realised: pd.DataFrame,
                  groups: pd.Series, validation_end: pd.Timestamp, discount: float, holdout: int) -> dict[str, pd.DataFrame]:
    """Weight of each member per (decision date, task), theme-pooled; see the module docstring.

    ``realised`` is each decision's next-month return. The error of decision s is known from the
    next decision on, and only if its target month ended by ``validation_end``: later dates reuse
    the last validation weights.
    """
    dates = forecasts[members[0]].index
    ids = list(forecasts[members[0]].columns)
    target_end = pd.DatetimeIndex([d + pd.offsets.MonthEnd(1) for d in dates])
    usable = np.asarray(target_end <= validation_end)
    theme_of = groups.reindex(ids).to_numpy()
    themes = pd.unique(theme_of)
    y = realised.reindex(index=dates, columns=ids).to_numpy(dtype=float)
    err = {}
    warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)  # a theme with no realised month yet
    for m in members:
        e2 = (forecasts[m].to_numpy(dtype=float) - y) ** 2
        e2 = np.where(np.isfinite(e2) & usable[:, None], e2, np.nan)
        err[m] = np.stack([np.nanmean(e2[:, theme_of == g], axis=1) if (theme_of == g).any() else np.full(len(dates), np.nan)
                           for g in themes], axis=1)  # (T, G)
    M, T, G = len(members), len(dates), len(themes)
    weights = np.full((T, M, G), 1.0 / M)
    acc = np.zeros((M, G))
    seen = np.zeros(G, int)
    last = weights[0].copy()
    for t in range(T):
        if t > 0 and usable[t - 1]:  # decision t-1's target month has ended by decision t
            e = np.stack([err[m][t - 1] for m in members])  # (M, G)
            ok = np.isfinite(e).all(axis=0)
            acc[:, ok] = discount * acc[:, ok] + e[:, ok]
            seen += ok
        if t > 0 and not usable[t - 1]:
            weights[t] = last  # frozen: no test-part outcome enters
            continue
        inv = np.where(acc > 0, 1.0 / np.where(acc > 0, acc, 1.0), 0.0)
        w = np.where((seen >= holdout) & (inv.sum(axis=0) > 0), inv / np.maximum(inv.sum(axis=0), 1e-300), 1.0 / M)
        weights[t] = w
        last = w
    col = {g: i for i, g in enumerate(themes)}
    return {m: pd.DataFrame(weights[:, j, [col[g] for g in theme_of]], index=dates, columns=ids)
            for j, m in enumerate(members)}


def dmspe_combination(forecasts, members, realised, groups, validation_end, discount, holdout) -> pd.DataFrame:
    w = dmspe_weights(forecasts, members, realised, groups, validation_end, discount, holdout)
    return sum(w[m] * forecasts[m] for m in members)
