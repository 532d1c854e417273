"""The end-to-end allocator (``end_to_end``; Zhang, Zohren & Roberts 2020).

The timing encoder (``timing.network.Encoder``) with a
weight head, tanh (long-short) or softmax (long-only); the raw weights pass the book's own vol
target and cap (:func:`vol_targeted`, the torch twin of ``portfolio.target_weights``); the loss is
minus the Sharpe ratio or the mean-variance utility of the net returns, costs of the weight
changes included (:func:`net_returns`), so the network learns its own turnover. The band and the
turnover penalty of the book are not in the loss (a sequential soft threshold per step would cost
a Python loop per epoch); the book applies them to every allocator alike.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from timing.allocation_data import WindowData
from timing.config import DirectConfig, NetworkConfig, PortfolioConfig
from timing.forecaster import validation_split
from timing.network import Encoder


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
