"""A multi-task network for many timing tasks, and its single-task twins.

``ZooNet`` (shared): a trunk reads the shared state ``s_t`` (macro, Goyal-Welch, market); each
task k reads its own history ``o_{t,k}`` (trailing returns, volatility) through a layer shared by
all tasks; the two, a task embedding and a theme embedding enter one block per (t, k) pair, and a
head per theme (``heads="theme"``; or per task, or one shared) gives the task's standardized
forecast. Heads start at zero, so the untrained network forecasts each task's training mean.
``TwinNet`` (``single_task_net``): K independent MLPs, task k's reading ``[s_t, o_{t,k}]`` only,
their weights stacked on a leading axis so one einsum serves all K.

Training (``ZooTimer.fit``): one pass for all tasks; targets standardized per task on the fit
part; the loss is the squared error over observed (t, k) pairs only (a factor that does not exist
yet, or a missing month, has mask 0 and adds nothing); Adam on mini-batches of months; early
stopping on the validation tail (the last ``val_fraction`` of months, one month apart), with the
untrained state as the first candidate: the shared network on its mean tail error, each twin on
its own task's. Seeds are averaged. Shrinkage toward the training mean: ``mean + w (model -
mean)`` with ``w`` from ``shrink_grid`` minimising the tail's squared error per task, theme or
overall (``shrink_level``).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from timing.forecaster import validation_split


class ZooNet(nn.Module):
    def __init__(self, n_shared: int, n_own: int, groups: np.ndarray, n_groups: int, hidden: int,
                 task_dim: int, theme_dim: int, heads: str, dropout: float):
        super().__init__()
        K = len(groups)
        self.register_buffer("groups", torch.as_tensor(groups, dtype=torch.long))
        self.trunk = nn.Sequential(nn.Linear(n_shared, hidden), nn.GELU(), nn.Dropout(dropout),
                                   nn.Linear(hidden, hidden), nn.GELU())
        self.own = nn.Linear(n_own, hidden)
        self.task = nn.Parameter(torch.randn(K, task_dim) * 0.1) if task_dim else None
        self.theme = nn.Parameter(torch.randn(n_groups, theme_dim) * 0.1) if theme_dim else None
        self.block = nn.Sequential(nn.Linear(2 * hidden + task_dim + theme_dim, hidden), nn.GELU(), nn.Dropout(dropout))
        self.heads = heads
        n_heads = {"theme": n_groups, "task": K, "shared": 1}[heads]
        self.head_w = nn.Parameter(torch.zeros(n_heads, hidden))
        self.head_b = nn.Parameter(torch.zeros(n_heads))

    def forward(self, s: torch.Tensor, o: torch.Tensor) -> torch.Tensor:
        n, K = o.shape[:2]
        parts = [self.trunk(s)[:, None, :].expand(n, K, -1), nn.functional.gelu(self.own(o))]
        if self.task is not None:
            parts.append(self.task[None].expand(n, K, -1))
        if self.theme is not None:
            parts.append(self.theme[self.groups][None].expand(n, K, -1))
        z = self.block(torch.cat(parts, dim=-1))
        idx = {"theme": self.groups, "task": torch.arange(K), "shared": torch.zeros(K, dtype=torch.long)}[self.heads]
        return (z * self.head_w[idx]).sum(-1) + self.head_b[idx]


class TwinNet(nn.Module):
    """K single-task MLPs on ``[s_t, o_{t,k}]``; every parameter has the task on its first axis."""

    def __init__(self, n_in: int, K: int, hidden: int, dropout: float):
        super().__init__()
        bound = n_in ** -0.5
        self.w1 = nn.Parameter(torch.empty(K, n_in, hidden).uniform_(-bound, bound))
        self.b1 = nn.Parameter(torch.empty(K, hidden).uniform_(-bound, bound))
        self.w2 = nn.Parameter(torch.zeros(K, hidden))
        self.b2 = nn.Parameter(torch.zeros(K))
        self.drop = nn.Dropout(dropout)

    def forward(self, s: torch.Tensor, o: torch.Tensor) -> torch.Tensor:
        x = torch.cat([s[:, None, :].expand(-1, o.shape[1], -1), o], dim=-1)
        h = self.drop(nn.functional.gelu(torch.einsum("nki,kih->nkh", x, self.w1) + self.b1))
        return (h * self.w2).sum(-1) + self.b2


def shrink_weights(y: np.ndarray, mask: np.ndarray, model: np.ndarray, groups: np.ndarray, grid: tuple[float, ...],
                   level: str) -> np.ndarray:
    """Per task, the ``w`` in ``grid`` minimising the masked squared error of ``w model`` (standardized
    units: the mean is 0), pooled over the task's theme or all tasks by ``level``."""
    err = np.stack([(((w * model - np.nan_to_num(y)) ** 2) * mask).sum(axis=0) for w in grid])  # (grid, K)
    if level == "global":
        return np.full(y.shape[1], grid[int(err.sum(axis=1).argmin())])
    if level == "theme":
        out = np.empty(y.shape[1])
        for g in np.unique(groups):
            out[groups == g] = grid[int(err[:, groups == g].sum(axis=1).argmin())]
        return out
    return np.asarray(grid)[err.argmin(axis=0)]


class ZooTimer:
    """Fit on standardized arrays: ``s`` (n, Fs), ``o`` (n, K, Fo), ``y`` (n, K) standardized with NaN
    where missing; ``predict`` gives standardized forecasts, already shrunk."""

    def __init__(self, cfg, groups: np.ndarray, n_groups: int, twins: bool = False):
        self.cfg = cfg
        self.groups = np.asarray(groups)
        self.n_groups = n_groups
        self.twins = twins

    def _net(self, n_shared: int, n_own: int) -> nn.Module:
        c = self.cfg
        if self.twins:
            return TwinNet(n_shared + n_own, len(self.groups), c.twin_hidden, c.dropout)
        return ZooNet(n_shared, n_own, self.groups, self.n_groups, c.hidden, c.task_dim, c.theme_dim, c.heads, c.dropout)

    def _train(self, s, o, y, m, fit, val, seed: int) -> nn.Module:
        c = self.cfg
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        net = self._net(s.shape[1], o.shape[2])
        opt = torch.optim.Adam(net.parameters(), lr=c.lr, weight_decay=c.weight_decay, foreach=True)
        sf, of, yf, mf = s[fit], o[fit], y[fit], m[fit]
        sv, ov, yv, mv = s[val], o[val], y[val], m[val]
        count_v = mv.sum(0).clamp(min=1.0)

        def val_err() -> np.ndarray:
            net.eval()
            with torch.no_grad():
                per_task = (((net(sv, ov) - yv) ** 2) * mv).sum(0) / count_v
            return per_task.numpy() if self.twins else np.array([float(per_task[mv.sum(0) > 0].mean())])

        best = val_err()
        state = {k: v.clone() for k, v in net.state_dict().items()}
        stale = np.zeros(len(best), dtype=int)
        for _ in range(c.epochs):
            net.train()
            for idx in torch.randperm(len(sf), generator=gen).split(c.batch_months):
                opt.zero_grad()
                mb = mf[idx]
                loss = (((net(sf[idx], of[idx]) - yf[idx]) ** 2) * mb).sum() / mb.sum().clamp(min=1.0)
                loss.backward()
                opt.step()
            err = val_err()
            better = (err < best - 1e-6) & (stale < c.patience)
            if better.any():
                cur = net.state_dict()
                if self.twins:  # each twin keeps its own best epoch: row k of every parameter is task k's
                    rows = torch.as_tensor(better)
                    for k in state:
                        state[k][rows] = cur[k][rows].clone()
                else:
                    state = {k: v.clone() for k, v in cur.items()}
            best = np.where(better, err, best)
            stale = np.where(better, 0, stale + 1)
            if (stale >= c.patience).all():
                break
        net.load_state_dict(state)
        net.eval()
        return net

    def fit(self, s: np.ndarray, o: np.ndarray, y: np.ndarray) -> "ZooTimer":
        c = self.cfg
        mask = np.isfinite(y)
        fit, val = validation_split(len(y), c.val_fraction, 1)
        t = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32)  # noqa: E731
        S, O, Y, M = t(s), t(o), t(np.nan_to_num(y)), t(mask)
        self.nets_ = [self._train(S, O, Y, M, fit, val, seed) for seed in c.seeds]
        model_val = self._raw(s[val], o[val])
        self.w_ = shrink_weights(y[val], mask[val], model_val, self.groups, tuple(c.shrink_grid), c.shrink_level)
        return self

    def _raw(self, s: np.ndarray, o: np.ndarray) -> np.ndarray:
        S = torch.as_tensor(np.ascontiguousarray(s), dtype=torch.float32)
        O = torch.as_tensor(np.ascontiguousarray(o), dtype=torch.float32)
        with torch.no_grad():
            return np.mean([net(S, O).numpy() for net in self.nets_], axis=0)

    def predict(self, s: np.ndarray, o: np.ndarray) -> np.ndarray:
        return self.w_ * self._raw(s, o)
