"""Time one walk-forward fold of the timing network: 1 torch thread vs torch's default threads.

The network is tiny (a few thousand weights), so per-step thread synchronisation costs more
than the arithmetic it spreads; timing.walkforward therefore runs folds in processes with one
thread each. Prints ONE JSON line: seconds per fit for both settings and their ratio.
Usage: .venv/bin/python bench/timing_fit.py [--repeats 2]
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from timing.backtest import make_spec, make_timer
from timing.config import TimingConfig
from timing.data import packaged_panel
from timing.dataset import training_samples


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    cfg = TimingConfig(factors=("Mkt-RF", "SMB", "HML", "Mom"),
                       network={"lookback": 1, "hidden": 8, "epochs": 60, "patience": 1000, "seeds": [0], "grid": {}})
    panel = packaged_panel(cfg.data)
    spec = make_spec(cfg, panel, cfg.check_panel(panel))
    samples, _ = training_samples(panel.iloc[:400], spec)
    default_threads = torch.get_num_threads()
    result = {"bench": "timing_fit", "samples": len(samples.X), "epochs": 60, "default_threads": default_threads}
    for label, threads in (("one_thread", 1), ("default_threads", default_threads)):
        torch.set_num_threads(threads)
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            make_timer(cfg).fit(samples.X, samples.y)
            times.append(time.perf_counter() - t)
        result[f"{label}_s"] = round(min(times), 3)
    result["speedup_one_thread"] = round(result["default_threads_s"] / result["one_thread_s"], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
