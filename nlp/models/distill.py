"""Knowledge distillation: one student learns an ensemble of fine-tuned teachers.

An average of several fine-tuned models scores higher than any one of them, but costs their
sum at inference. Distillation keeps most of the gain at the cost of one model: the student is
trained on the teachers' averaged *calibrated* probabilities (soft targets) for the labeled
training rows and for unlabeled in-domain text (the dated news headlines, StockNet tweets and
earnings-call sentences in the shared datasets), plus the usual cross-entropy on the true
labels of the labeled rows (see ``FinetuneConfig.distill_alpha``).

Unlabeled text that also occurs in a labeled set (any split, compared by the split key of
``nlp.splits``) is dropped first, so no evaluation sentence reaches training, not even without
its label.
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from core.atomic import atomic_path
from core.errors import UsageError
from core.rejects import Rejects
from nlp.models.artifact import load_classifier, read_meta
from nlp.models.training import TokenizedSet, predict_logits
from nlp.splits import normalize_key

log = logging.getLogger(__name__)

# Unlabeled sources by name -> document preset (nlp.readers.documents). Transcripts are split
# into sentences, the unit the scorer sees for them.
UNLABELED_PRESETS = {"news": "news", "social": "social", "transcripts": "transcripts"}


def labeled_keys() -> set[str]:
    """Split keys of every labeled text (all PhraseBank and TFNS rows, whatever their split)."""
    from nlp.splits import load_split

    return set(load_split("fpb", "all", level="50agree")["key"]) | set(load_split("tfns", "all")["key"])


def parse_unlabeled_spec(spec: str) -> tuple[str, int]:
    """``"social:20000"`` -> ("social", 20000)."""
    name, _, n = spec.partition(":")
    if name not in UNLABELED_PRESETS or not n.isdigit() or int(n) < 1:
        raise UsageError(f"bad unlabeled spec {spec!r}: expected <{'|'.join(UNLABELED_PRESETS)}>:<rows>, e.g. social:20000")
    return name, int(n)


def _texts_of(name: str, rng: np.random.Generator, want: int) -> pd.DataFrame:
    """Candidate texts of a preset with the time each was published (columns ``text``, ``published_at``)."""
    from nlp.readers.documents import load_preset

    docs = load_preset(UNLABELED_PRESETS[name], Rejects()).dropna(subset=["text"])
    docs = docs.assign(text=docs["text"].astype(str))[["text", "published_at"]]
    if name == "transcripts":
        from nlp.sentences import split_sentences

        # Enough calls for the sample: ~100 sentences per call, so a few calls per 100 rows.
        calls = docs.sample(min(len(docs), max(1, want // 50)), random_state=int(rng.integers(2**31)))
        docs = pd.DataFrame([(s, when) for sents, when in zip(split_sentences(calls["text"]), calls["published_at"])
                             for s in sents if len(s.split()) >= 4], columns=["text", "published_at"])
    return docs


def load_unlabeled(specs: list[str], seed: int, exclude: set[str] | None = None) -> pd.DataFrame:
    """Seeded samples of unlabeled in-domain text: columns ``text``, ``set`` (e.g. ``social:20000``)
    and ``published_at`` (the student's text period, see :func:`text_period`).

    Texts are deduplicated by split key, across sources too, and keys in ``exclude`` are dropped.
    """
    rng = np.random.default_rng(seed)
    seen = set(exclude or ())
    frames = []
    for spec in specs:
        name, n = parse_unlabeled_spec(spec)
        rows = []
        for text, when in _texts_of(name, rng, n).itertuples(index=False):
            key = normalize_key(text)
            if key and key not in seen:
                seen.add(key)
                rows.append((text, when))
        pick = sorted(rng.permutation(len(rows))[:n])
        frames.append(pd.DataFrame({"text": [rows[i][0] for i in pick], "set": spec,
                                    "published_at": pd.to_datetime([rows[i][1] for i in pick], utc=True)}))
        log.info("unlabeled %s: %d of %d usable texts", spec, min(n, len(rows)), len(rows))
    empty = pd.DataFrame({"text": [], "set": [], "published_at": pd.to_datetime([], utc=True)})
    return pd.concat(frames, ignore_index=True) if frames else empty


def text_period(path: str | Path) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """First and last publication time of the dated text a model learned from, teachers included.

    Recorded at distillation as ``extra["distillation"]["text_period"]`` (SESTM: ``extra["text_period"]``): the span of the sampled
    unlabeled text joined with each teacher's own period (a student inherits what its teachers
    saw). None when the model learned only from the undated labeled sets (PhraseBank, TFNS).
    A model scoring text for a backtest must not have learned from that backtest's period
    (``altsignal.orchestrator`` refuses it).
    """
    extra = read_meta(path).extra
    # a return-supervised model (nlp.sestm) records the dated text it learned from at the top level
    period = extra.get("text_period") or extra.get("distillation", {}).get("text_period")
    return None if not period else (pd.Timestamp(period[0]), pd.Timestamp(period[1]))


def joined_period(unlabeled: pd.DataFrame | None, teachers: list[str | Path]) -> list[str] | None:
    """The span covering the unlabeled texts' dates and every teacher's :func:`text_period`."""
    ends = [p for t in teachers if (p := text_period(t)) is not None]
    if unlabeled is not None and len(unlabeled):
        ends.append((unlabeled["published_at"].min(), unlabeled["published_at"].max()))
    if not ends:
        return None
    return [min(a for a, _ in ends).isoformat(), max(b for _, b in ends).isoformat()]


class Teacher:
    """A fine-tuned teacher as an ``nlp.protocol.TextScorer``: calibrated probabilities in bf16
    autocast over length-sorted batches (the training loop's inference, not the scoring engine's
    fixed shapes: soft targets need no batch invariance, and their cache predates the engine)."""

    def __init__(self, path: str | Path, max_length: int) -> None:
        self.sm = load_classifier(path)
        self.name, self.labels, self.max_length = self.sm.meta.model_id, list(self.sm.meta.labels), max_length

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        data = TokenizedSet.build(self.sm.tokenizer, texts, np.zeros(len(texts)), self.max_length)
        logits = predict_logits(self.sm.model, self.sm.tokenizer, data, batch_size=128, bf16=True)
        return torch.softmax(logits / self.sm.meta.temperature, dim=-1).double().numpy()


def teacher_probs(teachers: list[str | Path], texts: list[str], max_length: int, progress: bool = True) -> np.ndarray:
    """Mean calibrated class probabilities of the teachers (:class:`Teacher`).

    Cached in ``$ALTSIGNAL_CACHE/distill/`` under a hash of the teachers' contents, the texts and
    ``max_length``: students that differ only in training knobs share one labeling pass.
    """
    from core.hashing import artifact_hash, cache_dir
    from core.progress import Progress

    key = hashlib.sha256(json.dumps([[artifact_hash(t) for t in teachers], max_length, texts]).encode()).hexdigest()
    cached = cache_dir() / "distill" / f"{key}.npy"
    if cached.exists():
        log.info("teacher probabilities from cache %s", cached)
        return np.load(cached, allow_pickle=False)
    total = np.zeros((len(texts), 3), dtype=np.float64)
    for path in Progress(teachers, desc="teachers", enabled=progress):
        total += Teacher(path, max_length).predict_proba(texts)
    probs = (total / len(teachers)).astype(np.float32)
    with atomic_path(cached) as tmp, open(tmp, "wb") as fh:
        np.save(fh, probs, allow_pickle=False)
    return probs


def teacher_fingerprints(teachers: list[str | Path]) -> list[dict]:
    """What identifies each teacher in the student's metadata: path, content hash, the command
    that trained it and its best evaluation (so the whole recipe can be rerun from the card)."""
    from core.hashing import artifact_hash

    out = []
    for path in teachers:
        meta = read_meta(path)
        out.append({"path": str(path), "model_id": meta.model_id, "artifact_sha256": artifact_hash(path),
                    "command": meta.extra.get("command"), "best": meta.extra.get("best")})
    return out
