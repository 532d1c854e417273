"""Panel frame -> (lookback windows with missing-feature masks, next-horizon factor returns).

The panel contract (what ``timing.data.history_panel`` and ``signals.FeatureProvider.panel``
hand over): a frame on a sorted DatetimeIndex, one row per period end D, holding
- factor return columns named as the factors (``Mkt-RF``, ``SMB``, ...): the return realised
  over the period *ending* at D, in decimals;
- feature columns named ``<group>.<name>`` with group in sentiment / text / macro / market /
  extra (``text``: novelty, event and relevance features, ``signals.annotations``; ``extra``:
  series from a user's files, ``data.extra_predictors``), each value known at D's close (publication lags already applied by the producer);
- optional availability columns ``<feature>__mask`` (1 = observed). Where absent the mask is
  ``notna()``. Alternative data starts years after macro data, so early rows carry mask 0.

Point in time: the target of row D is the compounded factor return over the next ``h`` periods
(D+1 .. D+h), so a feature row dated D only predicts returns that start after D. Scaling
statistics are fitted by :class:`FeatureScaler` on the rows of the training frame only, and
scaled values are winsorized at ``PanelSpec.clip`` units: a series that was nearly constant in
training (or starts late) cannot hand a linear model a value of 10^4.

Decisions (issue 24: a daily panel through 2008 pushed ridge and the network to their bounds):
- ``scaling="standard"`` (the default) is mean / standard deviation; ``"robust"`` centres on the
  training median and divides by the training IQR / 1.349 (the standard deviation of a normal
  with that IQR), falling back to the standard deviation where the IQR is zero (a mostly-constant
  series, e.g. a monthly change carried over 21 sessions): one crisis week no longer sets the
  unit for the calm years. Robust scaling lost on both validation parts (monthly default: network
  net Sharpe 1.431 against 1.471; daily stress panel: network OOS R^2 down to -0.10 against
  -0.011, its crisis values pile up at the clip), so it is an option, not the default.
- a feature never observed, or constant, over the training frame is *dead* for that model:
  both its value and its availability mask are zero at prediction time, so a series that starts
  (or first moves) after training contributes nothing, where a mask flipping from 0 to 1 used
  to feed an input the model never saw vary.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

FEATURE_GROUPS = ("sentiment", "text", "macro", "market", "extra")  # the <group> of feature columns (config imports it)
MASK_SUFFIX = "__mask"
Scaling = Literal["standard", "robust"]  # how FeatureScaler measures centre and unit
DEFAULT_SCALING: Scaling = "standard"  # chosen on validation (docs/timing.md, "Daily panels through a crisis")
IQR_PER_SD = 1.349  # interquartile range of a standard normal


def feature_group(column: str) -> str:
    return column.split(".", 1)[0]


def feature_columns(panel: pd.DataFrame, groups: tuple[str, ...] = FEATURE_GROUPS) -> list[str]:
    """Feature columns of a panel (``group.name``), in panel order, restricted to ``groups``."""
    return [c for c in panel.columns if "." in c and not c.endswith(MASK_SUFFIX) and feature_group(c) in groups]


def availability(panel: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """0/1 availability per feature: the panel's ``__mask`` column where given, else notna."""
    observed = panel[features].notna().to_numpy(copy=True)
    masked = [i for i, c in enumerate(features) if c + MASK_SUFFIX in panel.columns]
    if masked:  # one frame operation for all masks: a loop over columns cost 0.3 s a call at 380 features
        masks = panel[[features[i] + MASK_SUFFIX for i in masked]].fillna(0).astype(bool).to_numpy()
        observed[:, masked] &= masks
    return pd.DataFrame(observed.astype(np.float32), index=panel.index, columns=list(features))


def forward_returns(panel: pd.DataFrame, factors: tuple[str, ...], horizon: int) -> pd.DataFrame:
    """Row D -> compounded return over D+1 .. D+horizon (NaN where not fully realised)."""
    growth = np.log1p(panel[list(factors)].astype(float))
    ahead = growth.rolling(horizon).sum().shift(-horizon)
    return np.expm1(ahead)


@dataclass(frozen=True)
class PanelSpec:
    """What a model sees: which features, which factors, how far back, how far ahead, how scaled."""

    features: tuple[str, ...]
    factors: tuple[str, ...]
    lookback: int
    horizon: int
    clip: float = 5.0  # winsorize scaled inputs at +-clip
    scaling: Scaling = DEFAULT_SCALING
    # what keeps forecasts on the training scale (timing.forecaster; config: TimingConfig.stability),
    # carried here because the spec is what every model factory receives
    guard_k: float | None = None  # pull back forecasts beyond k x the in-sample fitted dispersion
    shrinkage: tuple[float, ...] = ()  # weights toward the mean chosen on the validation tail (linear baselines)
    val_fraction: float = 0.2  # that tail, as a share of the training samples

    @property
    def n_inputs(self) -> int:
        return 2 * len(self.features)  # scaled values + availability mask


def _observed(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.where(mask > 0, values, np.nan)


def _standard(observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.nanmean(observed, axis=0), np.nanstd(observed, axis=0)


def _robust(observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    q25, median, q75 = np.nanpercentile(observed, [25, 50, 75], axis=0)
    iqr = (q75 - q25) / IQR_PER_SD
    return median, np.where(iqr > 1e-12, iqr, np.nanstd(observed, axis=0))


@dataclass
class FeatureScaler:
    """Centre and unit of each feature over its observed values in one training frame, and which
    features were alive there (observed and not constant)."""

    center: np.ndarray
    scale: np.ndarray
    live: np.ndarray  # bool per feature: False = never observed or constant in training

    @classmethod
    def fit(cls, values: np.ndarray, mask: np.ndarray, method: Scaling = DEFAULT_SCALING) -> "FeatureScaler":
        with warnings.catch_warnings():  # a feature never observed in this window: NaN statistics, dead
            warnings.simplefilter("ignore", RuntimeWarning)
            center, scale = (_robust if method == "robust" else _standard)(_observed(values, mask))
        live = np.isfinite(center) & np.isfinite(scale) & (scale > 1e-12)
        return cls(np.where(live, center, 0.0).astype(np.float64), np.where(live, scale, 1.0).astype(np.float64), live)

    def transform(self, values: np.ndarray, mask: np.ndarray, clip: float = np.inf) -> np.ndarray:
        z = np.clip((values - self.center) / self.scale, -clip, clip)
        # missing -> 0 (the training centre); the mask channel tells the model it was missing
        return np.where((mask > 0) & self.live, np.nan_to_num(z, nan=0.0), 0.0)

    def live_mask(self, mask: np.ndarray) -> np.ndarray:
        """Availability as the model sees it: a dead feature is never available."""
        return mask * self.live


@dataclass
class Samples:
    X: np.ndarray  # (n, lookback, 2F) float32: standardized features then masks
    dates: pd.DatetimeIndex
    y: np.ndarray | None = None  # (n, K) next-horizon returns


def _inputs(frame: pd.DataFrame, spec: PanelSpec, scaler: FeatureScaler) -> np.ndarray:
    feats = list(spec.features)
    mask = availability(frame, feats).to_numpy()
    values = frame[feats].to_numpy(dtype=float)
    z = scaler.transform(values, mask, spec.clip)
    return np.concatenate([z, scaler.live_mask(mask)], axis=1).astype(np.float32)


def _windows(inputs: np.ndarray, rows: np.ndarray, lookback: int) -> np.ndarray:
    offsets = np.arange(-lookback + 1, 1)
    return inputs[rows[:, None] + offsets[None, :]]


def fit_scaler(frame: pd.DataFrame, spec: PanelSpec) -> FeatureScaler:
    feats = list(spec.features)
    return FeatureScaler.fit(frame[feats].to_numpy(dtype=float), availability(frame, feats).to_numpy(), spec.scaling)


def training_samples(frame: pd.DataFrame, spec: PanelSpec) -> tuple[Samples, FeatureScaler]:
    """All complete (window, target) pairs inside ``frame``; the scaler is fitted on ``frame``.

    A row qualifies when it has ``lookback - 1`` rows before it and its whole target horizon
    lies inside the frame, so nothing after the frame's last row is ever needed.
    """
    scaler = fit_scaler(frame, spec)
    inputs = _inputs(frame, spec, scaler)
    y = forward_returns(frame, spec.factors, spec.horizon).to_numpy()
    rows = np.arange(spec.lookback - 1, len(frame))
    rows = rows[np.isfinite(y[rows]).all(axis=1)]
    return Samples(_windows(inputs, rows, spec.lookback), frame.index[rows], y[rows]), scaler


def prediction_samples(
    frame: pd.DataFrame, spec: PanelSpec, scaler: FeatureScaler, dates: pd.DatetimeIndex
) -> Samples:
    """Windows ending at ``dates`` built from ``frame`` (features only) with a fitted scaler."""
    rows = frame.index.get_indexer(dates)
    if (rows < 0).any():
        raise KeyError(f"dates not in frame: {list(dates[rows < 0][:3])}")
    if (rows < spec.lookback - 1).any():
        raise ValueError(f"frame lacks {spec.lookback - 1} rows of history before {dates[0].date()}")
    inputs = _inputs(frame, spec, scaler)
    return Samples(_windows(inputs, rows, spec.lookback), pd.DatetimeIndex(dates))
