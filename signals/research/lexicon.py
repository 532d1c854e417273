"""Whole-document lexicon tone as Score rows (one unit per document), from :mod:`nlp.lexicon`.

``lm`` (Loughran-McDonald net tone, for filings and calls) and ``vader`` (VADER proportions, for
social media) are the scorers ``lm_lexicon`` and ``vader_lexicon`` of :data:`nlp.registry.scorers`.
"""
from __future__ import annotations

import pandas as pd

from nlp.protocol import score_frame
from nlp.registry import scorers
from nlp.scoring.units import whole_units

METHODS = {"lm": "lm_lexicon", "vader": "vader_lexicon"}


def lexicon_scores(docs: pd.DataFrame, method: str = "lm") -> pd.DataFrame:
    """Score rows (one unit per document) from Document rows (``doc_id``, ``text``, ``source``,
    ``published_at``, ``entities``); a document counts as ingested when it was published."""
    return whole_document_scores(docs, scorers.get(METHODS[method])())


def whole_document_scores(docs: pd.DataFrame, scorer) -> pd.DataFrame:
    """Score rows of any scorer, one unit per document, ingested when published."""
    texts = docs["text"].tolist()
    units = whole_units(docs["doc_id"].tolist(), texts)
    meta = docs.assign(ingested_at=docs["published_at"])
    return score_frame(units, meta, scorer.scored(texts), scorer.labels, scorer.name)
