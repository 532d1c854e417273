"""Time each direct allocator's full walk-forward on the default monthly panel. Prints ONE JSON line.

``timing/configs/direct.toml`` as shipped (the default run's monthly panel from packaged data,
1963-07..2017-03, yearly refits): for each direct allocator it names (``end_to_end``, ``rl_ppo``,
``rl_sac``) the per-fold fits (``walkforward.n_jobs``
processes, one torch thread each) and the book's rollout over every out-of-sample month, with its
net Sharpe beside it. Reports wall seconds per allocator, the CPU seconds of the whole bench (this
process and its fold workers), the load averages at start and end (the machine may be shared) and
the target (under 10 minutes each on 2 cores).
Usage: .venv/bin/python bench/direct_allocators.py [--config timing/configs/direct.toml] [--set key=value ...]
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from core.lifecycle import cpu_seconds

DIRECT = Path(__file__).resolve().parents[1] / "timing" / "configs" / "direct.toml"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default=str(DIRECT))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    load = os.getloadavg()
    from core.threads import set_threads
    from timing.allocators import make_allocator, run_direct
    from timing.backtest import make_spec
    from timing.config import PERIODS_PER_YEAR, load_config
    from timing.data import load_panel
    from timing.portfolio import run_book
    from timing.walkforward import make_folds

    cfg = load_config(args.config, args.overrides)
    set_threads(cfg.walkforward.threads)
    panel = load_panel(cfg.data)
    factors = cfg.check_panel(panel)
    spec = make_spec(cfg, panel, factors)
    h, ppy, pc = cfg.horizon_periods, PERIODS_PER_YEAR[cfg.data.frequency], cfg.portfolio
    folds = make_folds(panel.index, cfg.walkforward, spec.lookback, h)
    out = {}
    for name in pc.direct_allocators:
        started = time.perf_counter()
        wf = run_direct(panel, make_allocator(name, cfg.network, cfg.direct, pc, ppy / h), folds, spec, pc.cov_window,
                        False, cfg.walkforward.n_jobs, cfg.walkforward.threads)
        run_book(wf.policy(), list(factors), wf.dates, panel[list(factors)], pc, h, ppy, False)
        wall = time.perf_counter() - started
        out[name] = {"wall_s": round(wall, 1), "under_target": wall < 600}
    print(json.dumps({
        "bench": "direct_allocators", "config": str(args.config), "folds": len(folds), "months": len(wf.dates),
        "n_jobs": cfg.walkforward.n_jobs, "threads": cfg.walkforward.threads, "allocators": out,
        "rl_steps": cfg.direct.rl_steps, "rl_seeds": len(cfg.direct.rl_seeds), "e2e_seeds": len(cfg.direct.seeds),
        "cpu_s": round(cpu_seconds(), 1), "load_avg_at_start": [round(x, 2) for x in load],
        "load_avg_at_end": [round(x, 2) for x in os.getloadavg()], "cores": os.cpu_count(), "target_s": 600,
    }))


if __name__ == "__main__":
    main()
