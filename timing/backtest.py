"""One backtest run: network + baselines through the same folds, portfolios, metrics, explanations.

Outputs (Parquet + JSON, each written atomically) under ``cfg.output_dir``:
``forecasts.parquet`` (date, model, factor, value: expected returns or raw allocation weights),
``returns.parquet`` (date, strategy, gross, net, turnover, cost), ``weights.parquet`` (date,
strategy, factor, weight), ``forecast_metrics.parquet``, ``portfolio_metrics.parquet``,
``importance.parquet``, ``integrated_gradients.parquet``, ``ablation.parquet``,
``sharpe_tests.parquet``, ``folds.json``, ``summary.json``. ``timing.report`` renders them.

Protocol (docs/timing.md, "Factor-timing protocol"): with ``walkforward.validation_end`` set, every
metric table has a ``part`` column: ``validation`` (decisions whose holding period ends by that
date: where designs are chosen), ``test`` (the rest, run once per design) and ``all``.
Sharpe-difference tests compare the network's portfolios with equal weight and with the best
baseline of the same part, gross and net. Direct allocators named in ``portfolio.allocator``
(``timing.allocators``) are fitted on the same folds and add books of their names, tested also
against the mean-variance book (``network``); RL training curves go to ``summary.json``.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

from core.atomic import atomic_path, atomic_write_text
from core.threads import set_threads
from timing.allocators import make_allocator, run_direct
from timing.backtest_result import BacktestResult, split_parts, strategy_summary
from timing.baselines import VOL_MANAGED, build_baselines
from timing.config import FEATURE_GROUPS, PERIODS_PER_YEAR, TimingConfig
from timing.dataset import PanelSpec, feature_columns, forward_returns
from timing.explain import ig_by_group, permutation_importance
from timing.forecaster import WindowForecaster
from timing.metrics import forecast_table, portfolio_metrics, sharpe_difference
from timing.network import MultiTaskTimer
from timing.portfolio import PortfolioResult, run_book
from timing.portfolio import backtest as portfolio_backtest
from timing.predictors import rows_per_month
from timing.walkforward import Fold, WalkForwardResult, make_folds, run_walkforward

log = logging.getLogger(__name__)
NETWORK = "network"
OVERLAY = "+vol"  # suffix of a strategy run with the Moreira-Muir overlay


def make_timer(cfg: TimingConfig, single_task: bool = False) -> MultiTaskTimer:
    """The configured network; ``single_task``: its twins, one encoder per factor, return heads only."""
    n = cfg.network
    return MultiTaskTimer(
        encoder=n.encoder, hidden=n.hidden, dropout=n.dropout, weight_decay=n.weight_decay, lr=n.lr,
        epochs=n.epochs, patience=n.patience, val_fraction=n.val_fraction, gap=cfg.horizon_periods,
        vol_head=n.vol_head and not single_task, sign_head=n.sign_head and not single_task,
        task_weighting=n.task_weighting, fixed_weights=n.fixed_weights, seeds=n.seeds, grid=n.grid,
        linear_core=n.linear_core, shrinkage=n.shrinkage, separate_trunks=single_task, windows=n.windows,
    )


def make_spec(cfg: TimingConfig, panel: pd.DataFrame, factors: tuple[str, ...],
              drop_groups: tuple[str, ...] = ()) -> PanelSpec:
    groups = tuple(g for g in FEATURE_GROUPS if g not in drop_groups)
    features = tuple(feature_columns(panel, groups))
    if not features:
        raise ValueError(f"the panel has no feature columns in groups {groups}")
    st = cfg.stability
    return PanelSpec(features, factors, cfg.network.lookback, cfg.horizon_periods, clip=st.clip, scaling=st.scaling,
                     guard_k=st.guard, shrinkage=st.linear_shrinkage, val_fraction=cfg.network.val_fraction)


def network_factory(cfg: TimingConfig, spec: PanelSpec):
    # the network chooses its shrinkage weight inside MultiTaskTimer (network.shrinkage)
    return lambda: WindowForecaster(NETWORK, make_timer(cfg), replace(spec, shrinkage=()), tabular=False)


def _portfolio_table(portfolios: dict[str, PortfolioResult], ppy: float, parts: dict) -> pd.DataFrame:
    rows = []
    for part, dates in parts.items():
        for name, res in portfolios.items():
            keep = res.gross.index.intersection(dates)
            for basis in ("gross", "net"):
                rows.append({"part": part, "strategy": name, "basis": basis,
                             **portfolio_metrics(getattr(res, basis).loc[keep], res.turnover.loc[keep], ppy),
                             "cost_drag": float(res.costs.loc[keep].mean() * ppy)})
    return pd.DataFrame(rows)


def _forecast_metrics(forecasts: dict[str, pd.DataFrame], kinds: dict[str, str], realised: pd.DataFrame,
                      horizon: int, parts: dict) -> pd.DataFrame:
    bench = forecasts["historical_mean"]
    out = []
    for part, dates in parts.items():
        for name, pred in forecasts.items():
            if kinds[name] == "forecast" and name != "historical_mean":
                table = forecast_table(realised, pred.loc[pred.index.intersection(dates)], bench, horizon)
                out.append(table.assign(model=name, part=part))
    return pd.concat(out).rename_axis("factor").reset_index()


def guard_summary(results: dict[str, WalkForwardResult]) -> dict[str, dict[str, float]]:
    """How often each forecasting model's guard pulled a forecast back (timing.forecaster)."""
    return {name: {"pulled_back": r.guarded, "forecasts": int(r.predictions.size),
                   "share": round(r.guarded / max(r.predictions.size, 1), 4)}
            for name, r in results.items() if r.guarded is not None}


def _sharpe_tests(portfolios: dict[str, PortfolioResult], ppy: float, parts: dict, seed: int,
                  direct: tuple[str, ...] = ()) -> pd.DataFrame:
    """Network strategies and direct allocators against equal weight, the best other strategy and
    the single-task twins; direct allocators also against the mean-variance book (``network``)."""
    mine = [n for n in portfolios if n.startswith(NETWORK) or n in direct]
    rows = []
    for part, dates in parts.items():
        for basis in ("gross", "net"):
            series = {n: getattr(p, basis).loc[getattr(p, basis).index.intersection(dates)] for n, p in portfolios.items()}
            sharpe = {n: r.mean() / r.std(ddof=1) for n, r in series.items() if n not in mine}
            best = max(sharpe, key=sharpe.get)
            for name in mine:
                versus = [("equal weight", "equal_weight"), (f"best baseline ({best})", best),
                          ("single-task twins", "single_task_net")]
                if name in direct:
                    versus.insert(0, ("mean-variance book", NETWORK))
                for label, other in versus:
                    if other in series:
                        diff, p = sharpe_difference(series[name], series[other], ppy, reps=1000, seed=seed)
                        rows.append({"part": part, "basis": basis, "strategy": name, "versus": label,
                                     "sharpe_diff": diff, "p_value": p})
    return pd.DataFrame(rows)


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


def run_backtest(cfg: TimingConfig, panel: pd.DataFrame, progress: bool = True) -> BacktestResult:
    """The walk-forward study of the config; with a ``[targets]`` section, the many-task one
    (``timing.zoo_backtest``: the targets come from a return file, ``panel`` gives the shared predictors)."""
    if cfg.targets is not None:
        from timing.zoo_backtest import run_zoo_backtest

        return run_zoo_backtest(cfg, panel, progress)

    started = time.perf_counter()
    set_threads(cfg.walkforward.threads)
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

    t = time.perf_counter()
    forecasts = {n: r.predictions for n, r in results.items()}
    kinds = {n: r.kind for n, r in results.items()}
    pc = cfg.portfolio
    vol_window = pc.vol_window or max(rows_per_month(cfg.data.frequency), 6)

    def book(name: str, vol_managed: bool) -> PortfolioResult:
        return portfolio_backtest(forecasts[name], panel[list(factors)], pc, h, ppy, kinds[name] == "forecast",
                                  vol_managed, vol_window)

    portfolios = {n: book(n, n == VOL_MANAGED) for n in forecasts}
    if pc.vol_overlay:
        portfolios[NETWORK + OVERLAY] = book(NETWORK, True)
    timings["portfolios"] = round(time.perf_counter() - t, 2)
    curves = {}
    for name in pc.direct_allocators:  # same folds, then the same book steps as the forecasts
        t = time.perf_counter()
        wf = run_direct(panel, make_allocator(name, cfg.network, cfg.direct, pc, ppy / h), folds, spec,
                        pc.cov_window, progress, cfg.walkforward.n_jobs, cfg.walkforward.threads)
        portfolios[name] = run_book(wf.policy(), list(factors), wf.dates, panel[list(factors)], pc, h, ppy, False)
        timings[name] = round(time.perf_counter() - t, 2)
        curves[name] = wf.training_curves()
        log.info("%s done in %.1fs", name, timings[name])

    t = time.perf_counter()
    parts = split_parts(forecasts[NETWORK].index, panel.index, h, cfg.walkforward.validation_end)
    fmetrics = _forecast_metrics(forecasts, kinds, realised, h, parts)
    pmetrics = _portfolio_table(portfolios, ppy / h, parts)
    tests = _sharpe_tests(portfolios, ppy / h, parts, cfg.seed, pc.direct_allocators)
    timings["metrics_and_tests"] = round(time.perf_counter() - t, 2)

    importance = ig = ablation = pd.DataFrame()
    if cfg.explain.level != "none":
        t = time.perf_counter()
        net = results[NETWORK]
        importance = permutation_importance(net, panel, realised, forecasts["historical_mean"], spec.features,
                                            spec.lookback, cfg.explain.permutation_repeats, cfg.seed)
        ig = ig_by_group(net, panel, spec.features, spec.lookback, cfg.explain.ig_steps)
        timings["explain"] = round(time.perf_counter() - t, 2)
    if cfg.explain.level == "full":
        t = time.perf_counter()
        ablation = _ablation(cfg, panel, factors, folds, forecasts[NETWORK], realised,
                             forecasts["historical_mean"], progress)
        timings["ablation"] = round(time.perf_counter() - t, 2)

    summary = {
        "factors": list(factors), "features": list(spec.features), "n_rows": len(panel),
        "panel_start": str(panel.index[0].date()), "panel_end": str(panel.index[-1].date()),
        "first_test": str(folds[0].test_dates[0].date()), "last_test": str(folds[-1].test_dates[1].date()),
        "n_folds": len(folds), "horizon_periods": h, "seconds": timings,
        "strategies": strategy_summary(pmetrics), "guard": guard_summary(results),
        "parts": {k: [str(v[0].date()), str(v[-1].date()), len(v)] for k, v in parts.items()},
        # hyperparameters and shrinkage weights each fold chose on its own validation tail
        "network_chosen": [dict(m.estimator.best_params_, shrink_weight=m.estimator.shrink_weight_.round(2).tolist(),
                                test_start=str(f.test_dates[0].date()))
                           for f, m in zip(folds, results[NETWORK].models)],
        "training_curves": curves,
        "total_seconds": round(time.perf_counter() - started, 2), "config": json.loads(cfg.model_dump_json()),
    }
    return BacktestResult(folds, forecasts, kinds, portfolios, fmetrics, pmetrics, importance, ig, ablation,
                          tests, summary)


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
    _write_parquet(result.sharpe_tests, out_dir / "sharpe_tests.parquet")
    folds = [{"train_rows": f.train_rows, "test_rows": f.test_rows,
              "train_dates": [str(d.date()) for d in f.train_dates],
              "test_dates": [str(d.date()) for d in f.test_dates]} for f in result.folds]
    atomic_write_text(out_dir / "folds.json", json.dumps(folds, indent=1))
    summary = dict(result.summary, kinds=result.kinds)
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=1, default=str))
