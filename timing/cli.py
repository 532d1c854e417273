"""``altsignal timing fit|backtest|report --config <toml>``.

- ``fit``: train the network on all history with a realised target and save it (safetensors +
  meta.json) under ``<output_dir>/model``; prints the latest forecasts and target weights.
- ``backtest``: walk-forward network + baselines, portfolios, metrics, explanations; Parquet/JSON
  outputs under ``<output_dir>``.
- ``report``: Markdown + PNGs from a backtest's outputs (``<output_dir>/report.md``).
Heavy imports stay inside the commands so ``altsignal --help`` stays fast.
"""
from __future__ import annotations

import logging
from pathlib import Path

import typer

from nlp.errors import UsageError

log = logging.getLogger(__name__)
DEFAULT_CONFIG = Path(__file__).parent / "configs" / "default.toml"
ConfigOpt = typer.Option(DEFAULT_CONFIG, "--config", "-c", help="timing TOML config", exists=True, dir_okay=False)
OutOpt = typer.Option(None, "--output-dir", "-o", help="override output_dir of the config")

timing_app = typer.Typer(help="Multi-task factor timing: fit, walk-forward backtest, report.", no_args_is_help=True)


def _load(config: Path, output_dir: Path | None):
    from timing.config import load_config

    cfg = load_config(config)
    if output_dir is not None:
        cfg = cfg.model_copy(update={"output_dir": output_dir})
    return cfg


@timing_app.command()
def fit(config: Path = ConfigOpt, output_dir: Path | None = OutOpt) -> None:
    """Fit the network on the whole history and save it."""
    import torch

    from timing.artifact import save_forecaster
    from timing.backtest import make_spec, network_factory
    from timing.config import PERIODS_PER_YEAR
    from timing.data import load_panel
    from timing.dataset import forward_returns
    from timing.portfolio import shrunk_covariance, target_weights

    cfg = _load(config, output_dir)
    torch.set_num_threads(cfg.walkforward.threads)
    panel = load_panel(cfg.data)
    factors = cfg.check_panel(panel)
    spec = make_spec(cfg, panel, factors)
    model = network_factory(cfg, spec)().fit(panel)
    folder = cfg.output_dir / "model"
    save_forecaster(model, folder)
    last = panel.index[-1:]
    mu = model.predict(panel.drop(columns=list(factors)), last).iloc[0]
    cov = shrunk_covariance(panel[list(factors)], last[0], cfg.portfolio.cov_window) * cfg.horizon_periods
    ppy = PERIODS_PER_YEAR[cfg.data.frequency] / cfg.horizon_periods
    w = target_weights(mu.to_numpy(), cov, cfg.portfolio, ppy, from_forecast=True)
    hist = forward_returns(panel, factors, cfg.horizon_periods).mean()
    typer.echo(f"saved {folder} (trained through {model.train_dates_[-1].date()}, "
               f"chosen {model.estimator.best_params_})")
    typer.echo(f"forecast for the {cfg.horizon} after {last[0].date()}:")
    for f, m, h, wk in zip(factors, mu, hist, w):
        typer.echo(f"  {f:7s} expected {m:+.4f} (historical mean {h:+.4f})  target weight {wk:+.3f}")


@timing_app.command()
def backtest(config: Path = ConfigOpt, output_dir: Path | None = OutOpt,
             explain: bool = typer.Option(True, help="permutation importance, IG and ablation")) -> None:
    """Walk-forward network and baselines; write forecasts, returns, weights and metrics."""
    import pandas as pd

    from timing.backtest import run_backtest, save_backtest
    from timing.data import load_panel

    cfg = _load(config, output_dir)
    panel = load_panel(cfg.data)
    result = run_backtest(cfg, panel, progress=True, explain=explain)
    save_backtest(result, cfg.output_dir)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        fm = result.forecast_metrics
        typer.echo(fm[fm.model == "network"][["part", "factor", "oos_r2", "cw_p", "hit_rate", "rank_ic"]].round(4).to_string(index=False))
        pm = result.portfolio_metrics
        typer.echo(pm[pm.basis == "net"][["part", "strategy", "sharpe", "sharpe_lo", "sharpe_hi", "ann_return", "max_drawdown",
                                          "turnover_annual"]].round(3).to_string(index=False))
    typer.echo(f"wrote {cfg.output_dir} in {result.summary['total_seconds']:.0f} s")


@timing_app.command()
def report(config: Path = ConfigOpt, output_dir: Path | None = OutOpt) -> None:
    """Render report.md with PNG plots from a finished backtest."""
    from timing.report import write_report

    cfg = _load(config, output_dir)
    if not (cfg.output_dir / "summary.json").exists():
        raise UsageError(f"no backtest in {cfg.output_dir}", hint="run `altsignal timing backtest` first")
    typer.echo(f"wrote {write_report(cfg.output_dir)}")


def register(app: typer.Typer) -> None:
    app.add_typer(timing_app, name="timing")
