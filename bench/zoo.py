"""Time the whole factor-zoo backtest. Prints ONE JSON line.

``timing/configs/zoo.toml`` as shipped: 153 JKP factors, FRED-MD + Goyal-Welch + market
predictors, yearly refits from 1980, the network and every baseline (twins, ridge, pooled ridge,
factor momentum, PC timing, 1/N, vol-managed 1/N, both combinations), the books (153 factors and
13 themes), metrics, bootstrap intervals and Sharpe tests; no explanations. Reports wall seconds
(total and per stage), the CPU seconds of the run and its worker processes, and the load averages
when it started and ended (the machine is shared: CPU seconds / 2 is what two idle cores would need).
Needs the shared datasets (``$ALTSIGNAL_DATASETS`` or ../shared/datasets).
Usage: .venv/bin/python bench/zoo.py [--config timing/configs/zoo.toml] [--out runs/bench/zoo] [--set key=value ...]
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from core.lifecycle import cpu_seconds

ZOO = Path(__file__).resolve().parents[1] / "timing" / "configs" / "zoo.toml"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default=str(ZOO))
    parser.add_argument("--out", default="runs/bench/zoo")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    load = os.getloadavg()
    started = time.perf_counter()
    from timing.backtest import run_backtest, save_backtest
    from timing.config import load_config
    from timing.data import load_panel

    cfg = load_config(args.config, args.overrides).model_copy(update={"output_dir": Path(args.out)})
    panel = load_panel(cfg.data)
    result = run_backtest(cfg, panel, progress=False)
    save_backtest(result, cfg.output_dir)
    wall = time.perf_counter() - started
    s = result.summary
    print(json.dumps({
        "bench": "zoo_backtest", "config": str(args.config), "tasks": s["n_tasks"], "folds": s["n_folds"],
        "strategies": len(result.portfolios), "wall_s": round(wall, 1), "stages_s": s["seconds"],
        "cpu_s": round(cpu_seconds(), 1),
        "load_avg_at_start": [round(x, 2) for x in load], "load_avg_at_end": [round(x, 2) for x in os.getloadavg()],
        "cores": os.cpu_count(),
        "target_s": 1200, "under_target": wall < 1200,
    }))


if __name__ == "__main__":
    main()
