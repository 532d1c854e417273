"""The direct allocators' section of the timing report (``timing.report``; issue 26).

Per part (validation, test) one table: each direct allocator beside the mean-variance book
(``network``), equal weight (1/N) and the best other strategy of that part, net and gross Sharpe,
annual turnover, cost drag, and the turnover relative to the mean-variance book's (the issue's
target: below 2); then the Sharpe-difference p-values of each direct allocator against those
books, net and gross; then the RL training curves (mean episode reward over folds and seeds).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.plots import subplots
from timing.report_tables import markdown_table, save_figure

MEAN_VARIANCE = "network"  # the forecasting network's mean-variance book


def direct_table(pm: pd.DataFrame, part: str, direct: list[str]) -> pd.DataFrame:
    """Direct allocators and the books they are judged against, for one part."""
    rows = pm[pm.part == part]
    wide = rows.pivot_table(index="strategy", columns="basis", values=["sharpe", "turnover_annual", "cost_drag"])
    others = wide.drop(index=[*direct, MEAN_VARIANCE, "equal_weight"], errors="ignore")
    best = [others[("sharpe", "net")].idxmax()] if len(others) else []
    order = [s for s in dict.fromkeys([*direct, MEAN_VARIANCE, "equal_weight", *best]) if s in wide.index]
    mv_turnover = wide.loc[MEAN_VARIANCE, ("turnover_annual", "net")]
    return pd.DataFrame({
        "strategy": [s + (" (best other)" if s in best else "") for s in order],
        "net_sharpe": wide.loc[order, ("sharpe", "net")].to_numpy(),
        "gross_sharpe": wide.loc[order, ("sharpe", "gross")].to_numpy(),
        "turnover_annual": wide.loc[order, ("turnover_annual", "net")].to_numpy(),
        "turnover_vs_mean_variance": wide.loc[order, ("turnover_annual", "net")].to_numpy() / mv_turnover,
        "cost_drag": wide.loc[order, ("cost_drag", "net")].to_numpy(),
    })


def _curves_figure(curves: dict[str, list[list[float]]], path: Path) -> bool:
    rl = {name: folds for name, folds in curves.items() if folds}
    if not rl:
        return False
    fig, ax = subplots(figsize=(8, 3.5))
    for name, folds in rl.items():
        n = min(len(c) for c in folds)
        ax.plot(np.arange(1, n + 1), np.mean([c[:n] for c in folds], axis=0), marker="o", label=name)
    ax.set_xlabel("training episode (one pass over the training window)")
    ax.set_ylabel("episode reward, mean over folds")
    ax.set_title("RL training curves")
    ax.legend(fontsize=8)
    save_figure(fig, path)
    return True


def direct_section(pm: pd.DataFrame, tests: pd.DataFrame, summary: dict, img: Path) -> list[str]:
    direct = [a for a in summary["config"]["portfolio"].get("allocator", []) if a != "mean_variance"]
    if not direct:
        return []
    lines = ["## Direct allocators", "",
             "Same folds, vol target, cap, band, turnover penalty and costs as every book; "
             "`turnover_vs_mean_variance` is the annual turnover over the mean-variance book's (`network`).", ""]
    for part in [p for p in ("validation", "test", "all") if p in set(pm.part)]:
        lines += [f"### {part} part", "", markdown_table(direct_table(pm, part, direct)), ""]
    sel = tests[tests.strategy.isin(direct)]
    if len(sel):
        wide = sel.pivot_table(index=["part", "strategy", "versus"], columns="basis", values=["sharpe_diff", "p_value"])
        cols = {("sharpe_diff", "net"): "diff net", ("p_value", "net"): "p net",
                ("sharpe_diff", "gross"): "diff gross", ("p_value", "gross"): "p gross"}
        table = wide[list(cols)].set_axis(list(cols.values()), axis=1).reset_index()
        lines += ["Sharpe differences and p-values (circular block bootstrap, two-sided):", "", markdown_table(table), ""]
    if _curves_figure(summary.get("training_curves", {}), img / "training_curves.png"):
        lines += ["![training curves](img/training_curves.png)", ""]
    return lines
