"""Where a scorer runs: in this process (default) or on a Ray cluster through Ray Data.

Both are callables ``texts -> Scored`` over any scorer of :mod:`nlp.protocol`. The Ray path sends
each chunk's distinct normalized texts through ``Dataset.map_batches`` to actors that each
rebuild the scorer from ``scorer.remote(workers)`` (a transformer gets the driver's already
resolved numeric path); since every engine call has fixed shapes (see ``EngineConfig``), the Ray
results equal the in-process ones bit for bit, whatever batches Ray forms. Ray is started with
``ray.init()`` unless already initialized: that joins the cluster named by ``RAY_ADDRESS`` when
set, else starts a local instance.

Decision: a Ray dataset per chunk (not one over the whole input) keeps the job's chunk-level
resume protocol identical for both engines; the price is that actors (and their model) are
re-created per chunk, ~1-2 s, which is why Ray jobs should use large ``--chunk-rows``.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from core import lifecycle
from nlp.protocol import Scored, ScorerBase
from nlp.scoring.config import JobConfig

log = logging.getLogger(__name__)

BATCH_ROWS = 1024  # texts per Ray Data batch handed to an actor


def make_runner(scorer: ScorerBase, config: JobConfig):
    if config.engine_kind == "local":
        return scorer.scored
    return RayScorer(scorer, config.ray_concurrency)


class _ScoreActor:
    """Ray Data callable class: one scorer per actor, reused for every batch it gets."""

    def __init__(self, factory: type[ScorerBase], kwargs: dict) -> None:
        self.scorer = factory.load(**kwargs)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        scored = self.scorer.scored(batch["text"].tolist())
        out = pd.DataFrame({"i": batch["i"].to_numpy(), "n_tokens": scored.n_tokens, "truncated": scored.truncated})
        for j in range(scored.probs.shape[1]):
            out[f"p{j}"] = scored.probs[:, j]
        return out


class RayScorer:
    def __init__(self, scorer: ScorerBase, concurrency: int = 2) -> None:
        import ray

        if not ray.is_initialized():
            ray.init(include_dashboard=False, ignore_reinit_error=True)
            lifecycle.reclaim()  # ray.init replaced the CLI's SIGTERM handler
        self.scorer, self.concurrency = scorer, concurrency
        self.ctor = {"factory": type(scorer), "kwargs": scorer.remote(concurrency)}

    def __call__(self, texts: list[str]) -> Scored:
        import ray

        norm = [self.scorer.normalize(t) for t in texts]
        uniq = list(dict.fromkeys(norm))
        n_labels = len(self.scorer.labels)
        if not uniq:
            return Scored(np.zeros((0, n_labels), np.float32), np.zeros(0, np.int32), np.zeros(0, bool))
        ds = ray.data.from_pandas(pd.DataFrame({"i": np.arange(len(uniq)), "text": uniq}))
        res = ds.map_batches(_ScoreActor, fn_constructor_kwargs=self.ctor, concurrency=self.concurrency,
                             batch_size=BATCH_ROWS, batch_format="pandas").to_pandas()
        res = res.sort_values("i").reset_index(drop=True)
        where = {t: k for k, t in enumerate(uniq)}
        idx = np.array([where[t] for t in norm])
        probs = res[[f"p{j}" for j in range(n_labels)]].to_numpy()[idx]
        return Scored(probs, res["n_tokens"].to_numpy(np.int32)[idx], res["truncated"].to_numpy(bool)[idx],
                      deduplicated=len(texts) - len(uniq))
