"""Direct allocators (issue 26): end-to-end net returns and their gradients, the RL environment
against the book, point in time, and a CI-sized backtest and report through the CLI."""
import json

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from timing import CONFIG_DIR
from timing.allocation_data import window_data
from timing.allocation_env import AllocationEnv
from timing.allocators import make_allocator, run_direct
from timing.backtest import make_spec
from timing.config import DirectConfig, NetworkConfig, PortfolioConfig, TimingConfig
from timing.end_to_end import net_returns, vol_targeted
from timing.portfolio import run_book, target_weights
from timing.synthetic import synthetic_panel
from timing.walkforward import make_folds

FACTORS = ("Mkt-RF", "SMB", "HML")
PORTFOLIO = PortfolioConfig(no_trade_band=0.02, turnover_penalty=0.05, cost_bps=20.0, cov_window=60)
TINY = DirectConfig(epochs=15, patience=5, seeds=(0,), rl_steps=256, rl_seeds=(0,))  # > one episode per fold


def test_net_returns_and_cost_gradients_match_a_hand_computed_case():
    w = torch.tensor([[0.5, -0.2], [0.3, 0.1], [0.3, 0.4]], dtype=torch.float64, requires_grad=True)
    r = torch.tensor([[0.01, 0.02], [-0.01, 0.03], [0.02, -0.01]], dtype=torch.float64)
    net = net_returns(w, r, cost=0.002)
    # gross w.r minus 20 bps of |w_t - w_t-1| summed over factors, the first trade from cash
    np.testing.assert_allclose(net.detach().numpy(), [0.005 - 0.004 - 0.002 * 0.7, -0.003 + 0.003 - 0.002 * 0.5,
                                                      0.006 - 0.004 - 0.002 * 0.3], atol=1e-15)
    net.sum().backward()
    # d/dw_t = r_t - c (sign(w_t - w_t-1) - sign(w_t+1 - w_t)); sign(0) = 0 (HML's unchanged 0.3)
    np.testing.assert_allclose(w.grad.numpy(), [[0.01 - 0.004, 0.02 + 0.004], [-0.01 + 0.002, 0.03],
                                                [0.02, -0.01 - 0.002]], atol=1e-15)


def test_vol_target_layer_is_the_books_target_weights():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 3))
    cov = a @ a.T * 1e-3 + np.eye(3) * 1e-4
    raw = np.array([[0.2, -0.9, 0.1], [0.05, 0.02, 0.01], [1.0, 1.0, -1.0]])
    cfg = PortfolioConfig(vol_target=0.3, max_weight=0.8)  # the cap binds on some rows
    mine = vol_targeted(torch.tensor(raw), torch.tensor(np.stack([cov] * 3)), 0.3, 12.0, 0.8).numpy()
    book = np.stack([target_weights(r, cov, cfg, 12.0, from_forecast=False) for r in raw])
    np.testing.assert_allclose(mine, book, rtol=1e-10)
    assert (np.abs(book) == 0.8).any()


def _spec(panel):
    return make_spec(TimingConfig(factors=FACTORS, network={"lookback": 1}), panel, FACTORS)


def test_env_reward_is_the_backtests_net_return_for_the_same_weights():
    panel = synthetic_panel(n=150)
    data, _ = window_data(panel, _spec(panel), PORTFOLIO.cov_window)
    actions = np.random.default_rng(1).uniform(-1, 1, (len(data.dates), len(FACTORS)))
    env = AllocationEnv(data, PORTFOLIO, 12.0)
    obs, _ = env.reset()
    rewards, weights, done = [], [], False
    for a in actions:
        assert not done
        obs, reward, done, _, info = env.step(a)
        rewards.append(reward)
        weights.append(info["weights"])
        np.testing.assert_allclose(obs[-len(FACTORS):], info["weights"], rtol=1e-6)  # the state holds them (float32)
    assert done
    lookup = dict(zip(data.dates, actions))
    book = run_book(lambda d, _held: lookup[d], list(FACTORS), data.dates, panel[list(FACTORS)], PORTFOLIO, 1, 12.0,
                    from_forecast=False)
    assert book.turnover.sum() > 0 and book.costs.sum() > 0
    np.testing.assert_allclose(rewards, book.net.to_numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(np.vstack(weights), book.weights.to_numpy(), atol=1e-15)
    risky = AllocationEnv(data, PORTFOLIO, 12.0, risk_penalty=2.0, reward_scale=100.0)
    risky.reset()
    _, reward, _, _, info = risky.step(actions[0])
    assert reward == pytest.approx(100 * (info["net"] - 2.0 * info["gross"] ** 2))


def _direct_book(name: str, panel: pd.DataFrame):
    cfg = TimingConfig(factors=FACTORS, walkforward={"min_train": 72, "refit_every": 24, "n_jobs": 1})
    spec = _spec(panel)
    folds = make_folds(panel.index, cfg.walkforward, spec.lookback, 1)
    make = make_allocator(name, NetworkConfig(hidden=4, lookback=1), TINY, PORTFOLIO, 12.0)
    wf = run_direct(panel, make, folds, spec, PORTFOLIO.cov_window, progress=False)
    return run_book(wf.policy(), list(FACTORS), wf.dates, panel[list(FACTORS)], PORTFOLIO, 1, 12.0, False), wf


@pytest.mark.slow
@pytest.mark.parametrize("name", ["end_to_end", "rl_ppo", "rl_sac"])
def test_no_direct_policy_sees_a_return_after_its_decision_date(name):
    panel = synthetic_panel(n=150)
    before, wf = _direct_book(name, panel)
    cut = before.weights.index[len(before.weights) // 2]
    changed = panel.copy()
    later = changed.index > cut
    rng = np.random.default_rng(7)
    changed.loc[later, list(FACTORS)] = rng.normal(0, 0.3, (later.sum(), len(FACTORS)))
    changed.loc[later, "market.x1"] = rng.normal(0, 5, later.sum())
    after, _ = _direct_book(name, changed)
    kept = before.weights.index <= cut
    pd.testing.assert_frame_equal(before.weights[kept], after.weights[kept])
    assert not np.allclose(before.weights[~kept], after.weights[~kept])  # the change did reach later decisions
    assert len(wf.allocators) >= 2 and before.turnover.sum() > 0
    if name != "end_to_end":  # one training curve per fold, one entry per finished episode
        assert len(wf.training_curves()) == len(wf.allocators) and all(wf.training_curves())


CONFIG = """
factors = ["Mkt-RF", "SMB", "HML"]
output_dir = "{out}"
baselines = ["historical_mean", "ridge", "equal_weight"]
[data]
source = "parquet"
path = "{panel}"
[network]
lookback = 1
hidden = 4
epochs = 10
seeds = [0]
grid = {{}}
[walkforward]
min_train = 96
refit_every = 36
n_jobs = 1
validation_end = "2005-12-31"
[portfolio]
allocator = ["mean_variance", "end_to_end", "rl_ppo", "rl_sac"]
[direct]
epochs = 10
seeds = [0]
rl_steps = 128
rl_seeds = [0]
[explain]
level = "none"
"""


@pytest.mark.slow
def test_ci_sized_backtest_reports_every_allocator_side_by_side(synthetic_run):
    from altsignal.commands.timing import timing_app

    cfg, out = synthetic_run(CONFIG, 200)
    runner = CliRunner()
    res = runner.invoke(timing_app, ["backtest", "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    pm = pd.read_parquet(out / "portfolio_metrics.parquet")
    direct = {"end_to_end", "rl_ppo", "rl_sac"}
    assert direct | {"network", "ridge", "equal_weight"} <= set(pm.strategy)
    n = pm[pm.basis == "net"].pivot(index="part", columns="strategy", values="n")
    assert (n[sorted(direct)].to_numpy() == n[["network"]].to_numpy()).all()  # the same months for every book
    tests = pd.read_parquet(out / "sharpe_tests.parquet")
    versus = tests[tests.strategy.isin(direct)].groupby("strategy").versus.agg(set)
    assert all("mean-variance book" in v and "equal weight" in v for v in versus)
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["training_curves"]) == direct and summary["training_curves"]["rl_ppo"]

    res = runner.invoke(timing_app, ["report", "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    report = (out / "report.md").read_text()
    assert "## Direct allocators" in report and "rl_sac" in report
    assert (out / "img" / "training_curves.png").stat().st_size > 1000


def test_allocator_config_takes_one_name_or_several():
    assert PortfolioConfig(allocator="rl_ppo").direct_allocators == ("rl_ppo",)
    assert PortfolioConfig().direct_allocators == ()
    with pytest.raises(ValueError, match="allocator"):
        PortfolioConfig(allocator="a2c")
    with pytest.raises(ValueError, match="distinct"):
        PortfolioConfig(allocator=["rl_ppo", "rl_ppo"])
    with pytest.raises(ValueError, match="theme_book"):  # on the zoo they hold the themes
        TimingConfig(targets={"preset": "jkp_usa"}, portfolio={"allocator": "end_to_end"}, zoo={"theme_book": False})


def test_altsignal_run_passes_the_allocator_to_its_timing_stage(tmp_path):
    from altsignal.run_config import load_run_config, stage_timing_config

    run = load_run_config(CONFIG_DIR / "run_default.toml", ['timing.portfolio.allocator=["mean_variance", "rl_sac"]'])
    timing = stage_timing_config(run, tmp_path / "features.duckdb", None, tmp_path / "timing")
    assert timing.portfolio.direct_allocators == ("rl_sac",)
