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


def report_files(run_dir: Path, out: Path | None) -> tuple[Path, Path, Path]:
    """(run folder, report file, its image folder, created): ``<run_dir>/report.md`` by default."""
    run_dir = Path(run_dir)
    out = Path(out) if out else run_dir / "report.md"
    img = out.parent / "img"
    img.mkdir(parents=True, exist_ok=True)
    return run_dir, out, img


def read_outputs(run_dir: Path, *names: str) -> list[pd.DataFrame]:
    """The backtest's ``<name>.parquet`` tables, in the order named."""
    return [pd.read_parquet(Path(run_dir) / f"{name}.parquet") for name in names]
