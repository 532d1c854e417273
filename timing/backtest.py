"""One backtest run: network + baselines through the same folds, portfolios, metrics, explanations.

Outputs (Parquet + JSON, each written atomically) under ``cfg.output_dir``:
``forecasts.parquet`` (date, model, factor, value: expected returns or raw allocation weights),
``returns.parquet`` (date, strategy, gross, net, turnover, cost), ``weights.parquet`` (date,
strategy, factor, weight), ``forecast_metrics.parquet``, ``portfolio_metrics.parquet``,
``importance.parquet``, ``integrated_gradients.parquet``, ``ablation.parquet``, ``folds.json``,
``summary.json``. ``timing.report`` renders them.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from nlp.rejects import atomic_path, atomic_write_text
from timing.baselines import build_baselines
from timing.config import FEATURE_GROUPS, PERIODS_PER_YEAR, TimingConfig
from timing.dataset import PanelSpec, feature_columns, forward_returns
from timing.explain import ig_by_group, permutation_importance
from timing.forecaster import WindowForecaster
from timing.metrics import forecast_table, portfolio_metrics
from timing.network import MultiTaskTimer
from timing.portfolio import PortfolioResult, backtest as portfolio_backtest
from timing.walkforward import Fold, WalkForwardResult, make_folds, run_walkforward

log = logging.getLogger(__name__)
NETWORK = "network"


def make_timer(cfg: TimingConfig, single_task: bool = False) -> MultiTaskTimer:
    """The configured network; ``single_task`` keeps only the return head (baseline nets)."""
    n = cfg.network
    return MultiTaskTimer(
        encoder=n.encoder, hidden=n.hidden, dropout=n.dropout, weight_decay=n.weight_decay, lr=n.lr,
        epochs=n.epochs, patience=n.patience, val_fraction=n.val_fraction, gap=cfg.horizon_periods,
        vol_head=n.vol_head and not single_task, sign_head=n.sign_head and not single_task,
        task_weighting=n.task_weighting, fixed_weights=n.fixed_weights, seeds=n.seeds, grid=n.grid,
    )


def make_spec(cfg: TimingConfig, panel: pd.DataFrame, factors: tuple[str, ...],
              drop_groups: tuple[str, ...] = ()) -> PanelSpec:
    groups = tuple(g for g in FEATURE_GROUPS if g not in drop_groups)
    features = tuple(feature_columns(panel, groups))
    if not features:
        raise ValueError(f"the panel has no feature columns in groups {groups}")
    return PanelSpec(features, factors, cfg.network.lookback, cfg.horizon_periods)


def network_factory(cfg: TimingConfig, spec: PanelSpec):
    return lambda: WindowForecaster(NETWORK, make_timer(cfg), spec, tabular=False)


@dataclass
class BacktestResult:
    folds: list[Fold]
    forecasts: dict[str, pd.DataFrame]
    kinds: dict[str, str]
    portfolios: dict[str, PortfolioResult]
    forecast_metrics: pd.DataFrame
    portfolio_metrics: pd.DataFrame
    importance: pd.DataFrame
    integrated_gradients: pd.DataFrame
    ablation: pd.DataFrame
    summary: dict = field(default_factory=dict)


def _portfolio_table(portfolios: dict[str, PortfolioResult], ppy: float) -> pd.DataFrame:
    rows = []
    for name, res in portfolios.items():
        for basis in ("gross", "net"):
            rows.append({"strategy": name, "basis": basis,
                         **portfolio_metrics(getattr(res, basis), res.turnover, ppy)})
    return pd.DataFrame(rows)


def _forecast_metrics(forecasts: dict[str, pd.DataFrame], kinds: dict[str, str], realised: pd.DataFrame,
                      horizon: int) -> pd.DataFrame:
    bench = forecasts["historical_mean"]
    parts = []
    for name, pred in forecasts.items():
        if kinds[name] == "forecast" and name != "historical_mean":
            parts.append(forecast_table(realised, pred, bench, horizon).assign(model=name))
    return pd.concat(parts).rename_axis("factor").reset_index()


def _ablation(cfg: TimingConfig, panel: pd.DataFrame, factors: tuple[str, ...], folds: list[Fold],
              full: pd.DataFrame, realised: pd.DataFrame, bench: pd.DataFrame, progress: bool) -> pd.DataFrame:
    present = {g for g in FEATURE_GROUPS if feature_columns(panel, (g,))}
    rows = []
    for group in cfg.explain.ablate_groups:
        if group not in present:
            log.info("ablation of %s skipped: the panel has no %s columns", group, group)
            rows.append({"group": group, "status": f"skipped: no {group} columns in the panel"})
            continue
        spec = make_spec(cfg, panel, factors, drop_groups=(group,))
        without = run_walkforward(panel, network_factory(cfg, spec), folds, factors, spec.lookback,
                                  progress=progress, n_jobs=cfg.walkforward.n_jobs,
                                  threads=cfg.walkforward.threads).predictions
        for label, pred in (("with", full), ("without", without)):
            table = forecast_table(realised, pred, bench, cfg.horizon_periods)
            rows.append({"group": group, "status": label, "mean_oos_r2": float(table["oos_r2"].mean()),
                         **{f"oos_r2:{f}": float(v) for f, v in table["oos_r2"].items()}})
    return pd.DataFrame(rows)


def run_backtest(cfg: TimingConfig, panel: pd.DataFrame, progress: bool = True, explain: bool = True) -> BacktestResult:
    import torch

    started = time.perf_counter()
    torch.set_num_threads(cfg.walkforward.threads)
    factors = cfg.check_panel(panel)
    spec = make_spec(cfg, panel, factors)
    h, ppy = cfg.horizon_periods, PERIODS_PER_YEAR[cfg.data.frequency]
    folds = make_folds(panel.index, cfg.walkforward, spec.lookback, h)
    realised = forward_returns(panel, factors, h)
    log.info("%d factors %s, %d features, %d folds, first test %s", len(factors), factors, len(spec.features),
             len(folds), folds[0].test_dates[0].date())

    timings: dict[str, float] = {}
    results: dict[str, WalkForwardResult] = {}
    factories = [network_factory(cfg, spec)]
    factories += build_baselines(cfg.baselines, spec, lambda: make_timer(cfg, single_task=True), cfg.seed)
    if "historical_mean" not in cfg.baselines:  # the OOS R^2 benchmark is always needed
        factories += build_baselines(("historical_mean",), spec, None, cfg.seed)
    for factory in factories:
        t = time.perf_counter()
        res = run_walkforward(panel, factory, folds, factors, spec.lookback,
                              keep_models=factory is factories[0], progress=progress,
                              n_jobs=cfg.walkforward.n_jobs, threads=cfg.walkforward.threads)
        timings[res.name] = round(time.perf_counter() - t, 2)
        results[res.name] = res
        log.info("%s done in %.1fs", res.name, timings[res.name])

    forecasts = {n: r.predictions for n, r in results.items()}
    kinds = {n: r.kind for n, r in results.items()}
    portfolios = {
        n: portfolio_backtest(pred, panel[list(factors)], cfg.portfolio, h, ppy, from_forecast=kinds[n] == "forecast")
        for n, pred in forecasts.items()
    }
    fmetrics = _forecast_metrics(forecasts, kinds, realised, h)
    pmetrics = _portfolio_table(portfolios, ppy / h)

    importance = ig = ablation = pd.DataFrame()
    if explain:
        t = time.perf_counter()
        net = results[NETWORK]
        importance = permutation_importance(net, panel, realised, forecasts["historical_mean"], spec.features,
                                            spec.lookback, cfg.explain.permutation_repeats, cfg.seed)
        ig = ig_by_group(net, panel, spec.features, spec.lookback, cfg.explain.ig_steps)
        ablation = _ablation(cfg, panel, factors, folds, forecasts[NETWORK], realised,
                             forecasts["historical_mean"], progress)
        timings["explain"] = round(time.perf_counter() - t, 2)

    summary = {
        "factors": list(factors), "features": list(spec.features), "n_rows": len(panel),
        "panel_start": str(panel.index[0].date()), "panel_end": str(panel.index[-1].date()),
        "first_test": str(folds[0].test_dates[0].date()), "last_test": str(folds[-1].test_dates[1].date()),
        "n_folds": len(folds), "horizon_periods": h, "seconds": timings,
        # hyperparameters each fold chose on its own validation tail
        "network_chosen": [dict(m.estimator.best_params_, test_start=str(f.test_dates[0].date()))
                           for f, m in zip(folds, results[NETWORK].models)],
        "total_seconds": round(time.perf_counter() - started, 2), "config": json.loads(cfg.model_dump_json()),
    }
    return BacktestResult(folds, forecasts, kinds, portfolios, fmetrics, pmetrics, importance, ig, ablation, summary)


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def save_backtest(result: BacktestResult, out_dir: Path) -> None:
    out_dir = Path(out_dir)
    long = []
    for name, pred in result.forecasts.items():
        long.append(pred.rename_axis("date").reset_index().melt("date", var_name="factor").assign(model=name))
    _write_parquet(pd.concat(long), out_dir / "forecasts.parquet")
    rets, weights = [], []
    for name, p in result.portfolios.items():
        rets.append(pd.DataFrame({"date": p.gross.index, "strategy": name, "gross": p.gross.to_numpy(),
                                  "net": p.net.to_numpy(), "turnover": p.turnover.to_numpy(), "cost": p.costs.to_numpy()}))
        weights.append(p.weights.rename_axis("date").reset_index().melt("date", var_name="factor", value_name="weight")
                       .assign(strategy=name))
    _write_parquet(pd.concat(rets), out_dir / "returns.parquet")
    _write_parquet(pd.concat(weights), out_dir / "weights.parquet")
    _write_parquet(result.forecast_metrics, out_dir / "forecast_metrics.parquet")
    _write_parquet(result.portfolio_metrics, out_dir / "portfolio_metrics.parquet")
    _write_parquet(result.importance.reset_index(), out_dir / "importance.parquet")
    _write_parquet(result.integrated_gradients.rename_axis("group").reset_index(), out_dir / "integrated_gradients.parquet")
    _write_parquet(result.ablation, out_dir / "ablation.parquet")
    folds = [{"train_rows": f.train_rows, "test_rows": f.test_rows,
              "train_dates": [str(d.date()) for d in f.train_dates],
              "test_dates": [str(d.date()) for d in f.test_dates]} for f in result.folds]
    atomic_write_text(out_dir / "folds.json", json.dumps(folds, indent=1))
    summary = dict(result.summary, kinds=result.kinds)
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=1, default=str))
