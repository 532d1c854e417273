"""SESTM: sentiment learned from returns (Ke, Kelly & Xiu, "Predicting Returns with Text Data", 2019).

Three steps, on documents paired with the sign of their announcement return:

1. **Screening.** For each word, ``f`` = share of the documents containing it whose return was
   positive. Words with ``f`` at least ``alpha_plus`` above the base rate of positive returns (or
   ``alpha_minus`` below it) and in at least ``min_docs`` documents are the sentiment-charged set S.
2. **Two topics.** With ``p_i`` = the rank of document i's return scaled to (0, 1] and ``h_i`` its
   word counts over S normalized to sum 1, regress ``h`` on ``(p, 1 - p)``: the coefficients are
   the positive and negative word distributions ``O+`` and ``O-`` (negatives set to 0, each
   column rescaled to sum 1).
3. **Scoring.** A new document's sentiment is the ``p`` in [0, 1] maximizing its penalized
   multinomial likelihood ``(1/s) sum_j d_j log(p O+_j + (1 - p) O-_j) + penalty log(p (1 - p))``
   (``s`` = its count of S words); without S words it is 1/2.

Here the vocabulary is scikit-learn's ``CountVectorizer`` (lower-case words of two or more
letters, English stop words removed; KKX also stem). The model is a folder with a JSON file (no
pickle) and the model-artifact meta file recording the span of text it learned from
(``extra["text_period"]``), which ``altsignal run`` checks like any model's. This module takes
texts and returns as arrays: pairing documents with returns is :mod:`signals.research.sestm`'s job.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import Field
from scipy.stats import rankdata, spearmanr

from core.atomic import write_json
from core.config_files import Strict
from core.errors import UsageError
from nlp.contracts import LABELS
from nlp.protocol import ScorerBase
from nlp.registry import scorers

MODEL_FILE = "sestm.json"
META_FILE = "altsignal_model.json"  # nlp.models.META_FILE, not imported: that package pulls in torch


class SestmConfig(Strict):
    alpha_plus: float = Field(0.05, ge=0, lt=0.5)  # screening margin above the base rate of positive returns
    alpha_minus: float = Field(0.05, ge=0, lt=0.5)  # ... and below it
    min_docs: int = Field(20, ge=1)  # a word must appear in this many training documents
    penalty: float = Field(1.0, ge=0)  # lambda of the log(p (1 - p)) prior when scoring
    grid: int = Field(999, ge=9)  # p values searched when scoring


class SestmGrid(Strict):
    """Settings tried on a validation block (:func:`validate_sestm`); the screening margin is one
    ``alpha`` for both sides, as KKX tune it."""

    alpha: tuple[float, ...] = (0.02, 0.05, 0.1)
    min_docs: tuple[int, ...] = (10, 20, 50)
    penalty: tuple[float, ...] = (0.0, 1.0, 5.0)


def _vectorizer(vocabulary=None):
    from sklearn.feature_extraction.text import CountVectorizer

    return CountVectorizer(lowercase=True, token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]+\b", stop_words="english",
                           vocabulary=vocabulary)


@dataclass
class Sestm:
    words: list[str]  # the screened set S
    o_pos: list[float]  # positive topic: word distribution over S
    o_neg: list[float]
    config: dict
    base_rate: float  # share of training documents with a positive return
    n_docs: int
    text_period: list[str] | None = None  # first and last publication date of the training documents

    def sentiment(self, texts: Sequence[str]) -> np.ndarray:
        """Estimated p (0 = negative, 1 = positive) of each text."""
        cfg = SestmConfig(**self.config)
        counts = _vectorizer(self.words).transform(list(texts))
        grid = np.linspace(0, 1, cfg.grid + 2)[1:-1]
        o = np.column_stack([self.o_pos, self.o_neg])
        # Floor at a tiny mass: a word with zero weight in both topics would make the likelihood -inf.
        loglik = np.log(np.maximum(np.outer(o[:, 0], grid) + np.outer(o[:, 1], 1 - grid), 1e-12))  # |S| x grid
        s = np.asarray(counts.sum(axis=1)).ravel()
        fit = np.asarray(counts @ loglik) / np.maximum(s, 1)[:, None] + cfg.penalty * np.log(grid * (1 - grid))[None, :]
        p = grid[fit.argmax(axis=1)]
        return np.where(s > 0, p, 0.5)

    def with_penalty(self, penalty: float) -> "Sestm":
        """The same topics scored with another prior weight (the penalty plays no part in fitting)."""
        return replace(self, config={**self.config, "penalty": penalty})

    def save(self, out: str | Path) -> Path:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / MODEL_FILE, asdict(self))
        write_json(out / META_FILE, {"model_id": f"sestm-{len(self.words)}w", "base": "sestm", "kind": "sestm",
                                     "labels": list(LABELS), "extra": {"text_period": self.text_period,
                                                                       "sestm": self.config, "n_docs": self.n_docs}})
        return out

    @classmethod
    def load(cls, folder: str | Path) -> "Sestm":
        path = Path(folder) / MODEL_FILE
        if not path.exists():
            raise UsageError(f"{folder} is not a SESTM model (no {MODEL_FILE})", hint="train one with `altsignal models train-sestm`")
        return cls(**json.loads(path.read_text()))


def fit_sestm(texts: Sequence[str], returns, cfg: SestmConfig = SestmConfig(), text_period: list[str] | None = None) -> Sestm:
    """Screen words, estimate the two topics, from texts and their announcement returns."""
    y = np.asarray(returns, dtype=float)
    texts = np.asarray(list(texts), dtype=object)
    if len(texts) != len(y):
        raise ValueError(f"{len(texts)} texts but {len(y)} returns")
    ok = np.isfinite(y) & (y != 0)
    texts, y = texts[ok], y[ok]
    if len(y) < 2 * cfg.min_docs:
        raise UsageError(f"SESTM needs at least {2 * cfg.min_docs} documents with a non-zero return, got {len(y)}")
    vec = _vectorizer()
    counts = vec.fit_transform(texts).tocsc()
    present = counts > 0
    k = np.asarray(present.sum(axis=0)).ravel()
    k_pos = np.asarray(present[y > 0].sum(axis=0)).ravel()
    base = float((y > 0).mean())
    with np.errstate(invalid="ignore", divide="ignore"):
        f = k_pos / k
    keep = (k >= cfg.min_docs) & ((f >= base + cfg.alpha_plus) | (f <= base - cfg.alpha_minus))
    if keep.sum() < 2:
        raise UsageError(f"SESTM screening kept {int(keep.sum())} word(s); lower alpha_plus/alpha_minus or min_docs")
    words = vec.get_feature_names_out()[keep]
    d = counts[:, keep].tocsr()
    s = np.asarray(d.sum(axis=1)).ravel()
    rows = s > 0
    h = d[rows].multiply(1 / s[rows][:, None]).tocsr()
    p = rankdata(y[rows]) / rows.sum()
    w = np.column_stack([p, 1 - p])
    o = np.asarray(h.T @ w) @ np.linalg.inv(w.T @ w)  # |S| x 2
    o = np.clip(o, 0, None)
    o = o / o.sum(axis=0, keepdims=True)
    return Sestm(words=[str(x) for x in words], o_pos=o[:, 0].tolist(), o_neg=o[:, 1].tolist(),
                 config=cfg.model_dump(), base_rate=base, n_docs=int(len(y)), text_period=text_period)


def validate_sestm(train_texts: Sequence[str], train_returns, valid_texts: Sequence[str], valid_returns,
                   grid: SestmGrid = SestmGrid()) -> tuple[SestmConfig, pd.DataFrame]:
    """Fit each grid point on the training block and rank it by its validation rank IC: the
    Spearman correlation, over all validation documents (those without a screened word score 1/2),
    between the estimated p and the announcement return. Returns the best settings and the table
    (``rank_ic`` NaN and ``words`` 0 where screening kept too few words)."""
    valid_texts = list(valid_texts)
    y = np.asarray(valid_returns, dtype=float)
    rows = []
    for alpha in grid.alpha:
        for min_docs in grid.min_docs:
            cfg = SestmConfig(alpha_plus=alpha, alpha_minus=alpha, min_docs=min_docs)
            try:
                model = fit_sestm(train_texts, train_returns, cfg)
            except UsageError:  # this point screens out (almost) every word: it cannot be chosen
                rows += [{"alpha": alpha, "min_docs": min_docs, "penalty": pen, "words": 0, "rank_ic": np.nan}
                         for pen in grid.penalty]
                continue
            for pen in grid.penalty:
                p = model.with_penalty(pen).sentiment(valid_texts)
                ic = spearmanr(p, y).statistic if np.ptp(p) > 0 else np.nan
                rows.append({"alpha": alpha, "min_docs": min_docs, "penalty": pen, "words": len(model.words), "rank_ic": ic})
    table = pd.DataFrame(rows)
    if table["rank_ic"].isna().all():
        raise UsageError("no SESTM setting in the grid gives a validation score", hint="widen the grid or the training block")
    best = table.loc[table["rank_ic"].idxmax()]
    return SestmConfig(alpha_plus=best["alpha"], alpha_minus=best["alpha"], min_docs=int(best["min_docs"]),
                       penalty=best["penalty"]), table


@scorers.register("sestm")
class SestmScorer(ScorerBase):
    """A trained SESTM model through the Scorer API: ``p_pos`` = p, ``p_neg`` = 1 - p, ``p_neu`` = 0,
    so ``score`` = 2p - 1."""

    labels = list(LABELS)

    def __init__(self, model: Sestm) -> None:
        self.model = model
        self.name = f"sestm-{len(model.words)}w"

    @classmethod
    def load(cls, model=None, **settings) -> "SestmScorer":
        if model is None:
            raise UsageError("the sestm scorer needs a trained model folder", hint="altsignal models train-sestm --out ...")
        return cls(Sestm.load(model))

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        p = self.model.sentiment(texts)
        return np.column_stack([1 - p, np.zeros_like(p), p])

    @property
    def identity(self) -> dict:
        return {"scorer": self.name, "words": len(self.model.words), "text_period": self.model.text_period}
