"""Synthetic Score rows in the ``SCORE_SCHEMA`` form, for the benchmark, tests and demos.

Built column-wise with numpy and returned as a pyarrow Table (10 million rows in a few
seconds). Mix: news and social documents are one unit each; a transcript document is an
earnings call of ``units_per_call`` sentences. Most documents name one ticker, some two, some
none (market-wide). ``ingested_at`` is a few minutes after ``published_at``, with a share of
late arrivals (hours to days).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from nlp import protocol
from nlp.contracts import LABELS, SCORE_SCHEMA, SOURCES
from nlp.protocol import Scored


def synthetic_scores(
    n_rows: int = 100_000,
    n_entities: int = 300,
    start: str = "2009-01-01",
    years: float = 10.0,
    seed: int = 0,
    units_per_call: int = 40,
    late_share: float = 0.02,
    model_id: str = "synthetic-v1",
) -> pa.Table:
    rng = np.random.default_rng(seed)
    # Rows split ~ 60% news, 35% social, 5% transcript units.
    n_tr_docs = max(1, int(n_rows * 0.05) // units_per_call)
    n_tr_rows = n_tr_docs * units_per_call
    n_single = n_rows - n_tr_rows
    n_docs = n_single + n_tr_docs
    source = np.where(rng.random(n_single) < 0.63, 0, 1)
    source = np.concatenate([source, np.full(n_tr_docs, 2)])  # codes into SOURCES

    t0 = pd.Timestamp(start, tz="UTC").value // 1000
    span_us = int(years * 365.25 * 86400 * 1e6)
    pub = t0 + rng.integers(0, span_us, n_docs)
    lag = rng.exponential(5 * 60e6, n_docs).astype("int64")
    late = rng.random(n_docs) < late_share
    lag[late] += rng.integers(3600 * 10**6, 5 * 86400 * 10**6, late.sum())
    ing = pub + lag

    # Entities: 10% market-wide (none), 5% two tickers, else one; transcripts always one.
    kind = rng.random(n_docs)
    kind[n_single:] = 0.5
    n_ent = np.where(kind < 0.10, 0, np.where(kind > 0.95, 2, 1))
    offsets = np.concatenate([[0], np.cumsum(n_ent)]).astype("int32")
    tickers = pa.array([f"T{i:04d}" for i in range(n_entities)])
    flat = rng.integers(0, n_entities, offsets[-1])

    units = np.ones(n_docs, dtype="int64")
    units[n_single:] = units_per_call
    doc_of_row = np.repeat(np.arange(n_docs), units)
    unit = (np.arange(len(doc_of_row)) - np.repeat(np.cumsum(units) - units, units)).astype("int32")

    # Probabilities: softmax of normals with a slowly drifting market mood.
    mood = np.sin(pub[doc_of_row] / (86400e6 * 90)) * 0.5
    logits = rng.normal(0, 1.2, (len(doc_of_row), 3)).astype("float32")
    logits[:, 2] += mood
    logits[:, 0] -= mood
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)

    row_offsets = np.concatenate([[0], np.cumsum(n_ent[doc_of_row])]).astype("int32")
    flat_rows = tickers.take(pa.array(flat[_row_entities(offsets, doc_of_row)]))
    src_rows = source[doc_of_row]
    is_tr = src_rows == 2
    section = np.where(unit < units_per_call // 2, 0, 1)
    cols = {
        "doc_id": pc.binary_join_element_wise("d", pc.cast(pa.array(doc_of_row), pa.string()), ""),
        "unit": pa.array(unit, pa.int32()),
        "model_id": pa.array([model_id]).take(pa.array(np.zeros(len(doc_of_row), dtype="int64"))),
        "p_neg": pa.array(p[:, 0], pa.float32()),
        "p_neu": pa.array(p[:, 1], pa.float32()),
        "p_pos": pa.array(p[:, 2], pa.float32()),
        "score": pa.array((p[:, 2] - p[:, 0]).astype("float32"), pa.float32()),
        "n_tokens": pa.array(rng.integers(5, 60, len(doc_of_row)).astype("int32"), pa.int32()),
        "source": pa.array(SOURCES).take(pa.array(src_rows)),
        "published_at": pa.array(pub[doc_of_row], pa.timestamp("us", tz="UTC")),
        "ingested_at": pa.array(ing[doc_of_row], pa.timestamp("us", tz="UTC")),
        "entities": pa.ListArray.from_arrays(pa.array(row_offsets), flat_rows),
        "section": pa.array(["prepared", "qa"]).take(pa.array(section, mask=~is_tr)),
        "speaker_role": pa.nulls(len(doc_of_row), pa.string()),
        "entity": pa.nulls(len(doc_of_row), pa.string()),
    }
    return pa.table(cols).cast(SCORE_SCHEMA)


def _row_entities(offsets: np.ndarray, doc_of_row: np.ndarray) -> np.ndarray:
    """Flat entity positions for every row (a doc's list repeated for each of its units)."""
    starts = offsets[doc_of_row]
    lens = offsets[doc_of_row + 1] - starts
    base = np.repeat(starts - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens)
    return np.arange(lens.sum()) + base


def score_frame(rows: list[dict], model_id: str = "test-model") -> pd.DataFrame:
    """A small Score frame from dicts holding at least ``doc_id``, ``published_at`` and ``p_pos``/``p_neg``,
    made by the one Score-row assembly (``nlp.protocol.score_frame``).

    Defaults: ``unit`` 0, ``source`` news, ``entities`` [], ``ingested_at`` = ``published_at``,
    ``p_neu`` = 1 - p_pos - p_neg, ``score`` = p_pos - p_neg. Timestamps are parsed as UTC when
    they carry no offset.
    """
    df = pd.DataFrame(rows)
    df["published_at"] = pd.to_datetime(df["published_at"], utc=True)
    if "ingested_at" not in df:
        df["ingested_at"] = df["published_at"]
    df["ingested_at"] = pd.to_datetime(df["ingested_at"], utc=True).fillna(df["published_at"])
    defaults = {"unit": 0, "source": "news", "n_tokens": 10, "section": None, "speaker_role": None}
    for col, value in defaults.items():
        if col not in df:
            df[col] = value
    if "entities" not in df:
        df["entities"] = [[] for _ in range(len(df))]
    neg, pos = df["p_neg"].to_numpy(float), df["p_pos"].to_numpy(float)
    scored = Scored(np.column_stack([neg, 1.0 - pos - neg, pos]), df["n_tokens"].to_numpy(), np.zeros(len(df), bool))
    frame = protocol.score_frame(df, df, scored, LABELS, model_id)
    return pa.Table.from_pandas(frame, preserve_index=False).cast(SCORE_SCHEMA).to_pandas()
