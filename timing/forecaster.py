"""Adapter from panel frames to scikit-learn style estimators on lookback windows.

``WindowForecaster.fit(train_frame)`` builds the training samples, fitting the feature scaler on
that frame only, then calls ``estimator.fit(X, y)``; ``predict(features, dates)`` reuses the
fitted scaler. Tabular estimators (ridge, forests, boosting) see the last row of the window
(scaled features plus availability masks); the network sees the whole window.

Forecasts are kept on the training window's scale, in this order (issue 24: on a daily panel
through 2008 ridge, the network and its twins forecast 6% a week, 30x the historical mean's):
1. shrinkage toward the training mean, ``m + w_k (model_k - m)``, with ``w_k`` from
   ``spec.shrinkage`` minimising the squared error on the training window's validation tail (a
   copy of the estimator fitted on the rows before it, separated by the horizon so overlapping
   targets cannot leak). Used for the linear baselines; the network chooses its own weight the
   same way inside ``MultiTaskTimer`` (``timing.network.choose_shrinkage`` serves both);
2. the guard (``spec.guard_k``): a forecast further from ``m`` than ``k`` times the in-sample
   fitted dispersion (the standard deviation of the model's own forecasts on its training rows)
   is pulled back to that distance. Row by row, never over a batch: a batch statistic would let a
   later row's inputs move an earlier forecast. Each pull is counted (``guarded_``) and logged;
   the backtest summary reports how often it fired per model;
3. the range of the training targets: an expected return outside every return realised in the
   window is an extrapolation, never a forecast (a ridge fit on a daily panel once reached an
   OOS R^2 of -84 that way).
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.base import clone

from timing.dataset import PanelSpec, prediction_samples, training_samples

log = logging.getLogger(__name__)


def validation_split(n: int, val_fraction: float, gap: int) -> tuple[slice, slice]:
    """(fit part, validation tail) of ``n`` time-ordered samples, ``gap`` samples apart."""
    n_val = max(1, int(np.ceil(val_fraction * n)))
    n_fit = n - n_val - gap
    if n_fit < 2:
        raise ValueError(f"{n} training samples leave nothing to fit after a validation tail of {n_val}")
    return slice(0, n_fit), slice(n - n_val, n)


def choose_shrinkage(y: np.ndarray, model: np.ndarray, mean: np.ndarray, weights: tuple[float, ...]) -> np.ndarray:
    """Per column, the weight ``w`` in ``weights`` minimising the squared error of ``mean + w (model - mean)``."""
    errors = np.stack([((mean + w * (model - mean) - y) ** 2).sum(axis=0) for w in weights])
    return np.asarray(weights, dtype=float)[errors.argmin(axis=0)]


class WindowForecaster:
    kind = "forecast"

    def __init__(self, name: str, estimator, spec: PanelSpec, tabular: bool):
        self.name = name
        self.estimator = clone(estimator)
        self.spec = spec
        self.tabular = tabular

    def _x(self, X):
        return X[:, -1, :] if self.tabular else X

    def _y(self, y: np.ndarray) -> np.ndarray:
        return y if len(self.spec.factors) > 1 or not self.tabular else y.ravel()

    def _model(self, estimator, X: np.ndarray) -> np.ndarray:
        return estimator.predict(X).reshape(len(X), -1)

    def _shrink_weights(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Step 1 of the module docstring: one weight per factor from the validation tail."""
        if not self.spec.shrinkage:
            return np.ones(y.shape[1])
        fit, val = validation_split(len(X), self.spec.val_fraction, self.spec.horizon)
        early = clone(self.estimator).fit(X[fit], self._y(y[fit]))
        return choose_shrinkage(y[val], self._model(early, X[val]), y[fit].mean(axis=0), self.spec.shrinkage)

    def _shrunk(self, X: np.ndarray) -> np.ndarray:
        return self.center_ + self.shrink_weight_ * (self._model(self.estimator, X) - self.center_)

    def fit(self, train: pd.DataFrame) -> "WindowForecaster":
        samples, self.scaler_ = training_samples(train, self.spec)
        X, y = self._x(samples.X), samples.y
        self.train_dates_ = samples.dates
        self.bounds_ = (y.min(axis=0), y.max(axis=0))
        self.center_ = y.mean(axis=0)
        self.shrink_weight_ = self._shrink_weights(X, y)
        self.estimator.fit(X, self._y(y))
        k = self.spec.guard_k
        self.limit_ = None if k is None else k * self._shrunk(X).std(axis=0)
        self.guarded_ = 0
        return self

    def samples(self, features: pd.DataFrame, dates: pd.DatetimeIndex):
        return prediction_samples(features, self.spec, self.scaler_, dates)

    def _guard(self, pred: np.ndarray, dates: pd.DatetimeIndex) -> np.ndarray:
        """Step 2 of the module docstring."""
        if self.limit_ is None:
            return pred
        dev = pred - self.center_
        over = np.abs(dev) > self.limit_
        if over.any():
            self.guarded_ += int(over.sum())
            log.info("%s: %d of %d forecasts from %s beyond %g x the in-sample dispersion, pulled back",
                     self.name, int(over.sum()), over.size, dates[0].date(), self.spec.guard_k)
        return self.center_ + np.clip(dev, -self.limit_, self.limit_)

    def predict(self, features: pd.DataFrame, dates: pd.DatetimeIndex) -> pd.DataFrame:
        X = self._x(self.samples(features, dates).X)
        pred = np.clip(self._guard(self._shrunk(X), dates), *self.bounds_)
        return pd.DataFrame(pred, index=dates, columns=list(self.spec.factors))
