"""Adapter from panel frames to scikit-learn style estimators on lookback windows.

``WindowForecaster.fit(train_frame)`` builds the training samples, fitting the feature scaler on
that frame only, then calls ``estimator.fit(X, y)``; ``predict(features, dates)`` reuses the
fitted scaler. Tabular estimators (ridge, forests, boosting) see the last row of the window
(standardized features plus availability masks); the network sees the whole window.

Forecasts are bounded to the range of the training targets: an expected return outside every
return ever realised in the window is an extrapolation, never a forecast (a ridge fit on a
daily panel once reached an OOS R^2 of -84 that way).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import clone

from timing.dataset import PanelSpec, prediction_samples, training_samples


class WindowForecaster:
    kind = "forecast"

    def __init__(self, name: str, estimator, spec: PanelSpec, tabular: bool):
        self.name = name
        self.estimator = clone(estimator)
        self.spec = spec
        self.tabular = tabular

    def _x(self, X):
        return X[:, -1, :] if self.tabular else X

    def fit(self, train: pd.DataFrame) -> "WindowForecaster":
        samples, self.scaler_ = training_samples(train, self.spec)
        self.train_dates_ = samples.dates
        self.bounds_ = (samples.y.min(axis=0), samples.y.max(axis=0))
        y = samples.y if len(self.spec.factors) > 1 or not self.tabular else samples.y.ravel()
        self.estimator.fit(self._x(samples.X), y)
        return self

    def samples(self, features: pd.DataFrame, dates: pd.DatetimeIndex):
        return prediction_samples(features, self.spec, self.scaler_, dates)

    def predict(self, features: pd.DataFrame, dates: pd.DatetimeIndex) -> pd.DataFrame:
        X = self.samples(features, dates).X
        pred = np.clip(self.estimator.predict(self._x(X)).reshape(len(dates), -1), *self.bounds_)
        return pd.DataFrame(pred, index=dates, columns=list(self.spec.factors))
