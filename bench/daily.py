"""Daily operation: one day's increment into a large store, incremental build vs full rebuild.

Prints one JSON line. A store holding ``--rows`` synthetic score rows (``synthetic_scores``:
``--entities`` tickers over ``--years`` years) is built once (not timed in the ratio). Then one
day's increment, ``--docs`` new documents published for the next session (ingested a minute
after publication), is measured two ways in the same run:

* ``incremental_s``: ``add_scores`` of the increment into the existing store plus
  ``build(as_of)`` (incremental). The base's late arrivals (documents published before the base
  build but stamped after it) also become visible in this build, as in daily operation.
* ``full_s``: the full rebuild: a fresh store ingesting every row (base and increment) and a
  full build, which also initializes the incremental state. ``full_build_s`` is the build part
  alone, and ``ratio_build`` = full_build_s / incremental_build_s.

``identical``: every feature row dated from the first session the incremental build touched
on (the new session and the late documents' sessions) compares equal between the two stores
(keys, counts and known_at exactly; floats within the store's change tolerance, 1e-12 relative).
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from signals.sessions import session_cutoffs, sessions  # noqa: E402
from signals.store import FeatureStore  # noqa: E402
from signals.synthetic import synthetic_scores  # noqa: E402


def increment(base_as_of: pd.Timestamp, n_docs: int, n_entities: int, seed: int) -> tuple[pa.Table, pd.Timestamp]:
    """``n_docs`` single-unit documents published for the first session after ``base_as_of``'s day."""
    all_ = sessions("XNYS")
    nxt = all_[all_.searchsorted(base_as_of.tz_convert("America/New_York").tz_localize(None).normalize(), "right")]
    cut_prev, cut = session_cutoffs(all_[all_.get_loc(nxt) - 1: all_.get_loc(nxt) + 1])
    span = (cut - cut_prev - pd.Timedelta(minutes=5)) / pd.Timedelta(days=365.25)
    t = synthetic_scores(n_docs, n_entities, start=str(cut_prev.tz_convert("UTC").tz_localize(None)), years=span, seed=seed,
                         units_per_call=1, late_share=0.0)
    t = t.set_column(t.schema.get_field_index("doc_id"), "doc_id", pc.binary_join_element_wise("inc", t["doc_id"], ""))
    ing = pc.add(t["published_at"], pa.scalar(pd.Timedelta(minutes=1).to_pytimedelta(), pa.duration("us")))
    t = t.set_column(t.schema.get_field_index("ingested_at"), "ingested_at", ing.cast(t.schema.field("ingested_at").type))
    return t, cut + pd.Timedelta(hours=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--entities", type=int, default=3_000)
    ap.add_argument("--years", type=float, default=10.0)
    ap.add_argument("--docs", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    base = synthetic_scores(args.rows, args.entities, years=args.years, seed=args.seed)
    # The base build happens at the end of the last base session's day (later rows are late arrivals).
    pub = pc.max(base["published_at"]).as_py()
    base_as_of = pd.Timestamp(pub).tz_convert("UTC")
    inc, as_of = increment(base_as_of, args.docs, args.entities, args.seed + 1)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        with FeatureStore(Path(tmp) / "daily.duckdb") as store:
            store.add_scores(base, ingested_at=None)
            store.build(as_of=base_as_of)
            setup_s = time.perf_counter() - t

            t = time.perf_counter()
            store.add_scores(inc)
            t_b = time.perf_counter()
            recomputed = store.build(as_of=as_of)
            incremental_s = time.perf_counter() - t
            inc_build_s = time.perf_counter() - t_b
            since = recomputed["date"].min()
            inc_rows = store.daily(start=since, carry_events=False)

        t = time.perf_counter()
        with FeatureStore(Path(tmp) / "full.duckdb") as full:
            full.add_scores(pa.concat_tables([base, inc]))
            t_b = time.perf_counter()
            full.build(as_of=as_of, incremental=False)
            full_s = time.perf_counter() - t
            full_build_s = time.perf_counter() - t_b
            full_rows = full.daily(start=since, carry_events=False)
            rows_total = full.counts()["daily_features"]

    key = ["date", "entity", "source"]
    a = inc_rows.sort_values(key).reset_index(drop=True)
    b = full_rows.sort_values(key).reset_index(drop=True)
    try:
        pd.testing.assert_frame_equal(a, b, check_dtype=False, rtol=1e-12, atol=1e-12)
        identical = True
    except AssertionError:
        identical = False
    print(json.dumps({
        "bench": "daily",
        "rows": args.rows,
        "entities": args.entities,
        "years": args.years,
        "increment_docs": args.docs,
        "increment_rows": inc.num_rows,
        "feature_rows": int(rows_total),
        "recomputed_rows": len(recomputed),
        "compared_rows": len(b),
        "setup_s": round(setup_s, 2),
        "full_s": round(full_s, 2),
        "full_build_s": round(full_build_s, 2),
        "incremental_s": round(incremental_s, 3),
        "incremental_build_s": round(inc_build_s, 3),
        "ratio": round(full_s / incremental_s, 1),
        "ratio_build": round(full_build_s / inc_build_s, 1),
        "identical": identical,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }))


if __name__ == "__main__":
    main()
