"""Baselines, all run through the same walk-forward harness as the network.

Forecasting baselines (scored by OOS R^2 and turned into portfolios by the same construction):
historical mean, ridge, elastic net, random forest, LightGBM and single-task networks (the
network's twins: one encoder per factor, return head only, same linear core, shrinkage, seeds
and grid; each factor's encoder stops early on its own validation error). Allocation baselines
(weights directly, then the same volatility target, caps, band and costs): the macro-regime
rule, static equal weight, each factor held alone, and the volatility-managed equal weight
(Moreira & Muir 2017: the equal-weight book with each factor scaled by its long-run over its
recent variance; see timing.portfolio).

The macro-regime rule maps the product's source regimes onto the factors at hand:
    Expansion   -> momentum, size, value          (+ market: risk-on)
    Slowdown    -> momentum, quality, low vol
    Contraction -> low vol, quality, value
    Recovery    -> value, size (yield has no factor here)  (+ market: risk-on)
with quality = RMW and low volatility = CMA (the conservative-investment leg is the low-beta,
defensive side); with the packaged data (no RMW/CMA) "low vol" and "quality" mean *not holding
the market*, so Slowdown -> Mom, Contraction -> HML. The regime is read from an activity
indicator already lagged to its publication date in the panel: its gap to its own trailing
mean (above/below trend) and its 6-period change (rising/falling):
    above & rising = Expansion, above & falling = Slowdown,
    below & falling = Contraction, below & rising = Recovery.
Hyperparameters of the learners are chosen inside each training window (RidgeCV's efficient
leave-one-out, ElasticNetCV on time-ordered folds); forests and boosting use fixed small settings.

Each baseline registers itself with ``@register_baseline`` (``timing.registry``). sklearn,
LightGBM and the network (torch) are imported inside the factories that use them: the config
loads this module to check baseline names, and that must stay cheap.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np
import pandas as pd

from timing.dataset import PanelSpec, forward_returns
from timing.registry import baseline_factory, register_baseline

REGIME_FACTORS: dict[str, tuple[str, ...]] = {
    "expansion": ("Mom", "SMB", "HML", "Mkt-RF"),
    "slowdown": ("Mom", "RMW", "CMA"),
    "contraction": ("CMA", "RMW", "HML"),
    "recovery": ("HML", "SMB", "Mkt-RF"),
}
REGIME_COLUMNS = ("macro.activity_gap", "macro.activity_chg6")
VOL_MANAGED = "vol_managed"  # the one baseline whose portfolio is volatility-managed


class HistoricalMean:
    """Forecast = mean next-horizon return over the training window (the OOS R^2 benchmark)."""

    name, kind = "historical_mean", "forecast"

    def __init__(self, spec: PanelSpec):
        self.spec = spec

    def fit(self, train: pd.DataFrame) -> "HistoricalMean":
        self.mean_ = forward_returns(train, self.spec.factors, self.spec.horizon).mean()
        return self

    def predict(self, features: pd.DataFrame, dates: pd.DatetimeIndex) -> pd.DataFrame:
        return pd.DataFrame(np.tile(self.mean_.to_numpy(), (len(dates), 1)), index=dates,
                            columns=list(self.spec.factors))


class StaticWeights:
    """Fixed raw weights (equal weight, or one factor alone)."""

    kind = "allocation"

    def __init__(self, name: str, weights: dict[str, float], factors: tuple[str, ...]):
        self.name = name
        self.weights = pd.Series({f: weights.get(f, 0.0) for f in factors})

    def fit(self, train: pd.DataFrame) -> "StaticWeights":
        return self

    def predict(self, features: pd.DataFrame, dates: pd.DatetimeIndex) -> pd.DataFrame:
        return pd.DataFrame(np.tile(self.weights.to_numpy(), (len(dates), 1)), index=dates,
                            columns=self.weights.index)


def regime_of(gap: float, change: float) -> str:
    if gap >= 0:
        return "expansion" if change >= 0 else "slowdown"
    return "recovery" if change >= 0 else "contraction"


class MacroRegimeRule:
    """Equal raw weight on the factors the current regime favours (see module docstring)."""

    name, kind = "macro_regime", "allocation"

    def __init__(self, factors: tuple[str, ...], columns: tuple[str, str] = REGIME_COLUMNS):
        self.factors = factors
        self.columns = columns

    def fit(self, train: pd.DataFrame) -> "MacroRegimeRule":
        missing = [c for c in self.columns if c not in train.columns]
        if missing:
            raise KeyError(f"macro_regime needs panel columns {missing}")
        return self

    def regimes(self, features: pd.DataFrame, dates: pd.DatetimeIndex) -> pd.Series:
        gap, chg = (features[c].ffill().reindex(dates).fillna(0.0) for c in self.columns)
        return pd.Series([regime_of(g, c) for g, c in zip(gap, chg)], index=dates)

    def predict(self, features: pd.DataFrame, dates: pd.DatetimeIndex) -> pd.DataFrame:
        rows = []
        for regime in self.regimes(features, dates):
            chosen = [f for f in REGIME_FACTORS[regime] if f in self.factors]
            rows.append([1.0 / len(chosen) if f in chosen else 0.0 for f in self.factors])
        return pd.DataFrame(rows, index=dates, columns=list(self.factors))


def _tabular(name: str, estimator, spec: PanelSpec, linear: bool = False) -> Callable[[], object]:
    """A baseline on the window's last row. Only the linear ones get the shrinkage grid: forests and
    boosting already forecast averages of training targets; the guard applies to all of them."""
    from timing.forecaster import WindowForecaster

    tab = replace(spec, lookback=1, shrinkage=spec.shrinkage if linear else ())
    return lambda: WindowForecaster(name, estimator, tab, tabular=True)


def build_baselines(names: tuple[str, ...], spec: PanelSpec, make_single_timer: Callable[[], object],
                    seed: int) -> list[Callable[[], object]]:
    """Model factories for the named baselines (``single_factor`` expands to one per factor)."""
    out: list[Callable[[], object]] = []
    for name in names:
        out.extend(baseline_factory(name)(spec, make_single_timer, seed))
    return out


@register_baseline("historical_mean")
def _historical_mean(spec, _timer, _seed):
    return [lambda: HistoricalMean(spec)]


@register_baseline("ridge")
def _ridge(spec, _timer, _seed):
    from sklearn.linear_model import RidgeCV

    from timing.network import RIDGE_ALPHAS

    return [_tabular("ridge", RidgeCV(alphas=RIDGE_ALPHAS, alpha_per_target=True), spec, linear=True)]


@register_baseline("elastic_net")
def _elastic_net(spec, _timer, seed):
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.linear_model import ElasticNetCV
    from sklearn.model_selection import TimeSeriesSplit
    from sklearn.multioutput import MultiOutputRegressor
    from sklearn.preprocessing import StandardScaler

    # targets standardized so the penalty path is on the same scale for every factor; the path
    # (warm-started by ElasticNetCV) stops at 1/30 of the largest alpha: returns are too noisy for
    # the near-unpenalized end, which is also where coordinate descent converges slowest
    net = ElasticNetCV(l1_ratio=[0.5, 0.9], alphas=12, eps=1 / 30, cv=TimeSeriesSplit(3), tol=1e-3, max_iter=2000,
                       random_state=seed)
    return [_tabular("elastic_net", TransformedTargetRegressor(MultiOutputRegressor(net), transformer=StandardScaler()),
                     spec, linear=True)]


@register_baseline("random_forest")
def _random_forest(spec, _timer, seed):
    from sklearn.ensemble import RandomForestRegressor

    return [_tabular("random_forest", RandomForestRegressor(n_estimators=200, max_depth=3, min_samples_leaf=20,
                                                            max_features=0.5, random_state=seed, n_jobs=1), spec)]


@register_baseline("lightgbm")
def _lightgbm(spec, _timer, seed):
    from lightgbm import LGBMRegressor
    from sklearn.multioutput import MultiOutputRegressor

    booster = LGBMRegressor(n_estimators=100, learning_rate=0.03, num_leaves=4, min_child_samples=20, subsample=0.8,
                            subsample_freq=1, colsample_bytree=0.8, random_state=seed, n_jobs=1, verbose=-1)
    return [_tabular("lightgbm", MultiOutputRegressor(booster), spec)]


@register_baseline("single_task_net")
def _single_task_net(spec, make_single_timer, _seed):
    from timing.forecaster import WindowForecaster

    # the twins shrink inside MultiTaskTimer, as the network does
    return [lambda: WindowForecaster("single_task_net", make_single_timer(), replace(spec, shrinkage=()), tabular=False)]


@register_baseline("macro_regime")
def _macro_regime(spec, _timer, _seed):
    return [lambda: MacroRegimeRule(spec.factors)]


@register_baseline("equal_weight")
def _equal_weight(spec, _timer, _seed):
    return [lambda: StaticWeights("equal_weight", {f: 1.0 / len(spec.factors) for f in spec.factors}, spec.factors)]


@register_baseline(VOL_MANAGED)
def _vol_managed(spec, _timer, _seed):
    return [lambda: StaticWeights(VOL_MANAGED, {f: 1.0 / len(spec.factors) for f in spec.factors}, spec.factors)]


@register_baseline("single_factor")
def _single_factor(spec, _timer, _seed):
    return [(lambda f=f: StaticWeights(f"only:{f}", {f: 1.0}, spec.factors)) for f in spec.factors]
