"""The many-task panel: targets from any return file, per-task and shared predictors, point in time.

A row dated D (a month end) is the decision at D's close. Everything in it is known by then:
- per task (``own``): the task's trailing compounded 1/3/12-month returns (``zoo.own_months``)
  and its realized volatility, the standard deviation of its last ``zoo.vol_months`` monthly
  returns, annualized; all from returns of months ending at or before D, NaN until the window is
  full (a factor that starts late has no own history yet, and its target is missing, so it is
  masked until it exists). ``tsfm`` is the Gupta-Kelly (2019) time-series momentum signal,
  ``clip(r_12m / sigma_36m, -2, 2)`` with sigma the annualized volatility of the last 36 months;
- shared: the ``[data]`` panel's columns named by ``zoo.shared_prefixes`` (FRED-MD, already
  publication-lagged by ``signals.macro``; market series) and, with ``zoo.goyal_welch``, the
  Welch-Goyal predictors dp, ep, bm, tms, dfy, svar, ntis, infl (``macro.gw_*``): the value for
  reference month m is used from the decision at the end of month m + ``gw_lag_months``
  (ep and infl: m + ``gw_slow_lag_months``), never earlier;
- the target of row D is the task's return over the next month (D+1), NaN when it has none.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from timing.zoo_config import ZooConfig

GW_SLOW = ("ep", "infl")


@dataclass
class ZooPanel:
    dates: pd.DatetimeIndex  # month ends, T
    ids: list[str]  # K tasks
    groups: np.ndarray  # (K,) int theme of each task
    group_names: list[str]
    returns: np.ndarray  # (T, K) return over the month ending at each date; NaN = no return
    own: np.ndarray  # (T, K, F_own) per-task predictors, NaN = unknown
    own_names: list[str]
    tsfm: np.ndarray  # (T, K) Gupta-Kelly signal, NaN = unknown
    shared: np.ndarray  # (T, F_shared), NaN = unknown
    shared_names: list[str]

    def returns_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.returns, index=self.dates, columns=self.ids)


def _read_gw(path: str) -> pd.DataFrame:
    from core.errors import MissingFileError
    from core.paths import resolve_data_path

    where = resolve_data_path(path)
    try:
        raw = pd.read_csv(where, thousands=",")
    except FileNotFoundError:
        raise MissingFileError(f"Goyal-Welch file {where}: not found (zoo.goyal_welch)") from None
    return raw


def goyal_welch(path: str, lag: int, slow_lag: int) -> pd.DataFrame:
    """The eight Welch-Goyal predictors as ``macro.gw_<name>``, indexed by the first month end at
    which each value may be used (its reference month + lag): one frame per lag, then combined."""
    raw = _read_gw(path)
    month = pd.PeriodIndex(raw["yyyymm"].astype(int).astype(str), freq="M")
    index = pd.to_numeric(raw["Index"], errors="coerce")
    values = pd.DataFrame({
        "dp": np.log(raw["D12"]) - np.log(index), "ep": np.log(raw["E12"]) - np.log(index), "bm": raw["b/m"],
        "tms": raw["lty"] - raw["tbl"], "dfy": raw["BAA"] - raw["AAA"], "svar": raw["svar"], "ntis": raw["ntis"],
        "infl": raw["infl"]}).astype(float)
    values.index = month
    parts = []
    for name in values.columns:
        shift = slow_lag if name in GW_SLOW else lag
        s = values[name].copy()
        s.index = (month + shift).to_timestamp("M")  # usable from the end of month m + shift
        parts.append(s.rename(f"macro.gw_{name}"))
    return pd.concat(parts, axis=1).sort_index()


def own_predictors(returns: pd.DataFrame, months: tuple[int, ...], vol_months: int) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(own (T, K, F), names, tsfm (T, K)) from monthly returns, trailing windows only."""
    logr = np.log1p(returns)
    feats, names = [], []
    for m in months:
        feats.append(np.expm1(logr.rolling(m, min_periods=m).sum()).to_numpy())
        names.append(f"ret_{m}m")
    feats.append((returns.rolling(vol_months, min_periods=vol_months).std() * np.sqrt(12)).to_numpy())
    names.append(f"vol_{vol_months}m")
    r12 = np.expm1(logr.rolling(12, min_periods=12).sum())
    sigma = returns.rolling(36, min_periods=24).std() * np.sqrt(12)
    tsfm = (r12 / sigma.where(sigma > 0)).clip(-2, 2).to_numpy()
    return np.stack(feats, axis=-1), names, tsfm


def _month_end(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    return index.to_period("M").to_timestamp("M")


def build_zoo_panel(returns: pd.DataFrame, groups: pd.Series, panel: pd.DataFrame, cfg: ZooConfig,
                    start: str | None = None, end: str | None = None) -> ZooPanel:
    """Join the targets (month ends x ids), the ``[data]`` panel's shared columns and Goyal-Welch."""
    from core.errors import UsageError

    shared_cols = [c for c in panel.columns if c.startswith(cfg.shared_prefixes) and not c.endswith("__mask")]
    shared = panel[shared_cols].copy()
    shared.index = _month_end(pd.DatetimeIndex(shared.index))
    shared = shared[~shared.index.duplicated(keep="last")]
    returns = returns.copy()
    returns.index = _month_end(pd.DatetimeIndex(returns.index))
    lo = max(returns.index[0], shared.index[0])
    hi = min(returns.index[-1], shared.index[-1])
    if start is not None:
        lo = max(lo, pd.Timestamp(start))
    if end is not None:
        hi = min(hi, pd.Timestamp(end))
    dates = pd.date_range(lo, hi, freq="ME")
    if len(dates) < 36:
        raise UsageError(f"targets and the [data] panel share only {len(dates)} months ({lo.date()}..{hi.date()})")
    # own predictors are computed on the whole return history before the cut: the history before
    # the first date is known at it
    full = returns.reindex(pd.date_range(returns.index[0], hi, freq="ME"))
    own, own_names, tsfm = own_predictors(full, tuple(cfg.own_months), cfg.vol_months)
    rows = full.index.get_indexer(dates)
    shared = shared.reindex(dates)
    if cfg.goyal_welch is not None:
        gw = goyal_welch(cfg.goyal_welch, cfg.gw_lag_months, cfg.gw_slow_lag_months)
        gw = gw.reindex(gw.index.union(dates)).ffill(limit=3).reindex(dates)  # a monthly series, carried at most 3 months
        shared = pd.concat([shared, gw], axis=1)
    names = sorted(groups.unique())
    code = {g: i for i, g in enumerate(names)}
    return ZooPanel(
        dates=dates, ids=list(returns.columns), groups=np.array([code[g] for g in groups[returns.columns]]),
        group_names=names, returns=full.to_numpy()[rows], own=own[rows], own_names=own_names, tsfm=tsfm[rows],
        shared=shared.to_numpy(dtype=float), shared_names=list(shared.columns))
