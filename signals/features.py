"""Score rows -> point-in-time daily sentiment features.

The relational work (document versions, session ASOF join, entity explode, per-day aggregates)
runs in DuckDB SQL; the per-key running and trailing statistics run as segmented numpy scans
over the SQL result sorted by (key, session) — see :mod:`signals.scans` for why they are not
SQL window functions.

Definitions (the pandas reference in ``bench/features.py`` implements the same ones):

* **Document first.** Score rows are units (a headline, a post, one transcript sentence). Units
  are averaged to their document: ``p_*`` and ``score`` are plain means over units. A document
  is *positive* if its mean ``p_pos`` is strictly the largest of the three probabilities,
  *negative* if ``p_neg`` is, otherwise neutral (ties count as neutral).
* **Versions.** A corrected document is the same ``doc_id`` ingested again later; only the
  latest version ingested at or before ``as_of`` counts (all of its units, nothing of the
  older version). Rows without ``ingested_at`` count as ingested when published.
* **Sessions.** A document counts for the first session whose cutoff is strictly after its
  ``published_at`` (see :mod:`signals.sessions`); done here with an ASOF join on the calendar.
* **Keys.** One row per (session, entity, source) with at least one document, plus
  ``source="all"`` rows over all sources, plus entity ``__MARKET__`` rows over every document
  of the session (each document once, with or without tickers). Documents without tickers only
  reach ``__MARKET__``.
* **Columns.** ``n_docs``, ``n_pos``, ``n_neg``, ``mean_score``, ``tone = (n_pos - n_neg) /
  (n_pos + n_neg)`` (NULL when no document is polar), ``share_pos``, ``share_neg``,
  ``dispersion`` (population std of document scores; 0 for one document),
  ``abnormal_volume = log1p(n_docs) - mean(log1p(n_docs))`` over the previous ``volume_window``
  sessions where sessions without documents count as 0 (NULL until the key has ``min_periods``
  sessions of history), ``tone_surprise = (tone - mean) / std`` of the key's tones over the
  previous ``surprise_window`` sessions (NULL with fewer than ``min_periods`` tones or a
  spread below ``ZERO_SPREAD``), and ``ew_tone_{h}``: the mean of past and current tones weighted by
  ``0.5 ** (sessions ago / h)``.
* **known_at** = the later of the session's cutoff and the latest ``ingested_at`` of any document
  that went into this row or into an earlier row of the same key (trailing features depend on
  them): a late document makes its row, and the rows after it, known only when it arrived.

``ingested_at`` matters: for a historical backfill, stamp it with the vendor's arrival time or
``published_at`` (what a live system would have seen); rows loaded "now" are known only now.

Earnings calls (``FeatureConfig.event_sources``) get ordinary rows on their call session; the
carry-forward with decay until the next call is applied when reading (``FeatureStore.daily``),
because it fills every session of every entity and would only bloat the table.

The exponential weights use ``2 ** ((s - s0) / h)`` cumulative sums (s0 = the key's first
session), so a key may span at most ``1000 * h`` sessions (20 years at h=5) before float64
overflows; longer spans raise a clear error.
"""
from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from nlp.contracts import MARKET_ENTITY, ContractError
from signals.config import DEFAULT_CONFIG, SignalsConfig
from signals.scans import Segments, trailing_sum
from signals.sessions import session_cutoffs, sessions

log = logging.getLogger(__name__)

ZERO_SPREAD = 1e-6  # a trailing tone spread below this counts as zero (rolling-variance float noise)
REQUIRED_SCORE_COLUMNS = ("doc_id", "unit", "model_id", "p_neg", "p_neu", "p_pos", "score", "source", "published_at", "entities")


def feature_columns(cfg: SignalsConfig = DEFAULT_CONFIG) -> list[str]:
    """Names of the value columns of a daily feature row, in output order."""
    base = ["n_docs", "n_pos", "n_neg", "mean_score", "tone", "share_pos", "share_neg", "dispersion",
            "abnormal_volume", "tone_surprise"]
    return base + [f"ew_tone_{h}" for h in cfg.features.half_lives]


def output_columns(cfg: SignalsConfig = DEFAULT_CONFIG) -> list[str]:
    return ["date", "entity", "source", *feature_columns(cfg), "known_at"]


def connect(cfg: SignalsConfig = DEFAULT_CONFIG, path: str | Path | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path) if path else ":memory:")
    con.execute("SET TimeZone = 'UTC'")
    if cfg.duckdb_threads:
        con.execute(f"SET threads = {int(cfg.duckdb_threads)}")
    return con


def register_scores(con: duckdb.DuckDBPyConnection, scores, name: str = "scores_in") -> None:
    """Expose ``scores`` (DataFrame, Arrow table, or Parquet path/glob/folder) as view ``name``."""
    if isinstance(scores, (str, Path)):
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM {parquet_scan(scores)}")
    elif isinstance(scores, (pd.DataFrame, pa.Table)):
        con.register(f"{name}_src", scores)
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM {name}_src")
    else:
        raise TypeError(f"scores must be a DataFrame, Arrow table or Parquet path, got {type(scores).__name__}")
    cols = {r[0]: r[1] for r in con.execute(f"DESCRIBE {name}").fetchall()}
    missing = [c for c in REQUIRED_SCORE_COLUMNS if c not in cols]
    if missing:
        raise ContractError(f"Score: missing required column(s) {missing}; got {list(cols)}")
    if cols["published_at"] != "TIMESTAMP WITH TIME ZONE":
        raise ContractError(f"Score.published_at must be timezone-aware, got {cols['published_at']}")
    if "ingested_at" in cols and cols["ingested_at"] != "TIMESTAMP WITH TIME ZONE":
        raise ContractError(f"Score.ingested_at must be timezone-aware, got {cols['ingested_at']}")
    if "ingested_at" not in cols:
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT *, published_at AS ingested_at FROM {name}")


def parquet_scan(path: str | Path) -> str:
    """SQL reading a Parquet file, a folder (recursively) or a glob; clear error when nothing matches."""
    p = Path(path)
    pattern = str(p / "**" / "*.parquet") if p.is_dir() else str(path)
    if not p.exists() and not any(ch in str(path) for ch in "*?["):
        raise FileNotFoundError(f"no Parquet file or folder at {path}")
    return "read_parquet('" + pattern.replace("'", "''") + "', union_by_name=true)"


def _register_sessions(con: duckdb.DuckDBPyConnection, cfg: SignalsConfig, lo, hi) -> None:
    sess = sessions(cfg.sessions.calendar, pd.Timestamp(lo) - pd.Timedelta(days=7), pd.Timestamp(hi) + pd.Timedelta(days=14))
    all_ = sessions(cfg.sessions.calendar)
    if pd.Timestamp(lo) < all_[0] or pd.Timestamp(hi) >= all_[-1]:
        raise ValueError(f"documents span {lo}..{hi}, outside the {cfg.sessions.calendar} calendar ({all_[0].date()}..{all_[-1].date()})")
    frame = pd.DataFrame(
        {
            "date": sess,
            "s": all_.searchsorted(sess).astype("int64"),
            "cutoff": session_cutoffs(sess, cfg.sessions.cutoff, cfg.sessions.tz),
        }
    )
    con.register("sessions_df", frame)
    con.execute("CREATE OR REPLACE TEMP TABLE sessions_t AS SELECT * FROM sessions_df ORDER BY date")


def build_daily_features(
    scores,
    cfg: SignalsConfig = DEFAULT_CONFIG,
    as_of=None,
    con: duckdb.DuckDBPyConnection | None = None,
    model_id: str | None = None,
) -> pd.DataFrame:
    """Daily features from Score rows (see module docstring), one row per key, in no particular order.

    ``as_of``: ignore every score row ingested after this instant. ``model_id``: which model's
    scores to use when several are present (required then). Empty input gives an empty frame
    with the output columns.
    """
    con = con or connect(cfg)
    register_scores(con, scores)
    return compute_features(con, "scores_in", cfg, as_of=as_of, model_id=model_id)


def compute_features(
    con: duckdb.DuckDBPyConnection, table: str, cfg: SignalsConfig = DEFAULT_CONFIG, as_of=None, model_id: str | None = None
) -> pd.DataFrame:
    """:func:`build_daily_features` on a table/view already in ``con``."""
    fc = cfg.features
    as_of_ts = pd.Timestamp(as_of) if as_of is not None else None
    if as_of_ts is not None and as_of_ts.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    where = ["ingested_at <= $as_of"] if as_of_ts is not None else []
    models = [r[0] for r in con.execute(f"SELECT DISTINCT model_id FROM {table}").fetchall()]
    if model_id is not None:
        where.append("model_id = $model_id")
    elif len(models) > 1:
        raise ContractError(f"scores from several models {sorted(map(str, models))}: pass model_id to choose one")
    params = {k: v for k, v in (("as_of", as_of_ts), ("model_id", model_id)) if v is not None}
    where_sql = ("WHERE " + " AND ".join(where)) if where else ""

    bounds = con.execute(
        f"SELECT epoch_us(min(published_at)), epoch_us(max(published_at)), count(*), count(*) - count(published_at) "
        f"FROM {table} {where_sql}",
        params,
    ).fetchall()[0]
    if bounds[3]:
        raise ContractError(f"{bounds[3]} score rows have no published_at")
    if bounds[2] == 0:
        return _empty(cfg)
    _register_sessions(con, cfg, pd.Timestamp(bounds[0], unit="us"), pd.Timestamp(bounds[1], unit="us"))
    h, m = (int(x) for x in cfg.sessions.cutoff.split(":"))
    roll = 24 * 60 - (h * 60 + m)  # minutes that push an at/after-cutoff local time into the next day

    con.execute(_DOCS_SQL.format(src=_source_sql(table, where_sql), tz=cfg.sessions.tz, roll=roll), params)
    bad, span = con.execute("SELECT count(*) FILTER (WHERE source IS NULL), max(s) - min(s) FROM docs").fetchall()[0]
    if bad:
        raise ContractError(f"{bad} scored documents lack a source")
    if span is not None and span / min(fc.half_lives) > 1000:
        raise ValueError(f"history spans {span} sessions; ew_tone needs span <= 1000 * half-life, build in chunks")

    daily = query_df(con, _DAILY_SQL.format(market=MARKET_ENTITY, all_key=fc.all_sources_key))
    log.info("daily features: %d score rows -> %d feature rows over %s sessions", bounds[2], len(daily), span + 1)
    return _finish(_running_features(daily, cfg), cfg)


def _running_features(daily: pd.DataFrame, cfg: SignalsConfig) -> pd.DataFrame:
    """Trailing and exponentially weighted columns per (entity, source); rows sorted by key, session."""
    fc = cfg.features
    seg = Segments(daily["k"].to_numpy(), daily["s"].to_numpy())
    s, s0 = seg.s.astype(np.float64), seg.s0.astype(np.float64)
    lv = np.log1p(daily["n_docs"].to_numpy(dtype=np.float64))
    tone = daily["tone"].to_numpy(dtype=np.float64, na_value=np.nan)
    has_tone = (~np.isnan(tone)).astype(np.float64)

    vol_sum = trailing_sum(seg, seg.cumsum(lv), lv, fc.volume_window)
    age = s - s0
    with np.errstate(divide="ignore", invalid="ignore"):
        daily["abnormal_volume"] = np.where(age >= fc.min_periods, lv - vol_sum / np.minimum(fc.volume_window, age), np.nan)
        n = trailing_sum(seg, seg.cumsum(has_tone), has_tone, fc.surprise_window)
        t1 = trailing_sum(seg, seg.cumsum(tone), tone, fc.surprise_window)
        t2 = trailing_sum(seg, seg.cumsum(tone * tone), tone * tone, fc.surprise_window)
        mean = t1 / n
        std = np.sqrt(np.maximum((t2 - t1 * t1 / n) / (n - 1), 0.0))
        ok = (n >= fc.min_periods) & (std > ZERO_SPREAD)
        daily["tone_surprise"] = np.where(ok, (tone - mean) / std, np.nan)
        for h in fc.half_lives:
            w = np.exp2((s - s0) / h)
            den = seg.cumsum(w * has_tone)
            daily[f"ew_tone_{h}"] = np.where(den > 0, seg.cumsum(tone * w) / den, np.nan)
    cutoff = daily["cutoff"].to_numpy(dtype="datetime64[us]").astype(np.int64)
    seen = seg.cummax(daily["max_ing"].to_numpy(dtype="datetime64[us]").astype(np.int64).astype(np.float64))
    known = np.maximum(cutoff, seen.astype(np.int64))
    daily["known_at"] = pd.to_datetime(known, unit="us", utc=True)
    return daily


def query_df(con: duckdb.DuckDBPyConnection, sql: str, params: dict | list | None = None) -> pd.DataFrame:
    """Run ``sql`` and return pandas through Arrow (keeps time zones; no pytz needed)."""
    return con.sql(sql, params=params).to_arrow_table().to_pandas()


def _source_sql(table: str, where_sql: str) -> str:
    return f"(SELECT doc_id, p_neg, p_neu, p_pos, score, source, published_at, entities, coalesce(ingested_at, published_at) AS ingested_at FROM {table} {where_sql})"


_DOCS_SQL = """
CREATE OR REPLACE TEMP TABLE docs AS
WITH latest AS (SELECT doc_id, max(ingested_at) AS ingested_at FROM {src} GROUP BY doc_id),
versions AS (
    SELECT u.doc_id, any_value(u.ingested_at) AS ingested_at,
           any_value(source) AS source, any_value(published_at) AS published_at,
           any_value(entities) AS entities,
           avg(p_neg) AS p_neg, avg(p_neu) AS p_neu, avg(p_pos) AS p_pos, avg(score) AS score
    FROM {src} u SEMI JOIN latest l ON u.doc_id = l.doc_id AND u.ingested_at = l.ingested_at
    GROUP BY u.doc_id
),
candidates AS (
    SELECT doc_id, source, published_at, ingested_at, entities, score,
           (p_pos > p_neg AND p_pos > p_neu)::INTEGER AS is_pos,
           (p_neg > p_pos AND p_neg > p_neu)::INTEGER AS is_neg,
           CAST(CAST(timezone('{tz}', published_at) + INTERVAL {roll} MINUTE AS DATE) AS TIMESTAMP) AS candidate
    FROM versions
)
SELECT c.*, t.date, t.s, t.cutoff FROM candidates c ASOF JOIN sessions_t t ON c.candidate <= t.date
"""

# Aggregates per (session, entity, source) and per (session, entity) for source "all", with
# integer keys (k) so that the sort and the scans downstream run on numbers, not strings.
_DAILY_SQL = """
WITH ents AS (
    SELECT entity, (row_number() OVER (ORDER BY entity))::BIGINT AS eid
    FROM (SELECT DISTINCT unnest(entities) AS entity FROM docs UNION SELECT '{market}')
    WHERE entity IS NOT NULL
),
srcs AS (SELECT source, (row_number() OVER (ORDER BY source))::BIGINT AS sid FROM (SELECT DISTINCT source FROM docs)),
coded AS (SELECT d.*, sid FROM docs d JOIN srcs USING (source)),
exploded AS (
    SELECT s, sid, ingested_at, score, is_pos, is_neg, eid
    FROM (SELECT s, sid, ingested_at, score, is_pos, is_neg, unnest(list_distinct(entities)) AS entity FROM coded) x
    JOIN ents USING (entity)
    WHERE entity <> '{market}'
    UNION ALL
    SELECT s, sid, ingested_at, score, is_pos, is_neg, (SELECT eid FROM ents WHERE entity = '{market}') AS eid
    FROM coded
),
agg AS (
    SELECT s, eid, coalesce(sid, 0) AS sid, eid * 64 + coalesce(sid, 0) AS k,
           count(*) AS n_docs, sum(is_pos) AS n_pos, sum(is_neg) AS n_neg,
           avg(score) AS mean_score, stddev_pop(score) AS dispersion, max(ingested_at) AS max_ing
    FROM exploded
    GROUP BY GROUPING SETS ((s, eid, sid), (s, eid))
)
SELECT a.k, a.s, t.date, t.cutoff, e.entity, coalesce(src.source, '{all_key}') AS source,
       n_docs, n_pos, n_neg, mean_score, dispersion, max_ing,
       CAST(n_pos - n_neg AS DOUBLE) / nullif(n_pos + n_neg, 0) AS tone,
       CAST(n_pos AS DOUBLE) / n_docs AS share_pos,
       CAST(n_neg AS DOUBLE) / n_docs AS share_neg
FROM agg a JOIN sessions_t t USING (s) JOIN ents e USING (eid) LEFT JOIN srcs src USING (sid)
ORDER BY a.k, a.s
"""


def _finish(out: pd.DataFrame, cfg: SignalsConfig) -> pd.DataFrame:
    out["date"] = pd.to_datetime(out["date"]).astype("datetime64[ns]")
    out["known_at"] = pd.to_datetime(out["known_at"], utc=True)
    for c in ("n_docs", "n_pos", "n_neg"):
        out[c] = out[c].astype("int64")
    out["entity"] = out["entity"].astype(str)
    out["source"] = out["source"].astype(str)
    return out[output_columns(cfg)].reset_index(drop=True)


def _empty(cfg: SignalsConfig) -> pd.DataFrame:
    cols = {c: pd.Series(dtype="float64") for c in output_columns(cfg)}
    cols["date"] = pd.Series(dtype="datetime64[ns]")
    cols["entity"] = pd.Series(dtype=str)
    cols["source"] = pd.Series(dtype=str)
    for c in ("n_docs", "n_pos", "n_neg"):
        cols[c] = pd.Series(dtype="int64")
    cols["known_at"] = pd.Series(dtype="datetime64[ns, UTC]")
    return pd.DataFrame(cols)[output_columns(cfg)]


def empty_features(cfg: SignalsConfig = DEFAULT_CONFIG) -> pd.DataFrame:
    """The documented empty result: no rows, the output columns and dtypes."""
    return _empty(cfg)

