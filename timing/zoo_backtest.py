"""The many-task backtest: every task, every model, one walk-forward pass, books, metrics.

``timing.backtest.run_backtest`` hands over here when the config has a ``[targets]`` section, so
``altsignal timing backtest --config timing/configs/zoo.toml`` runs it and ``save_backtest``
writes the usual files (``returns.parquet``: date, strategy, gross, net, turnover, cost;
``forecast_metrics.parquet``: factor, model, part, oos_r2, cw_p, ... plus theme). Folds are the
default run's (``timing.walkforward.make_folds``, monthly, horizon one month); each fold's models
are fitted in one process (``zoo.n_jobs`` folds at a time) on rows sliced before the call.

Strategies: every forecasting model's mean-variance book under its own name (``network``,
``single_task_net``, ``ridge``, ``pooled_ridge``, ``pc_timing``, ``historical_mean``,
``combination``, ``combination_dmspe``); allocation rules ``equal_weight`` (1/N of the live tasks),
``vol_managed`` (the same, Moreira-Muir scaled) and ``factor_momentum`` (Gupta & Kelly's
time-series factor momentum: raw weight ``clip(r_12m / sigma_36m, -2, 2)`` per task); with
``zoo.theme_book`` the ``<name>:themes`` books over theme portfolios, and one
``<allocator>:themes`` book per direct allocator in ``portfolio.allocator`` (``timing.zoo_direct``:
the themes as assets, tested also against ``network:themes``). The forecast model
``factor_momentum`` (the same signal as a forecast, for OOS R^2 and the combination) shares the
name in ``forecast_metrics``. Sharpe intervals: Lo (2002) (``sharpe_lo``/``sharpe_hi``) and a
circular block bootstrap (``boot_lo``/``boot_hi``, 95%).
"""
from __future__ import annotations

import json
import logging
import time
import warnings

import numpy as np
import pandas as pd
from arch.bootstrap import CircularBlockBootstrap
from joblib import Parallel, delayed

from core.threads import set_threads
from timing.backtest_result import BacktestResult, split_parts, strategy_summary
from timing.metrics import clark_west, hit_rate, oos_r2, portfolio_metrics, rank_ic, sharpe_difference
from timing.targets import read_targets
from timing.walkforward import make_folds
from timing.zoo_books import book, cost_vector, covariances, dmspe_combination, equal_combination, theme_frames
from timing.zoo_data import ZooPanel, build_zoo_panel
from timing.zoo_direct import direct_theme_books
from timing.zoo_models import FoldInput, run_fold

log = logging.getLogger(__name__)
FORECASTERS = ("network", "single_task_net", "ridge", "pooled_ridge", "factor_momentum", "pc_timing")
CHALLENGERS = ("network", "combination", "combination_dmspe")  # strategies tested against the others


def fold_inputs(zp: ZooPanel, fold) -> FoldInput:
    """Training rows [lo, hi - 1) with next-month targets inside the training frame; test rows predictors only."""
    lo, hi = fold.train_rows
    t0, t1 = fold.test_rows
    return FoldInput(zp.shared[lo:hi - 1], zp.own[lo:hi - 1], zp.tsfm[lo:hi - 1], zp.returns[lo + 1:hi],
                     zp.shared[t0:t1], zp.own[t0:t1], zp.tsfm[t0:t1])


def walk_forward(cfg, zp: ZooPanel, folds, progress: bool = False) -> dict[str, pd.DataFrame]:
    """Out-of-sample forecasts per forecasting model (test dates x tasks)."""
    from core.progress import Progress

    z = cfg.zoo
    wanted = tuple(m for m in ("network",) + FORECASTERS if m == "network" or m in z.models
                   or m in z.combination_members)
    tasks = [delayed(run_fold)(fold_inputs(zp, f), wanted, z.network, zp.groups, len(zp.group_names),
                               cfg.stability.linear_shrinkage, z.pc_k, z.threads) for f in folds]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        runner = Parallel(n_jobs=z.n_jobs, return_as="generator")
        out = list(Progress(runner(tasks), total=len(tasks), enabled=progress, leave=False, desc="zoo walk-forward"))
    forecasts = {}
    for name in out[0]:
        parts = [pd.DataFrame(o[name], index=zp.dates[f.test_rows[0]:f.test_rows[1]], columns=zp.ids)
                 for f, o in zip(folds, out)]
        forecasts[name] = pd.concat(parts)
        if not np.isfinite(forecasts[name].to_numpy()).all():
            raise ValueError(f"{name} produced non-finite forecasts")
    return forecasts


def forecast_metrics(forecasts: dict[str, pd.DataFrame], realised: pd.DataFrame, groups: pd.Series,
                     parts: dict) -> pd.DataFrame:
    """Per model, part and task: oos_r2 (vs the historical mean), Clark-West t and p, hit rate, rank IC."""
    bench = forecasts["historical_mean"]
    rows = []
    for part, dates in parts.items():
        for name, pred in forecasts.items():
            if name == "historical_mean":
                continue
            keep = pred.index.intersection(dates)
            for f in pred.columns:
                y = realised.loc[keep, f].to_numpy()
                ok = np.isfinite(y)
                if ok.sum() < 12:
                    continue
                fc, b = pred.loc[keep, f].to_numpy()[ok], bench.loc[keep, f].to_numpy()[ok]
                t, p = clark_west(y[ok], fc, b, 1)
                rows.append({"factor": f, "model": name, "part": part, "theme": groups[f], "oos_r2": oos_r2(y[ok], fc, b),
                             "cw_t": t, "cw_p": p, "hit_rate": hit_rate(y[ok], fc), "rank_ic": rank_ic(y[ok], fc),
                             "n": int(ok.sum())})
    return pd.DataFrame(rows)


def bootstrap_sharpe(r: pd.Series, q: float, reps: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of the annualized Sharpe ratio, circular block bootstrap (block T^(1/3))."""
    x = r.to_numpy(dtype=float)
    if len(x) < 8 or x.std() == 0:
        return float("nan"), float("nan")
    boot = CircularBlockBootstrap(int(np.ceil(len(x) ** (1 / 3))), x, seed=seed)
    draws = boot.apply(lambda a: np.array([a.mean() / a.std(ddof=1) * np.sqrt(q)]), reps=reps)[:, 0]
    return float(np.quantile(draws, 0.025)), float(np.quantile(draws, 0.975))


def portfolio_table(portfolios, parts: dict, seed: int, reps: int = 1000) -> pd.DataFrame:
    rows = []
    for part, dates in parts.items():
        for name, res in portfolios.items():
            keep = res.gross.index.intersection(dates)
            for basis in ("gross", "net"):
                r = getattr(res, basis).loc[keep]
                lo, hi = bootstrap_sharpe(r, 12.0, reps=reps, seed=seed)
                rows.append({"part": part, "strategy": name, "basis": basis,
                             **portfolio_metrics(r, res.turnover.loc[keep], 12.0), "boot_lo": lo, "boot_hi": hi,
                             "cost_drag": float(res.costs.loc[keep].mean() * 12)})
    return pd.DataFrame(rows)


def sharpe_tests(portfolios, parts: dict, seed: int, reps: int = 1000, direct: tuple[str, ...] = ()) -> pd.DataFrame:
    """Network, combinations and direct allocators against 1/N, the best baseline, the twins and
    factor momentum; direct allocators (theme books) also against the mean-variance theme book."""
    challengers = CHALLENGERS + direct
    rows = []
    for part, dates in parts.items():
        for basis in ("gross", "net"):
            series = {n: getattr(p, basis).loc[getattr(p, basis).index.intersection(dates)] for n, p in portfolios.items()}
            base = {n: r.mean() / r.std(ddof=1) for n, r in series.items()
                    if n not in challengers and not n.endswith(":themes") and r.std() > 0}
            best = max(base, key=base.get)
            for name in [n for n in series if n.split(":")[0] in challengers]:
                theme = ":themes" if name.endswith(":themes") else ""
                versus = [("equal weight", "equal_weight" + theme), (f"best baseline ({best})", best),
                          ("single-task twins", "single_task_net" + theme), ("factor momentum", "factor_momentum")]
                if name.split(":")[0] in direct:
                    versus.insert(0, ("mean-variance book", "network:themes"))
                for label, other in versus:
                    if other in series and other != name:
                        diff, p = sharpe_difference(series[name], series[other], 12.0, reps=reps, seed=seed)
                        rows.append({"part": part, "basis": basis, "strategy": name, "versus": label, "other": other,
                                     "sharpe_diff": diff, "p_value": p})
    return pd.DataFrame(rows)


def headline(fm: pd.DataFrame) -> dict:
    """Per part and model: mean OOS R^2 and the share of tasks with OOS R^2 > 0 and Clark-West p < 0.10."""
    out: dict = {}
    for (part, model), g in fm.groupby(["part", "model"]):
        out.setdefault(part, {})[model] = {
            "mean_oos_r2": round(float(g.oos_r2.mean()), 5), "median_oos_r2": round(float(g.oos_r2.median()), 5),
            "share_cw": round(float(((g.oos_r2 > 0) & (g.cw_p < 0.10)).mean()), 4), "n_tasks": len(g)}
    return out


def run_zoo_backtest(cfg, panel: pd.DataFrame, progress: bool = True) -> BacktestResult:

    started = time.perf_counter()
    if cfg.horizon != "monthly":
        raise ValueError("a [targets] run forecasts monthly returns: set horizon = 'monthly'")
    set_threads(cfg.zoo.threads)
    returns, groups = read_targets(cfg.targets)
    zp = build_zoo_panel(returns, groups, panel, cfg.zoo, cfg.data.start, cfg.data.end)
    folds = make_folds(zp.dates, cfg.walkforward, 1, 1)
    log.info("%d tasks in %d themes, %d shared predictors, %d folds, first test %s", len(zp.ids),
             len(zp.group_names), len(zp.shared_names), len(folds), folds[0].test_dates[0].date())
    timings = {}
    t = time.perf_counter()
    forecasts = walk_forward(cfg, zp, folds, progress)
    timings["walk_forward"] = round(time.perf_counter() - t, 2)

    t = time.perf_counter()
    z, pc = cfg.zoo, cfg.portfolio
    ret = zp.returns_frame()
    realised = ret.shift(-1)
    dates = forecasts["network"].index
    vend = pd.Timestamp(cfg.walkforward.validation_end) if cfg.walkforward.validation_end else dates[-1] + pd.offsets.MonthEnd(1)
    members = tuple(z.combination_members)
    curves, direct_s = {}, {}
    warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)
    if "combination" in z.models:
        forecasts["combination"] = equal_combination(forecasts, members)
    if "combination_dmspe" in z.models:
        forecasts["combination_dmspe"] = dmspe_combination(forecasts, members, realised, groups, vend,
                                                           z.dmspe_discount, z.dmspe_holdout)
    kinds = {n: "forecast" for n in forecasts}
    strategies = {n: (f, True, False) for n, f in forecasts.items()
                  if n != "factor_momentum" and (n in z.models or n in ("network", "historical_mean"))}
    ones = pd.DataFrame(1.0, index=dates, columns=zp.ids)
    tsfm = pd.DataFrame(zp.tsfm, index=zp.dates, columns=zp.ids).reindex(dates)
    if "equal_weight" in z.models:
        strategies["equal_weight"] = (ones, False, False)
    if "vol_managed" in z.models:
        strategies["vol_managed"] = (ones, False, True)
    if "factor_momentum" in z.models:
        strategies["factor_momentum"] = (tsfm.fillna(0.0), False, False)
    costs = cost_vector(zp.ids, groups, pc.cost_bps, z.cost_bps_by_group, z.cost_bps_file)
    covs = covariances(ret, dates, pc.cov_window)
    portfolios = {n: book(s, ret, covs, pc, fc, costs, vm) for n, (s, fc, vm) in strategies.items()}
    if z.theme_book:
        theme_ret = theme_frames(ret, groups)
        theme_costs = theme_frames(pd.DataFrame([costs], columns=zp.ids), groups).to_numpy()[0]
        tcovs = covariances(theme_ret, dates, pc.cov_window)
        tpc = pc.model_copy(update={"max_weight": z.theme_max_weight})
        for n in ("network", "single_task_net", "combination", "combination_dmspe", "equal_weight"):
            if n in strategies:
                s, fc, vm = strategies[n]
                sig = theme_frames(s.where(ret.reindex(dates).notna()), groups)
                portfolios[f"{n}:themes"] = book(sig, theme_ret, tcovs, tpc, fc, theme_costs, vm)
        direct, direct_s, curves = direct_theme_books(cfg, zp, folds, theme_ret, tpc, theme_costs, progress)
        portfolios.update(direct)
        timings.update(direct_s)
    parts = split_parts(dates, zp.dates, 1, cfg.walkforward.validation_end)
    fm = forecast_metrics(forecasts, realised, groups, parts)
    pm = portfolio_table(portfolios, parts, cfg.seed, z.bootstrap_reps)
    tests = sharpe_tests(portfolios, parts, cfg.seed, z.bootstrap_reps, pc.direct_allocators)
    timings["books_and_tests"] = round(time.perf_counter() - t - sum(direct_s.values()), 2)
    summary = {
        "study": "zoo", "factors": zp.ids, "themes": dict(zip(zp.ids, groups[zp.ids])), "n_tasks": len(zp.ids),
        "features": zp.shared_names + [f"own.{n}" for n in zp.own_names], "n_rows": len(zp.dates),
        "panel_start": str(zp.dates[0].date()), "panel_end": str(zp.dates[-1].date()),
        "first_test": str(folds[0].test_dates[0].date()), "last_test": str(folds[-1].test_dates[1].date()),
        "n_folds": len(folds), "horizon_periods": 1, "seconds": timings,
        "strategies": strategy_summary(pm), "headline": headline(fm), "training_curves": curves,
        "parts": {k: [str(v[0].date()), str(v[-1].date()), len(v)] for k, v in parts.items()},
        "total_seconds": round(time.perf_counter() - started, 2), "config": json.loads(cfg.model_dump_json()),
    }
    empty = pd.DataFrame()
    return BacktestResult(folds, forecasts, kinds, portfolios, fm, pm, empty, empty, empty, tests, summary)
