"""The feature store: one DuckDB file with documents, scores and versioned daily features.

Tables (every row carries ``ingested_at``, the instant the store learned it):

* ``documents`` — Document contract rows; a corrected document is the same ``doc_id`` added
  again later (both versions are kept).
* ``scores`` — Score contract rows; a re-scored/corrected document is its ``doc_id`` with a
  later ``ingested_at``.
* ``daily_features`` — *versioned* feature rows: each :meth:`FeatureStore.build` at instant T
  computes features from the scores ingested by T and appends only the rows that are new or
  changed (floats beyond 1e-12 relative: parallel sums differ in the last bits between runs),
  stamped ``ingested_at = T``; keys that disappeared get a tombstone (``deleted = true``).
  Reading ``as_of=T`` takes, per (date, entity, source), the latest version stamped at or
  before T, so it returns what the build at T returned — later, late or corrected documents
  cannot leak into it.
* ``builds`` — one row per build (instant, rows written).

All writes run in one transaction each (a failed write leaves the file as it was); Parquet
exports are written to a temporary file and renamed.
"""
from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from nlp.contracts import DOCUMENT_SCHEMA, SCORE_SCHEMA, validate_daily_features, validate_scores
from signals.config import DEFAULT_CONFIG, SignalsConfig
from signals.features import compute_features, connect, feature_columns, output_columns, parquet_scan, query_df
from signals.sessions import session_cutoffs, session_index, sessions

log = logging.getLogger(__name__)

TABLES = ("documents", "scores", "daily_features", "builds")
# Event features carried forward between calls; signed levels decay towards 0.
DECAYED_EVENT_COLUMNS = ("mean_score", "tone", "share_pos", "share_neg")

_DUCK_TYPES = {
    pa.string(): "VARCHAR",
    pa.int32(): "INTEGER",
    pa.float32(): "FLOAT",
    pa.timestamp("us", tz="UTC"): "TIMESTAMPTZ",
    pa.list_(pa.string()): "VARCHAR[]",
}


def _ddl(schema: pa.Schema) -> str:
    return ", ".join(f'"{f.name}" {_DUCK_TYPES[f.type]}' for f in schema)


class StoreError(ValueError):
    """A request the store cannot answer (unknown table, entity, time order...)."""


class FeatureStore:
    """Point-in-time feature store in one DuckDB file (``cfg.db_path`` by default)."""

    def __init__(self, path: str | Path | None = None, cfg: SignalsConfig = DEFAULT_CONFIG, read_only: bool = False):
        self.cfg = cfg
        self.path = Path(path or cfg.db_path)
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif not self.path.exists():
            raise FileNotFoundError(f"feature store {self.path} does not exist; run `altsignal features build` first")
        self.con = connect(cfg, self.path) if not read_only else duckdb.connect(str(self.path), read_only=True)
        if read_only:
            self.con.execute("SET TimeZone = 'UTC'")
        else:
            self._create()

    # -- schema -----------------------------------------------------------------------------
    def _create(self) -> None:
        feats = ", ".join(f'"{c}" {"BIGINT" if c.startswith("n_") else "DOUBLE"}' for c in feature_columns(self.cfg))
        self.con.execute(f"CREATE TABLE IF NOT EXISTS documents ({_ddl(DOCUMENT_SCHEMA)})")
        self.con.execute(f"CREATE TABLE IF NOT EXISTS scores ({_ddl(SCORE_SCHEMA)})")
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS daily_features (date DATE, entity VARCHAR, source VARCHAR, "
            f"{feats}, known_at TIMESTAMPTZ, ingested_at TIMESTAMPTZ, deleted BOOLEAN)"
        )
        self.con.execute("CREATE TABLE IF NOT EXISTS builds (built_at TIMESTAMPTZ, rows_written BIGINT, rows_total BIGINT)")

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "FeatureStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writes -----------------------------------------------------------------------------
    def _insert(self, table: str, data, schema: pa.Schema, ingested_at) -> int:
        if isinstance(data, (str, Path)):
            self.con.execute(f"CREATE OR REPLACE TEMP VIEW _incoming AS SELECT * FROM {parquet_scan(data)}")
        else:
            self.con.register("_incoming", data)
        types = {r[0]: r[1] for r in self.con.execute("DESCRIBE _incoming").fetchall()}
        cols = set(types)
        naive = [c for c in ("published_at", "ingested_at") if c in types and types[c] != "TIMESTAMP WITH TIME ZONE"]
        if naive:
            raise StoreError(f"{table}: {naive} must be timezone-aware timestamps, got {[types[c] for c in naive]}")
        missing = [f.name for f in schema if f.name not in cols and f.name not in ("ingested_at", "section", "speaker_role", "title", "publisher", "url")]
        if missing:
            raise StoreError(f"{table}: incoming rows lack column(s) {missing}")
        now = pd.Timestamp(ingested_at) if ingested_at is not None else pd.Timestamp.now(tz="UTC")
        select = ", ".join(
            ("coalesce(ingested_at, $now)" if "ingested_at" in cols else "$now") if f.name == "ingested_at"
            else (f'"{f.name}"' if f.name in cols else f"NULL::{_DUCK_TYPES[f.type]}")
            for f in schema
        )
        try:
            with self._transaction():
                n = self.con.execute(f"INSERT INTO {table} SELECT {select} FROM _incoming", {"now": now}).fetchall()[0][0]
        finally:
            self.con.execute("DROP VIEW IF EXISTS _incoming")
        log.info("%s: %d rows added", table, n)
        return n

    @contextmanager
    def _transaction(self):
        """One DuckDB transaction: committed if the block finishes, rolled back on any error."""
        self.con.execute("BEGIN")
        try:
            yield
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    def add_documents(self, docs, ingested_at=None) -> int:
        """Append Document rows; rows without ``ingested_at`` get ``ingested_at`` (default now)."""
        return self._insert("documents", docs, DOCUMENT_SCHEMA, ingested_at)

    def add_scores(self, scores, ingested_at=None) -> int:
        """Append Score rows (DataFrame, Arrow table or Parquet path/glob); probabilities are checked."""
        if isinstance(scores, pd.DataFrame):
            validate_scores(scores)
        return self._insert("scores", scores, SCORE_SCHEMA, ingested_at)

    def build(self, as_of=None, model_id: str | None = None) -> pd.DataFrame:
        """Compute daily features from the scores known at ``as_of`` (default now); store a version.

        ``as_of`` may not precede the latest stored build: history is append-only.
        """
        t = _aware(as_of, "as_of") if as_of is not None else pd.Timestamp.now(tz="UTC")
        last = self.con.execute("SELECT epoch_us(max(built_at)) FROM builds").fetchall()[0][0]
        if last is not None and t < pd.Timestamp(last, unit="us", tz="UTC"):
            raise StoreError(f"build as_of {t} precedes the latest build {pd.Timestamp(last, unit='us', tz='UTC')}")
        feats = compute_features(self.con, "scores", self.cfg, as_of=t, model_id=model_id)
        validate_daily_features(feats)
        self.con.register("_new", feats)
        keys = "date, entity, source"
        try:
            with self._transaction():
                self.con.execute(f"CREATE OR REPLACE TEMP TABLE _cur AS {self._latest_sql(None)}")
                written = self.con.execute(
                    f"""INSERT INTO daily_features
                        SELECT {", ".join("n." + c for c in output_columns(self.cfg))}, $t, false
                        FROM (SELECT CAST(date AS DATE) AS date, * EXCLUDE (date) FROM _new) n
                        LEFT JOIN _cur c USING ({keys})
                        WHERE c.entity IS NULL OR {self._changed_sql()}""",
                    {"t": t},
                ).fetchall()[0][0]
                nulls = ", ".join("NULL" for _ in feature_columns(self.cfg))
                deleted = self.con.execute(
                    f"""INSERT INTO daily_features
                        SELECT c.date, c.entity, c.source, {nulls}, NULL, $t, true
                        FROM _cur c ANTI JOIN (SELECT CAST(date AS DATE) AS date, entity, source FROM _new) n USING ({keys})""",
                    {"t": t},
                ).fetchall()[0][0]
                self.con.execute("INSERT INTO builds VALUES ($t, $w, $n)", {"t": t, "w": written + deleted, "n": len(feats)})
        finally:
            self.con.unregister("_new")
        log.info("build at %s: %d feature rows, %d new versions, %d tombstones", t, len(feats), written, deleted)
        return feats

    def _changed_sql(self) -> str:
        """A stored row counts as changed unless every column matches; floats within 1e-12 relative.

        DuckDB's parallel sums may differ in the last bits between runs; that is not a new version.
        """
        parts = []
        for c in feature_columns(self.cfg) + ["known_at"]:
            if c.startswith("n_") or c == "known_at":
                parts.append(f"n.{c} IS DISTINCT FROM c.{c}")
            else:
                parts.append(f"((n.{c} IS NULL) <> (c.{c} IS NULL) OR abs(n.{c} - c.{c}) > 1e-12 * greatest(1.0, abs(c.{c})))")
        return "(" + " OR ".join(parts) + ")"

    # -- reads ------------------------------------------------------------------------------
    def _latest_sql(self, as_of_param: str | None) -> str:
        cond = f"WHERE ingested_at <= {as_of_param}" if as_of_param else ""
        cols = ", ".join(f'"{c}"' for c in output_columns(self.cfg))
        return f"""SELECT {cols} FROM (
                       SELECT * FROM daily_features {cond}
                       QUALIFY row_number() OVER (PARTITION BY date, entity, source ORDER BY ingested_at DESC) = 1)
                   WHERE NOT deleted"""

    def entities(self) -> list[str]:
        return [r[0] for r in self.con.execute("SELECT DISTINCT entity FROM daily_features ORDER BY 1").fetchall()]

    def daily(self, start=None, end=None, entities=None, sources=None, features=None, as_of=None,
              carry_events: bool = True) -> pd.DataFrame:
        """Daily feature rows as known at ``as_of`` (default: the latest build), long format.

        Columns: date, entity, source, the features, known_at. Unknown entities raise
        :class:`StoreError`; a range without documents gives an empty frame. With
        ``carry_events`` the event sources (earnings calls) get a row on every session from a call
        to the next one: decayed levels (``DECAYED_EVENT_COLUMNS`` x 0.5 ** (age / half-life)),
        other columns as at the call, ``event_age`` in sessions, and ``known_at`` no earlier than
        that session's cutoff.
        """
        params: dict = {}
        where = []
        if as_of is not None:
            params["as_of"] = _aware(as_of, "as_of")
        if start is not None:
            where.append("date >= $start")
            params["start"] = pd.Timestamp(start).date()
        if end is not None:
            where.append("date <= $end")
            params["end"] = pd.Timestamp(end).date()
        if entities is not None:
            entities = [entities] if isinstance(entities, str) else list(entities)
            unknown = sorted(set(entities) - set(self.entities()))
            if unknown:
                raise StoreError(f"unknown entities {unknown[:10]}{' ...' if len(unknown) > 10 else ''}: not in the feature store")
            where.append("list_contains($entities, entity)")
            params["entities"] = entities
        if sources is not None:
            sources = [sources] if isinstance(sources, str) else list(sources)
            where.append("list_contains($sources, source)")
            params["sources"] = sources
        latest = self._latest_sql("$as_of" if as_of is not None else None)
        cond = ("WHERE " + " AND ".join(where)) if where else ""
        ev = list(self.cfg.features.event_sources)
        if carry_events and (sources is None or set(ev) & set(sources)):
            out = self._with_events(latest, cond, params, start, end)
        else:
            out = query_df(self.con, f"SELECT * FROM ({latest}) {cond} ORDER BY date, entity, source", params)
            out["event_age"] = pd.array([pd.NA] * len(out), dtype="Int64")
        out["date"] = pd.to_datetime(out["date"]).astype("datetime64[ns]")
        if features is not None:
            features = [features] if isinstance(features, str) else list(features)
            bad = sorted(set(features) - set(out.columns))
            if bad:
                raise StoreError(f"unknown features {bad}; available: {feature_columns(self.cfg)}")
            out = out[["date", "entity", "source", *features, "known_at"]]
        return out.reset_index(drop=True)

    def _with_events(self, latest: str, cond: str, params: dict, start, end) -> pd.DataFrame:
        fc = self.cfg.features
        rows = query_df(self.con, f"SELECT * FROM ({latest}) WHERE date <= coalesce($end, DATE '9999-12-31')",
                        {k: v for k, v in params.items() if k == "as_of"} | {"end": params.get("end")})
        if rows.empty:
            return rows.assign(event_age=pd.array([], dtype="Int64"))
        rows["date"] = pd.to_datetime(rows["date"]).astype("datetime64[ns]")
        lo = pd.Timestamp(start) if start is not None else rows["date"].min()
        hi = pd.Timestamp(end) if end is not None else rows["date"].max()
        grid = pd.DataFrame({"date": sessions(self.cfg.sessions.calendar, lo, hi)})
        grid["s"] = session_index(grid["date"], self.cfg.sessions.calendar)
        grid["cutoff"] = session_cutoffs(grid["date"], self.cfg.sessions.cutoff, self.cfg.sessions.tz)
        rows["s"] = session_index(rows["date"], self.cfg.sessions.calendar)
        self.con.register("_rows", rows)
        self.con.register("_grid", grid)
        decay = ", ".join(f"e.{c} * pow(0.5, (g.s - e.s) / {fc.event_half_life}.0) AS {c}" for c in DECAYED_EVENT_COLUMNS)
        keep = [c for c in output_columns(self.cfg) if c not in DECAYED_EVENT_COLUMNS + ("date", "entity", "source", "known_at")]
        try:
            out = query_df(
                self.con,
                f"""
                WITH ev AS (SELECT * FROM _rows WHERE list_contains($ev, source)),
                     keys AS (SELECT DISTINCT entity, source FROM ev),
                     carried AS (
                        SELECT g.date, k.entity, k.source, {decay}, {", ".join("e." + c for c in keep)},
                               greatest(e.known_at, g.cutoff) AS known_at, (g.s - e.s)::BIGINT AS event_age
                        FROM _grid g CROSS JOIN keys k
                        ASOF JOIN ev e ON k.entity = e.entity AND k.source = e.source AND g.s >= e.s),
                     plain AS (SELECT * EXCLUDE (s), NULL::BIGINT AS event_age FROM _rows WHERE NOT list_contains($ev, source))
                SELECT * FROM (SELECT {", ".join(output_columns(self.cfg))}, event_age FROM carried
                               UNION ALL BY NAME SELECT * FROM plain) {cond}
                ORDER BY date, entity, source
                """,
                {k: v for k, v in params.items() if k != "as_of"} | {"ev": list(fc.event_sources)},
            )
        finally:
            self.con.unregister("_rows")
            self.con.unregister("_grid")
        out["event_age"] = out["event_age"].astype("Int64")
        return out

    def monthly(self, start=None, end=None, entities=None, sources=None, features=None, as_of=None) -> pd.DataFrame:
        """Month-end samples: per key, the latest daily row known by each month-end instant.

        The month-end instant is 00:00 New York on the next month's first day (as for macro data);
        ``date`` is the month end, ``row_date`` the session the row came from.
        """
        from signals.macro import month_end_instant

        daily = self.daily(None, end, entities, sources, features, as_of, carry_events=True)
        if daily.empty:
            return daily.assign(row_date=daily["date"])
        lo = pd.Timestamp(start) if start is not None else daily["date"].min()
        hi = pd.Timestamp(end) if end is not None else daily["date"].max()
        months = pd.date_range(lo + pd.offsets.MonthEnd(0), hi + pd.offsets.MonthEnd(0), freq="ME")
        return self.sample(daily, months, month_end_instant(months, self.cfg.sessions.tz))

    def sample(self, daily: pd.DataFrame, dates, instants) -> pd.DataFrame:
        """Per (entity, source), the latest row of ``daily`` with ``known_at`` <= each instant (ASOF join).

        Returns rows dated ``dates`` with the source row's session in ``row_date``; keys with
        nothing known yet at an instant get no row there.
        """
        grid = pd.DataFrame({"date": pd.DatetimeIndex(dates), "t": pd.DatetimeIndex(instants)})
        self.con.register("_d", daily.rename(columns={"date": "row_date"}))
        self.con.register("_m", grid)
        try:
            out = query_df(
                self.con,
                """SELECT m.date, d.* FROM _m m CROSS JOIN (SELECT DISTINCT entity, source FROM _d) k
                   ASOF JOIN _d d ON k.entity = d.entity AND k.source = d.source AND m.t >= d.known_at
                   ORDER BY m.date, d.entity, d.source""",
            )
        finally:
            self.con.unregister("_d")
            self.con.unregister("_m")
        out["date"] = pd.to_datetime(out["date"]).astype("datetime64[ns]")
        return out

    # -- export -----------------------------------------------------------------------------
    def export(self, table: str, out: str | Path, as_of=None) -> Path:
        """Write one table to Parquet atomically (``daily_features`` as of ``as_of`` if given)."""
        if table not in TABLES:
            raise StoreError(f"unknown table {table!r}; one of {TABLES}")
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        sql, params = f"SELECT * FROM {table}", {}
        if table == "daily_features" and as_of is not None:
            sql, params = self._latest_sql("$as_of"), {"as_of": _aware(as_of, "as_of")}
        try:
            self.con.execute(f"COPY ({sql}) TO '{tmp}' (FORMAT parquet)", params)
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
        return out

    def counts(self) -> dict[str, int]:
        return {t: self.con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in TABLES}


def _aware(ts, name: str) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    if t.tzinfo is None:
        raise StoreError(f"{name} must be timezone-aware")
    return t
