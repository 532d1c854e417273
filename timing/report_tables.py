"""Markdown tables and PNG files for the reports (``timing.report``, ``timing.zoo_report``)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from core.atomic import atomic_path


def save_figure(fig, path: Path) -> None:
    """A figure as a PNG file, written atomically."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")


def markdown_table(df: pd.DataFrame, digits: int = 3) -> str:
    """A frame as a Markdown table, floats with ``digits`` decimals and NaN as an empty cell."""
    df = df.copy()
    for c in df.columns:
        if pd.api.types.is_float_dtype(df[c]):
            df[c] = df[c].map(lambda v: "" if pd.isna(v) else f"{v:.{digits}f}")
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    sep = "|" + "---|" * len(df.columns)
    rows = ["| " + " | ".join(map(str, r)) + " |" for r in df.itertuples(index=False)]
    return "\n".join([head, sep, *rows])
