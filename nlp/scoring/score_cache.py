"""The cross-job score cache: a text scored once is never scored again, by any later job.

Key: the scorer's *output fingerprint* (``cache_key`` of :mod:`nlp.protocol`; scorers without
one are not cached) and the sha256 of the normalized text (``scorer.normalize``, the form it scores). The output fingerprint
covers everything a probability depends on: the model's content hash, the numeric path, the
device, and the shape settings (``bucket_tokens``, ``batch_tokens``, the truncation length).
Because the engine runs every text in a shape fixed by its own length (``EngineConfig``), a
text's probabilities do not depend on the other texts of a call, so a cached row equals the row a
fresh computation would give, bit for bit (tested).

Value: the probabilities (float32, as computed), the token count and the truncation flag.

Storage: ``<cache root>/<fingerprint>/part-<uuid>.parquet``. A part is written once
(temp file + rename) and never changed, so any number of processes can read and add parts at
the same time without a lock; two processes that score the same new text both add it and the
values are equal, so duplicates are harmless and lookups keep one. DuckDB answers a lookup with a
semi-join of the wanted keys against all parts of the fingerprint. A lookup reads every part, and
each job (a daily run is one) adds a few, so a job that finds :data:`COMPACT_AT` parts or more
merges them into one when it ends (:meth:`ScoreCache.compact`, also lock-free). The cache root is
``$ALTSIGNAL_SCORE_CACHE``, else ``$ALTSIGNAL_CACHE/scores`` (default ``~/.cache/altsignal/scores``);
deleting it only costs speed. Decision: Parquet parts rather than a table in the feature store,
because the store allows one writer at a time while scoring jobs run side by side.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from nlp.protocol import Scored

log = logging.getLogger(__name__)

COMPACT_AT = 64  # parts of one fingerprint from which a finished job merges them
_ROWS = ("SELECT key, any_value(probs) AS probs, any_value(n_tokens) AS n_tokens, "
         "any_value(truncated) AS truncated FROM read_parquet(?)")


def default_root() -> Path:
    from core.hashing import cache_dir

    return Path(os.environ.get("ALTSIGNAL_SCORE_CACHE") or cache_dir() / "scores").expanduser()


def output_fingerprint(model_hash: str, numeric: str, device: str, bucket_tokens: int, batch_tokens: int,
                       max_tokens: int) -> str:
    """What a score depends on besides the text (see the module docstring)."""
    ident = {"model_hash": model_hash, "numeric": numeric, "device": device, "bucket_tokens": bucket_tokens,
             "batch_tokens": batch_tokens, "max_tokens": max_tokens}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:24]


def text_key(normalized: str) -> str:
    return hashlib.sha256(normalized.encode("utf-8", "surrogatepass")).hexdigest()


class ScoreCache:
    """Persistent rows for one output fingerprint; :meth:`wrap` puts it in front of a scorer."""

    def __init__(self, root: str | Path, fingerprint: str, n_labels: int) -> None:
        self.folder = Path(root) / fingerprint
        self.n_labels = n_labels
        self.hits = 0  # distinct texts answered from the cache
        self.misses = 0  # distinct texts sent to the model

    def lookup(self, keys: list[str]) -> dict[str, tuple[np.ndarray, int, bool]]:
        """The cached rows among ``keys``."""
        import duckdb

        for attempt in range(3):
            if not keys or not self.parts():
                return {}
            con = duckdb.connect()
            try:
                con.register("wanted", pa.table({"key": pa.array(sorted(set(keys)), pa.string())}))
                found = con.sql(f"{_ROWS} SEMI JOIN wanted USING (key) GROUP BY key",
                                params=[str(self.folder / "part-*.parquet")]).to_arrow_table()
                break
            except duckdb.IOException:  # a compaction deleted a part after the glob: its rows are in the new one
                if attempt == 2:
                    raise
            finally:
                con.close()
        probs = np.asarray(found["probs"].to_pylist(), dtype=np.float32).reshape(-1, self.n_labels)
        return {k: (probs[i], n, t) for i, (k, n, t) in enumerate(zip(found["key"].to_pylist(),
                                                                        found["n_tokens"].to_pylist(),
                                                                        found["truncated"].to_pylist()))}

    def parts(self) -> list[Path]:
        return sorted(self.folder.glob("part-*.parquet")) if self.folder.is_dir() else []

    def add(self, keys: list[str], scored: Scored) -> None:
        """Write rows for ``keys`` as one new part (atomically)."""
        if not keys:
            return
        self._write(pa.table({
            "key": pa.array(keys, pa.string()),
            "probs": pa.array(list(scored.probs.astype(np.float32)), pa.list_(pa.float32())),
            "n_tokens": pa.array(scored.n_tokens, pa.int32()),
            "truncated": pa.array(scored.truncated, pa.bool_()),
        }))

    def _write(self, table: pa.Table) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"part-{uuid.uuid4().hex}.parquet"
        tmp = self.folder / f".{name}.tmp"
        pq.write_table(table, tmp)
        tmp.replace(self.folder / name)

    def compact(self, min_parts: int = 2) -> int:
        """Merge the parts there are now into one part, one row per text; return how many were merged.

        No lock, like :meth:`add`: the merged part is in place before the parts it replaces are
        deleted, so every row stays visible to lookups at every instant, and parts that other jobs
        add meanwhile are left alone. When another compaction deletes a part first, this one gives
        up (returns 0) and changes nothing.
        """
        import duckdb

        old = self.parts()
        if len(old) < min_parts:
            return 0
        con = duckdb.connect()
        try:
            merged = con.sql(f"{_ROWS} GROUP BY key ORDER BY key", params=[[str(p) for p in old]]).to_arrow_table()
        except duckdb.IOException:
            return 0
        finally:
            con.close()
        self._write(merged)
        for p in old:
            p.unlink(missing_ok=True)
        log.info("score cache %s: %d parts merged into one (%d texts)", self.folder, len(old), merged.num_rows)
        return len(old)

    def wrap(self, score, normalize):
        """A scorer ``texts -> Scored`` that asks ``score`` only for texts this cache lacks;
        ``normalize``: the scorer's (texts of one normalized form share a row)."""

        def cached(texts: list[str]) -> Scored:
            keys = [text_key(normalize(t)) for t in texts]
            rows = self.lookup(keys)
            todo = list(dict.fromkeys(k for k in keys if k not in rows))
            self.hits += len(set(keys)) - len(todo)
            self.misses += len(todo)
            if todo:
                first = {}
                for k, t in zip(keys, texts):
                    first.setdefault(k, t)
                fresh = score([first[k] for k in todo])
                self.add(todo, fresh)
                rows.update({k: (fresh.probs[i], int(fresh.n_tokens[i]), bool(fresh.truncated[i]))
                             for i, k in enumerate(todo)})
            ordered = [rows[k] for k in keys]
            return Scored(
                np.stack([r[0] for r in ordered]).astype(np.float32) if ordered
                else np.zeros((0, self.n_labels), np.float32),
                np.array([r[1] for r in ordered], dtype=np.int32),
                np.array([r[2] for r in ordered], dtype=bool),
                deduplicated=len(keys) - len(todo),
            )

        return cached
