"""A gymnasium environment over one walk-forward training window, for the RL allocators.

One episode walks the window's decision dates in order (``timing.allocators.WindowData``). At
date t the observation is the scaled feature window ending at t (flattened) and the weights held
going in; the action in ``[-1, 1]^K`` is the raw target weight vector, which passes the book's
own steps (``portfolio.target_weights``: long-only clip, vol target under the covariance of
returns up to t, cap; then ``portfolio.trade_step``: band and turnover penalty). The reward is
``reward_scale * (net - risk_penalty * gross^2)`` with ``gross = w_t . r_t+1`` and ``net = gross -
cost * sum |w_t - w_t-1|``: with ``risk_penalty = 0`` and ``reward_scale = 1`` it is exactly the
backtest's net return for the same raw weights (tests/test_timing_allocators.py). ``info`` carries
``net``, ``gross`` and ``weights`` either way. The return after t enters only the reward of the
step taken at t, never an observation.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np

from timing.allocation_data import WindowData
from timing.config import PortfolioConfig
from timing.portfolio import target_weights, trade_step


class AllocationEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, data: WindowData, portfolio: PortfolioConfig, periods_per_year: float,
                 risk_penalty: float = 0.0, reward_scale: float = 1.0):
        super().__init__()
        self.data, self.portfolio, self.ppy = data, portfolio, periods_per_year
        self.risk_penalty, self.reward_scale = risk_penalty, reward_scale
        n_assets = data.y.shape[1]
        n_obs = int(np.prod(data.X.shape[1:])) + n_assets
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (n_obs,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (n_assets,), np.float32)

    def _obs(self) -> np.ndarray:
        t = min(self.t, len(self.data.X) - 1)
        return np.concatenate([self.data.X[t].ravel(), self.held]).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t, self.held = 0, np.zeros(self.data.y.shape[1])
        return self._obs(), {}

    def step(self, action):
        p, t = self.portfolio, self.t
        target = target_weights(np.asarray(action, dtype=float), self.data.covs[t], p, self.ppy, from_forecast=False)
        weights = trade_step(target, self.held, p.no_trade_band, p.turnover_penalty)
        gross = float(weights @ self.data.y[t])
        net = gross - np.abs(weights - self.held).sum() * p.cost_bps / 1e4
        self.held, self.t = weights, t + 1
        reward = self.reward_scale * (net - self.risk_penalty * gross ** 2)
        done = self.t >= len(self.data.X)
        return self._obs(), reward, done, False, {"net": net, "gross": gross, "weights": weights}
