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

from nlp.models.artifact import load_classifier, read_meta
from nlp.models.training import TokenizedSet, predict_logits
from nlp.rejects import Rejects, atomic_path
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
        raise ValueError(f"bad unlabeled spec {spec!r}: expected <{'|'.join(UNLABELED_PRESETS)}>:<rows>, e.g. social:20000")
    return name, int(n)


def _texts_of(name: str, rng: np.random.Generator, want: int) -> list[str]:
    from nlp.readers.documents import load_preset

    docs = load_preset(UNLABELED_PRESETS[name], Rejects())
    texts = docs["text"].dropna().astype(str)
    if name == "transcripts":
        from nlp.sentences import split_sentences

        # Enough calls for the sample: ~100 sentences per call, so a few calls per 100 rows.
        calls = texts.sample(min(len(texts), max(1, want // 50)), random_state=int(rng.integers(2**31)))
        texts = pd.Series([s for sents in split_sentences(calls) for s in sents if len(s.split()) >= 4])
    return texts.tolist()


def load_unlabeled(specs: list[str], seed: int, exclude: set[str] | None = None) -> pd.DataFrame:
    """Seeded samples of unlabeled in-domain text: columns ``text``, ``set`` (e.g. ``social:20000``).

    Texts are deduplicated by split key, across sources too, and keys in ``exclude`` are dropped.
    """
    rng = np.random.default_rng(seed)
    seen = set(exclude or ())
    frames = []
    for spec in specs:
        name, n = parse_unlabeled_spec(spec)
        rows = []
        for text in _texts_of(name, rng, n):
            key = normalize_key(text)
            if key and key not in seen:
                seen.add(key)
                rows.append(text)
        pick = rng.permutation(len(rows))[:n]
        frames.append(pd.DataFrame({"text": [rows[i] for i in sorted(pick)], "set": spec}))
        log.info("unlabeled %s: %d of %d usable texts", spec, min(n, len(rows)), len(rows))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"text": [], "set": []})


def teacher_probs(teachers: list[str | Path], texts: list[str], max_length: int, progress: bool = True) -> np.ndarray:
    """Mean calibrated class probabilities of the teachers (bf16 autocast, length-sorted batches).

    Cached in ``$ALTSIGNAL_CACHE/distill/`` under a hash of the teachers' contents, the texts and
    ``max_length``: students that differ only in training knobs share one labeling pass.
    """
    from nlp.progress import Progress

    from nlp.scoring.backends import artifact_hash, cache_dir

    key = hashlib.sha256(json.dumps([[artifact_hash(t) for t in teachers], max_length, texts]).encode()).hexdigest()
    cached = cache_dir() / "distill" / f"{key}.npy"
    if cached.exists():
        log.info("teacher probabilities from cache %s", cached)
        return np.load(cached, allow_pickle=False)
    total = np.zeros((len(texts), 3), dtype=np.float64)
    for path in Progress(teachers, desc="teachers", enabled=progress):
        sm = load_classifier(path)
        data = TokenizedSet.build(sm.tokenizer, texts, np.zeros(len(texts)), max_length)
        logits = predict_logits(sm.model, sm.tokenizer, data, batch_size=128, bf16=True)
        total += torch.softmax(logits / sm.meta.temperature, dim=-1).double().numpy()
    probs = (total / len(teachers)).astype(np.float32)
    with atomic_path(cached) as tmp, open(tmp, "wb") as fh:
        np.save(fh, probs, allow_pickle=False)
    return probs


def teacher_fingerprints(teachers: list[str | Path]) -> list[dict]:
    """What identifies each teacher in the student's metadata: path, content hash, the command
    that trained it and its best evaluation (so the whole recipe can be rerun from the card)."""
    from nlp.scoring.backends import artifact_hash

    out = []
    for path in teachers:
        meta = read_meta(path)
        out.append({"path": str(path), "model_id": meta.model_id, "artifact_sha256": artifact_hash(path),
                    "command": meta.extra.get("command"), "best": meta.extra.get("best")})
    return out
