"""Research reports: a Markdown file with PNG plots, the tables as Parquet, one JSON summary line."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from core.plots import subplots


class Report:
    """Collects sections, tables and figures; :meth:`write` puts them under one folder."""

    def __init__(self, title: str):
        self.title = title
        self.parts: list[str] = []
        self.tables: dict[str, pd.DataFrame] = {}
        self.figures: dict[str, Figure] = {}

    def text(self, markdown: str) -> None:
        self.parts.append(markdown.strip() + "\n")

    def table(self, name: str, frame: pd.DataFrame, show: bool = True) -> None:
        """Keep ``frame`` as ``tables/{name}.parquet`` and, with ``show``, print it in the report."""
        self.tables[name] = frame
        if show:
            self.parts.append(frame.to_markdown(index=False, floatfmt=".4f") + "\n")

    def counts(self, title: str, counts: dict) -> None:
        """A data-issues table: every count, zeros included, so nothing is dropped unseen."""
        flat = {f"{k}.{kk}" if isinstance(v, dict) else k: vv
                for k, v in counts.items() for kk, vv in (v.items() if isinstance(v, dict) else [(None, v)])}
        self.text(f"### {title}")
        self.parts.append(pd.DataFrame({"item": list(flat), "count": list(flat.values())}).to_markdown(index=False) + "\n")

    def figure(self, name: str, fig: Figure, caption: str = "") -> None:
        self.figures[name] = fig
        self.parts.append(f"![{caption or name}](figures/{name}.png)\n")

    def write(self, out: str | Path) -> Path:
        out = Path(out)
        (out / "tables").mkdir(parents=True, exist_ok=True)
        (out / "figures").mkdir(parents=True, exist_ok=True)
        for name, frame in self.tables.items():
            frame.to_parquet(out / "tables" / f"{name}.parquet")
        for name, fig in self.figures.items():
            fig.savefig(out / "figures" / f"{name}.png", dpi=110, bbox_inches="tight")
        path = out / "report.md"
        path.write_text(f"# {self.title}\n\n" + "\n".join(self.parts))
        return path


def summary_line(summary: dict) -> str:
    """One JSON line; NaN becomes null and numbers are rounded for reading."""
    def clean(v):
        if isinstance(v, float | np.floating):
            return None if math.isnan(v) else round(float(v), 4)
        if isinstance(v, np.integer):
            return int(v)
        return v
    return json.dumps({k: clean(v) for k, v in summary.items()})


def line_plot(frame: pd.DataFrame, title: str, ylabel: str) -> Figure:
    fig, ax = subplots(figsize=(8, 3.5))
    frame.plot(ax=ax, lw=1)
    ax.axhline(0, color="grey", lw=0.7)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    return fig


def bar_plot(series: pd.Series | pd.DataFrame, title: str, ylabel: str) -> Figure:
    fig, ax = subplots(figsize=(6, 3.5))
    series.plot.bar(ax=ax)
    ax.axhline(0, color="grey", lw=0.7)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    return fig


def band_plot(curves: pd.DataFrame, title: str) -> Figure:
    """Mean CAR per group with 95% bands; the pre-entry part (day < 0) is shaded as not tradable."""
    fig, ax = subplots(figsize=(8, 4))
    top = curves["group"].max()
    for group, c in curves.groupby("group"):
        tag = " (lowest tone)" if group == 1 else " (highest tone)" if group == top else ""
        ax.plot(c["day"], c["mean_car"], label=f"group {group}{tag}")
        ax.fill_between(c["day"], c["lo95"], c["hi95"], alpha=0.15)
    lo = curves["day"].min()
    if lo < 0:
        ax.axvspan(lo, -0.5, color="grey", alpha=0.15, label="before entry (not tradable)")
    ax.axhline(0, color="grey", lw=0.7)
    ax.set_xlabel("event day (0 = first return after entry)")
    ax.set_ylabel("cumulative abnormal return")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig
