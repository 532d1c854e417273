"""One walk-forward fold of the many-task study: scale on the training rows, fit every model, forecast.

The caller (``timing.zoo_backtest``) slices the panel *before* calling :func:`run_fold`: the
training arrays end with the fold's last training row (whose target month ends before the first
test row), and the test arrays hold predictors only, no returns. Scaling statistics come from
the training rows alone. Forecasting models (all in return units, next month):
- ``historical_mean``: each task's mean target over its observed training months (the OOS R^2
  benchmark);
- ``network`` / ``single_task_net``: ``timing.zoo_network`` (shared and twins);
- ``ridge``: per task, ``RidgeCV`` on ``[shared, own]``, shrunk toward the mean with a weight per
  task chosen on the validation tail (``stability.linear_shrinkage``), as the default run's ridge;
- ``pooled_ridge``: one ``RidgeCV`` over every observed (month, task) pair, standardized targets,
  one shrinkage weight;
- ``factor_momentum``: Gupta & Kelly's signal as a forecast, ``mean + std * beta * s`` with beta
  the pooled least-squares slope of standardized next-month returns on ``s`` over the window;
- ``pc_timing`` (Haddad, Kozak & Santosh 2020): the top ``pc_k`` principal components of the
  standardized training returns, each forecast by ridge on the shared state and the components'
  own trailing returns, then mapped back through the loadings, one shrinkage weight.
Tasks with fewer than ``MIN_OBS`` training targets get the historical mean from every model.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import RidgeCV

from core.threads import set_threads
from timing.forecaster import validation_split
from timing.zoo_network import ZooTimer, shrink_weights

ALPHAS = np.logspace(-1, 5, 13)
MIN_OBS = 36
CLIP = 5.0


@dataclass
class FoldInput:
    """Training rows (``*_tr``; ``y_tr`` = next-month returns, NaN where missing) and test rows (``*_te``)."""

    shared_tr: np.ndarray
    own_tr: np.ndarray
    tsfm_tr: np.ndarray
    y_tr: np.ndarray
    shared_te: np.ndarray
    own_te: np.ndarray
    tsfm_te: np.ndarray


def _zscore(train: np.ndarray, test: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Scale with training mean/sd along ``axis`` (rows), clip, NaN -> 0, add 0/1 availability columns."""
    mean = np.nanmean(train, axis=axis, keepdims=True) if np.isfinite(train).any() else 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.nanstd(train, axis=axis, keepdims=True)
        n = np.isfinite(train).sum(axis=axis, keepdims=True)
        dead = ~np.isfinite(sd) | (sd < 1e-12) | (n < 12)
        out = []
        for a in (train, test):
            z = np.where(dead, 0.0, (a - np.nan_to_num(mean)) / np.where(dead, 1.0, sd))
            avail = np.isfinite(a) & ~dead
            z = np.clip(np.where(avail, z, 0.0), -CLIP, CLIP)
            out.append(np.concatenate([z, avail.astype(float)], axis=-1).astype(np.float32))
    return out[0], out[1]


def _shrunk_ridge_task(x_tr, y, x_te, grid, fit, val) -> np.ndarray:
    mean = y.mean()
    early = RidgeCV(alphas=ALPHAS).fit(x_tr[fit], y[fit])
    w = grid[int(np.argmin([((mean + g * (early.predict(x_tr[val]) - mean) - y[val]) ** 2).sum() for g in grid]))]
    full = RidgeCV(alphas=ALPHAS).fit(x_tr, y)
    return mean + w * (full.predict(x_te) - mean)


def run_fold(data: FoldInput, models: tuple[str, ...], net_cfg, groups: np.ndarray, n_groups: int,
             linear_grid: tuple[float, ...], pc_k: int, threads: int = 1) -> dict[str, np.ndarray]:
    """Forecasts (n_test, K) per model for one fold (see the module docstring)."""
    set_threads(threads)
    s_tr, s_te = _zscore(data.shared_tr, data.shared_te, axis=0)
    o_tr, o_te = _zscore(data.own_tr, data.own_te, axis=0)  # per task and feature: axis 0 is time
    y = data.y_tr
    obs = np.isfinite(y)
    n_obs = obs.sum(axis=0)
    live = n_obs >= MIN_OBS
    mean = np.where(n_obs > 0, np.nanmean(np.where(obs, y, np.nan), axis=0), 0.0) if obs.any() else np.zeros(y.shape[1])
    sd = np.where(live, np.nanstd(np.where(obs, y, np.nan), axis=0), 1.0)
    sd = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
    z = np.where(obs & live, (y - mean) / sd, np.nan)
    n_te = len(s_te)
    out = {"historical_mean": np.tile(mean, (n_te, 1))}
    fit, val = validation_split(len(y), net_cfg.val_fraction, 1)
    grid = tuple(linear_grid) or (1.0,)

    def back(zhat: np.ndarray) -> np.ndarray:
        return np.where(live, mean + sd * zhat, mean)

    if "network" in models:
        out["network"] = back(ZooTimer(net_cfg, groups, n_groups).fit(s_tr, o_tr, z).predict(s_te, o_te))
    if "single_task_net" in models:
        out["single_task_net"] = back(ZooTimer(net_cfg, groups, n_groups, twins=True).fit(s_tr, o_tr, z).predict(s_te, o_te))
    if "ridge" in models:
        pred = np.tile(mean, (n_te, 1))
        for k in np.flatnonzero(live):
            rows = obs[:, k]
            x_tr = np.concatenate([s_tr, o_tr[:, k]], axis=1)
            x_te = np.concatenate([s_te, o_te[:, k]], axis=1)
            idx = np.flatnonzero(rows)
            f, v = validation_split(len(idx), net_cfg.val_fraction, 1)
            pred[:, k] = _shrunk_ridge_task(x_tr[idx], y[idx, k], x_te, grid, f, v)
        out["ridge"] = pred
    if "pooled_ridge" in models:
        out["pooled_ridge"] = back(_pooled_ridge(s_tr, o_tr, z, s_te, o_te, fit, val, grid))
    if "factor_momentum" in models or "combination" in models:
        s_mom = np.nan_to_num(data.tsfm_tr)
        ok = np.isfinite(z) & np.isfinite(data.tsfm_tr)
        beta = float((s_mom[ok] * z[ok]).sum() / max((s_mom[ok] ** 2).sum(), 1e-12))
        out["factor_momentum"] = back(beta * np.nan_to_num(data.tsfm_te))
    if "pc_timing" in models:
        out["pc_timing"] = back(_pc_timing(s_tr, o_tr, z, s_te, o_te, pc_k, fit, val, grid, data.own_tr.shape[2]))
    return out


def _pooled_ridge(s_tr, o_tr, z, s_te, o_te, fit, val, grid) -> np.ndarray:
    K = z.shape[1]

    def stack(s, o):
        return np.concatenate([np.repeat(s[:, None, :], K, axis=1), o], axis=2).reshape(len(s) * K, -1)

    x = stack(s_tr, o_tr)
    target = z.reshape(-1)
    ok = np.isfinite(target)
    rows_fit = np.zeros((len(z), K), bool)
    rows_fit[fit] = True
    rows_fit = rows_fit.reshape(-1) & ok
    early = RidgeCV(alphas=ALPHAS).fit(x[rows_fit], target[rows_fit])
    zv = z[val]
    w = shrink_weights(zv, np.isfinite(zv), early.predict(stack(s_tr[val], o_tr[val])).reshape(len(zv), K),
                       np.zeros(K, int), grid, "global")
    full = RidgeCV(alphas=ALPHAS).fit(x[ok], target[ok])
    return w * full.predict(stack(s_te, o_te)).reshape(len(s_te), K)


def _pc_timing(s_tr, o_tr, z, s_te, o_te, k, fit, val, grid, n_own) -> np.ndarray:
    filled = np.nan_to_num(z)  # a missing month counts as the task's mean
    _, _, vt = np.linalg.svd(filled, full_matrices=False)
    V = vt[: min(k, vt.shape[0])].T  # (K, k) loadings
    pcs = filled @ V  # next-month PC returns (targets of row t)
    own_ret = o_tr[:, :, : n_own - 1], o_te[:, :, : n_own - 1]  # the scaled trailing returns (not vol, not masks)
    x_tr = np.concatenate([s_tr, np.einsum("nkf,kj->njf", own_ret[0], V).reshape(len(s_tr), -1)], axis=1)
    x_te = np.concatenate([s_te, np.einsum("nkf,kj->njf", own_ret[1], V).reshape(len(s_te), -1)], axis=1)
    early = RidgeCV(alphas=ALPHAS, alpha_per_target=True).fit(x_tr[fit], pcs[fit])
    zv = z[val]
    w = shrink_weights(zv, np.isfinite(zv), early.predict(x_tr[val]).reshape(len(zv), -1) @ V.T,
                       np.zeros(z.shape[1], int), grid, "global")
    full = RidgeCV(alphas=ALPHAS, alpha_per_target=True).fit(x_tr, pcs)
    return w * (full.predict(x_te).reshape(len(s_te), -1) @ V.T)
