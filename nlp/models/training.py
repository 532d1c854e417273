"""Training pieces shared by fine-tuning (nlp.models.finetune) and distillation (nlp.models.distill):
label encoding, length-bucketed token batches, and batched logits.

Kept apart so that distillation (which labels text with trained teachers) and fine-tuning (which
trains on those labels) import this module, not each other.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
import torch

from core.errors import UsageError
from nlp.contracts import LABELS

LABEL_INDEX = {l: i for i, l in enumerate(LABELS)}
UNLABELED = -100  # torch's CrossEntropyLoss ignore_index


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def encode_labels(labels, allow_missing: bool = False) -> np.ndarray:
    """Class indices; with ``allow_missing``, missing labels (None/NaN) become ``UNLABELED``."""
    labels = list(labels)
    missing = [l is None or (isinstance(l, float) and math.isnan(l)) for l in labels]
    if any(missing) and not allow_missing:
        raise UsageError("missing label(s); every training and validation row needs one")
    unknown = sorted({l for l, m in zip(labels, missing) if not m} - set(LABELS))
    if unknown:
        raise UsageError(f"unknown label(s) {unknown}; expected labels in {list(LABELS)}")
    return np.array([UNLABELED if m else LABEL_INDEX[l] for l, m in zip(labels, missing)], dtype=np.int64)


@dataclass
class TokenizedSet:
    """Token ids (unpadded) and labels, ready to be cut into length-sorted batches.

    ``labels`` is ``UNLABELED`` for rows that only have ``soft`` targets (distillation).
    """

    input_ids: list[list[int]]
    labels: np.ndarray
    soft: np.ndarray | None = None  # (n, classes) target probabilities

    @classmethod
    def build(cls, tokenizer, texts: list[str], labels, max_length: int, soft: np.ndarray | None = None) -> "TokenizedSet":
        enc = tokenizer(list(texts), truncation=True, max_length=max_length)
        return cls(enc["input_ids"], np.asarray(labels, dtype=np.int64), soft)

    def __len__(self) -> int:
        return len(self.input_ids)

    def batches(self, batch_size: int, rng: np.random.Generator | None, order: np.ndarray | None = None):
        """Index batches of similar token length; shuffled batch order when ``rng`` is given.

        ``order`` (e.g. a class-balanced resample) selects which examples form the epoch.
        """
        idx = np.arange(len(self)) if order is None else np.asarray(order)
        lengths = np.array([len(self.input_ids[i]) for i in idx])
        if rng is not None:
            # Random tie-breaking so equal-length examples do not always share a batch.
            idx = idx[np.lexsort((rng.random(len(idx)), lengths))]
        else:
            idx = idx[np.argsort(lengths, kind="stable")]
        chunks = [idx[i : i + batch_size] for i in range(0, len(idx), batch_size)]
        if rng is not None:
            rng.shuffle(chunks)
        return chunks

    def collate(self, tokenizer, rows: np.ndarray) -> dict[str, torch.Tensor]:
        enc = tokenizer.pad({"input_ids": [self.input_ids[i] for i in rows]}, return_tensors="pt")
        enc["labels"] = torch.from_numpy(self.labels[rows])
        if self.soft is not None:
            enc["soft"] = torch.from_numpy(self.soft[rows])
        return dict(enc)


@torch.no_grad()  # not inference_mode: the logits feed temperature fitting (autograd)
def predict_logits(model, tokenizer, data: TokenizedSet, batch_size: int = 128, bf16: bool = False) -> torch.Tensor:
    """Raw logits in the original row order (length-sorted batches internally)."""
    model.eval()
    out = torch.empty(len(data), len(LABELS))
    for rows in data.batches(batch_size, rng=None):
        enc = data.collate(tokenizer, rows)
        enc.pop("labels")
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out[torch.from_numpy(rows)] = model(**enc).logits.float()
    return out


