"""Where the model runs: in this process (default) or on a Ray cluster through Ray Data.

Both are callables ``texts -> Scored``. The Ray path sends each chunk's distinct normalized
texts through ``Dataset.map_batches`` to actors that each hold a :class:`ScoringEngine` built
with the driver's already-resolved numeric path; since every engine call has fixed shapes
(see ``EngineConfig``), the Ray results equal the in-process ones bit for bit, whatever batches
Ray forms. Ray is started with ``ray.init()`` unless already initialized: that joins the
cluster named by ``RAY_ADDRESS`` when set, else starts a local instance.

Decision: a Ray dataset per chunk (not one over the whole input) keeps the job's chunk-level
resume protocol identical for both engines; the price is that actors (and their model) are
re-created per chunk, ~1-2 s, which is why Ray jobs should use large ``--chunk-rows``.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from core import lifecycle
from nlp.scoring.config import EngineConfig, JobConfig
from nlp.scoring.engine import Scored, ScoringEngine, normalize_text

log = logging.getLogger(__name__)

BATCH_ROWS = 1024  # texts per Ray Data batch handed to an actor


def make_scorer(engine: ScoringEngine, config: JobConfig):
    if config.engine_kind == "local":
        return engine.score
    return RayScorer(engine, config.ray_concurrency)


class _ScoreActor:
    """Ray Data callable class: one engine per actor, reused for every batch it gets."""

    def __init__(self, model_path: str, config: dict, numeric: str, model_hash: str) -> None:
        self.engine = ScoringEngine(model_path, EngineConfig(**config), numeric=numeric, model_hash=model_hash)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        scored = self.engine.score(batch["text"].tolist())
        out = pd.DataFrame({"i": batch["i"].to_numpy(), "n_tokens": scored.n_tokens, "truncated": scored.truncated})
        for j in range(scored.probs.shape[1]):
            out[f"p{j}"] = scored.probs[:, j]
        return out


class RayScorer:
    def __init__(self, engine: ScoringEngine, concurrency: int = 2) -> None:
        import ray

        if not ray.is_initialized():
            ray.init(include_dashboard=False, ignore_reinit_error=True)
            lifecycle.reclaim()  # ray.init replaced the CLI's SIGTERM handler
        self.engine, self.concurrency = engine, concurrency
        cfg = engine.config.model_dump()
        # Each actor gets an equal share of this machine's threads unless told otherwise.
        cfg["threads"] = engine.config.threads or max(1, engine.threads // concurrency)
        self.ctor = {"model_path": str(engine.model_path), "config": cfg, "numeric": engine.numeric,
                     "model_hash": engine.model_hash}

    def __call__(self, texts: list[str]) -> Scored:
        import ray

        norm = [normalize_text(t) for t in texts]
        uniq = list(dict.fromkeys(norm))
        n_labels = len(self.engine.labels)
        if not uniq:
            return Scored(np.zeros((0, n_labels), np.float32), np.zeros(0, np.int32), np.zeros(0, bool))
        ds = ray.data.from_pandas(pd.DataFrame({"i": np.arange(len(uniq)), "text": uniq}))
        res = ds.map_batches(_ScoreActor, fn_constructor_kwargs=self.ctor, concurrency=self.concurrency,
                             batch_size=BATCH_ROWS, batch_format="pandas").to_pandas()
        res = res.sort_values("i").reset_index(drop=True)
        where = {t: k for k, t in enumerate(uniq)}
        idx = np.array([where[t] for t in norm])
        probs = res[[f"p{j}" for j in range(n_labels)]].to_numpy(np.float32)[idx]
        return Scored(probs, res["n_tokens"].to_numpy(np.int32)[idx], res["truncated"].to_numpy(bool)[idx],
                      deduplicated=len(texts) - len(uniq))
