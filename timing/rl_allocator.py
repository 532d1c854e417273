"""RL allocators (``rl_ppo``, ``rl_sac``): stable-baselines3 policies on ``timing.allocation_env``.

Fitted per walk-forward fold on that fold's training window only, one policy per seed in
``direct.rl_seeds``, ``direct.rl_steps`` environment steps each (FinRL's recipe: Liu et al. 2020,
built on the same library; no hand-written RL). The decision is the mean of the seeds'
deterministic actions. Each policy's episode returns (``Monitor``) are kept as its training
curve (``curves_``: one list per seed) for the report. Small networks (two layers of 32) and
few steps, so the full monthly walk-forward stays within minutes on two cores.
"""
from __future__ import annotations

import numpy as np
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.monitor import Monitor

from timing.allocation_data import WindowData
from timing.allocation_env import AllocationEnv
from timing.config import DirectConfig, PortfolioConfig

NET_ARCH = [32, 32]


def _agent(name: str, env, seed: int, steps: int):
    kwargs = dict(seed=seed, device="cpu", verbose=0, policy_kwargs={"net_arch": NET_ARCH})
    if name == "rl_ppo":
        n_steps = min(256, steps)
        batch = 64 if n_steps % 64 == 0 else n_steps
        return PPO("MlpPolicy", env, n_steps=n_steps, batch_size=batch, n_epochs=5, gamma=0.9, **kwargs)
    # one gradient step per 4 environment steps: SAC's per-step update made it 3x PPO's time per step
    return SAC("MlpPolicy", env, learning_starts=min(100, steps // 4), buffer_size=steps, batch_size=64,
               train_freq=4, gamma=0.9, **kwargs)


class RLAllocator:
    def __init__(self, name: str, direct: DirectConfig, portfolio: PortfolioConfig, periods_per_year: float):
        if name not in ("rl_ppo", "rl_sac"):
            raise ValueError(f"unknown RL allocator {name!r}; choose rl_ppo or rl_sac")
        self.name, self.direct, self.portfolio, self.ppy = name, direct, portfolio, periods_per_year

    def fit(self, data: WindowData) -> "RLAllocator":
        d = self.direct
        self.policies_, self.curves_ = [], []
        for seed in d.rl_seeds:
            env = Monitor(AllocationEnv(data, self.portfolio, self.ppy, d.risk_penalty, d.reward_scale))
            agent = _agent(self.name, env, seed, d.rl_steps).learn(total_timesteps=d.rl_steps)
            self.policies_.append(agent.policy)  # the torch policy alone: the agent holds the env (not picklable)
            self.curves_.append([float(r) for r in env.get_episode_rewards()])
        return self

    def act(self, x: np.ndarray, held: np.ndarray) -> np.ndarray:
        obs = np.concatenate([x.ravel(), held]).astype(np.float32)
        return np.mean([p.predict(obs, deterministic=True)[0] for p in self.policies_], axis=0)
