"""Baselines for the evaluation harness, with scikit-learn's fit / predict_proba / predict.

All are fitted on training rows only (the harness passes the train split). Probability columns
follow ``nlp.contracts.LABELS``. The two dictionary methods are rules; their ``fit`` learns only
how much to trust the rule (its training accuracy becomes the top-label confidence, the rest is
split evenly), so expected calibration error is meaningful for them too and ``predict`` is the
rule itself.

The finance-lexicon VADER variant (PyPI ``finvader``) is not included: it pins nltk 3.6.2 and
calls ``nltk.download`` at import time, which fails offline.
"""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from core.errors import UsageError
from nlp.contracts import LABELS
from nlp.lexicon import net_tone_counts, vader_analyzer
from nlp.models import PACKAGED_MINILM
from nlp.registry import baselines

LABEL_INDEX = {l: i for i, l in enumerate(LABELS)}
NEG, NEU, POS = (LABEL_INDEX[l] for l in ("negative", "neutral", "positive"))


def _as_index(labels) -> np.ndarray:
    unknown = sorted({str(l) for l in labels} - set(LABELS))
    if unknown:
        raise UsageError(f"unknown label(s) {unknown}; expected labels in {list(LABELS)}")
    return np.array([LABEL_INDEX[l] for l in labels], dtype=int)


class _SentimentBaseline(ClassifierMixin, BaseEstimator):
    """Common part: string labels in, ``LABELS``-ordered probabilities out (a fitted baseline is an
    ``nlp.protocol.TextScorer``)."""

    name = "baseline"
    labels = list(LABELS)

    @property
    def classes_(self) -> np.ndarray:
        return np.array(LABELS)

    def predict(self, texts) -> np.ndarray:
        return self.classes_[self.predict_proba(texts).argmax(axis=1)]


@baselines.register("majority")
class MajorityClass(_SentimentBaseline):
    """Always the most frequent training class; probabilities = training class shares."""

    name = "majority"

    def fit(self, texts, labels):
        y = _as_index(labels)
        self.prior_ = np.bincount(y, minlength=len(LABELS)) / len(y)
        return self

    def predict_proba(self, texts) -> np.ndarray:
        return np.tile(self.prior_, (len(texts), 1))


class _RuleBaseline(_SentimentBaseline):
    """A rule mapping text -> class index; ``fit`` estimates the rule's confidence."""

    def _rule(self, texts) -> np.ndarray:
        raise NotImplementedError

    def fit(self, texts, labels):
        y = _as_index(labels)
        acc = float((self._rule(list(texts)) == y).mean()) if len(y) else 1 / len(LABELS)
        # A rule is never worse than "no information" in its own probabilities.
        self.confidence_ = max(acc, 1 / len(LABELS))
        return self

    def predict_proba(self, texts) -> np.ndarray:
        k = len(LABELS)
        pred = self._rule(list(texts))
        proba = np.full((len(pred), k), (1 - self.confidence_) / (k - 1))
        proba[np.arange(len(pred)), pred] = self.confidence_
        return proba


@baselines.register("loughran_mcdonald")
class LoughranMcDonald(_RuleBaseline):
    """Loughran-McDonald financial dictionary (``nlp.lexicon``): more positive than negative
    words -> positive, more negative -> negative, tie -> neutral."""

    name = "loughran_mcdonald"

    def _rule(self, texts) -> np.ndarray:
        net = np.array([pos - neg for _, pos, neg in map(net_tone_counts, texts)], dtype=int)
        return np.where(net > 0, POS, np.where(net < 0, NEG, NEU))


@baselines.register("vader")
class Vader(_RuleBaseline):
    """VADER compound score with its authors' thresholds (>= 0.05 positive, <= -0.05 negative)."""

    name = "vader"
    threshold = 0.05

    def _rule(self, texts) -> np.ndarray:
        c = np.array([vader_analyzer().polarity_scores(t)["compound"] for t in texts])
        return np.where(c >= self.threshold, POS, np.where(c <= -self.threshold, NEG, NEU))


@baselines.register("minilm_embeddings_logreg")
class FrozenEmbeddingLogReg(_SentimentBaseline):
    """Frozen sentence embeddings (packaged all-MiniLM-L6-v2 via sentence-transformers, offline)
    + multinomial logistic regression."""

    name = "minilm_embeddings_logreg"

    def __init__(self, encoder: str = PACKAGED_MINILM, C: float = 1.0, batch_size: int = 64, seed: int = 0):
        self.encoder = encoder
        self.C = C
        self.batch_size = batch_size
        self.seed = seed

    def _encode(self, texts) -> np.ndarray:
        from sentence_transformers import SentenceTransformer

        from nlp.models.artifact import resolve_base

        if getattr(self, "_st", None) is None:
            self._st = SentenceTransformer(resolve_base(self.encoder), device="cpu")
        return self._st.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                               convert_to_numpy=True, show_progress_bar=False)

    def fit(self, texts, labels):
        y = _as_index(labels)
        self.clf_ = LogisticRegression(C=self.C, max_iter=2000, random_state=self.seed)
        self.clf_.fit(self._encode(texts), y)
        return self

    def predict_proba(self, texts) -> np.ndarray:
        p = self.clf_.predict_proba(self._encode(texts))
        out = np.zeros((len(p), len(LABELS)))
        out[:, self.clf_.classes_] = p  # a class absent from training keeps probability 0
        return out


def make_baseline(name: str) -> _SentimentBaseline:
    return baselines.get(name)()
