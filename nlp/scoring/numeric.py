"""Choosing a numeric path: each fast path is used only if it keeps fp32's accuracy.

``check_numeric_paths`` scores a labeled validation split with every candidate path (fp32,
bf16 where the CPU runs it natively, static int8) and records accuracy, the difference to fp32
in points, speed and a batch-invariance probe in ``$ALTSIGNAL_CACHE/checks/<model hash>.t<batch_tokens>.v<version>.json``.
A path passes when its accuracy is at most 0.5 points below fp32's and it is batch-invariant; its
agreement with fp32's labels is recorded beside it.
``numeric="auto"`` then takes the first passing path in :data:`PREFERENCE` (fastest first). The check
is an explicit step (about a minute on 2 cores): ``Scorer.check_numeric()``, or
``Scorer.load(..., check=True)`` as batch jobs do; without a record ``auto`` stays on fp32.

The check knows nothing of the engine: it gets a *probe*, a callable ``(path, texts) -> probs``
that scores texts on one numeric path (``ScoringEngine.probe``), so this module imports no engine.

Decision: the validation sets are the model's own (``meta.extra["validation_set"]``, every
``val_sets`` entry joined by ``+``, or the ``val_sets`` its fine-tuning config recorded) when the
artifact names them, else PhraseBank 50-agree validation + TFNS validation (both held out from
training), capped at 2,000 sentences (seeded sample). On PhraseBank validation alone (495
sentences, what the shipped models named until 2026-12) 0.5 points is 2.5 sentences, too few to
tell a path from noise. Measured on an AVX2-only CPU: int8 against fp32 was +0.20 points there for
``default`` and ``labeled``, but -0.34 / -0.14 on both sets together (1,454 sentences, 21 / 28
labels changed), and -0.6 on the 2,000 sentences of ``bench/scoring.py``. The spread is a
few tenths of a point either way, so 0.5 points over 1,454 sentences is about 1.6 standard
errors of the paired difference. The record file is versioned (:data:`CHECK_VERSION`): records
written before the agreement was recorded are not read again. int8 activation ranges are calibrated on 512
training sentences, never on the sentences the check scores.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from core.atomic import write_json
from core.hashing import cache_dir
from nlp.scoring.backends import cpu_has_fast_bf16

log = logging.getLogger(__name__)

MAX_DROP_POINTS = 0.5
DEFAULT_VALIDATION_SET = "fpb:50agree:validation+tfns:validation"
DEFAULT_CALIBRATION_SET = "fpb:50agree:train"
VALIDATION_CAP = 2000
CHECK_VERSION = 2  # 2: every validation set of the model, and agreement with fp32 recorded
CALIBRATION_ROWS = 512

Probe = Callable[[str, list[str]], np.ndarray]  # (numeric path, texts) -> probabilities (n, n_labels)


def labeled_texts(name: str, cap: int):
    """(texts, labels) of labeled sets joined by ``+``, a seeded sample of at most ``cap`` rows; None if unavailable.

    Rows of entity-level sets come with their entity marked: the only input an entity model reads.
    """
    try:
        import pandas as pd

        from nlp.entity_input import is_entity_frame, marked_texts
        from nlp.labeled_sets import load_labeled_set

        sets = [load_labeled_set(n) for n in name.split("+")]
        df = pd.concat([pd.DataFrame({"text": marked_texts(d) if is_entity_frame(d) else d["text"].to_numpy(),
                                      "label": d["label"].to_numpy()}) for d in sets], ignore_index=True)
    except (ImportError, FileNotFoundError, KeyError, ValueError) as exc:
        log.warning("labeled set %s unavailable (%s)", name, exc)
        return None
    if len(df) > cap:
        df = df.sample(n=cap, random_state=0)
    return df["text"].astype(str).tolist(), df["label"].astype(str).tolist()


def candidate_paths(device: str = "cpu") -> list[str]:
    if device != "cpu":
        return ["fp16"]
    return ["fp32"] + (["bf16"] if cpu_has_fast_bf16() else []) + ["int8"]


def check_path(model_hash: str, batch_tokens: int) -> Path:
    return cache_dir() / "checks" / f"{model_hash}.t{batch_tokens}.v{CHECK_VERSION}.json"


def read_check(model_hash: str, batch_tokens: int) -> dict | None:
    path = check_path(model_hash, batch_tokens)
    return json.loads(path.read_text()) if path.exists() else None


def _timed(probe: Probe, path: str, texts: list[str]) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    probs = probe(path, texts)
    return probs, time.perf_counter() - t0


def check_numeric_paths(probe: Probe, texts: list[str], labels: list[str], *, label_order: Sequence[str],
                        paths: Sequence[str], model_hash: str, batch_tokens: int, about: dict | None = None) -> dict:
    """Accuracy, speed and batch invariance of every path in ``paths``; written to the check record.

    ``about`` (model id, validation set, threads...) is copied into the record as it is.
    """
    label_idx = {l: i for i, l in enumerate(label_order)}
    y = np.array([label_idx[l] for l in labels])
    sample = texts[: min(len(texts), 300)]
    results: dict[str, dict] = {}
    labels_of: dict[str, np.ndarray] = {}
    for path in paths:
        _timed(probe, path, texts[:64])  # warm-up (JIT, oneDNN kernels)
        probs, secs = _timed(probe, path, texts)
        # Invariance probe: the same texts reversed land in other batches with other neighbours.
        rev, _ = _timed(probe, path, sample[::-1])
        labels_of[path] = probs.argmax(1)
        results[path] = {
            "accuracy": float((probs.argmax(1) == y).mean()),
            "sentences_per_s": len(texts) / secs,
            "batch_invariant": bool(np.array_equal(rev[::-1], probs[: len(sample)])),
        }
    base = results["fp32"]["accuracy"] if "fp32" in results else None
    for path, r in results.items():
        r["delta_points"] = 100 * (r["accuracy"] - base) if base is not None else 0.0
        if "fp32" in labels_of:
            r["agreement_with_fp32"] = float((labels_of[path] == labels_of["fp32"]).mean())
        r["passed"] = r["delta_points"] >= -MAX_DROP_POINTS and r["batch_invariant"]
    record = {
        **(about or {}), "model_hash": model_hash, "batch_tokens": batch_tokens, "n_sentences": len(texts),
        "checked_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "max_drop_points": MAX_DROP_POINTS, "paths": results,
    }
    write_json(check_path(model_hash, batch_tokens), record)
    log.info("numeric check %s: %s", model_hash, json.dumps(results))
    return record


def validation_set_of(meta) -> str:
    """The model's own validation sets (``extra.validation_set`` or its fine-tuning ``val_sets``)."""
    if meta.extra.get("validation_set"):
        return meta.extra["validation_set"]
    val_sets = meta.extra.get("config", {}).get("val_sets") or []
    return "+".join(val_sets) or DEFAULT_VALIDATION_SET


# Fastest first, as measured on an idle machine of this kind (bench/scoring.py: bf16 575,
# static int8 274, fp32 236 sentences/s). The check's own speed figures are recorded but not
# used to choose: taken under load they once ranked int8 above bf16, and a choice that depends
# on momentary load would make `auto` give different scores from one run to the next.
PREFERENCE = ("fp16", "bf16", "int8", "fp32")


def choose(record: dict) -> str:
    """The first path in :data:`PREFERENCE` that passed the check (fp32 when none did)."""
    passed = {p for p, r in record["paths"].items() if r["passed"]}
    return next((p for p in PREFERENCE if p in passed), "fp32")


def resolve_numeric(requested: str, device: str, record: dict | None) -> str:
    """The path to run: ``requested`` unless it is ``auto``, then the record's choice (fp32 without one)."""
    if requested != "auto":
        if requested == "bf16" and not cpu_has_fast_bf16() and device == "cpu":
            log.warning("bf16 requested but this CPU has neither AMX nor AVX512-BF16: it will be slow")
        return requested
    if device != "cpu":
        return "fp16"
    if record is None:
        log.info("numeric=auto: no accuracy check recorded for this model; using fp32 "
                 "(Scorer.check_numeric() or a scoring job runs the check once)")
        return "fp32"
    chosen = choose(record)
    log.info("numeric=auto -> %s (check of %s: %s)", chosen, record["checked_at"],
             {p: round(r["delta_points"], 2) for p, r in record["paths"].items()})
    return chosen
