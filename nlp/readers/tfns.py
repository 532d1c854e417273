"""Twitter Financial News Sentiment (zeroshot/twitter-financial-news-sentiment) CSV files.

``text,label`` with 0 = bearish -> negative, 1 = bullish -> positive, 2 = neutral. Texts may
contain quoted newlines, so the rows come from a real CSV parser (:mod:`nlp.readers.records`)
and ``line`` is the physical line where a record starts.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from core.errors import UnknownNameError
from core.paths import dataset_path
from core.rejects import Rejects
from nlp.readers.labeled_table import read_labeled_table

DATASET = "twitter_financial_news_sentiment"
FILES = {"train": "sent_train.csv", "valid": "sent_valid.csv"}
LABEL_MAP = {"0": "negative", "1": "positive", "2": "neutral"}


def file_path(part: str) -> Path:
    if part not in FILES:
        raise UnknownNameError(f"unknown TFNS file {part!r}; known: {list(FILES)}")
    return dataset_path(DATASET, FILES[part])


def read_tfns(path: str | Path, rejects: Rejects) -> pd.DataFrame:
    """``text``, ``label`` (our vocabulary), ``line``; unknown labels and bad rows are rejected."""
    return read_labeled_table(path, rejects, "text", "label", LABEL_MAP)
