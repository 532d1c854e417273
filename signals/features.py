"""Score rows -> point-in-time daily sentiment features.

The relational work (document versions, sessions, entity explode) runs in one DuckDB query that
returns one row per (document, entity) as numpy arrays; the per-day aggregates are one compiled
pass over those rows, and each feature of :mod:`signals.feature_specs` a formula or one compiled
pass over the day rows (numba, see :mod:`signals.scans` for why not SQL). Nothing goes through
pandas until the output frame.

Definitions (the pandas reference in ``bench/features.py`` implements the same ones):

* **Document first.** Score rows are units (a headline, a post, one transcript sentence). Units
  are averaged to their document: ``p_*`` and ``score`` are plain means over units. A document
  is *positive* if its mean ``p_pos`` is strictly the largest of the three probabilities,
  *negative* if ``p_neg`` is, otherwise neutral (ties count as neutral).
* **Entity-level rows.** Score rows with ``entity`` set (``JobConfig.entity_model``) give the
  tone toward that ticker in their unit. A ticker with such rows in any version of a document
  takes, as its document score, the mean over the document's units of its entity row where the
  unit has one, else the unit's row (its polarity from those means, as above); the market entity
  and the document's other tickers keep the unit rows. Without entity rows nothing changes (and
  the query is the one without them).
* **Identity and versions.** A document is identified by ``(feed, source, doc_id)``: ``feed``
  names where it was read from (rows without a ``feed`` column take their source), so an id
  reused by another feed or source is another document. A corrected document is the same
  identity ingested again later; only the latest version ingested at or before ``as_of``
  counts (all of its units, nothing of the older version). Rows without ``ingested_at`` count
  as ingested when published.
* **Sessions.** A document counts for the first session whose cutoff is strictly after its
  ``published_at`` (see :mod:`signals.sessions`); done here with an equality join on the UTC
  day (see :func:`_register_session_days`).
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

Rows come back sorted by (entity, source, date); entity and source order is by name, with the
all-sources row first.
"""
from __future__ import annotations

import glob
import logging
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from core.errors import UsageError
from nlp.contracts import MARKET_ENTITY, ContractError
from signals import feature_specs
from signals.config import DEFAULT_CONFIG, SignalsConfig
from signals.feature_specs import DayRows, fresh_state, integer_columns, run_features
from signals.scans import Daily, aggregate_days, run_bounds
from signals.sessions import Sessions

log = logging.getLogger(__name__)

_DAY_US = 86_400_000_000
REQUIRED_SCORE_COLUMNS = ("doc_id", "unit", "model_id", "p_neg", "p_neu", "p_pos", "score", "source", "published_at", "entities")


def feature_columns(cfg: SignalsConfig = DEFAULT_CONFIG) -> list[str]:
    """Names of the value columns of a daily feature row, in output order (see :mod:`signals.feature_specs`)."""
    return [c for spec in feature_specs.DAILY_FEATURES for c in spec.column_names(cfg.features)]


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
        src = parquet_scan(scores)
    elif isinstance(scores, (pd.DataFrame, pa.Table)):
        con.register(f"{name}_src", scores)
        src = f"{name}_src"
    else:
        raise TypeError(f"scores must be a DataFrame, Arrow table or Parquet path, got {type(scores).__name__}")
    cols = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()}
    missing = [c for c in REQUIRED_SCORE_COLUMNS if c not in cols]
    if missing:
        raise ContractError(f"Score: missing required column(s) {missing}; got {list(cols)}")
    if cols["published_at"] != "TIMESTAMP WITH TIME ZONE":
        raise ContractError(f"Score.published_at must be timezone-aware, got {cols['published_at']}")
    if "ingested_at" in cols and cols["ingested_at"] != "TIMESTAMP WITH TIME ZONE":
        raise ContractError(f"Score.ingested_at must be timezone-aware, got {cols['ingested_at']}")
    added = "".join(f", {expr} AS {col}" for col, expr in (("ingested_at", "published_at"), ("feed", "source")) if col not in cols)
    con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT *{added} FROM {src}")


def parquet_scan(path: str | Path) -> str:
    """SQL reading a Parquet file, a folder (recursively) or a glob; clear error when nothing matches.

    A scoring job's output folder (``manifest.json`` beside ``scores/``) is read from its
    ``scores/`` only: its ``documents/`` aggregates are not Score rows. Folders are read with
    DuckDB's hive-partition detection, so ``scores/source=<src>/`` partitions and plain folders
    both work.
    """
    p = Path(path)
    if (p / "manifest.json").is_file() and (p / "scores").is_dir():
        p = p / "scores"
    pattern = str(p / "**" / "*.parquet") if p.is_dir() else str(p)
    if not glob.glob(pattern, recursive=True):
        raise UsageError(f"no Parquet files at {path}", hint="give a Parquet file, a folder holding some, or a glob")
    # The path is a SQL string literal: quotes are doubled, nothing else is interpreted.
    return "read_parquet('" + pattern.replace("'", "''") + "', union_by_name=true)"


def _register_session_days(con: duckdb.DuckDBPyConnection, sessions: Sessions, lo_us: int, hi_us: int) -> tuple[np.ndarray, np.ndarray]:
    """Register ``session_days`` for documents published in [lo_us, hi_us] (epoch microseconds).

    A document counts for the first session whose cutoff is strictly after it. A UTC day holds
    at most two cutoffs (they are at least 23 hours apart), so with ``a`` the first session whose
    cutoff is after the day's start, a document of that day belongs to session
    ``a + (t >= cutoff[a]) + (t >= cutoff[a + 1])``: an equality join on the day number instead of
    an ASOF join (a sort of every document). Returns every session date of the calendar
    (datetime64[ns], indexed by session number ``s``) and its cutoff (epoch us).
    """
    all_ = sessions.dates()
    first, last = sessions.span()
    lo, hi = pd.Timestamp(lo_us, unit="us", tz="UTC"), pd.Timestamp(hi_us, unit="us", tz="UTC")
    if lo < first or hi >= last:
        raise ContractError(f"documents span {lo}..{hi}, outside the {sessions.calendar} calendar "
                            f"({first.date()}..{last.date()})")
    cutoff = sessions.cutoffs(all_).as_unit("us").asi8
    days = np.arange(lo_us // _DAY_US, hi_us // _DAY_US + 1, dtype=np.int64)
    a = np.searchsorted(cutoff, days * _DAY_US, side="right")
    padded = np.append(cutoff, np.iinfo(np.int64).max)
    con.register("session_days", pa.table({"day": days, "a": a.astype(np.int32), "ca": padded[a], "cb": padded[a + 1]}))
    return all_.to_numpy(dtype="datetime64[ns]"), cutoff


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
    con: duckdb.DuckDBPyConnection, table: str, cfg: SignalsConfig = DEFAULT_CONFIG, as_of=None, model_id: str | None = None,
    with_state: bool = False, sessions: Sessions | None = None,
):
    """:func:`build_daily_features` on a table/view already in ``con``.

    ``sessions``: the calendar documents are placed in (default: the one of ``cfg.sessions``).

    ``with_state``: return ``(frame, state)`` where ``state`` holds, per output row, its session
    number ``s``, ``max_ing`` and the running state before it, and per (entity, source) the
    state after its last row (see :mod:`signals.feature_specs`); the feature store keeps them for
    incremental builds.
    """
    as_of_ts = pd.Timestamp(as_of) if as_of is not None else None
    if as_of_ts is not None and as_of_ts.tzinfo is None:
        raise UsageError("as_of must be timezone-aware", hint="e.g. 2017-01-31T21:00:00Z")
    where = ["ingested_at <= $as_of"] if as_of_ts is not None else []
    if model_id is not None:
        where.append("model_id = $model_id")
    else:
        models = [r[0] for r in con.execute(f"SELECT DISTINCT model_id FROM {table}").fetchall()]
        if len(models) > 1:
            raise ContractError(f"scores from several models {sorted(map(str, models))}: pass model_id to choose one")
    params = {k: v for k, v in (("as_of", as_of_ts), ("model_id", model_id)) if v is not None}
    where_sql = ("WHERE " + " AND ".join(where)) if where else ""

    lo_us, hi_us, n_rows, no_time, sources = con.execute(
        f"SELECT epoch_us(min(published_at)), epoch_us(max(published_at)), count(*), count(*) - count(published_at), "
        f"list(DISTINCT source ORDER BY source) FILTER (WHERE source IS NOT NULL) FROM {table} {where_sql}",
        params,
    ).fetchall()[0]
    if no_time:
        raise ContractError(f"{no_time} score rows have no published_at")
    if n_rows == 0:
        return (_empty(cfg), None) if with_state else _empty(cfg)
    daily, entities, sources, dates, cutoffs = aggregate_source(con, table, where_sql, params, cfg,
                                                                sessions or Sessions(cfg.sessions), lo_us, hi_us, sources)
    log.info("daily features: %d score rows -> %d feature rows", n_rows, len(daily.s))
    return _frame(daily, cfg, dates, cutoffs, entities, sources, with_state)


def aggregate_source(con: duckdb.DuckDBPyConnection, table: str, where_sql: str, params: dict, cfg: SignalsConfig,
                     sessions: Sessions, lo_us: int, hi_us: int, sources: list[str]):
    """Per-day aggregates of the score rows of ``table`` (filtered by ``where_sql``): the relational
    pass and :func:`~signals.scans.aggregate_days`. Returns (Daily, entities, source keys with the
    all-sources key first, session dates, session cutoffs)."""
    sources = sources or []
    src = _source_sql(con, table, where_sql, params)
    keep_order = con.execute("SELECT current_setting('preserve_insertion_order')").fetchall()[0][0]
    try:
        dates, cutoffs = _register_session_days(con, sessions, lo_us, hi_us)
        con.register("feature_sources", pa.table({"source": pa.array(sources, pa.string()), "sid": np.arange(1, len(sources) + 1, dtype=np.int32)}))
        entities = _register_entities(con, src, params)
        market = entities.index(MARKET_ENTITY)
        _register_several(con, src, params)
        con.execute("SET preserve_insertion_order = false")  # rows are sorted downstream anyway
        rows = con.sql(_ROWS_SQL.format(src=src, market=market), params=params).fetchnumpy()
    finally:
        con.execute(f"SET preserve_insertion_order = {str(keep_order).lower()}")
        for view in ("session_days", "feature_sources", "feature_entities", "feature_several"):
            con.unregister(view)
    bad = np.count_nonzero((rows["eid"] == market) & (rows["sid"] == 0))  # market rows: each document once
    if bad:
        raise ContractError(f"{bad} scored documents lack a source")

    daily = aggregate_days(rows["eid"], rows["sid"], rows["s"], rows["ing"], rows["score"], rows["polarity"],
                           len(entities), len(sources))
    del rows
    return daily, entities, [cfg.features.all_sources_key, *sources], dates, cutoffs


def _register_entities(con: duckdb.DuckDBPyConnection, src: str, params: dict) -> list[str]:
    """Register ``feature_entities`` (entity, eid): every entity named by a row, and the market.

    Superseded versions' entities are included (an unused number costs nothing). Numbers follow
    name order, so the output comes sorted by entity name.
    """
    names = con.execute(f"SELECT DISTINCT entity FROM (SELECT unnest(entities) AS entity FROM {src}) WHERE entity IS NOT NULL", params).fetchall()
    entities = sorted({r[0] for r in names} | {MARKET_ENTITY})
    con.register("feature_entities", pa.table({"entity": pa.array(entities, pa.string()), "eid": np.arange(len(entities), dtype=np.int32)}))
    return entities


def _register_several(con: duckdb.DuckDBPyConnection, src: str, params: dict) -> None:
    """Register ``feature_several`` (h): hashes of the document identities found on more than one row.

    Only those documents (several units, or several versions) need the per-document GROUP BY.
    Sorting the hashes in numpy takes ~0.35 s for 10M rows; DuckDB's GROUP BY doc_id ~2 s (and
    ~9 s with the averages and the entity list carried for every row). A hash collision only
    sends a document down the exact path.
    """
    hashes = con.sql(f"SELECT hash(feed, source, doc_id) AS h FROM {src}", params=params).fetchnumpy()["h"]
    hashes.sort()
    con.register("feature_several", pa.table({"h": np.unique(hashes[1:][hashes[1:] == hashes[:-1]])}))


def _frame(daily: Daily, cfg: SignalsConfig, dates: np.ndarray, cutoffs: np.ndarray, entities: list[str], sources: list[str],
           with_state: bool = False, init: dict[str, np.ndarray] | None = None):
    """The feature specs over the per-day aggregates, as the output frame (sorted by entity, source, date).

    ``init``: the state each key starts from, by state column (see :mod:`signals.feature_specs`), default none.
    """
    bounds = run_bounds(daily.eid.astype(np.int64) * len(sources) + daily.sid)
    runs = bounds[:-1]
    rows = DayRows(**vars(daily), bounds=bounds)
    known, before, after = run_features(rows, cutoffs[daily.s], cfg.features,
                                        init if init is not None else fresh_state(len(runs), cfg.features))
    cols = {
        "date": dates[daily.s],
        "entity": pd.array(pa.array(entities, pa.string()).take(daily.eid), dtype="str"),
        "source": pd.array(pa.array(sources, pa.string()).take(daily.sid), dtype="str"),
        **rows.columns,
        "known_at": pd.DatetimeIndex(known.view("datetime64[us]")).tz_localize("UTC"),
    }
    # The arrays are fresh and owned here: no need for pandas to copy 17 columns of millions of rows.
    frame = pd.DataFrame(cols, copy=False)[output_columns(cfg)]
    if not with_state:
        return frame
    state = {"s": daily.s, "eid": daily.eid, "sid": daily.sid, "max_ing": daily.max_ing, "before": before,
             "after": after, "run_eid": daily.eid[runs], "run_sid": daily.sid[runs],
             "entities": entities, "sources": sources}
    return frame, state


def query_df(con: duckdb.DuckDBPyConnection, sql: str, params: dict | list | None = None) -> pd.DataFrame:
    """Run ``sql`` and return pandas through Arrow (keeps time zones; no pytz needed)."""
    return con.sql(sql, params=params).to_arrow_table().to_pandas()


def _source_sql(con: duckdb.DuckDBPyConnection, table: str, where_sql: str, params: dict) -> str:
    """The score rows as documents for the features: one row per unit (``market`` true), and with
    entity-level rows also one pseudo-document per (document, ticker with entity rows), whose id
    is the document's + ``\x1f`` + ticker and whose units are the entity rows where present, else
    the unit rows (``market`` false: the market entity counts each document once)."""
    rows = (f"(SELECT coalesce(feed, source) AS feed, doc_id, unit, p_neg, p_neu, p_pos, score, source, published_at, "
            f"entities, coalesce(ingested_at, published_at) AS ingested_at{{entity}} FROM {table} {where_sql})")
    has = "entity" in {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {table}").fetchall()}
    if not has or not con.execute(f"SELECT count(entity) FROM {rows.format(entity=', entity')}", params).fetchall()[0][0]:
        return (f"(SELECT feed, doc_id, p_neg, p_neu, p_pos, score, source, published_at, entities, ingested_at, "
                f"true AS market FROM {rows.format(entity='')})")
    return _ENTITY_SQL.format(rows=rows.format(entity=", entity"))


# Per-entity documents (see the module docstring). ``named``: the tickers with entity rows in any
# version of a document, so a later version whose text no longer names one still replaces the
# pseudo-document (with no ticker left, it counts for nothing).
_ENTITY_SQL = """(
WITH r AS MATERIALIZED (SELECT * FROM {rows}),
u AS (SELECT * FROM r WHERE entity IS NULL),
named AS (SELECT DISTINCT feed, source, doc_id, entity FROM r WHERE entity IS NOT NULL),
lists AS (SELECT feed, source, doc_id, list(entity) AS named FROM named GROUP BY ALL)
SELECT u.feed, u.doc_id, u.p_neg, u.p_neu, u.p_pos, u.score, u.source, u.published_at,
       CASE WHEN l.named IS NULL THEN u.entities ELSE list_filter(u.entities, lambda x: NOT list_contains(l.named, x)) END
           AS entities, u.ingested_at, true AS market
FROM u LEFT JOIN lists l USING (feed, source, doc_id)
UNION ALL
SELECT u.feed, u.doc_id || chr(31) || n.entity, coalesce(e.p_neg, u.p_neg), coalesce(e.p_neu, u.p_neu),
       coalesce(e.p_pos, u.p_pos), coalesce(e.score, u.score), u.source, u.published_at,
       CASE WHEN list_contains(u.entities, n.entity) THEN [n.entity] ELSE []::VARCHAR[] END, u.ingested_at, false
FROM u JOIN named n USING (feed, source, doc_id)
LEFT JOIN r e ON e.feed = u.feed AND e.source = u.source AND e.doc_id = u.doc_id AND e.ingested_at = u.ingested_at
              AND e.unit = u.unit AND e.entity = n.entity
)"""


# One row per document (latest version), with its session number s and source number sid.
# Most documents are one score row (a headline, a post): only documents whose identity hash is in
# feature_several (see compute_features) are aggregated, exactly, by (feed, source, doc_id). The
# result is one row per (document, entity) plus one per document for the market entity, numbers
# only; a document naming a ticker twice counts once for it.
_DOC_COLUMNS = "feed, doc_id, ingested_at, source, published_at, entities, p_neg, p_neu, p_pos, score, market"
_ROWS_SQL = """
WITH versions AS (
    SELECT feed, source, doc_id, ingested_at,
           any_value(published_at) AS published_at, any_value(entities) AS entities, bool_and(market) AS market,
           avg(p_neg) AS p_neg, avg(p_neu) AS p_neu, avg(p_pos) AS p_pos, avg(score) AS score
    FROM {src} u SEMI JOIN feature_several s ON hash(u.feed, u.source, u.doc_id) = s.h
    GROUP BY feed, source, doc_id, ingested_at
),
docs AS (
    SELECT """ + _DOC_COLUMNS + """ FROM {src} u ANTI JOIN feature_several s ON hash(u.feed, u.source, u.doc_id) = s.h
    UNION ALL
    SELECT """ + _DOC_COLUMNS + """ FROM versions QUALIFY ingested_at = max(ingested_at) OVER (PARTITION BY feed, source, doc_id)
),
located AS MATERIALIZED (
    SELECT (t.a + (epoch_us(d.published_at) >= t.ca)::INTEGER + (epoch_us(d.published_at) >= t.cb)::INTEGER)::INTEGER AS s,
           coalesce(src.sid, 0) AS sid, epoch_us(d.ingested_at) AS ing, d.score::DOUBLE AS score,
           CASE WHEN d.p_pos > d.p_neg AND d.p_pos > d.p_neu THEN 1
                WHEN d.p_neg > d.p_pos AND d.p_neg > d.p_neu THEN -1 ELSE 0 END::TINYINT AS polarity,
           d.entities, d.market
    FROM docs d
    JOIN session_days t ON epoch_us(d.published_at) // """ + str(_DAY_US) + """ = t.day
    LEFT JOIN feature_sources src USING (source)
)
SELECT e.eid, d.sid, d.s, d.ing, d.score, d.polarity
FROM (SELECT sid, s, ing, score, polarity,
             unnest(CASE WHEN len(entities) > 1 THEN list_distinct(entities) ELSE entities END) AS entity
      FROM located) d
JOIN feature_entities e USING (entity)
WHERE e.eid <> {market}
UNION ALL
SELECT {market}::INTEGER, sid, s, ing, score, polarity FROM located WHERE market
"""


def _empty(cfg: SignalsConfig) -> pd.DataFrame:
    cols = {c: pd.Series(dtype="float64") for c in output_columns(cfg)}
    cols["date"] = pd.Series(dtype="datetime64[ns]")
    cols["entity"] = pd.Series(dtype=str)
    cols["source"] = pd.Series(dtype=str)
    for c in integer_columns(cfg.features):
        cols[c] = pd.Series(dtype="int64")
    cols["known_at"] = pd.Series(dtype="datetime64[ns, UTC]")
    return pd.DataFrame(cols)[output_columns(cfg)]


def empty_features(cfg: SignalsConfig = DEFAULT_CONFIG) -> pd.DataFrame:
    """The documented empty result: no rows, the output columns and dtypes."""
    return _empty(cfg)

