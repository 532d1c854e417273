"""Benchmark of the scoring engine against Hugging Face ``pipeline`` (prints ONE JSON line).

Same model, same threads, same sentences, one run:

- ``pipeline`` one text per call (on a seeded subsample; its rate is per sentence, so it
  extrapolates), ``pipeline`` with ``batch_size=64`` on every sentence;
- the engine on every numeric path (fp32, bf16 where the CPU has AMX/AVX512-BF16, static int8)
  and on ``numeric="auto"`` (the default: fastest path that passed the accuracy check, whose
  record is included);
- sentences/s, ratios to both pipelines, accuracy on the labels, peak RSS, and the achieved
  useful FLOP rate against this machine's fp32 (and bf16) matmul peak measured in the same run.
  Useful FLOPs come from each sentence's real token count (no padding):
  ``2 * params_per_token + 4 * n * hidden`` per token per layer, ~0.65 GFLOP for a 30-token
  sentence through MiniLM-L6.

Data: PhraseBank 50-agree (all splits) + TFNS (carved validation + published validation) =
8,193 real labeled sentences, a seeded ``--n`` sample of them (default 5,000). Accuracy is given
on all of them and on the held-out part (validation/test splits, never trained on by the
default model). The model is the shipped default unless ``--model`` is given.

``--memory-rows N`` instead runs a streaming ``altsignal score`` job over an N-row Parquet file
(real headlines cycled, distinct doc ids) and reports its peak RSS: the bounded-memory check.

    .venv/bin/python bench/scoring.py --threads 2
    .venv/bin/python bench/scoring.py --memory-rows 1000000
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_sentences(n: int | None, seed: int = 0):
    import pandas as pd

    from nlp.readers.labeled_sets import load_labeled_set

    sets = [("fpb:50agree:train", False), ("fpb:50agree:validation", True), ("fpb:50agree:test", True),
            ("tfns:validation", True), ("tfns:test", True)]
    df = pd.concat([load_labeled_set(name)[["text", "label"]].assign(set=name, heldout=held) for name, held in sets],
                   ignore_index=True)
    if n and n < len(df):  # seeded sample
        df = df.sample(n=n, random_state=seed)
    return df.reset_index(drop=True)


def matmul_peak(dtype: str, threads: int, size: int = 1024, seconds: float = 2.0) -> float:
    """GFLOP/s of a square matmul (best of repeated timings) with ``threads`` threads."""
    import torch

    torch.set_num_threads(threads)
    dt = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    a, b = torch.randn(size, size, dtype=dt), torch.randn(size, size, dtype=dt)
    for _ in range(3):
        a @ b
    best, end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * size**3 / best / 1e9


def useful_gflop(model, n_tokens: np.ndarray) -> float:
    """Forward FLOPs of the encoder for sequences of the given real lengths (no padding)."""
    cfg = model.config
    h, f, layers = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
    n = n_tokens.astype(np.float64)
    per_layer = n * (2 * (4 * h * h + 2 * h * f)) + 4 * n * n * h  # projections + FFN, QK^T and AV
    return float((layers * per_layer).sum() / 1e9)


def run_pipeline(sm, texts: list[str], threads: int, batch_size: int | None) -> tuple[list[str], float]:
    import torch
    from transformers import pipeline

    torch.set_num_threads(threads)
    pipe = pipeline("text-classification", model=sm.model, tokenizer=sm.tokenizer, device=-1,
                    truncation=True, max_length=sm.meta.max_length)
    pipe(texts[:4])  # warm-up
    t = time.perf_counter()
    if batch_size is None:
        out = [pipe(x)[0] for x in texts]
    else:
        out = pipe(texts, batch_size=batch_size)
    return [o["label"] for o in out], time.perf_counter() - t


def bench(args) -> dict:
    import torch

    from nlp.models.artifact import load_classifier
    from nlp.models.metrics import accuracy
    from nlp.scoring.backends import cpu_has_fast_bf16
    from nlp.scoring.config import EngineConfig
    from nlp.scoring.engine import ScoringEngine
    from nlp.scoring.numeric import candidate_paths, read_check

    if args.model is None:
        from nlp.models import default_model_path

        args.model = default_model_path()
    result: dict = {"bench": "scoring", "model": str(args.model), "threads": args.threads,
                    "loadavg_start": os.getloadavg()[0], "cpu_fast_bf16": cpu_has_fast_bf16()}
    df = load_sentences(args.n)
    texts, gold = df["text"].astype(str).tolist(), df["label"].tolist()
    held = df["heldout"].to_numpy()
    result["n_heldout"] = int(held.sum())
    result["n_sentences"] = len(texts)
    result["n_distinct"] = len(set(texts))
    torch.manual_seed(0)
    sm = load_classifier(args.model)
    result["model_id"] = sm.meta.model_id

    rng = np.random.default_rng(0)
    sub = sorted(rng.choice(len(texts), size=min(args.one_at_a_time, len(texts)), replace=False))
    labels, secs = run_pipeline(sm, [texts[i] for i in sub], args.threads, None)
    one = {"sentences_per_s": len(sub) / secs, "n": len(sub), "accuracy": accuracy(labels, [gold[i] for i in sub])}
    labels, secs = run_pipeline(sm, texts, args.threads, 64)
    batched = {"sentences_per_s": len(texts) / secs, "n": len(texts), "accuracy": accuracy(labels, gold),
               "accuracy_heldout": accuracy(np.asarray(labels)[held], np.asarray(gold)[held])}
    result["pipeline_one_at_a_time"], result["pipeline_batch64"] = one, batched
    result["peak_rss_mb_after_pipelines"] = peak_rss_mb()
    del sm

    fp32_peak = matmul_peak("fp32", args.threads)
    bf16_peak = matmul_peak("bf16", args.threads) if cpu_has_fast_bf16() else None
    result["matmul_peak_gflops"] = {"fp32": fp32_peak, "bf16": bf16_peak}

    paths = {}
    for numeric in candidate_paths("cpu") + ["auto"]:
        cfg = EngineConfig(numeric=numeric, threads=args.threads, batch_tokens=args.batch_tokens)
        t_build = time.perf_counter()
        eng = ScoringEngine(args.model, cfg)
        build_s = time.perf_counter() - t_build
        eng.score(texts[:64])  # warm-up: kernels, JIT
        eng._cache.clear()
        eng.n_texts = eng.n_computed = eng.real_tokens = eng.padded_tokens = 0
        t = time.perf_counter()
        scored = eng.score(texts)
        secs = time.perf_counter() - t
        pred = [eng.labels[i] for i in scored.probs.argmax(axis=1)]
        rate = len(texts) / secs
        gflop = useful_gflop(eng.sm.model, scored.n_tokens[np.unique(texts, return_index=True)[1]])
        paths[numeric if numeric != "auto" else f"auto({eng.numeric})"] = {
            "numeric": eng.numeric, "sentences_per_s": rate, "seconds": secs, "texts_computed": eng.n_computed,
            "accuracy": accuracy(pred, gold),
            "accuracy_heldout": accuracy(np.asarray(pred)[held], np.asarray(gold)[held]), "x_pipeline_one": rate / one["sentences_per_s"],
            "x_pipeline_batch64": rate / batched["sentences_per_s"],
            "useful_gflops": gflop / secs, "fraction_of_fp32_peak": gflop / secs / fp32_peak,
            "setup_s": build_s, "mean_tokens": float(scored.n_tokens.mean()),
            "padding_overhead": eng.padded_tokens / max(eng.real_tokens, 1),
        }
        if numeric == "auto":
            result["numeric_check"] = read_check(eng)
            result["default_path"] = eng.numeric
        del eng
    fp32_acc = paths["fp32"]["accuracy"]
    for p in paths.values():
        p["delta_points_vs_fp32"] = 100 * (p["accuracy"] - fp32_acc)
    result["engine"] = paths
    default = next(v for k, v in paths.items() if k.startswith("auto"))
    result["targets"] = {
        "x_pipeline_one>=15": default["x_pipeline_one"] >= 15,
        "x_pipeline_batch64>=8": default["x_pipeline_batch64"] >= 8,
        "accuracy_within_0.5pt": abs(default["delta_points_vs_fp32"]) <= 0.5,
    }
    result["peak_rss_mb"] = peak_rss_mb()
    result["loadavg_end"] = os.getloadavg()[0]
    return result


def memory_check(args) -> dict:
    """Peak RSS of a streaming job over ``--memory-rows`` rows (run in a child process)."""
    import subprocess

    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from nlp.paths import dataset_path

    heads = pd.read_parquet(dataset_path("dated_news", "analyst_ratings_processed_partial_to2018.parquet"))
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "rows.parquet"
        writer = None
        block = 100_000
        for start in range(0, args.memory_rows, block):
            n = min(block, args.memory_rows - start)
            idx = np.arange(start, start + n) % len(heads)
            t = pa.table({"doc_id": [f"r{i}" for i in range(start, start + n)],
                          "published_at": heads["published_at"].to_numpy()[idx],
                          "ticker": heads["ticker"].to_numpy()[idx], "headline": heads["headline"].to_numpy()[idx]})
            writer = writer or pq.ParquetWriter(src, t.schema)
            writer.write_table(t)
        writer.close()
        cmd = [sys.executable, "-c", "import resource,sys; from nlp.cli import app\n"
               "try:\n    app()\nexcept SystemExit as e:\n    code = e.code\n"
               "print('PEAK_RSS_MB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)",
               "score", "--input", str(src), "--source", "news", "--id-col", "doc_id", "--text-col", "headline",
               "--time-col", "published_at", "--entities-col", "ticker", "--out", str(Path(tmp) / "out"),
               "--threads", str(args.threads), "--quiet"]
        if args.model:
            cmd += ["--model", str(args.model)]
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        secs = time.perf_counter() - t
        peak = [float(l.split()[1]) for l in proc.stdout.splitlines() if l.startswith("PEAK_RSS_MB")]
        manifest = json.loads((Path(tmp) / "out" / "manifest.json").read_text())
        return {"bench": "scoring_memory", "rows": args.memory_rows, "distinct_texts": int(heads["headline"].nunique()),
                "peak_rss_mb": peak[0] if peak else None, "seconds": secs, "counts": manifest.get("counts"),
                "returncode": proc.returncode, "stderr_tail": proc.stderr[-500:] if proc.returncode else ""}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n", type=int, default=5000, help="sentences sampled from the 8,193 (0 = all)")
    ap.add_argument("--one-at-a-time", type=int, default=500, help="subsample for the one-text pipeline")
    ap.add_argument("--batch-tokens", type=int, default=4096)
    ap.add_argument("--memory-rows", type=int, default=0, help="run the streaming memory check instead")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import logging

    logging.basicConfig(level=logging.WARNING)
    out = memory_check(args) if args.memory_rows else bench(args)
    print(json.dumps(out, default=float))


if __name__ == "__main__":
    main()
