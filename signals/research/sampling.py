"""Evenly spaced sentence samples of long documents, for scoring a whole corpus on a tight CPU budget.

A call's tone is then the mean score of ``k`` sentences spread over the whole call (opening remarks
to the last answer), an unbiased but noisier estimate of the all-sentence mean.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import UsageError


def sample_lines(text: str, k: int) -> str:
    """``k`` lines of ``text`` at evenly spaced positions, first and last included (all when fewer)."""
    lines = text.split("\n")
    if len(lines) <= k:
        return text
    idx = np.unique(np.linspace(0, len(lines) - 1, k).round().astype(int))
    return "\n".join(lines[i] for i in idx)


def sample_file(src: str | Path, out: str | Path, k: int, text_col: str = "text") -> int:
    """Copy a Parquet file of documents with each ``text_col`` cut to ``k`` sampled lines; returns rows."""
    frame = pd.read_parquet(src)
    if text_col not in frame.columns:
        raise UsageError(f"{src} has no column {text_col!r} (columns: {list(frame.columns)})")
    frame[text_col] = frame[text_col].map(lambda t: sample_lines(t, k) if isinstance(t, str) else t)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out, index=False)
    return len(frame)
