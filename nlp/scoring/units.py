"""Documents -> scoring units, and unit scores -> Score rows and document aggregates.

A unit is what the model sees: a headline or post whole (unit 0), or one sentence of a
transcript (unit = sentence index within the call, in reading order). Transcripts are segmented
into turns (:mod:`nlp.transcripts`) and split into sentences with spaCy (:mod:`nlp.sentences`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from nlp.contracts import SCORE_SCHEMA
from nlp.protocol import Scored, score_frame
from nlp.transcripts import PREPARED, QA, segment_transcript

AGGREGATE_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("model_id", pa.string()),
        ("source", pa.string()),
        ("published_at", pa.timestamp("us", tz="UTC")),
        ("ingested_at", pa.timestamp("us", tz="UTC")),
        ("entities", pa.list_(pa.string())),
        ("n_units", pa.int32()),
        ("mean_score", pa.float32()),
        ("share_pos", pa.float32()),  # share of units whose most likely class is positive
        ("share_neg", pa.float32()),
        ("tone_management", pa.float32()),  # mean score of executive sentences (null if none)
        ("tone_analyst", pa.float32()),
        ("tone_prepared", pa.float32()),  # mean score in prepared remarks
        ("tone_qa", pa.float32()),
        ("n_management", pa.int32()),
        ("n_analyst", pa.int32()),
        ("n_prepared", pa.int32()),
        ("n_qa", pa.int32()),
    ]
)


def transcript_units(doc_ids: list[str], texts: list[str]) -> pd.DataFrame:
    """One row per sentence: doc_id, unit, text, section, speaker_role."""
    from nlp.sentences import split_sentences

    turn_rows = [(d, t) for d, text in zip(doc_ids, texts) for t in segment_transcript(text)]
    sentences = split_sentences(t.text for _, t in turn_rows)
    rows = []
    counter: dict[str, int] = {}
    for (doc_id, turn), sents in zip(turn_rows, sentences):
        for s in sents:
            unit = counter.get(doc_id, 0)
            counter[doc_id] = unit + 1
            rows.append((doc_id, unit, s, turn.section, turn.speaker_role))
    return pd.DataFrame(rows, columns=["doc_id", "unit", "text", "section", "speaker_role"])


def whole_units(doc_ids: list[str], texts: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"doc_id": doc_ids, "unit": 0, "text": texts, "section": None, "speaker_role": None})


def to_units(doc_ids: list[str], texts: list[str], source: str) -> pd.DataFrame:
    return transcript_units(doc_ids, texts) if source == "transcript" else whole_units(doc_ids, texts)


def entity_units(units: pd.DataFrame, docs: pd.DataFrame, resolver) -> pd.DataFrame:
    """One row per (unit, ticker of its document that the unit names), in unit order: the unit's
    columns, ``entity``, and ``text`` with that ticker's first mention marked (nlp.entity_input).
    ``resolver``: an :class:`nlp.entities.EntityResolver`."""
    from nlp.entity_input import mark_entity

    wanted = docs.set_index("doc_id").loc[units["doc_id"], "entities"].tolist()
    found = [(i, ticker, span) for i, spans in enumerate(resolver.mentions(units["text"].tolist(), wanted))
             for ticker, span in spans.items()]
    out = units.iloc[[i for i, _, _ in found]].reset_index(drop=True)
    out["entity"] = pd.Series([t for _, t, _ in found], dtype=object)
    out["text"] = [mark_entity(text, s, e) for text, (_, _, (s, e)) in zip(out["text"], found)]
    return out


def score_rows(units: pd.DataFrame, docs: pd.DataFrame, scored: Scored, labels: list[str], model_id: str) -> pa.Table:
    """Score rows (SCORE_SCHEMA) for scored units; ``docs`` indexed by doc_id gives the metadata."""
    meta = docs.set_index("doc_id").loc[units["doc_id"], ["source", "published_at", "ingested_at", "entities"]]
    return pa.Table.from_pandas(score_frame(units, meta, scored, labels, model_id), schema=SCORE_SCHEMA,
                                preserve_index=False)


def _mean_where(score: pd.Series, mask: pd.Series, key: pd.Series) -> tuple[pd.Series, pd.Series]:
    sel = score[mask]
    g = sel.groupby(key[mask], sort=False)
    return g.mean(), g.size()


def document_aggregates(scores: pa.Table) -> pa.Table:
    """Per document: mean score, positive/negative shares, management vs analyst, prepared vs Q&A."""
    df = scores.to_pandas()
    if df.empty:
        return AGGREGATE_SCHEMA.empty_table()
    key = df["doc_id"]
    top = df[["p_neg", "p_neu", "p_pos"]].to_numpy().argmax(axis=1)
    df["_pos"], df["_neg"] = top == 2, top == 0
    g = df.groupby("doc_id", sort=False)
    out = g.agg(model_id=("model_id", "first"), source=("source", "first"), published_at=("published_at", "first"),
                ingested_at=("ingested_at", "first"), entities=("entities", "first"), n_units=("unit", "size"),
                mean_score=("score", "mean"), share_pos=("_pos", "mean"), share_neg=("_neg", "mean"))
    for name, col, value in (("management", "speaker_role", "executive"), ("analyst", "speaker_role", "analyst"),
                             ("prepared", "section", PREPARED), ("qa", "section", QA)):
        mean, n = _mean_where(df["score"], df[col] == value, key)
        out[f"tone_{name}"] = mean.reindex(out.index)
        out[f"n_{name}"] = n.reindex(out.index).fillna(0).astype(np.int32)
    out = out.reset_index()
    return pa.Table.from_pandas(out[AGGREGATE_SCHEMA.names], schema=AGGREGATE_SCHEMA, preserve_index=False)
