"""Hugging Face hub datasets through ``datasets.load_dataset``.

This is the real path for users who are online (``zeroshot/twitter-financial-news-sentiment``;
Parquet copies of PhraseBank; not the old script-based ``financial_phrasebank``, which
``datasets>=4`` refuses to run). The same functions read local files through the packaged
builders (``load_hub_labeled("csv", data_files=...)``), which is how the tests exercise them
offline. ``datasets`` is imported inside the functions so the CLI starts fast.

Label mapping: a ``ClassLabel`` column maps through its own names; a plain integer column needs a
``label_map`` (known hub sets are in :data:`HUB_LABEL_MAPS`); rows whose mapped label is outside
{negative, neutral, positive} are rejected, never guessed.

Time stamps: the ``json`` builder's type inference parses ISO strings itself, converts any
offset to UTC and then DROPS the zone (even with ``features`` saying string), so such columns
arrive naive and the Document rules refuse them row by row; declare ``ColumnMapping.timezone =
"UTC"`` for them. It also turns a bare date into midnight, which would defeat the end-of-day rule
for date-only sources: read those with :func:`nlp.readers.documents.read_documents` instead.
"""
from __future__ import annotations

from collections.abc import Iterator

import pandas as pd

from core.rejects import Rejects
from nlp.contracts import require_columns, validate_labeled
from nlp.readers.documents import ColumnMapping, to_documents

HUB_LABEL_MAPS: dict[str, dict[str, str]] = {
    "zeroshot/twitter-financial-news-sentiment": {"0": "negative", "1": "positive", "2": "neutral"},
}


def _load(path: str, name: str | None, split: str, **kwargs):
    from datasets import load_dataset

    return load_dataset(path, name, split=split, **kwargs)


def load_hub_labeled(
    path: str,
    name: str | None = None,
    split: str = "train",
    *,
    text_col: str = "text",
    label_col: str = "label",
    label_map: dict[str, str] | None = None,
    rejects: Rejects | None = None,
    **load_kwargs,
) -> pd.DataFrame:
    """``text``, ``label``, ``line`` (1-based row of the split) of a hub or local dataset."""
    rejects = rejects if rejects is not None else Rejects()
    ds = _load(path, name, split, **load_kwargs)
    where = f"hf:{path}" + (f":{name}" if name else "") + f":{split}"
    require_columns(pd.DataFrame(columns=ds.column_names), [text_col, label_col], where)
    feature = ds.features[label_col]
    if label_map is None and hasattr(feature, "names"):
        label_map = {str(i): n for i, n in enumerate(feature.names)}
    label_map = label_map or HUB_LABEL_MAPS.get(path, {})
    df = ds.select_columns([text_col, label_col]).to_pandas()
    labels = df[label_col].astype("string").str.strip()
    frame = pd.DataFrame({
        "text": df[text_col].astype("string"),
        "label": labels.map(lambda v: label_map.get(v, v) if isinstance(v, str) else v),
        "_line": range(1, len(df) + 1),
    })
    return validate_labeled(frame, rejects, where).rename(columns={"_line": "line"})


def iter_hub_documents(
    path: str,
    mapping: ColumnMapping,
    source: str,
    rejects: Rejects,
    name: str | None = None,
    split: str = "train",
    chunk_rows: int = 10_000,
    **load_kwargs,
) -> Iterator[pd.DataFrame]:
    """Documents from a hub dataset, chunk by chunk, with the same rules as local files."""
    ds = _load(path, name, split, **load_kwargs)
    where = f"hf:{path}:{split}"
    seen: dict[str, str] = {}
    ingested_at = pd.Timestamp.now(tz="UTC")
    for start in range(0, len(ds), chunk_rows):
        raw = ds.select(range(start, min(start + chunk_rows, len(ds)))).to_pandas()
        raw["_line"] = range(start + 1, start + 1 + len(raw))
        raw["_source"] = where
        docs = to_documents(raw, mapping, source, rejects, seen, ingested_at)
        if len(docs):
            yield docs
