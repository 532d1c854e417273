"""The scorer protocol, and the one place Score rows (DESIGN.md) are assembled.

A scorer is anything with a ``name`` (the ``model_id`` its rows carry), ``labels`` (the order of
its probability columns) and ``predict_proba(texts)``: the transformer models
(:class:`nlp.scorer.Scorer`), the lexicons (:mod:`nlp.lexicon`), the evaluation baselines and the
distillation teachers. :class:`ScorerBase` adds what the batch job asks of a scorer, with
defaults that fit a model-free scorer, so a new scorer is one class registered in
:data:`nlp.registry.scorers`; the job, its Ray actors and the research lexicon turn any scorer's
output into rows through :func:`score_frame` only.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

# Score-contract column of each label (nlp.contracts.SCORE_SCHEMA).
PROB_COLUMNS = {"negative": "p_neg", "neutral": "p_neu", "positive": "p_pos"}


@runtime_checkable
class TextScorer(Protocol):
    name: str
    labels: Sequence[str]

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass
class Scored:
    """Per input text: probabilities (columns in the scorer's label order), token count, truncation."""

    probs: np.ndarray  # (n, n_labels)
    n_tokens: np.ndarray  # (n,) int32, as the scorer counts tokens
    truncated: np.ndarray  # (n,) bool
    deduplicated: int = 0  # texts answered from a dedup cache instead of the scorer


class ScorerBase:
    """A :class:`TextScorer` with the hooks the batch job (``nlp.scoring.job``) uses."""

    name: str
    labels: Sequence[str]

    @classmethod
    def load(cls, model=None, **settings) -> "ScorerBase":
        """Build the scorer a job names. A model-free scorer has no model file or engine settings to use."""
        return cls()

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def normalize(self, text: str) -> str:
        """The form a text is scored in: texts of one form get one score (dedup and cache key)."""
        return text

    def scored(self, texts: Sequence[str]) -> Scored:
        """Probabilities with token counts; whitespace tokens unless the scorer knows better."""
        texts = list(texts)
        return Scored(self.predict_proba(texts), np.array([len(t.split()) for t in texts], dtype=np.int32),
                      np.zeros(len(texts), dtype=bool))

    @property
    def identity(self) -> dict:
        """What the rows depend on besides the texts and the job's settings (job fingerprint)."""
        return {"scorer": self.name}

    @property
    def cache_key(self) -> str | None:
        """Key of the cross-job score cache for this scorer's rows; None: not cached."""
        return None

    def remote(self, threads: int) -> dict:
        """Arguments of :meth:`load` that rebuild this scorer in a worker process given ``threads``."""
        return {}

    def score(self, texts: Sequence[str]) -> pd.DataFrame:
        """One row per text: ``text``, ``label`` (most likely), ``p_neg``/``p_neu``/``p_pos``,
        ``score`` = p_pos - p_neg, ``n_tokens`` and ``truncated`` (longer than the scorer's limit)."""
        texts = list(texts)
        scored = self.scored(texts)
        probs = _prob_columns(scored.probs, self.labels)
        return pd.DataFrame({
            "text": texts,
            "label": np.asarray(self.labels, dtype=object)[scored.probs.argmax(axis=1)],
            **probs,
            "score": probs["p_pos"] - probs["p_neg"],
            "n_tokens": scored.n_tokens,
            "truncated": scored.truncated,
        })


def _prob_columns(probs: np.ndarray, labels: Sequence[str]) -> dict[str, np.ndarray]:
    return {PROB_COLUMNS[name]: probs[:, list(labels).index(name)] for name in PROB_COLUMNS}


def score_frame(units: pd.DataFrame, meta: pd.DataFrame, scored: Scored, labels: Sequence[str],
                model_id: str) -> pd.DataFrame:
    """Score rows in SCORE_SCHEMA's column order. ``units``: ``doc_id``, ``unit``, ``section``,
    ``speaker_role`` and, for entity-level rows, ``entity``; ``meta``: the unit's document (``source``, ``published_at``, ``ingested_at``,
    ``entities``), row for row with ``units``."""
    p = _prob_columns(scored.probs, labels)
    return pd.DataFrame({
        "doc_id": units["doc_id"].to_numpy(),
        "unit": units["unit"].to_numpy(dtype=np.int32),
        "model_id": model_id,
        **p,
        "score": p["p_pos"] - p["p_neg"],
        "n_tokens": scored.n_tokens.astype(np.int32),
        "source": meta["source"].to_numpy(),
        "published_at": meta["published_at"].to_numpy(),
        "ingested_at": meta["ingested_at"].to_numpy(),
        "entities": meta["entities"].to_numpy(),
        "section": units["section"].to_numpy(),
        "speaker_role": units["speaker_role"].to_numpy(),
        "entity": units["entity"].to_numpy() if "entity" in units else None,
    })
