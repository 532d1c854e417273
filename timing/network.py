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

A network that cannot do worse than its linear core (wide and deep, ``linear_core=True``):
- a ridge fit (``RidgeCV`` over the flattened window, one penalty per factor by efficient
  leave-one-out on the fit part) is the forecast's linear path; the network learns only a
  correction on top of it, and its return heads start at zero, so the untrained network *is*
  the ridge fit;
- the state before the first epoch is a candidate of early stopping, so a correction that
  never lowers the validation tail's error is dropped and the forecast is the ridge fit's;
- for the final forecast the ridge path is refitted on every training row (the fit part and
  the validation tail), as the ridge baseline is.
Shrinkage toward the historical mean (Campbell & Thompson 2008 restrict forecasts; this is the
continuous version): ``forecast = m + w_k (model_k - m)`` with ``m`` the training window's mean
target and, per factor ``k``, ``w_k`` from ``shrinkage`` minimising the validation tail's squared
error. There the model is the final linear path's leave-one-out forecast (exact for ridge, so a
signal that only starts inside the tail still counts) plus the seed ensemble's correction, which
never trained on the tail. Only training rows take part. With targets longer than one period
(``gap > 1``: a weekly target on a daily panel) a row's neighbours share most of its target, so a
leave-one-out forecast has in effect seen it and always favoured the full weight (issue 24: the
network forecast 6% a week through 2009); there the linear path's tail forecast is the fit
part's ridge, which never saw the tail.
Ensembles over training windows (``windows``): besides the fit on the whole training window,
one member per length ``w`` is fitted, with the same recipe, on the window's last ``w`` samples
only; the forecast is the plain mean of all of them. A long window estimates slow-moving
premia precisely, a short one adapts to a changed regime; averaging hedges between them (the
point of Rapach, Strauss & Zhou 2010's combinations, here over estimation windows). Each member
chooses its own grid point and shrinkage weight inside its own samples.
CPU only, small by design: full history of monthly data trains in well under a second per seed.
"""
from __future__ import annotations

import itertools

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.linear_model import RidgeCV
from torch import nn

from timing.forecaster import choose_shrinkage, validation_split

RIDGE_ALPHAS = np.logspace(-2, 4, 13)


class Encoder(nn.Module):
    """The timing encoder: a window (n, lookback, inputs) -> (n, hidden). Shared with the end-to-end
    allocator (timing.allocators)."""

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


class _StackedMLP(nn.Module):
    """K independent MLP encoders (the ``mlp`` kind) as one module: their weights are stacked on a
    leading axis, so one matrix product serves all K where a loop over K modules paid the
    per-call overhead K times (the single-task twins spent most of their time there).
    Initialised like ``nn.Linear`` (uniform within 1/sqrt(fan_in)). Output (n, K, hidden)."""

    def __init__(self, k: int, n_in: int, hidden: int, dropout: float):
        super().__init__()
        self.w1 = nn.Parameter(torch.empty(k, n_in, hidden).uniform_(-n_in ** -0.5, n_in ** -0.5))
        self.b1 = nn.Parameter(torch.empty(k, hidden).uniform_(-n_in ** -0.5, n_in ** -0.5))
        self.w2 = nn.Parameter(torch.empty(k, hidden, hidden).uniform_(-hidden ** -0.5, hidden ** -0.5))
        self.b2 = nn.Parameter(torch.empty(k, hidden).uniform_(-hidden ** -0.5, hidden ** -0.5))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop(nn.functional.gelu(torch.einsum("ni,kih->nkh", x.flatten(1), self.w1) + self.b1))
        return self.drop(nn.functional.gelu(torch.einsum("nkh,khj->nkj", h, self.w2) + self.b2))


class MultiTaskNet(nn.Module):
    """Shared encoder, one return head per factor (+ optional volatility and sign heads).

    ``separate=True`` gives each factor its own encoder (the single-task twins): K independent
    networks in one module, so they train in one loop instead of K.
    """

    def __init__(self, n_inputs: int, lookback: int, n_factors: int, encoder: str = "mlp",
                 hidden: int = 16, dropout: float = 0.1, vol_head: bool = True, sign_head: bool = True,
                 separate: bool = False):
        super().__init__()
        if separate and encoder == "mlp":
            self.encoders = nn.ModuleList([_StackedMLP(n_factors, n_inputs * lookback, hidden, dropout)])
        else:
            self.encoders = nn.ModuleList(Encoder(encoder, n_inputs, lookback, hidden, dropout)
                                          for _ in range(n_factors if separate else 1))
        # Row k of each Linear(hidden, n_factors) is factor k's own head (separate weights and
        # bias), reading the shared encoder or, when separate, factor k's own one.
        self.mean_head = nn.Linear(hidden, n_factors)
        nn.init.zeros_(self.mean_head.weight)  # start at the historical mean (standardized target 0)
        nn.init.zeros_(self.mean_head.bias)
        self.vol_head = nn.Linear(hidden, n_factors) if vol_head else None
        self.sign_head = nn.Linear(hidden, n_factors) if sign_head else None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if isinstance(self.encoders[0], _StackedMLP):
            z = self.encoders[0](x)  # (n, K, hidden)
        else:
            z = torch.stack([e(x) for e in self.encoders], dim=1)  # (n, 1 or K, hidden)

        def head(layer: nn.Linear) -> torch.Tensor:
            return (z * layer.weight).sum(dim=-1) + layer.bias

        out = {"mean": head(self.mean_head)}
        if self.vol_head is not None:
            out["logvar"] = head(self.vol_head)
        if self.sign_head is not None:
            out["sign"] = head(self.sign_head)
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
                 seeds: tuple[int, ...] = (0, 1, 2), grid: dict | None = None, linear_core: bool = True,
                 shrinkage: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0), separate_trunks: bool = False,
                 windows: tuple[int, ...] = ()):
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
        self.linear_core = linear_core
        self.shrinkage = shrinkage
        self.separate_trunks = separate_trunks
        self.windows = windows

    # -- fitting ---------------------------------------------------------------------------
    def _split(self, n: int) -> tuple[slice, slice]:
        return validation_split(n, self.val_fraction, self.gap)

    def _train_one(self, X: np.ndarray, Y: np.ndarray, base: np.ndarray, seed: int,
                   params: dict) -> tuple[MultiTaskNet, float]:
        """One network correcting ``base`` (the linear path, standardized units) toward ``Y``."""
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        fit, val = self._split(len(X))
        xf, yf, bf = (torch.from_numpy(a[fit]) for a in (X, Y, base))
        xv, yv, bv = (torch.from_numpy(a[val]) for a in (X, Y, base))

        def run(net: MultiTaskNet, x: torch.Tensor, b: torch.Tensor) -> dict[str, torch.Tensor]:
            out = net(x)
            return out | {"mean": out["mean"] + b}

        K = Y.shape[1]
        net = MultiTaskNet(X.shape[2], X.shape[1], K, self.encoder, int(params["hidden"]),
                           params["dropout"], self.vol_head, self.sign_head, self.separate_trunks)
        heads = ("mean",) + (("logvar",) if self.vol_head else ()) + (("sign",) if self.sign_head else ())
        loss_fn = _TaskLoss(Y.shape[1], heads, self.task_weighting, self.fixed_weights)
        opt = torch.optim.Adam(  # foreach: one call per step for all weights, not one per tensor
            [{"params": net.parameters(), "weight_decay": params["weight_decay"]},
             {"params": loss_fn.parameters(), "weight_decay": 0.0}], lr=params["lr"], foreach=True)
        # early stopping per trunk: the shared one on the mean error, each separate one on its factor's
        groups = [[k] for k in range(K)] if self.separate_trunks else [list(range(K))]

        def val_errors() -> np.ndarray:
            net.eval()
            with torch.no_grad():
                errs = ((run(net, xv, bv)["mean"] - yv) ** 2).mean(dim=0).numpy()
            return np.array([errs[g].mean() for g in groups])

        best = val_errors()  # the untrained state (= the linear path) is the first candidate
        states = [{k: v.clone() for k, v in net.state_dict().items()}] * len(groups)
        stale = np.zeros(len(groups), dtype=int)
        for _ in range(self.epochs):
            net.train()
            for idx in torch.randperm(len(xf), generator=gen).split(self.batch_size):
                opt.zero_grad()
                loss_fn(run(net, xf[idx], bf[idx]), yf[idx]).backward()
                opt.step()
            errs = val_errors()
            better = (errs < best - 1e-6) & (stale < self.patience)  # a stopped trunk stays stopped
            for i in np.flatnonzero(better):
                states[i] = {k: v.clone() for k, v in net.state_dict().items()}
            best = np.where(better, errs, best)
            stale = np.where(better, 0, stale + 1)
            if (stale >= self.patience).all():
                break
        stacked = isinstance(net.encoders[0], _StackedMLP)
        net.load_state_dict(_combine(states, K, stacked) if self.separate_trunks else states[0])
        net.eval()
        return net, float(best.mean())

    def fit(self, X: np.ndarray, y: np.ndarray) -> "MultiTaskTimer":
        X = np.asarray(X, dtype=np.float32)
        y = np.asarray(y, dtype=np.float64)
        if X.ndim != 3 or y.ndim != 2 or len(X) != len(y):
            raise ValueError(f"expected X (n, lookback, inputs) and y (n, factors); got {X.shape}, {y.shape}")
        fit, val = self._split(len(X))
        self.y_mean_ = y[fit].mean(axis=0)
        self.y_std_ = y[fit].std(axis=0) + 1e-12
        Y = ((y - self.y_mean_) / self.y_std_).astype(np.float32)
        flat = X.reshape(len(X), -1)
        if self.linear_core:
            base = _ridge(flat[fit], Y[fit]).predict(flat).astype(np.float32)
        else:
            base = np.zeros_like(Y)
        defaults = {"hidden": self.hidden, "dropout": self.dropout, "weight_decay": self.weight_decay, "lr": self.lr}
        grid = self.grid or {}
        candidates = [dict(defaults, **dict(zip(grid, combo))) for combo in itertools.product(*grid.values())] or [defaults]
        scored = []
        for params in candidates:
            net, score = self._train_one(X, Y, base, self.seeds[0], params)
            scored.append((score, params, net))
        _, self.best_params_, first = min(scored, key=lambda s: s[0])
        self.grid_scores_ = [(p, s) for s, p, _ in scored]
        self.models_ = [first] + [self._train_one(X, Y, base, s, self.best_params_)[0] for s in self.seeds[1:]]
        self.n_features_in_ = X.shape[2]
        self.core_coef_ = np.zeros((Y.shape[1], flat.shape[1]))
        self.core_intercept_ = np.zeros(Y.shape[1])
        core_val = base[val]  # the fit part's ridge: never saw the tail
        if self.linear_core:  # the final linear path uses every training row, like the ridge baseline
            core = _ridge(flat, Y)
            self.core_coef_ = core.coef_.reshape(Y.shape[1], -1)  # one factor: sklearn drops the axis
            self.core_intercept_ = np.reshape(core.intercept_, Y.shape[1])
            if self.gap <= 1:  # leave-one-out is out of sample only when targets do not overlap
                core_val = ridge_loo_predictions(flat, Y, np.reshape(core.alpha_, -1) * np.ones(Y.shape[1]))[val]
        model_val = core_val + self._ensemble(X[val], "mean")
        self.shrink_weight_ = choose_shrinkage(Y[val], model_val, Y.mean(axis=0), self.shrinkage)
        self.shrink_target_ = y.mean(axis=0)
        # a window as long as the training set would only repeat the fit above
        self.members_ = [clone(self).set_params(windows=()).fit(X[-w:], y[-w:]) for w in self.windows if w < len(X)]
        return self

    # -- prediction ------------------------------------------------------------------------
    def _ensemble(self, X: np.ndarray, key: str) -> np.ndarray:
        x = torch.from_numpy(np.asarray(X, dtype=np.float32))
        with torch.no_grad():
            return np.mean([m(x)[key].numpy() for m in self.models_], axis=0)

    def _shrink(self, model: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Standardized model forecast -> return units, shrunk toward the historical mean."""
        as_t = (lambda a: torch.as_tensor(a, dtype=model.dtype)) if isinstance(model, torch.Tensor) else np.asarray
        ret = model * as_t(self.y_std_) + as_t(self.y_mean_)
        target = as_t(self.shrink_target_)
        return target + as_t(self.shrink_weight_) * (ret - target)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Expected next-horizon return per factor (linear path + seed ensemble, shrunk; averaged
        with the window members), in return units."""
        X = np.asarray(X, dtype=np.float32)
        core = X.reshape(len(X), -1) @ self.core_coef_.T + self.core_intercept_
        own = self._shrink(core + self._ensemble(X, "mean"))
        return np.mean([own, *(m.predict(X) for m in self.members_)], axis=0)

    def predict_vol(self, X: np.ndarray) -> np.ndarray:
        if not self.vol_head:
            raise AttributeError("fitted without a volatility head")
        own = np.sqrt(np.exp(self._ensemble(X, "logvar"))) * self.y_std_
        return np.mean([own, *(m.predict_vol(X) for m in self.members_)], axis=0)

    def torch_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Differentiable forecast in return units, as :meth:`predict` (for integrated gradients)."""
        mean = torch.stack([m(x)["mean"] for m in self.models_]).mean(dim=0)
        core = x.flatten(1) @ torch.as_tensor(self.core_coef_.T, dtype=x.dtype) + torch.as_tensor(self.core_intercept_, dtype=x.dtype)
        own = self._shrink(core + mean)
        return torch.stack([own, *(m.torch_forward(x) for m in self.members_)]).mean(dim=0)


def _ridge(X: np.ndarray, Y: np.ndarray) -> RidgeCV:
    """The linear path: one penalty per factor, chosen by efficient leave-one-out."""
    return RidgeCV(alphas=RIDGE_ALPHAS, alpha_per_target=True).fit(X, Y)


def _combine(states: list[dict[str, torch.Tensor]], n_factors: int, stacked: bool) -> dict[str, torch.Tensor]:
    """One state from per-factor best states: encoder k and head row k from factor k's state
    (a stacked encoder's weights, like a head's, hold factor k's in row k)."""
    out = {}
    for key, value in states[0].items():
        if key.startswith("encoders.") and not stacked:
            out[key] = states[int(key.split(".")[1])][key]
        elif value.shape[:1] == (n_factors,):  # a head's weight or bias: row k is factor k's
            out[key] = torch.stack([states[k][key][k] for k in range(n_factors)])
        else:
            out[key] = value
    return out


def ridge_loo_predictions(X: np.ndarray, Y: np.ndarray, alpha: float | np.ndarray) -> np.ndarray:
    """Leave-one-out forecasts of ridge with an intercept: ``y_i - e_i / (1 - h_ii)``.

    ``alpha``: one penalty, or one per column of ``Y``. One thin SVD of the centred inputs serves
    every penalty: with ``Xc = U S V'``, the hat matrix is ``U diag(s^2 / (s^2 + alpha)) U'``, so
    neither a p x p inverse nor a refit per column is needed.
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    xc, mean = X - X.mean(axis=0), Y.mean(axis=0)
    u, s, _ = np.linalg.svd(xc, full_matrices=False)
    uty = u.T @ (Y - mean)
    out = np.empty_like(Y)
    for k, a in enumerate(np.broadcast_to(np.asarray(alpha, dtype=np.float64), Y.shape[1:])):
        shrink = s**2 / (s**2 + a)
        fitted = u @ (shrink * uty[:, k]) + mean[k]
        leverage = (u**2) @ shrink + 1.0 / len(X)
        out[:, k] = Y[:, k] - (Y[:, k] - fitted) / (1.0 - leverage)
    return out
