"""Allocators: who turns what is known at a decision date into factor weights.

Every book trades through ``timing.portfolio.run_book``, which asks a policy ``(date, held
weights) -> signal`` at each decision date and applies the same vol target, weight cap, long-only
clip, no-trade band, turnover penalty and costs. Two kinds of policy share that interface:
- ``mean_variance`` (as always): a forecasting model's expected returns, turned into weights by
  ``Sigma^-1 mu`` (``timing.backtest``'s ``network`` book and the forecasting baselines);
- direct allocators, which output raw weights themselves (``from_forecast=False``):
  ``end_to_end`` (``timing.end_to_end``) and ``rl_ppo`` / ``rl_sac``
  (``timing.rl_allocator``, stable-baselines3 on ``timing.allocation_env``).

A direct allocator is fitted per walk-forward fold on that fold's training slice only (the same
folds as the forecasters: ``timing.walkforward.fold_frames``) and sees, at decision date D, the
scaled feature window ending at D and the weights it holds; the covariance of the vol target uses
returns up to D. So nothing after D reaches a decision at D (tests/test_timing_allocators.py
changes later returns and checks that earlier weights stay).
End to end: ``timing.end_to_end``; the data each allocator trains on: ``timing.allocation_data``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from core.progress import Progress
from core.threads import set_threads
from timing.allocation_data import WindowData, window_data
from timing.config import DirectConfig, NetworkConfig, PortfolioConfig
from timing.dataset import PanelSpec, prediction_samples
from timing.end_to_end import EndToEndAllocator
from timing.portfolio import Policy
from timing.walkforward import Fold, fold_frames


class DirectAllocator(Protocol):
    """A policy fitted on one training window: raw weights from a feature window and held weights."""

    name: str

    def fit(self, data: WindowData) -> "DirectAllocator": ...

    def act(self, x: np.ndarray, held: np.ndarray) -> np.ndarray: ...


def _fit_fold(make: Callable[[], DirectAllocator], train: pd.DataFrame, window: pd.DataFrame,
              dates: pd.DatetimeIndex, spec: PanelSpec, cov_window: int, threads: int):
    set_threads(threads)
    data, scaler = window_data(train, spec, cov_window)
    allocator = make().fit(data)
    return allocator, pd.Series(list(prediction_samples(window, spec, scaler, dates).X), index=dates)


@dataclass
class DirectWalkForward:
    """Fitted allocators per fold and the feature window each one sees at its test dates."""

    name: str
    allocators: list
    windows: pd.Series  # decision date -> (lookback, inputs) window
    fold_of: pd.Series  # decision date -> fold number

    def policy(self) -> Policy:
        def decide(date: pd.Timestamp, held: np.ndarray) -> np.ndarray:
            return self.allocators[self.fold_of[date]].act(self.windows[date], held)
        return decide

    def training_curves(self) -> list[list[float]]:
        """Per fold, each training episode's return averaged over seeds (RL allocators; else empty)."""
        out = []
        for a in self.allocators:
            if hasattr(a, "curves_"):
                n = min(len(c) for c in a.curves_)
                out.append(np.mean([c[:n] for c in a.curves_], axis=0).round(4).tolist())
        return out

    @property
    def dates(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self.windows.index)


def run_direct(panel: pd.DataFrame, make: Callable[[], DirectAllocator], folds: list[Fold], spec: PanelSpec,
               cov_window: int, progress: bool = True, n_jobs: int = 1, threads: int = 1) -> DirectWalkForward:
    """Fit one allocator per fold on its training slice (in ``n_jobs`` processes; each is seeded by
    its config, so results do not depend on ``n_jobs``)."""
    features_only = panel.drop(columns=list(spec.factors))
    tasks = [delayed(_fit_fold)(make, *fold_frames(panel, features_only, f, spec.lookback), spec, cov_window, threads)
             for f in folds]
    runner = Parallel(n_jobs=n_jobs, return_as="generator")
    out = list(Progress(runner(tasks), total=len(tasks), enabled=progress, leave=False, desc="direct allocator"))
    windows = pd.concat([w for _, w in out])
    fold_of = pd.concat([pd.Series(i, index=w.index) for i, (_, w) in enumerate(out)])
    return DirectWalkForward(out[0][0].name, [a for a, _ in out], windows, fold_of)


def make_allocator(name: str, net: NetworkConfig, direct: DirectConfig, portfolio: PortfolioConfig,
                   periods_per_year: float) -> Callable[[], DirectAllocator]:
    """A factory of the named direct allocator (``portfolio.allocator``)."""
    if name == "end_to_end":
        return lambda: EndToEndAllocator(net, direct, portfolio, periods_per_year)
    from timing.rl_allocator import RLAllocator

    return lambda: RLAllocator(name, direct, portfolio, periods_per_year)
