"""A walk-forward training window as the direct allocators see it (``timing.allocators``).

One row per decision date of the book's rebalancing schedule (every ``horizon`` rows): the scaled
feature window ending at it, the returns over the holding period after it, and the shrunk
covariance of the returns up to it (what the book's vol target uses at that date).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from timing.dataset import FeatureScaler, PanelSpec, training_samples
from timing.portfolio import shrunk_covariance

MIN_COV_ROWS = 12  # shrunk_covariance refuses fewer


@dataclass
class WindowData:
    """A training window as a direct allocator sees it, one row per decision date."""

    X: np.ndarray  # (n, lookback, inputs) scaled feature windows ending at each date
    y: np.ndarray  # (n, K) returns over the holding period after each date
    covs: np.ndarray  # (n, K, K) shrunk covariance per holding period, returns up to each date
    dates: pd.DatetimeIndex


def window_data(train: pd.DataFrame, spec: PanelSpec, cov_window: int) -> tuple[WindowData, FeatureScaler]:
    """Training samples every ``horizon`` rows (the book's rebalancing) with their covariances;
    the first rows, with too short a return history for a covariance, are left out."""
    samples, scaler = training_samples(train, spec)
    returns = train[list(spec.factors)]
    history = returns.notna().all(axis=1).cumsum().reindex(samples.dates).to_numpy()
    keep = np.flatnonzero(history >= MIN_COV_ROWS)[::spec.horizon]
    dates = samples.dates[keep]
    covs = np.stack([shrunk_covariance(returns, d, cov_window) * spec.horizon for d in dates])
    return WindowData(samples.X[keep], samples.y[keep], covs, dates), scaler
