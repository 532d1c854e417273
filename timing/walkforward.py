"""Walk-forward evaluation: expanding or rolling refits, a purge gap, test rows never fitted.

The guarantee is structural: for each fold the harness slices the panel *before* calling the
model, so ``fit`` receives a frame whose last row is at least one period before the fold's
first test row (``purge_gap >= horizon`` makes the last training target end before it), and
``predict`` receives a features-only frame (factor return columns dropped). Scaling and
hyperparameter selection happen inside ``fit`` and so see only that slice. Every fold records
the row and date ranges it used; tests check them and also check that garbage written into
the future leaves earlier forecasts unchanged.

Row arithmetic (t0 = first test row, g = purge gap, h = horizon, L = lookback):
the training frame is rows ``[lo, t0 - g + h)``; inside it the last training sample is row
``t0 - g - 1`` whose target ends at row ``t0 - g - 1 + h <= t0 - 1``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from core.progress import Progress
from core.threads import set_threads
from timing.config import WalkForwardConfig

log = logging.getLogger(__name__)


class Model(Protocol):
    """What the harness drives. ``kind`` is "forecast" (expected returns) or "allocation"."""

    name: str
    kind: str

    def fit(self, train: pd.DataFrame) -> "Model": ...

    def predict(self, features: pd.DataFrame, dates: pd.DatetimeIndex) -> pd.DataFrame: ...


@dataclass(frozen=True)
class Fold:
    train_rows: tuple[int, int]  # [lo, hi) rows of the panel handed to fit
    test_rows: tuple[int, int]  # [t0, t1) rows forecast by this fold's model
    train_dates: tuple[pd.Timestamp, pd.Timestamp]
    test_dates: tuple[pd.Timestamp, pd.Timestamp]


@dataclass
class WalkForwardResult:
    name: str
    kind: str
    predictions: pd.DataFrame  # test dates x factors
    folds: list[Fold]
    models: list = field(default_factory=list)
    guarded: int | None = None  # forecasts pulled back toward the training mean (timing.forecaster); None: no guard


def make_folds(index: pd.DatetimeIndex, cfg: WalkForwardConfig, lookback: int, horizon: int) -> list[Fold]:
    """Fold boundaries for a panel index (see the module docstring for the arithmetic)."""
    n, g, h, L = len(index), cfg.purge_gap, horizon, lookback
    first = cfg.min_train + g + L - 1
    if cfg.test_start is not None:
        first = max(first, int(index.searchsorted(pd.Timestamp(cfg.test_start))))
    last = n - h  # rows >= last have no realised target to score against
    folds = []
    for t0 in range(first, last, cfg.refit_every):
        t1 = min(t0 + cfg.refit_every, last)
        hi = t0 - g + h
        lo = 0 if cfg.scheme == "expanding" else max(0, t0 - g - cfg.window - (L - 1))
        folds.append(Fold((lo, hi), (t0, t1), (index[lo], index[hi - 1]), (index[t0], index[t1 - 1])))
    if not folds:
        raise ValueError(
            f"empty walk-forward: {n} rows, first test row {first}, last scorable row {last - 1}"
        )
    return folds


def fold_frames(panel: pd.DataFrame, features_only: pd.DataFrame, fold: Fold,
                lookback: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DatetimeIndex]:
    """What a fold's model may see: its training slice, the features-only window its test rows
    need (``lookback - 1`` rows of history before them), and the test dates."""
    lo, hi = fold.train_rows
    t0, t1 = fold.test_rows
    return (panel.iloc[lo:hi].copy(), features_only.iloc[max(0, t0 - lookback + 1):t1].copy(),
            panel.index[t0:t1])


def _run_fold(make_model: Callable[[], Model], train: pd.DataFrame, window: pd.DataFrame,
              dates: pd.DatetimeIndex, threads: int) -> tuple[Model, pd.DataFrame]:

    set_threads(threads)  # tiny nets: extra threads only add contention
    model = make_model()
    model.fit(train)
    return model, model.predict(window, dates)


def run_walkforward(
    panel: pd.DataFrame, make_model: Callable[[], Model], folds: list[Fold], factors: tuple[str, ...],
    lookback: int, keep_models: bool = False, progress: bool = True, n_jobs: int = 1, threads: int = 1,
) -> WalkForwardResult:
    """Fit a fresh model per fold on the training slice; forecast the fold's test rows.

    Folds are independent, so they run in ``n_jobs`` processes (joblib); each model is seeded
    by its own config, so results do not depend on ``n_jobs``.
    """
    features_only = panel.drop(columns=list(factors))
    tasks = [delayed(_run_fold)(make_model, *fold_frames(panel, features_only, fold, lookback), threads)
             for fold in folds]
    runner = Parallel(n_jobs=n_jobs, return_as="generator")
    out = list(Progress(runner(tasks), total=len(tasks), enabled=progress, leave=False, desc="walk-forward"))
    models = [m for m, _ in out]
    name, kind = models[0].name, models[0].kind
    predictions = pd.concat([p for _, p in out])
    guarded = sum(m.guarded_ for m in models) if all(hasattr(m, "guarded_") for m in models) else None
    if not keep_models:
        models = []
    predictions = predictions[[c for c in factors if c in predictions.columns]]
    if not np.isfinite(predictions.to_numpy(dtype=float)).all():
        raise ValueError(f"{name} produced non-finite forecasts")
    log.info("%s: %d folds, %d test rows%s", name, len(folds), len(predictions),
             "" if guarded is None else f", {guarded} forecasts pulled back by the guard")
    return WalkForwardResult(name, kind, predictions, folds, models, guarded)
