"""Benchmark: daily features with DuckDB SQL vs a straightforward pandas groupby, same run.

    .venv/bin/python bench/features.py                 # 10M rows, 3,000 entities, 10 years
    .venv/bin/python bench/features.py --rows 200000   # quick

Prints ONE JSON line: rows, documents, feature rows, seconds for each path, the ratio
pandas/duckdb, peak RSS of the process, and whether the outputs matched (they are compared
column by column; the run fails if they do not). ``pandas_features`` below is also the reference
the tests compare the SQL against: it implements the definitions of ``signals.features``
independently, the obvious way.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nlp.contracts import MARKET_ENTITY  # noqa: E402
from signals.config import DEFAULT_CONFIG, SignalsConfig  # noqa: E402
from signals.feature_specs import ZERO_SPREAD  # noqa: E402
from signals.features import build_daily_features, output_columns  # noqa: E402
from signals.sessions import assign_session, config_kwargs, session_cutoffs, session_index  # noqa: E402
from signals.synthetic import synthetic_scores  # noqa: E402


def pandas_features(scores: pd.DataFrame, cfg: SignalsConfig = DEFAULT_CONFIG, as_of=None) -> pd.DataFrame:
    """Reference implementation of ``signals.features.build_daily_features`` in plain pandas."""
    fc = cfg.features
    df = scores.copy(deep=False)  # columns are replaced, never modified in place
    if "ingested_at" not in df:
        df["ingested_at"] = df["published_at"]
    df["ingested_at"] = df["ingested_at"].fillna(df["published_at"])
    if as_of is not None:
        df = df[df["ingested_at"] <= pd.Timestamp(as_of)]
    if df.empty:
        return pd.DataFrame(columns=output_columns(cfg))
    for c in ("p_neg", "p_neu", "p_pos", "score"):
        df[c] = df[c].astype("float64")
    docs = (
        df.groupby(["doc_id", "ingested_at"], sort=False)
        .agg(source=("source", "first"), published_at=("published_at", "first"), entities=("entities", "first"),
             p_neg=("p_neg", "mean"), p_neu=("p_neu", "mean"), p_pos=("p_pos", "mean"), score=("score", "mean"))
        .reset_index()
        .sort_values("ingested_at", kind="stable")
        .drop_duplicates("doc_id", keep="last")
    )
    docs["is_pos"] = ((docs.p_pos > docs.p_neg) & (docs.p_pos > docs.p_neu)).astype("int64")
    docs["is_neg"] = ((docs.p_neg > docs.p_pos) & (docs.p_neg > docs.p_neu)).astype("int64")
    docs["date"] = assign_session(docs["published_at"], **config_kwargs(cfg.sessions)).to_numpy()

    ent = docs[["doc_id", "entities"]].explode("entities").dropna()
    ent = ent[ent["entities"] != MARKET_ENTITY].drop_duplicates()
    per_entity = docs.drop(columns="entities").merge(ent.rename(columns={"entities": "entity"}), on="doc_id")
    market = docs.drop(columns="entities").assign(entity=MARKET_ENTITY)
    rows = pd.concat([per_entity, market], ignore_index=True)

    def agg(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
        g = frame.groupby(keys, sort=False)
        out = g.agg(n_docs=("score", "size"), n_pos=("is_pos", "sum"), n_neg=("is_neg", "sum"),
                    mean_score=("score", "mean"), max_ing=("ingested_at", "max"))
        out["dispersion"] = g["score"].std(ddof=0)
        return out.reset_index()

    daily = pd.concat(
        [agg(rows, ["date", "entity", "source"]),
         agg(rows, ["date", "entity"]).assign(source=fc.all_sources_key)],
        ignore_index=True,
    )
    daily = daily.sort_values(["entity", "source", "date"], kind="stable").reset_index(drop=True)
    polar = daily.n_pos + daily.n_neg
    daily["tone"] = (daily.n_pos - daily.n_neg) / polar.where(polar > 0)
    daily["share_pos"] = daily.n_pos / daily.n_docs
    daily["share_neg"] = daily.n_neg / daily.n_docs
    daily["s"] = session_index(daily["date"], cfg.sessions.calendar)
    # Session ordinals as fake days, so pandas' time-based rolling windows count sessions.
    daily["t"] = (pd.Timestamp("1970-01-01") + pd.to_timedelta(daily["s"], unit="D")).astype("datetime64[ns]")
    keys = ["entity", "source"]
    g = daily.groupby(keys, sort=False)
    s0 = g["s"].transform("min")
    lv = np.log1p(daily.n_docs)
    daily["lv"] = lv
    # daily is sorted by (entity, source, date), so grouped results come back in row order.
    vol_sum = _in_order(daily.groupby(keys, sort=False).rolling(f"{fc.volume_window}D", on="t", closed="left")["lv"].sum(), daily).fillna(0.0)
    age = daily["s"] - s0
    daily["abnormal_volume"] = (lv - vol_sum / np.minimum(fc.volume_window, age.where(age > 0))).where(age >= fc.min_periods)

    roll = daily.groupby(keys, sort=False).rolling(f"{fc.surprise_window}D", on="t", closed="left")["tone"]
    mean, std, cnt = (_in_order(r, daily) for r in (roll.mean(), roll.std(), roll.count()))
    ok = (cnt >= fc.min_periods) & (std > ZERO_SPREAD)
    daily["tone_surprise"] = ((daily["tone"] - mean) / std).where(ok)

    for h in fc.half_lives:
        ew = daily.groupby(keys, sort=False).ewm(halflife=pd.Timedelta(days=h), times=daily["t"])["tone"].mean()
        daily[f"ew_tone_{h}"] = _in_order(ew, daily)

    cutoff = pd.Series(session_cutoffs(daily["date"], cfg.sessions.cutoff, cfg.sessions.tz), index=daily.index)
    seen = daily.groupby(keys, sort=False)["max_ing"].cummax()
    daily["known_at"] = seen.where(seen > cutoff, cutoff)
    # The columns defined here: a feature spec added without a reference here is not checked.
    return daily[[c for c in output_columns(cfg) if c in daily]].reset_index(drop=True)


def _in_order(grouped: pd.Series, like: pd.DataFrame) -> pd.Series:
    return pd.Series(grouped.to_numpy(), index=like.index)


def compare(sql: pd.DataFrame, ref: pd.DataFrame, rtol: float = 1e-7, atol: float = 1e-9) -> None:
    """Raise AssertionError naming the first column that differs between the two outputs."""
    key = ["entity", "source", "date"]
    a = sql.sort_values(key).reset_index(drop=True)
    b = ref.sort_values(key).reset_index(drop=True)
    if len(a) != len(b):
        raise AssertionError(f"row counts differ: duckdb {len(a)} vs pandas {len(b)}")
    for c in b.columns:
        x, y = a[c], b[c]
        if c in ("entity", "source"):
            same = (x.astype(str).to_numpy() == y.astype(str).to_numpy())
        elif c in ("date", "known_at"):
            same = (pd.to_datetime(x).to_numpy() == pd.to_datetime(y).to_numpy())
        else:
            xv, yv = x.to_numpy(dtype="float64"), y.to_numpy(dtype="float64")
            same = np.isclose(xv, yv, rtol=rtol, atol=atol, equal_nan=True)
        if not same.all():
            i = int(np.argmin(same))
            raise AssertionError(f"column {c} differs at {a.loc[i, key].tolist()}: duckdb {x.iloc[i]!r} vs pandas {y.iloc[i]!r}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--entities", type=int, default=3_000)
    ap.add_argument("--years", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-pandas", action="store_true", help="time DuckDB only (no ratio, no check)")
    args = ap.parse_args()

    t = time.perf_counter()
    table = synthetic_scores(args.rows, args.entities, years=args.years, seed=args.seed)
    gen_s = time.perf_counter() - t

    t = time.perf_counter()
    sql = build_daily_features(table)
    duck_s = time.perf_counter() - t
    result = {
        "bench": "features",
        "rows": args.rows,
        "entities": args.entities,
        "years": args.years,
        "feature_rows": len(sql),
        "generate_s": round(gen_s, 2),
        "duckdb_s": round(duck_s, 2),
    }
    if not args.skip_pandas:
        # Keep only one full copy of the data in memory at a time (10M rows: ~16 GB peak otherwise).
        with tempfile.TemporaryDirectory() as tmp:
            sql.to_parquet(Path(tmp) / "duckdb.parquet")
            del sql
            frame = table.to_pandas()
            del table
            t = time.perf_counter()
            ref = pandas_features(frame)
            pandas_s = time.perf_counter() - t
            del frame
            compare(pd.read_parquet(Path(tmp) / "duckdb.parquet"), ref)
        result.update(pandas_s=round(pandas_s, 2), ratio=round(pandas_s / duck_s, 2), outputs_match=True)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
