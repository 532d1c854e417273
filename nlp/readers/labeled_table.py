"""Any labeled table (CSV / JSONL / Parquet) -> ``text``, ``label``, ``line`` in our vocabulary."""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from core.rejects import Rejects
from nlp.contracts import require_columns, validate_labeled
from nlp.readers.records import iter_records

log = logging.getLogger(__name__)


def read_labeled_table(
    path: str | Path, rejects: Rejects, text_col: str, label_col: str, label_map: dict[str, str] | None
) -> pd.DataFrame:
    """A labeled table (CSV/JSONL/Parquet) -> ``text``, ``label``, ``line``; labels mapped first."""
    parts = list(iter_records(path, rejects, columns=[text_col, label_col]))
    if not parts:
        return pd.DataFrame({"text": [], "label": [], "line": []})
    raw = pd.concat(parts, ignore_index=True)
    require_columns(raw, [text_col, label_col], str(path))
    labels = raw[label_col].astype("string").str.strip()
    if label_map:
        labels = labels.map(lambda v: label_map.get(v, v) if isinstance(v, str) else v)
    df = pd.DataFrame({"text": raw[text_col].astype("string"), "label": labels, "_line": raw["_line"]})
    good = validate_labeled(df, rejects, str(path))
    log.info("%s: %d rows, %d rejects", Path(path).name, len(good), len(rejects))
    return good.rename(columns={"_line": "line"})
