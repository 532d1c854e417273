"""Forecasts (or raw allocations) -> factor weights -> gross and net returns.

At each decision date D (a test row) the construction uses only returns realised up to D:
1. covariance: Ledoit-Wolf shrunk estimate (scikit-learn) of the last ``cov_window`` periods
   of factor returns ending at D;
2. raw weights: mean-variance ``Sigma^-1 mu`` or forecast over variance ``mu / diag(Sigma)``
   for forecasters; allocation rules hand raw weights directly;
3. optional long-only clip, then scaling to the annual volatility target under Sigma, then the
   per-factor cap ``|w| <= max_weight`` (a cap binding after scaling lowers the ex-ante vol;
   it is never scaled back up past the cap);
3b. optional Moreira-Muir volatility management (``vol_managed=True``): each factor's weight is
   multiplied by its long-run variance (the covariance window's) over its recent realized
   variance (the last ``vol_window`` rows up to D), capped at ``max_vol_scale``, then capped at
   ``max_weight`` again. It comes after the vol target on purpose: scaling to a constant ex-ante
   volatility under the long-window covariance would undo it;
4. trading: a factor's weight moves only when the target differs from the held weight by more
   than ``no_trade_band``, and then by the L1-penalised step ``sign(d) max(|d| - penalty, 0)``
   (the minimiser of ``1/2 (w - target)^2 + turnover_penalty |w - held|``, ``d = target - held``);
5. the weight set at D earns the factor returns of D+1 .. D+h; costs of ``cost_bps`` per unit
   of turnover ``sum_k |w_k(D) - w_k(D-1)|`` are charged at D (the first trade from cash counts).

Every strategy, equal weight included, goes through the same steps, so all are compared at the
same volatility target with the same costs. Non-overlapping holding periods are used for
horizons longer than one period: the book is rebalanced every ``horizon`` rows, so a weekly
forecast on a daily panel trades at most once a week.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.covariance import LedoitWolf

from timing.config import PortfolioConfig
from timing.dataset import forward_returns
from timing.predictors import realized_variance


@dataclass
class PortfolioResult:
    weights: pd.DataFrame  # decision date x factor, after band
    gross: pd.Series  # return earned over the holding period following each decision date
    net: pd.Series
    turnover: pd.Series
    costs: pd.Series


def shrunk_covariance(returns: pd.DataFrame, end: pd.Timestamp, window: int) -> np.ndarray:
    past = returns.loc[:end].tail(window).dropna()
    if len(past) < 12:
        raise ValueError(f"only {len(past)} return rows before {end.date()} for the covariance")
    return LedoitWolf().fit(past.to_numpy()).covariance_


def target_weights(signal: np.ndarray, cov: np.ndarray, cfg: PortfolioConfig, periods_per_year: float,
                   from_forecast: bool) -> np.ndarray:
    """Steps 2-3 above for one date."""
    if from_forecast:
        raw = np.linalg.solve(cov, signal) if cfg.method == "mean_variance" else signal / np.diag(cov)
    else:
        raw = np.asarray(signal, dtype=float)
    if cfg.long_only:
        raw = np.clip(raw, 0.0, None)
    vol = float(np.sqrt(raw @ cov @ raw * periods_per_year))
    if vol <= 1e-12:
        return np.zeros_like(raw)
    w = raw * (cfg.vol_target / vol)
    return np.clip(w, -cfg.max_weight, cfg.max_weight)


def trade_step(target: np.ndarray, held: np.ndarray, band: float, penalty: float = 0.0) -> np.ndarray:
    """Step 4 for one date: the weights held after trading from ``held`` toward ``target``."""
    d = target - held
    step = np.sign(d) * np.maximum(np.abs(d) - penalty, 0.0)
    return np.where(np.abs(d) > band, held + step, held)


def trade(targets: np.ndarray, band: float, penalty: float = 0.0, held: np.ndarray | None = None) -> np.ndarray:
    """Held weights: move toward each target only past ``band``, by the L1-penalised step, starting
    from ``held`` (cash when None)."""
    held = np.zeros(targets.shape[1]) if held is None else np.asarray(held, dtype=float)
    out = np.empty_like(targets)
    for i, t in enumerate(targets):
        held = out[i] = trade_step(t, held, band, penalty)
    return out


def vol_scale(long_var: np.ndarray, recent_var: np.ndarray, cap: float) -> np.ndarray:
    """Moreira-Muir scale ``long / recent`` per factor, in [0, cap] (1 where recent is unknown)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(np.isfinite(recent_var) & (recent_var > 0), long_var / recent_var, 1.0)
    return np.clip(ratio, 0.0, cap)


# an allocator's decision rule: (decision date, weights held before it) -> its signal at that date
# (expected returns when the book is built from a forecast, raw weights when it is not)
Policy = Callable[[pd.Timestamp, np.ndarray], np.ndarray]


def run_book(policy: Policy, factors: list[str], dates: pd.DatetimeIndex, returns: pd.DataFrame,
             cfg: PortfolioConfig, horizon: int, periods_per_year: float, from_forecast: bool,
             vol_managed: bool = False, vol_window: int = 21) -> PortfolioResult:
    """Run steps 1-5 for ``dates`` (every ``horizon``-th of them), asking ``policy`` at each one.

    Every allocator goes through here: forecasts (mean-variance, the baselines) and direct
    policies, which see the weights they hold, so all share the same costs and constraints.
    """
    dates = pd.DatetimeIndex(dates[::horizon])
    ppy = periods_per_year / horizon  # holding periods per year
    cov_scale = horizon  # per-period covariance -> per-holding-period covariance
    recent = realized_variance(returns[factors], vol_window, 1) if vol_managed else None
    held = np.zeros(len(factors))
    weights = np.empty((len(dates), len(factors)))
    for i, d in enumerate(dates):
        cov = shrunk_covariance(returns[factors], d, cfg.cov_window)
        w = target_weights(np.asarray(policy(d, held), dtype=float), cov * cov_scale, cfg, ppy, from_forecast)
        if vol_managed:
            w = np.clip(w * vol_scale(np.diag(cov), recent.loc[d].to_numpy(), cfg.max_vol_scale),
                        -cfg.max_weight, cfg.max_weight)
        held = weights[i] = trade_step(w, held, cfg.no_trade_band, cfg.turnover_penalty)
    prev = np.vstack([np.zeros(len(factors)), weights[:-1]])
    turnover = np.abs(weights - prev).sum(axis=1)
    costs = turnover * cfg.cost_bps / 1e4
    realised = forward_returns(returns, tuple(factors), horizon).loc[dates].to_numpy()
    gross = (weights * realised).sum(axis=1)
    return PortfolioResult(
        pd.DataFrame(weights, index=dates, columns=factors), pd.Series(gross, dates), pd.Series(gross - costs, dates),
        pd.Series(turnover, dates), pd.Series(costs, dates),
    )


def backtest(signals: pd.DataFrame, returns: pd.DataFrame, cfg: PortfolioConfig, horizon: int,
             periods_per_year: float, from_forecast: bool, vol_managed: bool = False,
             vol_window: int = 21) -> PortfolioResult:
    """Steps 1-5 for signals known up front (forecasts or raw weights, one row per decision date)."""
    def policy(d: pd.Timestamp, _held: np.ndarray) -> np.ndarray:
        return signals.loc[d].to_numpy(dtype=float)

    return run_book(policy, list(signals.columns), signals.index, returns, cfg, horizon, periods_per_year,
                    from_forecast, vol_managed, vol_window)
