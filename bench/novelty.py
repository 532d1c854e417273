"""Benchmark of document embeddings and point-in-time novelty (prints ONE JSON line per mode).

Default mode:

- ``embed_per_s``: MiniLM sentence embeddings per second (``nlp.embeddings.Embedder``) on
  ``--embed-n`` real headlines (dated analyst-ratings news), ``--threads`` threads;
- ``novelty_rows_per_s``: ``signals.novelty.novelty`` on ``--n`` synthetic documents: normalized
  random 384-d float32 vectors over ``--entities`` entities with Zipf-like per-entity counts
  (a few tickers with tens of thousands of documents, most with a few hundred or less) spread
  over ``--sessions`` XNYS sessions at random times of day, 10% exact reprints;
- ``naive_rows_per_s``: per document, a Python loop that masks all documents of its entity to
  the strictly-earlier ones in the window and takes the max of their dot products, measured on
  ``--naive-n`` random documents of the same data and given per row; ``ratio`` = novelty / naive;
- ``peak_rss_mb`` of this process.

``--score-cost``: ``altsignal score`` jobs (run_job) on ``--score-n`` real headlines with the
shipped default model, without and then with ``--embed`` (no score cache, same threads, one
run), docs/s of each (model loading included: both jobs load the sentiment model; the second also
loads MiniLM).

``--reuse``: whether the fine-tuned sentiment encoder can serve as the embedder (one forward
pass): mean-pooled normalized last hidden states of the shipped default model (LoRA merged)
against MiniLM sentence embeddings on ``--reuse-n`` headlines: mean/min cosine of the two
embeddings of the same text, Spearman of all pairwise similarities, agreement of stale flags.

``--corpora``: embedding + novelty wall times over the 119,641 StockNet tweets and the 7,858
dated headlines, and the numbers behind ``signals.novelty.STALE_THRESHOLD``: max-similarity of
retweets whose original (same text after the "RT @user:" prefix) was tweeted earlier for the
same ticker within the window, against that of originals, and of Benzinga's repeated list
headlines ("Stocks Moving In", "Biggest Movers") against other headlines.

    .venv/bin/python bench/novelty.py --threads 2
    .venv/bin/python bench/novelty.py --score-cost --reuse --corpora --threads 2
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from core.threads import set_threads

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

NEWS = "dated_news/analyst_ratings_processed_partial_to2018.parquet"
TWEETS = "dated_social/stocknet_tweets.parquet"


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def datasets() -> Path:
    from core.paths import datasets_dir

    return Path(datasets_dir())


def headlines(n: int | None = None, seed: int = 0) -> pd.DataFrame:
    df = pd.read_parquet(datasets() / NEWS)
    return df if n is None or n >= len(df) else df.sample(n, random_state=seed).reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
def synthetic(n: int, entities: int, n_sessions: int, dim: int = 384, seed: int = 0) -> pd.DataFrame:
    import pyarrow as pa

    from signals.sessions import session_cutoffs, sessions

    rng = np.random.default_rng(seed)
    w = 1.0 / np.arange(1, entities + 1) ** 0.9  # Zipf-like: ticker 1 has ~ n/12 documents
    ent = rng.choice(entities, n, p=w / w.sum())
    days = sessions("XNYS", "2012-01-03")[:n_sessions]
    cut = session_cutoffs(days).asi8
    s = rng.integers(0, n_sessions, n)
    t = cut[s] - rng.integers(0, 24 * 3600, n) * 1_000_000_000  # within the day before each cutoff
    vec = rng.standard_normal((n, dim), dtype=np.float32)
    rep = rng.random(n) < 0.10  # reprints: a copy of another document of the same row set
    vec[rep] = vec[rng.integers(0, n, int(rep.sum()))]
    vec /= np.linalg.norm(vec, axis=1, keepdims=True)
    col = pa.FixedSizeListArray.from_arrays(pa.array(vec.ravel()), dim)
    return pd.DataFrame({"doc_id": np.char.add("d", np.arange(n).astype(str)).astype(object),
                         "entity": np.char.add("E", ent.astype(str)).astype(object),
                         "known_at": pd.to_datetime(t, utc=True),
                         "embedding": pd.Series(pd.arrays.ArrowExtensionArray(col))})


def naive(frame: pd.DataFrame, rows: np.ndarray, window: int) -> np.ndarray:
    """Per document: mask all documents of its entity to earlier-and-in-window, max dot product."""
    from nlp.embeddings import embedding_matrix
    from signals.sessions import assign_session, session_index

    emb = embedding_matrix(frame["embedding"])
    t = pd.DatetimeIndex(frame["known_at"]).asi8
    sess = session_index(assign_session(frame["known_at"]))
    groups = frame.groupby("entity").indices
    ent = frame["entity"].to_numpy()
    out = np.full(len(rows), np.nan)
    for k, i in enumerate(rows):
        g = groups[ent[i]]
        m = (t[g] < t[i]) & (sess[i] - sess[g] < window)
        if m.any():
            out[k] = (emb[g[m]] @ emb[i]).max()
    return out


def bench_default(args) -> dict:

    from nlp.embeddings import Embedder
    from signals.novelty import novelty

    set_threads(args.threads)
    out: dict = {"bench": "novelty", "threads": args.threads, "loadavg_start": os.getloadavg()[0]}
    emb = Embedder(threads=args.threads)
    texts = headlines(args.embed_n)["headline"].astype(str).tolist()
    emb.encode(texts[:64])  # warm-up
    t0 = time.perf_counter()
    emb.encode(texts)
    out["embed_n"] = len(texts)
    out["embed_per_s"] = round(len(texts) / (time.perf_counter() - t0), 1)

    t0 = time.perf_counter()
    frame = synthetic(args.n, args.entities, args.sessions)
    out["synthetic_build_s"] = round(time.perf_counter() - t0, 1)
    counts = frame["entity"].value_counts()
    out.update(n=args.n, entities=int(counts.size), sessions=args.sessions,
               docs_per_entity={"max": int(counts.max()), "median": int(counts.median()), "min": int(counts.min())})
    t0 = time.perf_counter()
    res = novelty(frame, window_sessions=args.window)
    dt = time.perf_counter() - t0
    out["novelty_s"] = round(dt, 1)
    out["novelty_rows_per_s"] = round(args.n / dt, 1)
    out["stale_share"] = round(float(res["stale"].mean()), 4)

    rng = np.random.default_rng(1)
    rows = np.sort(rng.choice(args.n, args.naive_n, replace=False))
    t0 = time.perf_counter()
    ref = naive(frame, rows, args.window)
    dt_naive = time.perf_counter() - t0
    out["naive_n"] = args.naive_n
    out["naive_rows_per_s"] = round(args.naive_n / dt_naive, 1)
    out["ratio"] = round(out["novelty_rows_per_s"] / out["naive_rows_per_s"], 1)
    got = res["max_sim"].to_numpy()[rows]
    out["naive_max_abs_diff"] = float(np.nanmax(np.abs(np.nan_to_num(got, nan=-9) - np.nan_to_num(ref, nan=-9))))
    out["peak_rss_mb"] = peak_rss_mb()
    out["loadavg_end"] = os.getloadavg()[0]
    return out


# ---------------------------------------------------------------------------------------------
def bench_score_cost(args) -> dict:
    import tempfile

    from nlp.models import model_path
    from nlp.readers.documents import get_preset
    from nlp.scoring.config import EngineConfig, JobConfig
    from nlp.scoring.job import JobSpec, run_job

    preset = get_preset("news")
    df = pd.read_parquet(datasets() / NEWS).head(args.score_n)
    out: dict = {"bench": "novelty_score_cost", "threads": args.threads, "docs": len(df),
                 "loadavg_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "news.parquet"
        df.to_parquet(src)
        # Warm-up (not timed): the first job of a model runs its numeric accuracy check for `auto`
        # and fills the OS file cache; both timed jobs then start from the same state.
        df.head(64).to_parquet(Path(tmp) / "warm.parquet")
        run_job(JobSpec([str(Path(tmp) / "warm.parquet")], preset.source, preset.mapping, model_path(None),
                        Path(tmp) / "warm", JobConfig(engine=EngineConfig(threads=args.threads), use_cache=False,
                                                      embed=True)), progress=False)
        for embed in (False, True):
            cfg = JobConfig(engine=EngineConfig(threads=args.threads), use_cache=False, embed=embed)
            spec = JobSpec([str(src)], preset.source, preset.mapping, model_path(None), Path(tmp) / f"out{embed}", cfg)
            t0 = time.perf_counter()
            m = run_job(spec, progress=False)
            dt = time.perf_counter() - t0
            key = "score_embed" if embed else "score_only"
            out[f"{key}_docs_per_s"] = round(m["counts"]["docs_scored"] / dt, 1)
            out[f"{key}_s"] = round(dt, 1)
            out["numeric"] = m["numeric"]
    out["embed_overhead"] = round(out["score_embed_s"] / out["score_only_s"] - 1, 3)
    out["loadavg_end"] = os.getloadavg()[0]
    return out


# ---------------------------------------------------------------------------------------------
def bench_reuse(args) -> dict:
    import torch
    from scipy.stats import spearmanr

    from nlp.embeddings import Embedder
    from nlp.models import model_path
    from nlp.models.artifact import load_classifier
    from signals.novelty import STALE_THRESHOLD, novelty

    set_threads(args.threads)
    df = headlines(args.reuse_n, seed=2)
    texts = df["headline"].astype(str).tolist()
    mini = Embedder(threads=args.threads).encode(texts)
    sm = load_classifier(model_path(None))
    encoder = sm.model.base_model  # the LoRA-merged BERT encoder under the classification head
    vecs = []
    with torch.inference_mode():
        for i in range(0, len(texts), 64):
            enc = sm.tokenizer(texts[i:i + 64], padding=True, truncation=True, max_length=128, return_tensors="pt")
            h = encoder(**enc).last_hidden_state
            m = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
            v = (h * m).sum(1) / m.sum(1)
            vecs.append(torch.nn.functional.normalize(v, dim=1).numpy())
    tuned = np.concatenate(vecs).astype(np.float32)
    cos = (mini * tuned).sum(1)
    iu = np.triu_indices(len(texts), 1)
    rho = spearmanr((mini @ mini.T)[iu], (tuned @ tuned.T)[iu]).statistic
    frame = pd.DataFrame({"doc_id": [str(x) for x in df["source_row"]], "entity": df["ticker"].astype(str),
                          "known_at": df["published_at_utc"]})
    a = novelty(frame.assign(embedding=list(mini)), window_sessions=5)
    b = novelty(frame.assign(embedding=list(tuned)), window_sessions=5)
    # Near-duplicate pairs over all pairs (not only same-ticker): top-1% by MiniLM vs the tuned encoder.
    sa, sb = (mini @ mini.T)[iu], (tuned @ tuned.T)[iu]
    top = sa >= np.quantile(sa, 0.99)
    top_b = sb >= np.quantile(sb, 0.99)
    return {"bench": "novelty_reuse", "n": len(texts), "model_id": sm.meta.model_id,
            "mean_cosine": round(float(cos.mean()), 4), "min_cosine": round(float(cos.min()), 4),
            "p10_cosine": round(float(np.quantile(cos, 0.1)), 4),
            "spearman_pairwise": round(float(rho), 4),
            "top1pct_pair_overlap": round(float((top & top_b).sum() / top.sum()), 4),
            "stale_threshold": STALE_THRESHOLD,
            "stale_minilm": int(a["stale"].sum()), "stale_tuned": int(b["stale"].sum()),
            "stale_agreement": round(float((a["stale"] == b["stale"]).mean()), 4),
            "stale_minilm_missed_by_tuned": int((a["stale"] & ~b["stale"]).sum()),
            "max_sim_spearman": round(float(spearmanr(a["max_sim"], b["max_sim"], nan_policy="omit").statistic), 4)}


# ---------------------------------------------------------------------------------------------
def bench_corpora(args) -> dict:

    from nlp.embeddings import Embedder
    from signals.novelty import novelty

    set_threads(args.threads)
    out: dict = {"bench": "novelty_corpora", "threads": args.threads, "loadavg_start": os.getloadavg()[0]}
    cache = Path(args.cache) if args.cache else None
    emb = Embedder(threads=args.threads)

    def embed(name: str, texts: list[str]) -> np.ndarray:
        f = cache / f"{name}_{len(texts)}.npy" if cache else None
        if f is not None and f.exists():
            out[f"{name}_embed_s"] = "cached"
            return np.load(f)
        t0 = time.perf_counter()
        v = emb.encode(texts)
        out[f"{name}_embed_s"] = round(time.perf_counter() - t0, 1)
        if f is not None:
            f.parent.mkdir(parents=True, exist_ok=True)
            np.save(f, v)
        return v

    tw = pd.read_parquet(datasets() / TWEETS)
    tw = tw.drop_duplicates(["tweet_id", "ticker"]).reset_index(drop=True)
    out["stocknet_rows_all"] = len(tw)
    if args.stocknet_max and len(tw) > args.stocknet_max:  # whole tickers, in a seeded order, up to the cap
        sizes = tw["ticker"].value_counts().sample(frac=1.0, random_state=0)
        keep = sizes.index[(sizes.cumsum() <= args.stocknet_max).to_numpy()]
        tw = tw[tw["ticker"].isin(keep)].reset_index(drop=True)
        out["stocknet_tickers"] = sorted(keep)
    v = embed("stocknet", tw["text"].astype(str).tolist())
    out["stocknet_rows"] = len(tw)
    frame = pd.DataFrame({"doc_id": tw["tweet_id"].astype(str), "entity": tw["ticker"].astype(str),
                          "known_at": tw["published_at_utc"], "embedding": list(v)})
    t0 = time.perf_counter()
    nov = novelty(frame)
    out["stocknet_novelty_s"] = round(time.perf_counter() - t0, 1)
    sim = nov["max_sim"].to_numpy()
    rt = tw["is_retweet"].to_numpy()
    # A retweet's body (after "RT @user:", without the "…" cut and its possibly cut last word) that an
    # original tweet of the same ticker starts with: the pair's cosine is what a retweet looks like.
    body = (tw["text"].astype(str).str.replace(r"^RT @\w+:\s*", "", regex=True).str.replace("…", "", regex=False)
            .str.strip().str.replace(r"\s+\S*$", "", regex=True))
    q = [0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999]

    def quant(x):
        x = x[~np.isnan(x)]
        return {str(k): round(float(np.quantile(x, k)), 3) for k in q} | {"n": int(len(x))}

    originals = tw.loc[~rt, ["ticker", "text"]]
    by_ticker = {tk: list(zip(g.index, g["text"])) for tk, g in originals.groupby("ticker")}
    pairs = []
    for i in np.flatnonzero(rt):
        if len(body[i]) >= 25:
            j = next((j for j, t in by_ticker.get(tw["ticker"][i], []) if t.startswith(body[i])), None)
            if j is not None:
                pairs.append((i, j))
    pc = np.array([v[i] @ v[j] for i, j in pairs])
    out["stocknet_cos_retweet_vs_its_original"] = quant(pc)
    out["stocknet_max_sim_retweets"] = quant(sim[rt])
    out["stocknet_max_sim_originals"] = quant(sim[~rt])
    for th in (0.05, 0.1, 0.15, 0.2, 0.3):
        out[f"stocknet_at_{th}"] = {"retweet_pairs_caught": round(float(np.mean(1 - pc < th)), 3),
                                    "originals_stale": round(float(np.mean(nov["novelty"].to_numpy()[~rt] < th)), 3),
                                    "retweets_stale": round(float(np.mean(nov["novelty"].to_numpy()[rt] < th)), 3)}

    news = pd.read_parquet(datasets() / NEWS)
    v = embed("news", news["headline"].astype(str).tolist())
    nf = pd.DataFrame({"doc_id": news["source_row"].astype(str), "entity": news["ticker"].astype(str),
                       "known_at": news["published_at_utc"], "embedding": list(v)})
    t0 = time.perf_counter()
    nn = novelty(nf)
    out["news_rows"] = len(news)
    out["news_novelty_s"] = round(time.perf_counter() - t0, 1)
    ns = nn["max_sim"].to_numpy()
    lists = news["headline"].str.contains("Stocks Moving In", regex=False).to_numpy()
    li = np.flatnonzero(lists)
    iu = np.triu_indices(len(li), 1)
    texts = news["headline"].to_numpy()
    differ = texts[li][iu[0]] != texts[li][iu[1]]
    out["news_cos_list_headline_pairs"] = quant((v[li] @ v[li].T)[iu][differ])  # "36 Stocks Moving In Tuesday's ..." vs "26 ..."
    rest = np.random.default_rng(0).choice(np.flatnonzero(~lists), 1500, replace=False)
    iu = np.triu_indices(len(rest), 1)
    out["news_cos_random_pairs"] = quant((v[rest] @ v[rest].T)[iu])
    out["news_max_sim_list_headlines"] = quant(ns[lists])
    out["news_max_sim_other_headlines"] = quant(ns[~lists])
    for th in (0.05, 0.1, 0.15, 0.2, 0.3):
        nv = nn["novelty"].to_numpy()
        out[f"news_stale_at_{th}"] = {"list": round(float(np.mean(nv[lists] < th)), 3),
                                      "other": round(float(np.mean(nv[~lists] < th)), 3)}
    out["peak_rss_mb"] = peak_rss_mb()
    out["loadavg_end"] = os.getloadavg()[0]
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--n", type=int, default=1_000_000, help="synthetic documents for the novelty rate")
    p.add_argument("--entities", type=int, default=2000)
    p.add_argument("--sessions", type=int, default=1500)
    p.add_argument("--window", type=int, default=5)
    p.add_argument("--naive-n", type=int, default=2000)
    p.add_argument("--embed-n", type=int, default=3000)
    p.add_argument("--score-cost", action="store_true")
    p.add_argument("--score-n", type=int, default=2000)
    p.add_argument("--reuse", action="store_true")
    p.add_argument("--reuse-n", type=int, default=1000)
    p.add_argument("--corpora", action="store_true")
    p.add_argument("--stocknet-max", type=int, default=0, help="embed only whole tickers up to this many tweets (0: all)")
    p.add_argument("--cache", default=None, help="folder to keep corpus embeddings between runs (.npy)")
    p.add_argument("--skip-default", action="store_true")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    set_threads(args.threads)
    if not args.skip_default:
        print(json.dumps(bench_default(args)), flush=True)
    if args.score_cost:
        print(json.dumps(bench_score_cost(args)), flush=True)
    if args.reuse:
        print(json.dumps(bench_reuse(args)), flush=True)
    if args.corpora:
        print(json.dumps(bench_corpora(args)), flush=True)


if __name__ == "__main__":
    main()
