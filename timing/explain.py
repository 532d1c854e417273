"""Why the network forecasts what it does: permutation importance, integrated gradients, ablation.

- Permutation importance by feature group (sentiment / macro / market): the group's value and
  mask columns are permuted *jointly* across the out-of-sample rows (one shuffled order per
  repeat, so within-group structure survives), every fold model forecasts again, and the
  importance is the fall in mean OOS R^2 across factors. The models are not refitted.
- Integrated gradients (Sundararajan et al. 2017), implemented directly on the ensemble's
  differentiable forecast: baseline = the window with every standardized value at 0 (the
  training mean) and the masks unchanged, so attributions fall on values only; a Riemann
  midpoint sum with ``steps`` points. Summed over the lookback and averaged in absolute value
  over OOS windows, then grouped. Completeness (attributions sum to F(x) - F(baseline)) holds
  up to the discretisation error and is tested.
- Ablation: the whole walk-forward is rerun without a group's columns (see timing.backtest).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from timing.dataset import MASK_SUFFIX, feature_group
from timing.metrics import oos_r2
from timing.walkforward import WalkForwardResult


def _forecast(result: WalkForwardResult, features: pd.DataFrame, lookback: int) -> pd.DataFrame:
    parts = []
    for fold, model in zip(result.folds, result.models):
        t0, t1 = fold.test_rows
        window = features.iloc[max(0, t0 - lookback + 1):t1]
        parts.append(model.predict(window, features.index[t0:t1]))
    return pd.concat(parts)


def _mean_r2(pred: pd.DataFrame, realised: pd.DataFrame, bench: pd.DataFrame) -> float:
    return float(np.mean([oos_r2(realised.loc[pred.index, f], pred[f], bench.loc[pred.index, f]) for f in pred]))


def permutation_importance(result: WalkForwardResult, panel: pd.DataFrame, realised: pd.DataFrame,
                           benchmark: pd.DataFrame, features: tuple[str, ...], lookback: int,
                           repeats: int, seed: int) -> pd.DataFrame:
    """Fall in mean OOS R^2 when each feature group is permuted over the OOS rows."""
    factors = list(result.predictions.columns)
    base_frame = panel.drop(columns=factors)
    base = _mean_r2(_forecast(result, base_frame, lookback), realised, benchmark)
    first = result.folds[0].test_rows[0]
    last = result.folds[-1].test_rows[1]
    rng = np.random.default_rng(seed)
    rows = []
    for group in sorted({feature_group(c) for c in features}):
        cols = [c for c in features if feature_group(c) == group]
        cols += [c + MASK_SUFFIX for c in cols if c + MASK_SUFFIX in base_frame.columns]
        drops = []
        for _ in range(repeats):
            frame = base_frame.copy()
            order = first + rng.permutation(last - first)
            block = frame[cols].to_numpy(copy=True)
            block[first:last] = block[order]
            frame[cols] = block
            drops.append(base - _mean_r2(_forecast(result, frame, lookback), realised, benchmark))
        rows.append({"group": group, "importance": float(np.mean(drops)), "std": float(np.std(drops)),
                     "n_features": sum(feature_group(c) == group for c in features), "base_oos_r2": base})
    return pd.DataFrame(rows).set_index("group")


def integrated_gradients(forward, x: torch.Tensor, baseline: torch.Tensor, output: int, steps: int) -> torch.Tensor:
    """IG attributions of ``forward(x)[:, output]`` for a batch ``x`` (same shape returned)."""
    alphas = (torch.arange(steps, dtype=x.dtype) + 0.5) / steps
    total = torch.zeros_like(x)
    for a in alphas:
        point = (baseline + a * (x - baseline)).requires_grad_(True)
        grad, = torch.autograd.grad(forward(point)[:, output].sum(), point)
        total += grad
    return (x - baseline) * total / steps


def ig_by_group(result: WalkForwardResult, panel: pd.DataFrame, features: tuple[str, ...], lookback: int,
                steps: int) -> pd.DataFrame:
    """Mean |IG| per factor (columns) and feature group (rows), as shares of each factor's total."""
    factors = list(result.predictions.columns)
    frame = panel.drop(columns=factors)
    n_feat = len(features)
    groups = np.array([feature_group(c) for c in features])
    totals = np.zeros((len(factors), n_feat))
    count = 0
    for fold, model in zip(result.folds, result.models):
        t0, t1 = fold.test_rows
        x = torch.from_numpy(model.samples(frame.iloc[max(0, t0 - lookback + 1):t1], frame.index[t0:t1]).X)
        baseline = x.clone()
        baseline[..., :n_feat] = 0.0
        timer = model.estimator
        for k in range(len(factors)):
            attr = integrated_gradients(timer.torch_forward, x, baseline, k, steps)
            totals[k] += attr[..., :n_feat].abs().sum(dim=1).sum(dim=0).numpy()
        count += len(x)
    per_feature = pd.DataFrame(totals.T / count, index=list(features), columns=factors)
    by_group = per_feature.groupby(groups).sum()
    return by_group / by_group.sum()
