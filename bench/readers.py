"""Benchmark: the Document reader (exact line numbers, per-row rejects) vs a plain pandas read.

    .venv/bin/python bench/readers.py                 # all 119,641 StockNet tweets
    .venv/bin/python bench/readers.py --rows 20000    # quick

The tweets (``$ALTSIGNAL_DATASETS/dated_social``) are written to a temporary CSV in the
``sample:social``-like layout (ISO times with ``Z``; quoted newlines occur in real tweets) and
read twice in the same run: (a) ``nlp.readers.documents.read_documents`` and (b) the obvious
alternative, ``pd.read_csv`` (C engine) + ``pd.to_datetime(utc=True)``, which gives no line numbers
and no rejects (one bad byte fails the whole file). ``engine="pyarrow"`` is not an option: it
stops at the first quoted newline ("Expected 4 columns, got 1"). Prints ONE JSON line with both times,
rows/s, the ratio and whether the two agreed on every text and timestamp.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.paths import dataset_path  # noqa: E402
from core.rejects import Rejects  # noqa: E402
from nlp.readers.documents import ColumnMapping, read_documents  # noqa: E402

MAPPING = ColumnMapping(doc_id="id", text="text", published_at="created_at", entities="ticker")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=None)
    args = ap.parse_args()
    tweets = pd.read_parquet(dataset_path("dated_social", "stocknet_tweets.parquet"),
                             columns=["ticker", "tweet_id", "published_at_utc", "text"])
    if args.rows:
        tweets = tweets.head(args.rows)
    raw = pd.DataFrame({"id": tweets.ticker + ":" + tweets.tweet_id, "ticker": tweets.ticker,
                        "created_at": tweets.published_at_utc.dt.strftime("%Y-%m-%dT%H:%M:%SZ"), "text": tweets.text})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "social.csv"
        # QUOTE_ALL: pandas' default leaves a lone CR unquoted, which no CSV reader can parse right
        raw.to_csv(path, index=False, quoting=csv.QUOTE_ALL)

        t0 = time.perf_counter()
        rejects = Rejects()
        ours = read_documents(path, MAPPING, "social", rejects)
        t_ours = time.perf_counter() - t0

        t0 = time.perf_counter()
        plain = pd.read_csv(path, dtype=str, keep_default_na=False)
        plain["published_at"] = pd.to_datetime(plain.created_at, utc=True, format="ISO8601")
        t_plain = time.perf_counter() - t0

    same = (len(ours) == len(plain) and (ours.text.to_numpy() == plain.text.to_numpy()).all()
            and (ours.published_at.to_numpy() == plain.published_at.astype("datetime64[us, UTC]").to_numpy()).all())
    print(json.dumps({
        "bench": "readers", "rows": len(raw), "documents": len(ours), "rejects": len(rejects),
        "reader_s": round(t_ours, 3), "pandas_s": round(t_plain, 3),
        "reader_rows_per_s": round(len(raw) / t_ours), "pandas_rows_per_s": round(len(raw) / t_plain),
        "ratio_reader_over_pandas": round(t_ours / t_plain, 2), "outputs_match": bool(same),
    }))
    if not same:
        raise SystemExit("reader and pandas disagree")


if __name__ == "__main__":
    main()
