"""The draw behind ``labeled_events.csv`` (before labeling): provenance, not product code.

    python corpora/events/draw_sample.py OUT.csv   # columns dataset, row_key, text, split

News: distinct headlines (first ``source_row`` of each) of the Benzinga slice; social: English,
non-retweet StockNet tweets, one row per distinct tweet id and text; a uniform sample without
replacement of each with one ``numpy.random.default_rng(seed)``, then each dataset split by a
permutation of the same generator into dev (``dev_share``) and test.
"""
from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from core.paths import datasets_dir

SAMPLE_SEED = 20261201


def draw_labeled_sample(seed: int = SAMPLE_SEED, n_news: int = 250, n_social: int = 150,
                        dev_share: float = 0.4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    news = pd.read_parquet(datasets_dir() / "dated_news" / "analyst_ratings_processed_partial_to2018.parquet")
    news = news.sort_values("source_row").drop_duplicates("headline")
    n = news.iloc[np.sort(rng.choice(len(news), n_news, replace=False))]
    soc = pd.read_parquet(datasets_dir() / "dated_social" / "stocknet_tweets.parquet")
    soc = soc[(soc["lang"] == "en") & ~soc["is_retweet"]].sort_values("tweet_id")
    soc = soc.drop_duplicates("tweet_id").drop_duplicates("text")
    s = soc.iloc[np.sort(rng.choice(len(soc), n_social, replace=False))]
    out = pd.concat([
        pd.DataFrame({"dataset": "dated_news", "row_key": n["source_row"].astype(str), "text": n["headline"]}),
        pd.DataFrame({"dataset": "dated_social", "row_key": s["tweet_id"].astype(str), "text": s["text"]}),
    ], ignore_index=True)
    split = np.empty(len(out), dtype=object)
    for _, idx in out.groupby("dataset", sort=True).indices.items():
        perm = rng.permutation(idx)
        k = int(round(dev_share * len(idx)))
        split[perm[:k]], split[perm[k:]] = "dev", "test"
    out["split"] = split
    return out


if __name__ == "__main__":
    draw_labeled_sample().to_csv(sys.argv[1], index=False)
