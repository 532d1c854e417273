"""The multi-task factor-timing network and its scikit-learn style estimator.

Architecture: a shared encoder (MLP over the flattened window, an LSTM, or a one-layer
Transformer encoder, by config) feeds one small head per factor for the expected return, and
optionally a log-variance head (trained with the Gaussian negative log-likelihood) and a sign
head (logistic loss) per factor. Task losses are combined either with learned uncertainty
weights (Kendall, Gal & Cipolla 2018: ``sum_i exp(-s_i) L_i + s_i`` with ``s_i = log sigma_i^2``
learned) or with fixed weights.

Decisions where the issue was silent:
- targets are standardized with the fit-part mean and std, and the return heads start at zero,
  so an untrained network forecasts the training-window historical mean; early stopping on the
  validation tail therefore shrinks towards the historical-mean benchmark when nothing is learnable.
- the volatility head sees the return forecast detached, so it cannot pull the mean forecast.
- L2 weight decay is the coupled kind (``Adam(weight_decay=...)``), i.e. a true penalty.
- the validation tail is separated from the fit part by ``gap`` samples (the horizon) so
  overlapping multi-period targets cannot leak from validation into fitting.
- the hyperparameter grid is scored with the first seed only; the chosen setting is then
  trained for every seed and the ensemble forecast is the mean over seeds.
CPU only, small by design: full history of monthly data trains in well under a second per seed.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from torch import nn


class _Encoder(nn.Module):
    def __init__(self, kind: str, n_inputs: int, lookback: int, hidden: int, dropout: float):
        super().__init__()
        self.kind = kind
        if kind == "mlp":
            self.body = nn.Sequential(
                nn.Flatten(), nn.Linear(n_inputs * lookback, hidden), nn.GELU(), nn.Dropout(dropout),
                nn.Linear(hidden, hidden), nn.GELU(), nn.Dropout(dropout),
            )
        elif kind == "lstm":
            self.rnn = nn.LSTM(n_inputs, hidden, batch_first=True)
            self.drop = nn.Dropout(dropout)
        elif kind == "transformer":
            d_model = max(8, hidden - hidden % 2)
            self.proj = nn.Linear(n_inputs, d_model)
            self.pos = nn.Parameter(torch.zeros(1, lookback, d_model))
            layer = nn.TransformerEncoderLayer(
                d_model, nhead=2, dim_feedforward=2 * d_model, dropout=dropout, batch_first=True
            )
            self.body = nn.TransformerEncoder(layer, num_layers=1, enable_nested_tensor=False)
            self.out = nn.Linear(d_model, hidden)
        else:
            raise ValueError(f"unknown encoder {kind!r}; choose mlp, lstm or transformer")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "mlp":
            return self.body(x)
        if self.kind == "lstm":
            _, (h, _) = self.rnn(x)
            return self.drop(h[-1])
        z = self.body(self.proj(x) + self.pos)
        return torch.nn.functional.gelu(self.out(z[:, -1]))


class MultiTaskNet(nn.Module):
    """Shared encoder, one return head per factor (+ optional volatility and sign heads)."""

    def __init__(self, n_inputs: int, lookback: int, n_factors: int, encoder: str = "mlp",
                 hidden: int = 16, dropout: float = 0.1, vol_head: bool = True, sign_head: bool = True):
        super().__init__()
        self.encoder = _Encoder(encoder, n_inputs, lookback, hidden, dropout)
        # Row k of each Linear(hidden, n_factors) is factor k's own head (separate weights and
        # bias); one matrix instead of K modules only saves Python overhead.
        self.mean_head = nn.Linear(hidden, n_factors)
        nn.init.zeros_(self.mean_head.weight)  # start at the historical mean (standardized target 0)
        nn.init.zeros_(self.mean_head.bias)
        self.vol_head = nn.Linear(hidden, n_factors) if vol_head else None
        self.sign_head = nn.Linear(hidden, n_factors) if sign_head else None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.encoder(x)
        out = {"mean": self.mean_head(z)}
        if self.vol_head is not None:
            out["logvar"] = self.vol_head(z)
        if self.sign_head is not None:
            out["sign"] = self.sign_head(z)
        return out


class _TaskLoss(nn.Module):
    """Per-task losses combined by learned uncertainty or fixed weights."""

    def __init__(self, n_factors: int, heads: tuple[str, ...], weighting: str, fixed: tuple[float, float, float]):
        super().__init__()
        self.heads = heads
        self.weighting = weighting
        self.fixed = dict(zip(("mean", "logvar", "sign"), fixed))
        if weighting == "uncertainty":
            self.log_vars = nn.Parameter(torch.zeros(len(heads), n_factors))

    def forward(self, out: dict[str, torch.Tensor], y: torch.Tensor) -> torch.Tensor:
        losses = []
        for name in self.heads:
            if name == "mean":
                task = (out["mean"] - y) ** 2
            elif name == "logvar":
                resid2 = (y - out["mean"].detach()) ** 2
                task = 0.5 * (out["logvar"] + resid2 * torch.exp(-out["logvar"]))
            else:
                task = nn.functional.binary_cross_entropy_with_logits(
                    out["sign"], (y > 0).float(), reduction="none")
            losses.append(task.mean(dim=0))
        per_task = torch.stack(losses)  # (heads, factors)
        if self.weighting == "uncertainty":
            return (torch.exp(-self.log_vars) * per_task + self.log_vars).sum()
        weights = torch.tensor([self.fixed[h] for h in self.heads]).unsqueeze(1)
        return (weights * per_task).sum()


class MultiTaskTimer(RegressorMixin, BaseEstimator):
    """Ensemble of :class:`MultiTaskNet` over seeds; ``fit(X, y)`` / ``predict(X)``.

    ``X``: (n, lookback, n_inputs) windows in time order; ``y``: (n, n_factors) returns.
    """

    def __init__(self, encoder: str = "mlp", hidden: int = 16, dropout: float = 0.1,
                 weight_decay: float = 1e-3, lr: float = 5e-3, epochs: int = 200, patience: int = 20,
                 batch_size: int = 128, val_fraction: float = 0.2, gap: int = 1,
                 vol_head: bool = True, sign_head: bool = True, task_weighting: str = "uncertainty",
                 fixed_weights: tuple[float, float, float] = (1.0, 0.1, 0.1),
                 seeds: tuple[int, ...] = (0, 1, 2), grid: dict | None = None):
        self.encoder = encoder
        self.hidden = hidden
        self.dropout = dropout
        self.weight_decay = weight_decay
        self.lr = lr
        self.epochs = epochs
        self.patience = patience
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.gap = gap
        self.vol_head = vol_head
        self.sign_head = sign_head
        self.task_weighting = task_weighting
        self.fixed_weights = fixed_weights
        self.seeds = seeds
        self.grid = grid

    # -- fitting ---------------------------------------------------------------------------
    def _split(self, n: int) -> tuple[slice, slice]:
        n_val = max(1, int(math.ceil(self.val_fraction * n)))
        n_fit = n - n_val - self.gap
        if n_fit < 2:
            raise ValueError(f"{n} training samples leave nothing to fit after a validation tail of {n_val}")
        return slice(0, n_fit), slice(n - n_val, n)

    def _train_one(self, X: np.ndarray, Y: np.ndarray, seed: int, params: dict) -> tuple[MultiTaskNet, float]:
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        fit, val = self._split(len(X))
        xf, yf = torch.from_numpy(X[fit]), torch.from_numpy(Y[fit])
        xv, yv = torch.from_numpy(X[val]), torch.from_numpy(Y[val])
        net = MultiTaskNet(X.shape[2], X.shape[1], Y.shape[1], self.encoder, int(params["hidden"]),
                           params["dropout"], self.vol_head, self.sign_head)
        heads = ("mean",) + (("logvar",) if self.vol_head else ()) + (("sign",) if self.sign_head else ())
        loss_fn = _TaskLoss(Y.shape[1], heads, self.task_weighting, self.fixed_weights)
        opt = torch.optim.Adam(
            [{"params": net.parameters(), "weight_decay": params["weight_decay"]},
             {"params": loss_fn.parameters(), "weight_decay": 0.0}], lr=params["lr"])
        best, best_state, stale = math.inf, None, 0
        for _ in range(self.epochs):
            net.train()
            for idx in torch.randperm(len(xf), generator=gen).split(self.batch_size):
                opt.zero_grad()
                loss_fn(net(xf[idx]), yf[idx]).backward()
                opt.step()
            net.eval()
            with torch.no_grad():
                val_mse = float(((net(xv)["mean"] - yv) ** 2).mean())
            if val_mse < best - 1e-6:
                best, stale = val_mse, 0
                best_state = {k: v.clone() for k, v in net.state_dict().items()}
            else:
                stale += 1
                if stale >= self.patience:
                    break
        net.load_state_dict(best_state)
        net.eval()
        return net, best

    def fit(self, X: np.ndarray, y: np.ndarray) -> "MultiTaskTimer":
        X = np.asarray(X, dtype=np.float32)
        y = np.asarray(y, dtype=np.float64)
        if X.ndim != 3 or y.ndim != 2 or len(X) != len(y):
            raise ValueError(f"expected X (n, lookback, inputs) and y (n, factors); got {X.shape}, {y.shape}")
        fit, _ = self._split(len(X))
        self.y_mean_ = y[fit].mean(axis=0)
        self.y_std_ = y[fit].std(axis=0) + 1e-12
        Y = ((y - self.y_mean_) / self.y_std_).astype(np.float32)
        base = {"hidden": self.hidden, "dropout": self.dropout, "weight_decay": self.weight_decay, "lr": self.lr}
        grid = self.grid or {}
        candidates = [dict(base, **dict(zip(grid, combo))) for combo in itertools.product(*grid.values())] or [base]
        scored = []
        for params in candidates:
            net, score = self._train_one(X, Y, self.seeds[0], params)
            scored.append((score, params, net))
        _, self.best_params_, first = min(scored, key=lambda s: s[0])
        self.grid_scores_ = [(p, s) for s, p, _ in scored]
        self.models_ = [first] + [self._train_one(X, Y, s, self.best_params_)[0] for s in self.seeds[1:]]
        self.n_features_in_ = X.shape[2]
        return self

    # -- prediction ------------------------------------------------------------------------
    def _ensemble(self, X: np.ndarray, key: str) -> np.ndarray:
        x = torch.from_numpy(np.asarray(X, dtype=np.float32))
        with torch.no_grad():
            return np.mean([m(x)[key].numpy() for m in self.models_], axis=0)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Expected next-horizon return per factor (ensemble mean), in return units."""
        return self._ensemble(X, "mean") * self.y_std_ + self.y_mean_

    def predict_vol(self, X: np.ndarray) -> np.ndarray:
        if not self.vol_head:
            raise AttributeError("fitted without a volatility head")
        return np.sqrt(np.exp(self._ensemble(X, "logvar"))) * self.y_std_

    def torch_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Differentiable ensemble mean forecast in return units (for integrated gradients)."""
        mean = torch.stack([m(x)["mean"] for m in self.models_]).mean(dim=0)
        return mean * torch.as_tensor(self.y_std_, dtype=mean.dtype) + torch.as_tensor(self.y_mean_, dtype=mean.dtype)
