"""Choose the zoo's book settings on the validation part, from a validation-only run's forecasts.

The book is a design choice like any other, so it is chosen where the others are: on a run that
never loaded a test-part return (``--set data.end=1999-12-31``). The walk-forward is not
repeated: the saved ``forecasts.parquet`` are turned into books under each candidate
``[portfolio]`` setting and every strategy's net Sharpe is printed (one JSON line per setting).
Usage: python -m timing.zoo_grid RUN_DIR CONFIG [--set portfolio.x=v ...] (one setting per call;
a shell loop runs a grid).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from timing.config import load_config
from timing.metrics import portfolio_metrics
from timing.targets import read_targets
from timing.zoo_books import book, cost_vector, covariances


def grid_point(run_dir: Path, cfg) -> dict:
    fc = pd.read_parquet(Path(run_dir) / "forecasts.parquet")
    returns, groups = read_targets(cfg.targets)
    returns.index = returns.index.to_period("M").to_timestamp("M")
    end = pd.Timestamp(cfg.data.end)
    returns = returns.loc[:end]  # nothing after the validation run's own end is read
    out = {}
    dates = None
    covs = None
    costs = cost_vector(list(returns.columns), groups, cfg.portfolio.cost_bps, cfg.zoo.cost_bps_by_group, cfg.zoo.cost_bps_file)
    for model, rows in fc.groupby("model"):
        signal = rows.pivot(index="date", columns="factor", values="value")[returns.columns]
        if dates is None:
            dates = signal.index
            covs = covariances(returns, dates, cfg.portfolio.cov_window)
        if model == "factor_momentum":
            continue
        res = book(signal.loc[dates], returns, covs, cfg.portfolio, True, costs)
        out[model] = round(portfolio_metrics(res.net, res.turnover, 12.0)["sharpe"], 3)
        out[model + ".turnover"] = round(float(res.turnover.mean() * 12), 1)
        out[model + ".vol"] = round(float(res.net.std() * np.sqrt(12)), 3)
    ones = pd.DataFrame(1.0, index=dates, columns=returns.columns)
    res = book(ones, returns, covs, cfg.portfolio, False, costs)
    out["equal_weight"] = round(portfolio_metrics(res.net, res.turnover, 12.0)["sharpe"], 3)
    out["equal_weight.vol"] = round(float(res.net.std() * np.sqrt(12)), 3)
    forecasters = [v for k, v in out.items() if "." not in k and k != "equal_weight"]
    out["median_forecast_book"] = round(float(np.median(forecasters)), 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("config")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    cfg = load_config(args.config, args.overrides)
    print(json.dumps({"set": args.overrides, **grid_point(Path(args.run_dir), cfg)}))


if __name__ == "__main__":
    main()
