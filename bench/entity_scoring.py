"""Cost of entity-level scoring against today's sentence scoring (prints ONE JSON line).

The same SEntFiN validation headlines, one run, one torch thread: the shipped ``default`` model
scores each headline once (today), the entity model scores each (headline, entity) row with the
entity marked. Reported: rows/s and CPU seconds per text for both, the ratio per one-entity text
(the issue's target: at most 1.5x today's cost), and per text at SEntFiN's real entity count.
Rates per CPU second of this process (``time.process_time``) are close to idle-machine rates
under load; the load average is recorded at the start and end.

``--job N`` instead times whole scoring jobs (``nlp.scoring.job``: reading, text checks, entity
linking, mention spans, scoring, Parquet parts) on the first N StockNet tweets (the ``social``
preset: one explicit ticker per tweet, named in it as a ``$CASHTAG`` in nearly all), today's job
against the same job with ``entity_model`` set, in this process one after the other, fp32, no
cross-job score cache. The ratio is per one-entity document (the issue's target: at most 1.5x).

    .venv/bin/python bench/entity_scoring.py --entity-model nlp/entity_model
    .venv/bin/python bench/entity_scoring.py --job 3000
"""
from __future__ import annotations

import argparse
import json
import os
import time

from core.threads import set_threads
from nlp.entity_input import marked_texts
from nlp.labeled_sets import load_labeled_set
from nlp.scorer import Scorer
from nlp.scoring.config import REFERENCE_NUMERIC, EngineConfig


def _timed(scorer: Scorer, texts: list[str]) -> dict:
    scorer.predict_proba(texts[:64])  # warm-up
    wall, cpu = time.perf_counter(), time.process_time()
    scorer.predict_proba(texts)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"rows": len(texts), "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "rows_per_cpu_s": round(len(texts) / cpu, 1), "cpu_ms_per_row": round(1000 * cpu / len(texts), 3)}


def _job_cost(n: int, sentence_model: str, entity_model: str, threads: int) -> dict:
    import tempfile
    from pathlib import Path

    import pandas as pd

    from nlp.models import model_path
    from nlp.readers.documents import get_preset
    from nlp.scoring.config import JobConfig
    from nlp.scoring.job import JobSpec, run_job

    preset = get_preset("social")
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        docs = Path(tmp) / "tweets.parquet"
        pd.read_parquet(preset.path()).head(n).to_parquet(docs)
        engine = EngineConfig(numeric=REFERENCE_NUMERIC, threads=threads)
        for name, entity in (("today", None), ("entity_level", entity_model)):
            cfg = JobConfig(engine=engine, use_cache=False, entity_model=entity)
            spec = JobSpec([str(docs)], preset.source, preset.mapping, model_path(sentence_model), Path(tmp) / name, cfg)
            wall, cpu = time.perf_counter(), time.process_time()
            counts = run_job(spec, progress=False)["counts"]
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            out[name] = {"docs_scored": counts["docs_scored"], "units_scored": counts["units_scored"],
                         "entity_rows": counts["entity_rows"], "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                         "cpu_ms_per_doc": round(1000 * cpu / counts["docs_scored"], 3)}
    return out | {"cost_ratio_one_entity_doc": round(out["entity_level"]["cpu_s"] / out["today"]["cpu_s"], 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entity-model", default="entity")
    ap.add_argument("--sentence-model", default="default")
    ap.add_argument("--set", default="sentfin:validation")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--job", type=int, default=0, help="time scoring jobs on the first N StockNet tweets instead")
    args = ap.parse_args()
    set_threads(args.threads)
    load_start = os.getloadavg()
    if args.job:
        cost = _job_cost(args.job, args.sentence_model, args.entity_model, args.threads)
        print(json.dumps({"bench": "entity_scoring_job", "tweets": args.job, "threads": args.threads,
                          "numeric": REFERENCE_NUMERIC, **cost, "target_one_entity_max": 1.5,
                          "loadavg_start": load_start, "loadavg_end": os.getloadavg()}))
        return
    rows = load_labeled_set(args.set)
    texts = rows.drop_duplicates("text")["text"].tolist()
    one = {"text": [], "start": [], "end": []}  # the first entity of each text: a one-entity document
    for _, r in rows.drop_duplicates("text").iterrows():
        for k in one:
            one[k].append(r[k])
    config = EngineConfig(cache_entries=0)
    sentence = _timed(Scorer.load(args.sentence_model, numeric=REFERENCE_NUMERIC, config=config), texts)
    entity_scorer = Scorer.load(args.entity_model, numeric=REFERENCE_NUMERIC, config=config)
    entity_one = _timed(entity_scorer, marked_texts(one))
    entity_all = _timed(entity_scorer, marked_texts(rows))
    print(json.dumps({
        "bench": "entity_scoring", "set": args.set, "threads": args.threads, "numeric": REFERENCE_NUMERIC,
        "texts": len(texts), "entity_rows": len(rows), "entities_per_text": round(len(rows) / len(texts), 3),
        "sentence_per_text": sentence, "entity_first_mention_per_text": entity_one, "entity_every_row": entity_all,
        "cost_ratio_one_entity": round(entity_one["cpu_s"] / sentence["cpu_s"], 3),
        "cost_ratio_all_entities": round(entity_all["cpu_s"] / sentence["cpu_s"], 3),
        "target_one_entity_max": 1.5,
        "loadavg_start": load_start, "loadavg_end": os.getloadavg(),
    }))


if __name__ == "__main__":
    main()
