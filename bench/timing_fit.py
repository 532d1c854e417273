"""Time the timing stage. Prints ONE JSON line.

``--mode daily`` (default): the whole timing stage (network, every baseline, portfolios,
Sharpe tests, permutation importance, integrated gradients and the ablations) on a daily panel
shaped like a seven-year news study at a weekly horizon: 1,800 sessions, 185 features,
6 factors, 73 walk-forward folds (``timing.synthetic.synthetic_daily_panel``; the settings of
``timing/configs/study_timing.toml``). Reports wall seconds (total and per model) and the CPU
seconds of the run and its worker processes: on a shared, loaded machine the wall time says more
about the neighbours than about the code, and CPU seconds / 2 is what two idle cores would need.

``--mode threads``: one walk-forward fold of the network with 1 torch thread vs torch's default
threads (the network is tiny, so thread synchronisation costs more than the arithmetic it
spreads; timing.walkforward runs folds in processes with one thread each).
Usage: .venv/bin/python bench/timing_fit.py [--mode daily|threads] [--n-jobs 2]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

import torch

from core.threads import set_threads
from timing.backtest import make_spec, make_timer, run_backtest
from timing.config import TimingConfig, load_config
from timing.data import history_panel
from timing.dataset import training_samples
from timing.synthetic import synthetic_daily_panel

STUDY = Path(__file__).resolve().parents[1] / "timing" / "configs" / "study_timing.toml"


def daily(n_jobs: int) -> dict:
    base = load_config(STUDY)
    cfg = base.model_copy(update={
        "data": base.data.model_copy(update={"source": "parquet", "path": Path("unused"), "start": "2000-01-01",
                                             "end": "2030-12-31"}),
        "walkforward": base.walkforward.model_copy(update={"n_jobs": n_jobs}),
        "explain": base.explain.model_copy(update={"level": "full"}),
    })
    from joblib.externals.loky import get_reusable_executor

    panel = synthetic_daily_panel(n=1800, n_features=185, seed=0)
    t, cpu = time.perf_counter(), time.process_time()
    result = run_backtest(cfg, panel, progress=False)
    total = time.perf_counter() - t
    get_reusable_executor().shutdown(wait=True)  # reap the workers so their CPU time is counted
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = time.process_time() - cpu + workers.ru_utime + workers.ru_stime
    features = len(result.summary["features"])
    return {"bench": "timing_stage_daily", "sessions": len(panel), "features": features,
            "factors": len(result.summary["factors"]), "folds": result.summary["n_folds"], "n_jobs": n_jobs,
            "baselines": list(cfg.baselines), "total_s": round(total, 1), "cpu_s": round(cpu_s, 1),
            "cpu_s_over_2_cores": round(cpu_s / 2, 1), "load_avg_1m": round(os.getloadavg()[0], 1),
            "seconds": result.summary["seconds"]}


def threads(repeats: int) -> dict:
    cfg = TimingConfig(factors=("Mkt-RF", "SMB", "HML", "Mom"),
                       network={"lookback": 1, "hidden": 8, "epochs": 60, "patience": 1000, "seeds": [0], "grid": {}})
    panel = history_panel(cfg.data)
    spec = make_spec(cfg, panel, cfg.check_panel(panel))
    samples, _ = training_samples(panel.iloc[:400], spec)
    default_threads = torch.get_num_threads()
    result = {"bench": "timing_fit", "samples": len(samples.X), "epochs": 60, "default_threads": default_threads}
    for label, n in (("one_thread", 1), ("default_threads", default_threads)):
        set_threads(n)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            make_timer(cfg).fit(samples.X, samples.y)
            times.append(time.perf_counter() - t)
        result[f"{label}_s"] = round(min(times), 3)
    result["speedup_one_thread"] = round(result["default_threads_s"] / result["one_thread_s"], 2)
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=("daily", "threads"), default="daily")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--n-jobs", type=int, default=2)
    args = ap.parse_args()
    print(json.dumps(daily(args.n_jobs) if args.mode == "daily" else threads(args.repeats)))


if __name__ == "__main__":
    main()
