"""Allocators: who turns what is known at a decision date into factor weights.

Every book trades through ``timing.portfolio.run_book``, which asks a policy ``(date, held
weights) -> signal`` at each decision date and applies the same vol target, weight cap, long-only
clip, no-trade band, turnover penalty and costs. Two kinds of policy share that interface:
- ``mean_variance`` (as always): a forecasting model's expected returns, turned into weights by
  ``Sigma^-1 mu`` (``timing.backtest``'s ``network`` book and the forecasting baselines);
- direct allocators, which output raw weights themselves (``from_forecast=False``):
  ``end_to_end`` (:class:`EndToEndAllocator`, below) and ``rl_ppo`` / ``rl_sac``
  (``timing.rl_allocator``, stable-baselines3 on ``timing.allocation_env``).

A direct allocator is fitted per walk-forward fold on that fold's training slice only (the same
folds as the forecasters: ``timing.walkforward.fold_frames``) and sees, at decision date D, the
scaled feature window ending at D and the weights it holds; the covariance of the vol target uses
returns up to D. So nothing after D reaches a decision at D (tests/test_timing_allocators.py
changes later returns and checks that earlier weights stay).

End to end (Zhang, Zohren & Roberts 2020): the timing encoder (``timing.network.Encoder``) with a
weight head, tanh (long-short) or softmax (long-only); the raw weights pass the book's own vol
target and cap (:func:`vol_targeted`, the torch twin of ``portfolio.target_weights``); the loss is
minus the Sharpe ratio or the mean-variance utility of the net returns, costs of the weight
changes included (:func:`net_returns`), so the network learns its own turnover. The band and the
turnover penalty of the book are not in the loss (a sequential soft threshold per step would cost
a Python loop per epoch); the book applies them to every allocator alike.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np
import pandas as pd
import torch
from joblib import Parallel, delayed
from torch import nn

from core.progress import Progress
from core.threads import set_threads
from timing.config import DirectConfig, NetworkConfig, PortfolioConfig
from timing.dataset import FeatureScaler, PanelSpec, prediction_samples, training_samples
from timing.forecaster import validation_split
from timing.network import Encoder
from timing.portfolio import Policy, shrunk_covariance
from timing.walkforward import Fold, fold_frames

log = logging.getLogger(__name__)
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


class DirectAllocator(Protocol):
    """A policy fitted on one training window: raw weights from a feature window and held weights."""

    name: str

    def fit(self, data: WindowData) -> "DirectAllocator": ...

    def act(self, x: np.ndarray, held: np.ndarray) -> np.ndarray: ...


# --- end to end -----------------------------------------------------------------------------------

def vol_targeted(raw: torch.Tensor, covs: torch.Tensor, vol_target: float, periods_per_year: float,
                 max_weight: float) -> torch.Tensor:
    """``portfolio.target_weights`` for raw weights, differentiable: scale each row to the annual
    vol target under its covariance, then cap each weight at ``max_weight``."""
    var = torch.einsum("nk,nkj,nj->n", raw, covs, raw) * periods_per_year
    scale = vol_target / torch.sqrt(var.clamp_min(1e-24))
    return (raw * scale[:, None]).clamp(-max_weight, max_weight)


def net_returns(weights: torch.Tensor, returns: torch.Tensor, cost: float) -> torch.Tensor:
    """Per date: ``w_t . r_t - cost * sum_k |w_t,k - w_t-1,k|``, starting from cash (as the book)."""
    prev = torch.cat([torch.zeros_like(weights[:1]), weights[:-1]])
    return (weights * returns).sum(dim=1) - cost * (weights - prev).abs().sum(dim=1)


def objective(net: torch.Tensor, kind: str, periods_per_year: float, risk_aversion: float) -> torch.Tensor:
    """Annualised Sharpe ratio, or the utility ``mean - risk_aversion/2 var`` (annualised)."""
    if kind == "sharpe":
        return net.mean() / net.std().clamp_min(1e-8) * periods_per_year ** 0.5
    return net.mean() * periods_per_year - 0.5 * risk_aversion * net.var() * periods_per_year


class EndToEndNet(nn.Module):
    """Encoder -> raw weights (tanh, or softmax when long-only) and optional forecast heads."""

    def __init__(self, n_inputs: int, lookback: int, n_assets: int, net: NetworkConfig, long_only: bool, aux: bool):
        super().__init__()
        self.encoder = Encoder(net.encoder, n_inputs, lookback, net.hidden, net.dropout)
        self.weight_head = nn.Linear(net.hidden, n_assets)
        self.forecast_head = nn.Linear(net.hidden, n_assets) if aux else None
        self.long_only = long_only

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        z = self.encoder(x)
        logits = self.weight_head(z)
        raw = torch.softmax(logits, dim=1) if self.long_only else torch.tanh(logits)
        return raw, None if self.forecast_head is None else self.forecast_head(z)


class EndToEndAllocator:
    name = "end_to_end"

    def __init__(self, net: NetworkConfig, direct: DirectConfig, portfolio: PortfolioConfig, periods_per_year: float):
        self.net, self.direct, self.portfolio, self.ppy = net, direct, portfolio, periods_per_year

    def _loss(self, model: EndToEndNet, x: torch.Tensor, y: torch.Tensor, covs: torch.Tensor) -> torch.Tensor:
        raw, forecast = model(x)
        p, d = self.portfolio, self.direct
        w = vol_targeted(raw, covs, p.vol_target, self.ppy, p.max_weight)
        loss = -objective(net_returns(w, y, p.cost_bps / 1e4), d.objective, self.ppy, d.risk_aversion)
        if forecast is not None:
            loss = loss + d.aux_weight * ((forecast - (y - self.y_mean_) / self.y_std_) ** 2).mean()
        return loss

    def _train(self, data: WindowData, seed: int) -> EndToEndNet:
        torch.manual_seed(seed)
        d = self.direct
        fit, val = validation_split(len(data.X), self.net.val_fraction, 1)
        x, y, covs = (torch.as_tensor(a, dtype=torch.float32) for a in (data.X, data.y, data.covs))
        model = EndToEndNet(data.X.shape[2], data.X.shape[1], data.y.shape[1], self.net, self.portfolio.long_only,
                            d.aux_weight > 0)
        opt = torch.optim.Adam(model.parameters(), lr=d.lr, weight_decay=d.weight_decay)
        best, best_state, waited = np.inf, None, 0
        for _ in range(d.epochs):
            model.train()
            opt.zero_grad()
            self._loss(model, x[fit], y[fit], covs[fit]).backward()
            opt.step()
            model.eval()
            with torch.no_grad():
                score = float(self._loss(model, x[val], y[val], covs[val]))
            if score < best - 1e-6:
                best, best_state, waited = score, {k: v.clone() for k, v in model.state_dict().items()}, 0
            else:
                waited += 1
                if waited >= d.patience:
                    break
        model.load_state_dict(best_state)
        return model.eval()

    def fit(self, data: WindowData) -> "EndToEndAllocator":
        self.y_mean_ = torch.as_tensor(data.y.mean(axis=0), dtype=torch.float32)
        self.y_std_ = torch.as_tensor(data.y.std(axis=0) + 1e-8, dtype=torch.float32)
        self.models_ = [self._train(data, s) for s in self.direct.seeds]
        return self

    def act(self, x: np.ndarray, held: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            xt = torch.as_tensor(x[None], dtype=torch.float32)
            return torch.stack([m(xt)[0][0] for m in self.models_]).mean(dim=0).numpy()


# --- walk-forward -----------------------------------------------------------------------------------

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
