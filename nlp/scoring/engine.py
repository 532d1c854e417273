"""The scoring engine: texts in, calibrated class probabilities out, fast and batch-invariant.

How it is fast: texts are tokenized once, deduplicated by a hash of their normalized form
(reposts, retweets and boilerplate sentences are scored once per job), sorted by token count
and cut into length buckets so padding stays small, then run under ``torch.inference_mode`` on
the numeric path chosen by :mod:`nlp.scoring.numeric` (bf16 on AMX CPUs, static int8 through
ONNX Runtime, fp32 otherwise; fp16 on a GPU).

This is the internal engine behind :class:`nlp.scorer.Scorer`, the transformer scorer.
Constructing it changes no process-wide state unless asked: torch's global intra-op thread count
is set only when ``config.threads`` is given.

How it stays batch-invariant: see :class:`~nlp.scoring.config.EngineConfig` - every model call
has shape ``(rows(L), L)`` with L a multiple of ``bucket_tokens`` fixed by the text's own length,
so a row's result depends on the row alone.
"""
from __future__ import annotations

import hashlib
import logging
import os
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.threads import set_threads
from nlp.protocol import Scored
from nlp.scoring.config import EngineConfig
from nlp.scoring.numeric import CALIBRATION_ROWS, DEFAULT_CALIBRATION_SET, labeled_texts, read_check, resolve_numeric

log = logging.getLogger(__name__)


def normalize_text(text: str) -> str:
    """The form a text is scored in (and deduplicated by): NFKC, whitespace runs collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def _key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def default_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class ScoringEngine:
    """Load a model artifact once; ``score(texts)`` as many times as needed."""

    def __init__(self, model_path: str | Path, config: EngineConfig | None = None, model_hash: str | None = None) -> None:
        """``auto`` takes the path the recorded numeric check chose, or fp32 when the model has no
        record: the check itself never runs here (``Scorer.check_numeric`` runs it).
        """
        from core.hashing import artifact_hash
        from nlp.models.artifact import load_classifier

        self.config = config or EngineConfig()
        self.model_path = Path(model_path)
        self.threads = self.config.threads or default_threads()
        if self.config.threads and self.config.device == "cpu":

            set_threads(self.config.threads)  # process-wide: only when the caller asked
        self.sm = load_classifier(self.model_path)
        # Ray actors get the driver's hash instead of re-reading every weight file per chunk.
        self.model_hash = model_hash or artifact_hash(self.model_path)
        self.max_tokens = self.config.max_tokens or self.sm.meta.max_length
        self._cache: dict[bytes, tuple[np.ndarray, int, bool]] = {}
        self._backends: dict[str, object] = {}
        self.n_texts = 0  # texts asked for
        self.n_computed = 0  # texts that went through the model (the rest came from the dedup cache)
        self.real_tokens = 0  # tokens of the texts computed
        self.padded_tokens = 0  # tokens the model processed (fixed shapes: padding + filler rows)
        requested = self.config.numeric
        record = read_check(self.model_hash, self.config.batch_tokens) if requested == "auto" else None
        self.use(resolve_numeric(requested, self.config.device, record))
        log.info("engine: model %s (%s), numeric=%s, threads=%d, batch_tokens=%d", self.model_id, self.model_hash,
                 self.numeric, self.threads, self.config.batch_tokens)

    def use(self, numeric: str) -> None:
        """Run from now on through the numeric path ``numeric``; the dedup cache is emptied with it,
        and backends the numeric check built for other paths are let go."""
        self.numeric = numeric
        self.backend = self._backend(numeric)
        self._backends = {numeric: self.backend}
        self._cache.clear()

    def _backend(self, numeric: str):
        if numeric not in self._backends:
            self._backends[numeric] = self._make_backend(numeric)
        return self._backends[numeric]

    def _make_backend(self, numeric: str):
        from nlp.scoring.backends import CompiledBackend, OnnxBackend, TorchBackend

        if numeric == "compile":
            if self.config.device != "cpu":
                raise ValueError("the compile path is inductor on CPU; on a GPU use fp16")
            return CompiledBackend(self.sm.model)
        if numeric == "int8":
            if self.config.device != "cpu":
                raise ValueError("the int8 path is ONNX Runtime on CPU; on a GPU use fp16")
            return OnnxBackend(self.int8_graph(), threads=self.threads, name="int8")
        return TorchBackend(self.sm.model, numeric, self.config.device)

    def int8_graph(self) -> Path:
        """Path of the cached static-int8 graph of this model, building it if needed."""
        from core.hashing import cache_dir
        from nlp.scoring.backends import export_onnx, quantize_static_int8

        folder = cache_dir() / "onnx" / self.model_hash
        out = folder / "model.int8.onnx"
        if out.exists():
            return out
        fp32 = folder / "model.fp32.onnx"
        if not fp32.exists():
            export_onnx(self.sm.model, fp32)
        got = (labeled_texts(self.sm.meta.extra.get("calibration_set", DEFAULT_CALIBRATION_SET), CALIBRATION_ROWS)
               or labeled_texts("sample:labeled", CALIBRATION_ROWS))
        ids, _ = self.tokenize(got[0])
        batches = [(input_ids, mask) for _, input_ids, mask in self.batches(ids)]
        return quantize_static_int8(fp32, out, batches)

    def probe(self, numeric: str, texts: list[str]) -> np.ndarray:
        """Probabilities of ``texts`` on the path ``numeric``, bypassing the dedup cache (the
        numeric check's view of the engine; the engine's own path is left as it is)."""
        return self._run(texts, self._backend(numeric)).probs

    @property
    def model_id(self) -> str:
        return self.sm.meta.model_id

    @property
    def labels(self) -> list[str]:
        return list(self.sm.meta.labels)

    def tokenize(self, texts: Sequence[str]) -> tuple[list[list[int]], np.ndarray]:
        """Token ids (truncated to ``max_tokens``) and whether each text had to be truncated."""
        tok = self.sm.tokenizer
        ids = tok(list(texts), truncation=True, max_length=self.max_tokens + 1)["input_ids"]
        truncated = np.array([len(x) > self.max_tokens for x in ids], dtype=bool)
        if truncated.any():
            cut = [t for t, tr in zip(texts, truncated) if tr]
            redo = iter(tok(cut, truncation=True, max_length=self.max_tokens)["input_ids"])
            ids = [next(redo) if tr else x for x, tr in zip(ids, truncated)]
        return ids, truncated

    def rows(self, length: int) -> int:
        """Batch rows for padded length ``length`` (see EngineConfig)."""
        return max(8, min(256, self.config.batch_tokens // length) // 8 * 8)

    def batches(self, ids: list[list[int]]):
        """Yield (row indices, input_ids, attention_mask) in fixed shapes, shortest bucket first."""
        bucket = self.config.bucket_tokens
        pad_id = self.sm.tokenizer.pad_token_id or 0
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        padded = -(-lengths // bucket) * bucket
        order = np.argsort(lengths, kind="stable")  # token count, not characters
        for L in np.unique(padded):
            rows = order[padded[order] == L]
            bs = self.rows(int(L))
            for start in range(0, len(rows), bs):
                chunk = rows[start : start + bs]
                fill = np.concatenate([chunk, np.repeat(chunk[:1], bs - len(chunk))])
                input_ids = np.full((bs, int(L)), pad_id, dtype=np.int64)
                mask = np.zeros((bs, int(L)), dtype=np.int64)
                for r, i in enumerate(fill):
                    input_ids[r, : lengths[i]] = ids[i]
                    mask[r, : lengths[i]] = 1
                yield chunk, input_ids, mask

    def _run(self, texts: list[str], backend) -> Scored:
        ids, truncated = self.tokenize(texts)
        n_labels = len(self.labels)
        logits = np.zeros((len(texts), n_labels), dtype=np.float32)
        for rows, input_ids, mask in self.batches(ids):
            logits[rows] = backend.logits(input_ids, mask)[: len(rows)]
            self.padded_tokens += input_ids.size
            self.real_tokens += int(mask[: len(rows)].sum())
        z = logits.astype(np.float64) / self.sm.meta.temperature
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        n_tokens = np.array([len(x) for x in ids], dtype=np.int32)
        return Scored(p.astype(np.float32), n_tokens, truncated)

    def score(self, texts: Sequence[str]) -> Scored:
        """Probabilities for ``texts``; identical normalized texts are computed once per engine."""
        norm = [normalize_text(t) for t in texts]
        keys = [_key(t) for t in norm]
        todo: dict[bytes, str] = {}
        for k, t in zip(keys, norm):
            if k not in self._cache and k not in todo:
                todo[k] = t
        self.n_texts += len(keys)
        self.n_computed += len(todo)
        new: dict[bytes, tuple[np.ndarray, int, bool]] = {}
        if todo:
            fresh = self._run(list(todo.values()), self.backend)
            new = {k: (fresh.probs[i], int(fresh.n_tokens[i]), bool(fresh.truncated[i])) for i, k in enumerate(todo)}
        rows = [new[k] if k in new else self._cache[k] for k in keys]
        if self.config.cache_entries:
            if len(self._cache) + len(new) > self.config.cache_entries:
                # Clearing only costs speed: scores are exact functions of the text (fixed shapes).
                self._cache.clear()
            self._cache.update(new)
        n_labels = len(self.labels)
        return Scored(
            np.stack([r[0] for r in rows]) if rows else np.zeros((0, n_labels), np.float32),
            np.array([r[1] for r in rows], dtype=np.int32),
            np.array([r[2] for r in rows], dtype=bool),
            deduplicated=len(keys) - len(todo),
        )
