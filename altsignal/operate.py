"""Today's factor allocation from a saved network, and the allocation history.

Daily (or monthly) operation, as opposed to the walk-forward backtest:

- :func:`fit_model` trains the network on the panel rows known at ``as_of`` (targets realised by
  then) and saves it (``timing.artifact``: safetensors + JSON).
- :func:`allocate` loads nothing and trains nothing: given a fitted model, the panel and the
  previously held weights, it returns one row per factor for the decision at the last panel row
  on or before ``as_of``: the forecast, the historical mean beside it, the target weight (the
  backtest's ``target_weights``), the weight actually held after the no-trade band and the
  turnover penalty (the backtest's ``trade`` step, from the previous weights), and the trade.
- :func:`due_for_refit` is the refit schedule: the model is refitted once ``walkforward.refit_every``
  panel periods have passed since the last row it was trained on, the backtest's own cadence, so
  production refits the way the backtest that justified it did. Between refits every day reuses
  the saved model.
- :func:`append_history` keeps ``allocations.parquet``: one block of rows per ``as_of``; writing
  an ``as_of`` again replaces its block (a re-run is idempotent), and the file is replaced
  atomically.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from core.atomic import atomic_path
from core.errors import UsageError
from timing.config import PERIODS_PER_YEAR, TimingConfig
from timing.dataset import forward_returns

log = logging.getLogger(__name__)

# torch, the network and scikit-learn are imported inside the functions that fit, load or allocate:
# `altsignal rollback` and the daily run's refusals need none of them (2 s instead of 9 s to start).
HISTORY = "allocations.parquet"
MODEL = "model"  # the saved network's folder, beside the history


def known_panel(panel: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """The panel rows dated on or before ``as_of`` (a row is known at its own date: timing.data)."""
    known = panel.loc[panel.index <= as_of]
    if known.empty:
        raise UsageError(f"the panel has no row on or before {as_of.date()} (it starts {panel.index[0].date()})")
    return known


def fit_model(cfg: TimingConfig, panel: pd.DataFrame, as_of: pd.Timestamp, folder: Path):
    """Fit the network on the rows known at ``as_of`` and save it in ``folder``."""
    from timing.artifact import save_forecaster
    from timing.backtest import make_spec, network_factory

    known = known_panel(panel, as_of)
    factors = cfg.check_panel(known)
    model = network_factory(cfg, make_spec(cfg, known, factors))().fit(known)
    save_forecaster(model, folder)
    log.info("fitted the network through %s, saved %s", model.train_dates_[-1].date(), folder)
    return model


def due_for_refit(train_end: pd.Timestamp, panel: pd.DataFrame, as_of: pd.Timestamp, refit_every: int) -> bool:
    """True once ``refit_every`` more rows have realised targets than the model was trained on."""
    known = known_panel(panel, as_of).index
    # A row's target is realised `horizon` rows later; comparing row counts keeps calendars out of it.
    return int((known > train_end).sum()) >= refit_every


def allocate(cfg: TimingConfig, model, panel: pd.DataFrame, as_of: pd.Timestamp,
             previous: pd.Series | None) -> pd.DataFrame:
    """The decision at the last row on or before ``as_of`` (see the module docstring)."""
    from timing.portfolio import shrunk_covariance, target_weights, trade_step

    known = known_panel(panel, as_of)
    factors = list(model.spec.factors)
    date = known.index[-1]
    mu = model.predict(known.drop(columns=factors), known.index[-1:]).iloc[0].to_numpy(dtype=float)
    cov = shrunk_covariance(known[factors], date, cfg.portfolio.cov_window) * cfg.horizon_periods
    ppy = PERIODS_PER_YEAR[cfg.data.frequency] / cfg.horizon_periods
    target = target_weights(mu, cov, cfg.portfolio, ppy, from_forecast=True)
    held_before = np.zeros(len(factors)) if previous is None else previous.reindex(factors).fillna(0.0).to_numpy()
    held = trade_step(target, held_before.astype(float), cfg.portfolio.no_trade_band, cfg.portfolio.turnover_penalty)
    hist = forward_returns(known, tuple(factors), cfg.horizon_periods).mean()
    return pd.DataFrame({
        "as_of": as_of, "date": date, "factor": factors, "forecast": mu, "historical_mean": hist.to_numpy(),
        "target_weight": target, "previous_weight": held_before, "weight": held, "trade": held - held_before,
        "model_train_end": model.train_dates_[-1],
    })


def read_history(folder: Path) -> pd.DataFrame:
    path = Path(folder) / HISTORY
    return pd.read_parquet(path) if path.exists() else pd.DataFrame()


def previous_weights(history: pd.DataFrame, as_of: pd.Timestamp) -> pd.Series | None:
    """The weights held after the latest decision strictly before ``as_of``."""
    if history.empty:
        return None
    before = history[history["as_of"] < as_of]
    if before.empty:
        return None
    last = before[before["as_of"] == before["as_of"].max()]
    return last.set_index("factor")["weight"]


def append_history(folder: Path, rows: pd.DataFrame) -> pd.DataFrame:
    """History with ``rows`` in place of any earlier rows of their ``as_of``; written atomically."""
    history = read_history(folder)
    if not history.empty:
        history = history[~history["as_of"].isin(rows["as_of"].unique())]
    history = pd.concat([history, rows], ignore_index=True).sort_values(["as_of", "factor"], ignore_index=True)
    with atomic_path(Path(folder) / HISTORY) as tmp:
        history.to_parquet(tmp, index=False)
    return history


def decide(cfg: TimingConfig, panel: pd.DataFrame, as_of: pd.Timestamp, folder: Path,
           refit: bool = True) -> tuple[pd.DataFrame, bool]:
    """One day's decision kept in ``folder``: load the saved model (``folder/model``), refit it when
    the schedule says so (or none exists), allocate from the previous weights, append to the
    history. Returns the rows and whether the model was refitted. ``altsignal timing predict`` and
    the daily run (``altsignal.daily``) both come here."""
    from timing.artifact import load_forecaster

    model_dir = Path(folder) / MODEL
    model = load_forecaster(model_dir) if (model_dir / "meta.json").exists() else None
    if model is None and not refit:
        raise UsageError(f"no saved model in {model_dir}", hint="run `altsignal timing fit` first, or drop --no-refit")
    refitted = model is None or (refit and due_for_refit(model.train_dates_[-1], panel, as_of, cfg.walkforward.refit_every))
    if refitted:
        model = fit_model(cfg, panel, as_of, model_dir)
    if model.train_dates_[-1] > as_of:
        raise UsageError(f"the saved model was trained through {model.train_dates_[-1].date()}, after --as-of "
                         f"{as_of.date()}", hint="refit for that day: `altsignal timing fit --as-of ...`")
    rows = allocate(cfg, model, panel, as_of, previous_weights(read_history(folder), as_of))
    append_history(folder, rows)
    return rows, refitted
