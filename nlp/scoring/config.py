"""Every knob of a scoring job, in one typed place.

A job's results are a pure function of (input files, model weights, this config): the config is
part of the job fingerprint that guards resumes (``nlp.scoring.job``).
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from core.config_files import Strict
from nlp.models import PACKAGED_MINILM

Numeric = Literal["auto", "fp32", "bf16", "int8", "fp16", "compile"]
# The path evaluation uses unless told otherwise: the model cards' numbers are fp32's, the
# reference every faster path is checked against (nlp.scoring.numeric).
REFERENCE_NUMERIC: Numeric = "fp32"


class EngineConfig(Strict):
    """How texts become probabilities.

    ``bucket_tokens`` and ``batch_tokens`` fix the shapes the model ever sees: a text of n tokens
    is padded to L = ceil(n / bucket_tokens) * bucket_tokens and runs in a batch of exactly
    ``rows(L) = clamp(batch_tokens // L, 8, 256)`` rows (rounded down to a multiple of 8; a short
    last batch is filled with copies of its first row). The shape is a function of the text's
    own length, so neighbours cannot change it; the token budget keeps rare long buckets from
    costing a full 64-row batch each. Measured here: CPU kernels give
    bit-identical rows for identical (rows, length) shapes whatever the neighbours are, while a
    different batch size or padded length moves logits by ~1e-8 (fp32) to ~2e-4 (bf16). Fixed
    shapes are what make a text's score independent of its batch neighbours and of chunk
    boundaries, exactly, not approximately.
    """

    numeric: Numeric = "auto"  # auto: fastest path that passed the accuracy check
    device: str = "cpu"  # "cuda" runs fp16 (half precision) with the same code
    batch_tokens: int = Field(4096, ge=64, le=65536)  # padded tokens per model call (rows(L) above)
    bucket_tokens: int = Field(8, ge=1, le=128)  # padded length = ceil(n_tokens / bucket) * bucket
    threads: int | None = None  # torch/ORT intra-op threads; None = all cores of this process
    max_tokens: int | None = None  # truncation length; None = the model's meta.max_length
    cache_entries: int = Field(500_000, ge=0)  # job-wide dedup cache (normalized-text hash -> probs)


class JobConfig(Strict):
    """A batch scoring job on top of an engine."""

    engine: EngineConfig = EngineConfig()
    engine_kind: Literal["local", "ray"] = "local"
    ray_concurrency: int = Field(2, ge=1)
    chunk_rows: int | None = None  # documents per chunk; None = per-source default below
    max_chars: int = Field(100_000, ge=1)  # longer texts are rejected, not scored
    strip_html: bool = True  # HTML tags removed and entities unescaped before scoring
    flag_non_english: bool = True  # non-English texts go to rejects (the models are English-only)
    resolve_entities: bool = True  # add cashtags + alias-table matches to the reader's entities
    # The cross-job score cache (nlp.scoring.score_cache). Rows are identical with it or without
    # it, so it is not part of the job fingerprint: turning it off does not block a resume.
    use_cache: bool = True
    # Document embeddings (nlp.embeddings) written beside the scores as embeddings/part-<chunk>.parquet.
    # Both enter the job fingerprint when embed is on (with the embedding model's content hash);
    # when it is off they are left out, so jobs started before these fields existed still resume.
    embed: bool = False
    embed_model: str = PACKAGED_MINILM  # local sentence-transformers folder, never a hub id
    # Entity-level scoring: a model reading one marked entity (nlp.entity_input; shipped: "entity")
    # adds a Score row per (unit, ticker the unit names) beside the unit's sentence row. None = off
    # (the default: a job's rows and its fingerprint are then those of jobs before this field).
    entity_model: str | None = None

    def rows_per_chunk(self, source: str) -> int:
        if self.chunk_rows:
            return self.chunk_rows
        # A transcript is ~100-300 sentences: 200 calls ~ 40k units, like 20k headlines in memory.
        return 200 if source == "transcript" else 20_000
