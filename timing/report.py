"""Markdown report with PNG plots from the files ``timing.backtest.save_backtest`` wrote.

Plots: cumulative net returns of every strategy (network highlighted), drawdowns of the
network against equal weight and the best baseline, the network's weights through time,
OOS R^2 per factor and model, feature-group importance (permutation and integrated gradients).
Tables: forecast metrics, net and gross portfolio metrics, ablation, run timings, and a check
of the issue's targets stated plainly (met or not).

Stability (issue 24): a model whose OOS R^2 on any factor is below :data:`UNSTABLE_R2` is
*unstable*: its R^2 cells are rendered as a bold red ``unstable`` label (the number beside it in
parentheses), never as a bare number, and the targets list names it. -0.5 is far below anything a
forecast near the historical mean can reach (a forecast that is pure noise of the size of the
historical mean's error scores about -1, one at a bound scores -3 and lower), so the flag marks a
broken forecast, not a weak one. How often each model's guard pulled a forecast back
(``summary.json``, ``guard``) has its own table.

Decision: the verdicts are data (:func:`report_verdicts` -> :class:`Verdicts`) and
:func:`render_verdicts` writes them as Markdown, here and in the run summary
(``altsignal.orchestrator``), so no caller reads the rendered report back.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.atomic import atomic_write_text
from core.plots import subplots
from timing.allocator_report import direct_section
from timing.report_tables import markdown_table, read_outputs, report_files, save_figure

NETWORK = "network"
UNSTABLE_R2 = -0.5  # OOS R^2 below this marks a model unstable (module docstring)


def _main_part(pm: pd.DataFrame) -> str:
    """The part the portfolio targets are judged on: the test part when there is one."""
    return "test" if "test" in set(pm.part) else "all"


def _net_sharpe(pm: pd.DataFrame, part: str) -> pd.Series:
    return pm[(pm.basis == "net") & (pm.part == part)].set_index("strategy")["sharpe"]


@dataclass(frozen=True)
class TargetCheck:
    """One of the issue's targets: what was compared (with its numbers) and the verdict."""

    claim: str
    verdict: str | None = None  # in words ("met", "beats", ...); None for a plain statement of numbers
    met: bool | None = None
    detail: str = ""  # the numbers behind the verdict (difference, p-value)


@dataclass(frozen=True)
class Verdicts:
    """What a backtest concluded, as data: the report and the run summary both render it."""

    part: str  # the part the portfolio targets are judged on ("test" when there is one, else "all")
    targets: list[TargetCheck]
    headline: pd.DataFrame  # net metrics of every strategy on ``part``, best Sharpe first


HEADLINE_COLUMNS = ["strategy", "sharpe", "sharpe_lo", "sharpe_hi", "ann_return", "ann_vol", "max_drawdown",
                    "turnover_annual", "cost_drag", "n"]


def unstable_models(fm: pd.DataFrame) -> dict[str, float]:
    """Models with an OOS R^2 below :data:`UNSTABLE_R2` on some factor and part -> their lowest."""
    low = fm.groupby("model", sort=False)["oos_r2"].min()
    return {m: float(v) for m, v in low.items() if v < UNSTABLE_R2}


def r2_cell(value: float, digits: int = 4) -> str:
    """An OOS R^2 as a table cell: the number, or a bold red ``unstable`` label with it."""
    if pd.isna(value):
        return ""
    if value < UNSTABLE_R2:
        return f'<b style="color:red">unstable</b> ({value:.2f})'
    return f"{value:.{digits}f}"


def _flag_r2(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return df.assign(**{c: df[c].map(r2_cell) for c in columns})


def _stability_check(fm: pd.DataFrame) -> list[TargetCheck]:
    unstable = unstable_models(fm)
    if not unstable:
        return []
    named = ", ".join(f"{m} (lowest {v:.2f})" for m, v in unstable.items())
    return [TargetCheck(f"Models flagged unstable, OOS R^2 below {UNSTABLE_R2} on some factor: {named}",
                        "unstable", False)]


def target_checks(fm: pd.DataFrame, pm: pd.DataFrame, tests: pd.DataFrame) -> list[TargetCheck]:
    """The issue's targets, each with its verdict and the numbers behind it."""
    net = fm[(fm.model == NETWORK) & (fm.part == "all")]
    wins = net[(net.oos_r2 > 0) & (net.cw_p < 0.10)]
    checks = [TargetCheck(
        f"Network beats the historical mean (OOS R^2 > 0 and Clark-West p < 0.10) over the whole out-of-sample "
        f"period on {len(wins)} factor(s) {list(wins.factor)}; target of at least two",
        "met" if len(wins) >= 2 else "not met", len(wins) >= 2)]
    part = _main_part(pm)
    sharpe = _net_sharpe(pm, part)
    nets = sharpe.get(NETWORK, np.nan)
    pvals = tests[(tests.part == part) & (tests.basis == "net") & (tests.strategy == NETWORK)].set_index("versus")

    def versus(claim: str, other: float, p: float | None) -> TargetCheck:
        beats = bool(nets > other)
        detail = f"difference {nets - other:+.3f}, bootstrap p = {p:.2f}" if p is not None else ""
        return TargetCheck(claim, "beats" if beats else "does not beat", beats, detail)

    for label, name in (("static equal weight", "equal_weight"), ("single-task networks", "single_task_net"),
                        ("volatility-managed equal weight", "vol_managed")):
        if name in sharpe:
            p = pvals["p_value"].get({"equal_weight": "equal weight", "single_task_net": "single-task twins"}.get(name))
            checks.append(versus(f"{part} part, network net Sharpe {nets:.3f} vs {label} {sharpe[name]:.3f}",
                                 sharpe[name], p))
    others = sharpe.drop(labels=[s for s in sharpe.index if s.startswith(NETWORK)])
    if len(others):
        best = others.idxmax()
        p = next((v for k, v in pvals["p_value"].items() if k.startswith("best baseline")), np.nan)
        checks.append(versus(f"{part} part, network net Sharpe {nets:.3f} vs the best baseline by net Sharpe, "
                             f"{best} {others[best]:.3f}", others[best], p))
    rows = pm[(pm.part == part) & (pm.strategy == NETWORK)].set_index("basis")
    if len(rows) == 2:
        checks.append(TargetCheck(
            f"{part} part, network gross Sharpe {rows.loc['gross', 'sharpe']:.3f}, net {rows.loc['net', 'sharpe']:.3f}; "
            f"annual turnover {rows.loc['net', 'turnover_annual']:.2f}; cost drag {rows.loc['net', 'cost_drag']:.4f} a year"))
    return checks + _stability_check(fm)


def verdicts(fm: pd.DataFrame, pm: pd.DataFrame, tests: pd.DataFrame) -> Verdicts:
    part = _main_part(pm)
    headline = pm[(pm.part == part) & (pm.basis == "net")][HEADLINE_COLUMNS].sort_values("sharpe", ascending=False)
    return Verdicts(part, target_checks(fm, pm, tests), headline.reset_index(drop=True))


def report_verdicts(run_dir: Path) -> Verdicts:
    """The verdicts of the backtest saved in ``run_dir`` (``timing.backtest.save_backtest``)."""
    run_dir = Path(run_dir)
    return verdicts(*(pd.read_parquet(run_dir / f"{name}.parquet")
                      for name in ("forecast_metrics", "portfolio_metrics", "sharpe_tests")))


def _bullet(check: TargetCheck) -> str:
    verdict = f": **{check.verdict}**" if check.verdict else ""
    detail = f" ({check.detail})" if check.detail else ""
    return f"- {check.claim}{verdict}{detail}."


def render_verdicts(v: Verdicts, headline: bool = False) -> list[str]:
    """Markdown lines: the targets, then (``headline``) the net metrics of the judged part."""
    lines = [_bullet(c) for c in v.targets]
    if headline:
        lines += ["", f"Net of costs, {v.part} part:", "", markdown_table(v.headline)]
    return lines


def cumulative_title(config: dict) -> str:
    """The cumulative-returns plot's title, from the portfolio settings the backtest ran with."""
    portfolio = config["portfolio"]
    return (f"Cumulative net returns ({portfolio['vol_target']:.0%} vol target, "
            f"{portfolio['cost_bps']:g} bps per unit turnover)")


def _pivot(fm: pd.DataFrame, part: str, value: str) -> pd.DataFrame:
    return fm[fm.part == part].pivot(index="model", columns="factor", values=value).reset_index()


def _protocol(summary: dict) -> list[str]:
    parts = summary.get("parts", {})
    lines = [f"- {name}: decisions {a} .. {b} ({n} holding periods)" for name, (a, b, n) in parts.items()]
    if "test" in parts:
        lines.append("- Designs were chosen on the validation part only; the test part is run once per design "
                     "and reported as such (docs/timing.md, \"Factor-timing protocol\").")
    return lines


def _guard_lines(guard: dict) -> list[str]:
    """How often each model's forecasts were pulled back toward the training mean."""
    if not guard:
        return []
    table = pd.DataFrame([{"model": m, **g} for m, g in guard.items()])
    return ["Forecasts pulled back by the guard (beyond k x the in-sample fitted dispersion; "
            "`stability.guard_k`):", "", markdown_table(table, 4), ""]


def write_report(run_dir: Path, out: Path | None = None) -> Path:
    if json.loads((Path(run_dir) / "summary.json").read_text()).get("study") == "zoo":
        from timing.zoo_report import write_zoo_report

        return write_zoo_report(run_dir, out)
    run_dir, out, img = report_files(run_dir, out)
    rets, weights, fm, pm, importance, ig, ablation, tests = read_outputs(
        run_dir, "returns", "weights", "forecast_metrics", "portfolio_metrics", "importance", "integrated_gradients",
        "ablation", "sharpe_tests")
    summary = json.loads((run_dir / "summary.json").read_text())

    net = rets.pivot(index="date", columns="strategy", values="net")
    wealth = (1 + net).cumprod()
    fig, ax = subplots(figsize=(10, 5))
    for name in wealth.columns:
        lw, alpha = (2.5, 1.0) if name == NETWORK else (1.0, 0.7)
        ax.plot(wealth.index, wealth[name], lw=lw, alpha=alpha, label=name)
    ax.set_yscale("log")
    ax.set_title(cumulative_title(summary["config"]))
    ax.legend(fontsize=7, ncol=3)
    save_figure(fig, img / "cumulative.png")

    sharpe = _net_sharpe(pm, "all")
    best = sharpe.drop(labels=[s for s in sharpe.index if s.startswith(NETWORK)]).idxmax()
    fig, ax = subplots(figsize=(10, 3.5))
    for name in dict.fromkeys([NETWORK, "equal_weight", best]):
        if name in wealth:
            ax.plot(wealth.index, wealth[name] / wealth[name].cummax() - 1, label=name)
    ax.set_title("Drawdowns (net)")
    ax.legend(fontsize=8)
    save_figure(fig, img / "drawdowns.png")

    w = weights[weights.strategy == NETWORK].pivot(index="date", columns="factor", values="weight")
    fig, ax = subplots(figsize=(10, 3.5))
    for f in w.columns:
        ax.plot(w.index, w[f], label=f, lw=1)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_title("Network factor weights through time")
    ax.legend(fontsize=8)
    save_figure(fig, img / "weights.png")

    r2 = fm[fm.part == "all"].pivot(index="factor", columns="model", values="oos_r2")
    fig, ax = subplots(figsize=(10, 4))
    r2.plot.bar(ax=ax)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_title("Out-of-sample R^2 vs the historical mean, per factor")
    ax.legend(fontsize=7, ncol=3)
    save_figure(fig, img / "oos_r2.png")

    has_expl = len(importance) > 0
    if has_expl:
        fig, axes = subplots(1, 2, figsize=(11, 3.8))
        importance.set_index("group")["importance"].plot.bar(ax=axes[0], yerr=importance.set_index("group")["std"])
        axes[0].set_title("Permutation importance (fall in mean OOS R^2)")
        ig.set_index("group").T.plot.bar(stacked=True, ax=axes[1])
        axes[1].set_title("Integrated gradients: share of |attribution|")
        save_figure(fig, img / "importance.png")

    lines = [
        "# Factor-timing backtest", "",
        f"Panel {summary['panel_start']} .. {summary['panel_end']} ({summary['n_rows']} rows), factors "
        f"{summary['factors']}, {len(summary['features'])} features; walk-forward {summary['n_folds']} folds, "
        f"out-of-sample {summary['first_test']} .. {summary['last_test']}. Run time {summary['total_seconds']:.0f} s.",
        "", "## Protocol", "", *_protocol(summary), "",
        "## Targets", "", *render_verdicts(verdicts(fm, pm, tests)), "",
        "## Cumulative net returns", "", "![cumulative](img/cumulative.png)", "",
        "![drawdowns](img/drawdowns.png)", "", "![weights](img/weights.png)", "",
    ]
    for part in [p for p in ("validation", "test", "all") if p in set(pm.part)]:
        for basis, title in (("net", "net of costs"), ("gross", "gross")):
            sel = pm[(pm.part == part) & (pm.basis == basis)][HEADLINE_COLUMNS].sort_values("sharpe", ascending=False)
            lines += [f"## Portfolio metrics, {part} part ({title})", "", markdown_table(sel), ""]
    lines += direct_section(pm, tests, summary, img)
    lines += ["## Sharpe-difference tests (circular block bootstrap, two-sided)", "", markdown_table(tests), "",
              "## Forecasts", "", "![oos r2](img/oos_r2.png)", ""]
    for part in [p for p in ("validation", "test", "all") if p in set(fm.part)]:
        r2 = _pivot(fm, part, "oos_r2")
        lines += [f"OOS R^2 vs the historical mean, {part} part:", "", markdown_table(_flag_r2(r2, list(r2.columns[1:]))), "",
                  f"Clark-West p, {part} part:", "", markdown_table(_pivot(fm, part, "cw_p"), 3), ""]
    every = fm[fm.part == "all"][["model", "factor", "oos_r2", "cw_t", "cw_p", "hit_rate", "rank_ic", "n"]]
    lines += ["All forecast metrics, whole out-of-sample period:", "", markdown_table(_flag_r2(every, ["oos_r2"]), 4), ""]
    lines += _guard_lines(summary.get("guard", {}))
    if has_expl:
        lines += ["## Feature-group importance", "", "![importance](img/importance.png)", "",
                  markdown_table(importance, 4), "", markdown_table(ig, 3), ""]
    lines += ["## Ablation", ""]
    lines += [markdown_table(ablation, 4) if len(ablation) else
              "Not run: ablations refit the network once per feature group; `--explain full` runs them.", ""]
    lines += ["## Run timings (seconds)", "", markdown_table(pd.DataFrame([summary["seconds"]]), 1), ""]
    atomic_write_text(out, "\n".join(lines))
    return out
