"""Markdown report (with two pictures) of a many-task run, from the files ``save_backtest`` wrote.

``timing.report.write_report`` hands over here when ``summary.json`` says ``"study": "zoo"``.
For each part (validation, where designs were chosen; test, run once): the forecast headline
per model (mean and median OOS R^2 against the historical mean, the share of tasks with OOS
R^2 > 0 at Clark-West p < 0.10), the multi-task network against its single-task twins side by
side, OOS R^2 per theme, net and gross Sharpe ratios with circular-block-bootstrap intervals,
and the Sharpe-difference tests; then the issue's targets on the test part, met or missed.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from core.atomic import atomic_write_text
from core.plots import subplots
from timing.report_tables import markdown_table, read_outputs, report_files, save_figure

KEY = ("network", "single_task_net", "combination", "combination_dmspe", "equal_weight", "factor_momentum")


def _parts(frame: pd.DataFrame) -> list[str]:
    return [p for p in ("validation", "test", "all") if p in set(frame.part)]


def forecast_headline(fm: pd.DataFrame, part: str) -> pd.DataFrame:
    g = fm[fm.part == part].groupby("model")
    out = pd.DataFrame({"mean OOS R^2": g.oos_r2.mean(), "median OOS R^2": g.oos_r2.median(),
                        "share R^2>0 & CW p<0.10": g.apply(lambda d: ((d.oos_r2 > 0) & (d.cw_p < 0.10)).mean()),
                        "tasks": g.size()})
    return out.sort_values("mean OOS R^2", ascending=False).rename_axis("model").reset_index()


def sharpe_table(pm: pd.DataFrame, part: str) -> pd.DataFrame:
    sel = pm[pm.part == part]
    net = sel[sel.basis == "net"].set_index("strategy")
    gross = sel[sel.basis == "gross"].set_index("strategy")
    out = pd.DataFrame({
        "net Sharpe": net.sharpe, "net 95% (bootstrap)": [f"[{a:.2f}, {b:.2f}]" for a, b in zip(net.boot_lo, net.boot_hi)],
        "gross Sharpe": gross.sharpe.reindex(net.index),
        "gross 95% (bootstrap)": [f"[{a:.2f}, {b:.2f}]" for a, b in zip(gross.boot_lo.reindex(net.index), gross.boot_hi.reindex(net.index))],
        "ann. vol": net.ann_vol, "turnover/yr": net.turnover_annual, "cost drag": net.cost_drag, "max DD": net.max_drawdown})
    return out.sort_values("net Sharpe", ascending=False).rename_axis("strategy").reset_index()


def twins_table(fm: pd.DataFrame, pm: pd.DataFrame, tests: pd.DataFrame, part: str) -> pd.DataFrame:
    rows = []
    for model in ("network", "single_task_net"):
        d = fm[(fm.part == part) & (fm.model == model)]
        s = pm[(pm.part == part) & (pm.strategy == model)].set_index("basis").sharpe
        rows.append({"model": model, "mean OOS R^2": d.oos_r2.mean(), "share CW": ((d.oos_r2 > 0) & (d.cw_p < 0.10)).mean(),
                     "net Sharpe": f"{s.get('net', float('nan')):.3f}", "gross Sharpe": f"{s.get('gross', float('nan')):.3f}"})
    t = tests[(tests.part == part) & (tests.strategy == "network") & (tests.versus == "single-task twins")].set_index("basis")
    rows.append({"model": "difference (p, block bootstrap)",
                 "mean OOS R^2": rows[0]["mean OOS R^2"] - rows[1]["mean OOS R^2"],
                 "share CW": rows[0]["share CW"] - rows[1]["share CW"],
                 "net Sharpe": f"{t.sharpe_diff.get('net', float('nan')):.3f} (p={t.p_value.get('net', float('nan')):.3f})",
                 "gross Sharpe": f"{t.sharpe_diff.get('gross', float('nan')):.3f} (p={t.p_value.get('gross', float('nan')):.3f})"})
    return pd.DataFrame(rows)


def theme_table(fm: pd.DataFrame, part: str) -> pd.DataFrame:
    return fm[fm.part == part].pivot_table(index="theme", columns="model", values="oos_r2", aggfunc="mean").reset_index()


def target_lines(fm: pd.DataFrame, pm: pd.DataFrame, tests: pd.DataFrame) -> list[str]:
    """The issue's targets on the test part, net of costs (reported, never asserted)."""
    if "test" not in set(pm.part):
        return ["No test part in this run (validation only)."]
    net = pm[(pm.part == "test") & (pm.basis == "net")].set_index("strategy").sharpe
    lines = []
    for name in ("network", "combination", "combination_dmspe"):
        if name not in net:
            continue
        for other in ("single_task_net", "equal_weight", "factor_momentum"):
            t = tests[(tests.part == "test") & (tests.basis == "net") & (tests.strategy == name) & (tests.other == other)]
            p = float(t.p_value.iloc[0]) if len(t) else float("nan")
            verdict = "met" if net[name] > net.get(other, float("nan")) else "missed"
            lines.append(f"- {name} net Sharpe {net[name]:.3f} vs {other} {net.get(other, float('nan')):.3f}: "
                         f"{verdict} (difference {net[name] - net.get(other, float('nan')):+.3f}, p={p:.3f})")
    head = forecast_headline(fm, "test").set_index("model")
    for name in ("network", "combination"):
        if name in head.index:
            r2 = head.loc[name, "mean OOS R^2"]
            lines.append(f"- {name} mean OOS R^2 across the zoo {r2:+.5f}: {'met' if r2 > 0 else 'missed'}")
            if "single_task_net" in head.index:
                a, b = head.loc[name, "share R^2>0 & CW p<0.10"], head.loc["single_task_net", "share R^2>0 & CW p<0.10"]
                lines.append(f"- {name} share passing Clark-West {a:.3f} vs twins {b:.3f}: {'met' if a > b else 'missed'}")
    return lines


def write_zoo_report(run_dir: Path, out: Path | None = None) -> Path:
    run_dir, out, img = report_files(run_dir, out)
    rets, fm, pm, tests = read_outputs(run_dir, "returns", "forecast_metrics", "portfolio_metrics", "sharpe_tests")
    summary = json.loads((run_dir / "summary.json").read_text())

    net = rets.pivot(index="date", columns="strategy", values="net")
    fig, axes = subplots(1, 2, figsize=(13, 4.5))
    for name in [k for k in KEY if k in net]:
        axes[0].plot(net.index, (1 + net[name]).cumprod(), lw=2.2 if name == "network" else 1.0, label=name)
    axes[0].set_yscale("log")
    axes[0].set_title("Cumulative net return (10% vol target, costs)")
    if summary["parts"].get("test"):
        axes[0].axvline(pd.Timestamp(summary["parts"]["test"][0]), color="k", lw=0.6, ls="--")
    axes[0].legend(fontsize=7)
    last = _parts(fm)[1] if len(_parts(fm)) > 2 else _parts(fm)[0]
    themes = theme_table(fm, last).set_index("theme")
    themes[[m for m in ("network", "single_task_net", "combination") if m in themes]].plot.barh(ax=axes[1])
    axes[1].axvline(0, color="k", lw=0.5)
    axes[1].set_ylabel("")
    axes[1].set_title(f"Mean OOS R^2 per theme, {last} part")
    save_figure(fig, img / "zoo.png")

    lines = ["# Factor-zoo timing backtest", "",
             f"{summary['n_tasks']} tasks in {len(set(summary['themes'].values()))} themes; panel {summary['panel_start']} .. "
             f"{summary['panel_end']}; {summary['n_folds']} walk-forward folds, out-of-sample {summary['first_test']} .. "
             f"{summary['last_test']}; run time {summary['total_seconds']:.0f} s.", "",
             "Parts: " + "; ".join(f"{k} {v[0]} .. {v[1]} ({v[2]} decisions)" for k, v in summary["parts"].items()) +
             ". Designs were chosen on the validation part; the test part is run once per design.", "",
             "## Targets (test part, net of costs)", "", *target_lines(fm, pm, tests), "",
             "![zoo](img/zoo.png)", ""]
    for part in [p for p in _parts(pm) if p != "all"] or ["all"]:
        lines += [f"## {part.capitalize()} part", "",
                  "Forecasts (OOS R^2 against the historical mean; Clark-West one-sided):", "",
                  markdown_table(forecast_headline(fm, part), 4), "",
                  "Multi-task network against its single-task twins:", "", markdown_table(twins_table(fm, pm, tests, part), 4), "",
                  "Net and gross Sharpe ratios (95% circular block bootstrap intervals):", "",
                  markdown_table(sharpe_table(pm, part), 3), "",
                  "Sharpe-difference tests (net and gross; circular block bootstrap, two-sided):", "",
                  markdown_table(tests[tests.part == part].drop(columns=["part"]), 3), "",
                  "Mean OOS R^2 per theme:", "", markdown_table(theme_table(fm, part), 4), ""]
    lines += ["## Run timings (seconds)", "", markdown_table(pd.DataFrame([summary["seconds"]]), 1), ""]
    atomic_write_text(out, "\n".join(lines))
    return out
