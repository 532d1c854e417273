"""What a backtest hands back, and the helpers both studies share (``timing.backtest`` for the
Fama-French factors, ``timing.zoo_backtest`` for a ``[targets]`` run): the result container, the
validation/test split of the out-of-sample dates and the per-strategy Sharpe summary.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from timing.portfolio import PortfolioResult
from timing.walkforward import Fold


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
    sharpe_tests: pd.DataFrame = field(default_factory=pd.DataFrame)
    summary: dict = field(default_factory=dict)


def split_parts(dates: pd.DatetimeIndex, index: pd.DatetimeIndex, horizon: int,
                validation_end: str | None) -> dict[str, pd.DatetimeIndex]:
    """``all``, and with ``validation_end``: ``validation`` (holding period ends by it) and ``test``."""
    parts = {"all": dates}
    if validation_end is not None:
        rows = index.get_indexer(dates) + horizon
        ends = index[np.minimum(rows, len(index) - 1)]
        in_validation = ends <= pd.Timestamp(validation_end)
        parts |= {"validation": dates[in_validation], "test": dates[~in_validation]}
    return {k: v for k, v in parts.items() if len(v) > 2}


def strategy_summary(pm: pd.DataFrame) -> dict[str, dict[str, dict[str, float]]]:
    """Per part and strategy: net and gross Sharpe with the annual turnover beside them (a
    turnover of 300 a year turns any gross Sharpe negative at 20 bps, so it is read with it)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for (part, strategy), rows in pm.groupby(["part", "strategy"], sort=False):
        by = rows.set_index("basis")
        out.setdefault(part, {})[strategy] = {
            "net_sharpe": round(float(by.loc["net", "sharpe"]), 3), "gross_sharpe": round(float(by.loc["gross", "sharpe"]), 3),
            "turnover_annual": round(float(by.loc["net", "turnover_annual"]), 2)}
    return out
