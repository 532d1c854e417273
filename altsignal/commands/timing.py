"""``altsignal timing fit|backtest|report --config <toml> [--out DIR] [--set key=value ...]``.

- ``fit``: train the network on the history known at ``--as-of`` (default: all) with a realised
  target and save it (safetensors + meta.json) under ``<output_dir>/model``; prints the allocation.
- ``predict``: the allocation at ``--as-of`` from the saved model (refitted on the
  ``walkforward.refit_every`` schedule), appended to ``<output_dir>/allocations.parquet``
  (``altsignal.operate``).
- ``backtest``: walk-forward network + baselines, portfolios, metrics, explanations; Parquet/JSON
  outputs under ``<output_dir>``.
- ``report``: Markdown + PNGs from a backtest's outputs (``<output_dir>/report.md``).
``--set`` overrides one key of the config file (``network.hidden=16``, repeatable; see
``core.config_files``); ``--output-dir`` is the old, hidden spelling of ``--out``.
Heavy imports stay inside the commands so ``altsignal --help`` stays fast.
"""
from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Optional

import typer

from altsignal.renames import renamed_option
from core.errors import UsageError
from core.threads import set_threads
from timing import DEFAULT_TIMING_CONFIG

log = logging.getLogger(__name__)
ConfigOpt = typer.Option(DEFAULT_TIMING_CONFIG, "--config", "-c", help="timing TOML config", exists=True, dir_okay=False)
OutOpt = typer.Option(None, "--out", "-o", help="Output folder (overrides the config's output_dir).")
OldOutOpt = typer.Option(None, "--output-dir", hidden=True)
SetOpt = typer.Option([], "--set", metavar="KEY=VALUE",
                      help="Override a config key: dotted.key=value, the value a TOML literal or text (repeatable).")

timing_app = typer.Typer(help="Multi-task factor timing: fit, predict, walk-forward backtest, report.", no_args_is_help=True)


def _load(config: Path, out: Path | None, output_dir: Path | None, overrides: list[str] = ()):
    from timing.config import load_config

    out = renamed_option(out, output_dir, "--out", "--output-dir")
    cfg = load_config(config, overrides)
    if out is not None:
        cfg = cfg.model_copy(update={"output_dir": out})
    return cfg


ExplainOpt = typer.Option(None, "--explain", metavar="none|fast|full",
                         help="Explanations: fast = permutation importance and integrated gradients; full = also the "
                              "ablations (one network refit per feature group); default: the config's explain.level.")


def explain_override(explain: str | None, prefix: str = "") -> list[str]:
    """``--explain LEVEL`` as a ``--set`` override (validated with the rest of the config)."""
    return [] if explain is None else [f"{prefix}explain.level={explain}"]


AsOfOpt = typer.Option(None, "--as-of", formats=["%Y-%m-%d"],
                       help="Decide with what was known on this day (default: the panel's last row).")
AllowFutureOpt = typer.Option(False, "--allow-future-as-of",
                              help="Accept an --as-of more than a day after the clock or more than 7 days after "
                                   "the latest input data (refused by default as a typo).")


def _as_of(as_of, panel, allow_future: bool = False):
    """The decision day: ``--as-of`` (refused far past the panel's last row: it would silently
    decide on old data; before the first row ``altsignal.operate.known_panel`` refuses it), or the
    panel's last row."""
    import pandas as pd

    from core.instants import check_not_ahead

    if as_of is None:
        return panel.index[-1]
    check_not_ahead(pd.Timestamp(as_of), panel.index[-1], "panel row", allow_future)
    return pd.Timestamp(as_of)


def _echo_allocation(rows) -> None:
    typer.echo(f"allocation for the period after {rows['date'].iloc[0].date()} "
               f"(model trained through {rows['model_train_end'].iloc[0].date()}):")
    for r in rows.itertuples():
        typer.echo(f"  {r.factor:7s} expected {r.forecast:+.4f} (historical mean {r.historical_mean:+.4f})  "
                   f"target {r.target_weight:+.3f}  held {r.previous_weight:+.3f} -> {r.weight:+.3f}  "
                   f"trade {r.trade:+.3f}")


@timing_app.command()
def fit(config: Path = ConfigOpt, out: Path | None = OutOpt, output_dir: Path | None = OldOutOpt,
        overrides: list[str] = SetOpt, as_of: Optional[datetime] = AsOfOpt,
        allow_future: bool = AllowFutureOpt) -> None:
    """Fit the network on the history known at --as-of and save it; print the allocation it implies."""

    from altsignal.operate import MODEL, allocate, fit_model
    from timing.data import load_panel

    cfg = _load(config, out, output_dir, overrides)
    set_threads(cfg.walkforward.threads)
    panel = load_panel(cfg.data)
    when = _as_of(as_of, panel, allow_future)
    model = fit_model(cfg, panel, when, cfg.output_dir / MODEL)
    typer.echo(f"saved {cfg.output_dir / 'model'} (chosen {model.estimator.best_params_})")
    _echo_allocation(allocate(cfg, model, panel, when, previous=None))


@timing_app.command()
def predict(config: Path = ConfigOpt, out: Path | None = OutOpt, overrides: list[str] = SetOpt,
            as_of: Optional[datetime] = AsOfOpt, allow_future: bool = AllowFutureOpt,
            refit: bool = typer.Option(True, "--refit/--no-refit",
                                       help="Refit when walkforward.refit_every periods have passed (or no model exists).")) -> None:
    """Today's allocation from the saved model: forecasts, target and held weights, trades; appended
    to <out>/allocations.parquet (a re-run for the same --as-of replaces its rows)."""

    from altsignal.operate import decide
    from timing.data import load_panel

    cfg = _load(config, out, None, overrides)
    set_threads(cfg.walkforward.threads)
    panel = load_panel(cfg.data)
    rows, refitted = decide(cfg, panel, _as_of(as_of, panel, allow_future), cfg.output_dir, refit)
    if refitted:
        typer.echo(f"refitted and saved {cfg.output_dir / 'model'}")
    _echo_allocation(rows)
    typer.echo(f"appended to {cfg.output_dir / 'allocations.parquet'}")


@timing_app.command()
def backtest(config: Path = ConfigOpt, out: Path | None = OutOpt, output_dir: Path | None = OldOutOpt,
             overrides: list[str] = SetOpt, explain: str | None = ExplainOpt,
             no_explain: bool = typer.Option(False, "--no-explain", hidden=True)) -> None:
    """Walk-forward network and baselines; write forecasts, returns, weights and metrics."""
    import pandas as pd

    from timing.backtest import run_backtest, save_backtest
    from timing.data import load_panel

    explain = renamed_option(explain, "none" if no_explain else None, "--explain none", "--no-explain")
    cfg = _load(config, out, output_dir, [*overrides, *explain_override(explain)])
    panel = load_panel(cfg.data)
    result = run_backtest(cfg, panel, progress=True)
    save_backtest(result, cfg.output_dir)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        fm = result.forecast_metrics
        typer.echo(fm[fm.model == "network"][["part", "factor", "oos_r2", "cw_p", "hit_rate", "rank_ic"]].round(4).to_string(index=False))
        pm = result.portfolio_metrics
        typer.echo(pm[pm.basis == "net"][["part", "strategy", "sharpe", "sharpe_lo", "sharpe_hi", "ann_return", "max_drawdown",
                                          "turnover_annual"]].round(3).to_string(index=False))
    typer.echo(f"wrote {cfg.output_dir} in {result.summary['total_seconds']:.0f} s")


@timing_app.command()
def report(config: Path = ConfigOpt, out: Path | None = OutOpt, output_dir: Path | None = OldOutOpt) -> None:
    """Render report.md with PNG plots from a finished backtest."""
    from timing.report import write_report

    cfg = _load(config, out, output_dir)
    if not (cfg.output_dir / "summary.json").exists():
        raise UsageError(f"no backtest in {cfg.output_dir}", hint="run `altsignal timing backtest` first")
    typer.echo(f"wrote {write_report(cfg.output_dir)}")


def register(app: typer.Typer) -> None:
    app.add_typer(timing_app, name="timing")
