"""Choosing a numeric path: each fast path is used only if it keeps fp32's accuracy.

``check_numeric_paths`` scores a labeled validation split with every candidate path (fp32,
bf16 where the CPU runs it natively, static int8) and records accuracy, the difference to fp32
in points, speed and a batch-invariance probe in ``$ALTSIGNAL_CACHE/checks/<model hash>.json``.
A path passes when its accuracy is at most 0.5 points below fp32's and it is batch-invariant.
``numeric="auto"`` then takes the first passing path in :data:`PREFERENCE` (fastest first); without a record it runs the check first
(about a minute on 2 cores), and without validation data it stays on fp32.

Decision: the validation split is the model's own (``meta.extra["validation_set"]``, or the
``val_sets`` its fine-tuning config recorded) when the artifact names one, else PhraseBank 50-agree validation + TFNS validation (both held out from
training), capped at 2,000 sentences (seeded sample): 0.5 points is then 10 sentences; on
PhraseBank validation alone (495) it would be 2.5, too few to tell a path from noise. int8 activation ranges
are calibrated on 512 training sentences, never on the sentences the check scores.
"""
from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nlp.scoring.backends import (
    OnnxBackend,
    TorchBackend,
    cache_dir,
    cpu_has_fast_bf16,
    export_onnx,
    quantize_static_int8,
    write_json,
)

if TYPE_CHECKING:
    from nlp.scoring.engine import ScoringEngine

log = logging.getLogger(__name__)

MAX_DROP_POINTS = 0.5
DEFAULT_VALIDATION_SET = "fpb:50agree:validation+tfns:validation"
DEFAULT_CALIBRATION_SET = "fpb:50agree:train"
VALIDATION_CAP = 2000
CALIBRATION_ROWS = 512


def labeled_texts(name: str, cap: int):
    """(texts, labels) of labeled sets joined by ``+``, a seeded sample of at most ``cap`` rows; None if unavailable."""
    try:
        import pandas as pd

        from nlp.readers.labeled_sets import load_labeled_set

        df = pd.concat([load_labeled_set(n) for n in name.split("+")], ignore_index=True)
    except (ImportError, FileNotFoundError, KeyError, ValueError) as exc:
        log.warning("labeled set %s unavailable (%s)", name, exc)
        return None
    if len(df) > cap:
        df = df.sample(n=cap, random_state=0)
    return df["text"].astype(str).tolist(), df["label"].astype(str).tolist()


def int8_graph(engine: "ScoringEngine") -> Path:
    """Path of the cached static-int8 graph of the engine's model, building it if needed."""
    folder = cache_dir() / "onnx" / engine.model_hash
    out = folder / "model.int8.onnx"
    if out.exists():
        return out
    fp32 = folder / "model.fp32.onnx"
    if not fp32.exists():
        export_onnx(engine.sm.model, fp32)
    got = (labeled_texts(engine.sm.meta.extra.get("calibration_set", DEFAULT_CALIBRATION_SET), CALIBRATION_ROWS)
           or labeled_texts("sample:labeled", CALIBRATION_ROWS))
    ids, _ = engine.tokenize(got[0])
    batches = [(input_ids, mask) for _, input_ids, mask in engine.batches(ids)]
    return quantize_static_int8(fp32, out, batches)


def make_backend(engine: "ScoringEngine", numeric: str):
    if numeric == "int8":
        if engine.config.device != "cpu":
            raise ValueError("the int8 path is ONNX Runtime on CPU; on a GPU use fp16")
        return OnnxBackend(int8_graph(engine), threads=engine.threads, name="int8")
    return TorchBackend(engine.sm.model, numeric, engine.config.device)


def candidate_paths(device: str = "cpu") -> list[str]:
    if device != "cpu":
        return ["fp16"]
    return ["fp32"] + (["bf16"] if cpu_has_fast_bf16() else []) + ["int8"]


def check_path(engine: "ScoringEngine") -> Path:
    return cache_dir() / "checks" / f"{engine.model_hash}.t{engine.config.batch_tokens}.json"


def _predict(engine: "ScoringEngine", backend, texts: list[str]) -> tuple[np.ndarray, float]:
    saved = engine.backend
    engine.backend = backend
    try:
        t0 = time.perf_counter()
        probs = engine._run(texts).probs
        return probs, time.perf_counter() - t0
    finally:
        engine.backend = saved


def check_numeric_paths(engine: "ScoringEngine", texts: list[str], labels: list[str], validation_set: str = "") -> dict:
    """Accuracy, speed and batch invariance of every candidate path; written to the check record."""
    label_idx = {l: i for i, l in enumerate(engine.labels)}
    y = np.array([label_idx[l] for l in labels])
    probe = texts[: min(len(texts), 300)]
    results: dict[str, dict] = {}
    for path in candidate_paths(engine.config.device):
        backend = make_backend(engine, path)
        _predict(engine, backend, texts[:64])  # warm-up (JIT, oneDNN kernels)
        probs, secs = _predict(engine, backend, texts)
        # Invariance probe: the same texts reversed land in other batches with other neighbours.
        rev, _ = _predict(engine, backend, probe[::-1])
        results[path] = {
            "accuracy": float((probs.argmax(1) == y).mean()),
            "sentences_per_s": len(texts) / secs,
            "batch_invariant": bool(np.array_equal(rev[::-1], probs[: len(probe)])),
        }
    base = results["fp32"]["accuracy"] if "fp32" in results else None
    for r in results.values():
        r["delta_points"] = 100 * (r["accuracy"] - base) if base is not None else 0.0
        r["passed"] = r["delta_points"] >= -MAX_DROP_POINTS and r["batch_invariant"]
    record = {
        "model_id": engine.model_id, "model_hash": engine.model_hash, "validation_set": validation_set,
        "n_sentences": len(texts), "threads": engine.threads, "batch_tokens": engine.config.batch_tokens,
        "checked_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "max_drop_points": MAX_DROP_POINTS, "paths": results,
    }
    write_json(check_path(engine), record)
    log.info("numeric check %s: %s", engine.model_id, json.dumps(results))
    return record


def validation_set_of(meta) -> str:
    """The model's own validation sets (``extra.validation_set`` or its fine-tuning ``val_sets``)."""
    if meta.extra.get("validation_set"):
        return meta.extra["validation_set"]
    val_sets = meta.extra.get("config", {}).get("val_sets") or []
    return "+".join(val_sets) or DEFAULT_VALIDATION_SET


def read_check(engine: "ScoringEngine") -> dict | None:
    path = check_path(engine)
    return json.loads(path.read_text()) if path.exists() else None


# Fastest first, as measured on an idle machine of this kind (bench/scoring.py: bf16 575,
# static int8 274, fp32 236 sentences/s). The check's own speed figures are recorded but not
# used to choose: taken under load they once ranked int8 above bf16, and a choice that depends
# on momentary load would make `auto` give different scores from one run to the next.
PREFERENCE = ("fp16", "bf16", "int8", "fp32")


def choose(record: dict) -> str:
    """The first path in :data:`PREFERENCE` that passed the check (fp32 when none did)."""
    passed = {p for p, r in record["paths"].items() if r["passed"]}
    return next((p for p in PREFERENCE if p in passed), "fp32")


def resolve_numeric(engine: "ScoringEngine", requested: str) -> str:
    if requested != "auto":
        if requested == "bf16" and not cpu_has_fast_bf16() and engine.config.device == "cpu":
            log.warning("bf16 requested but this CPU has neither AMX nor AVX512-BF16: it will be slow")
        return requested
    if engine.config.device != "cpu":
        return "fp16"
    record = read_check(engine)
    if record is None:
        name = validation_set_of(engine.sm.meta)
        got = labeled_texts(name, VALIDATION_CAP)
        if got is None:
            log.warning("numeric=auto: no validation data to check fast paths against; using fp32")
            return "fp32"
        engine.backend = None
        record = check_numeric_paths(engine, got[0], got[1], validation_set=name)
    chosen = choose(record)
    log.info("numeric=auto -> %s (check of %s: %s)", chosen, record["checked_at"],
             {p: round(r["delta_points"], 2) for p, r in record["paths"].items()})
    return chosen
