"""The feature store: one DuckDB file with documents, scores and versioned daily features.

Tables (every row carries ``ingested_at``, the instant the store learned it):

* ``documents`` — Document contract rows plus ``feed``; a corrected document is the same
  identity added again later (both versions are kept).
* ``scores`` — Score contract rows plus ``feed``; a re-scored/corrected document is its
  identity with a later ``ingested_at``.
* ``daily_features`` — *versioned* feature rows: each :meth:`FeatureStore.build` at instant T
  computes features from the scores ingested by T and appends only the rows that are new or
  changed (floats beyond 1e-12 relative: parallel sums differ in the last bits between runs),
  stamped ``ingested_at = T``; keys that disappeared get a tombstone (``deleted = true``).
  Reading ``as_of=T`` takes, per (date, entity, source), the latest version stamped at or
  before T, so it returns what the build at T returned — later, late or corrected documents
  cannot leak into it.
* ``builds`` — one row per build (instant, rows written).

**Document identity** (DESIGN.md) is ``(feed, source, doc_id)``. ``feed`` names the feed or
input a document was read from: the rows' own ``feed`` column when they have one, else the
``feed`` given to :meth:`FeatureStore.add_scores` (``altsignal features build --feed``), else
the document's source. So an id reused by another source or feed is another document and never
replaces one; a corrected document from the same feed (same identity, later ``ingested_at``)
replaces its earlier version as of its ``ingested_at``. Two vendors of one source whose ids may
collide need a ``--feed`` each; successive deliveries of one vendor share one feed, or their
corrections would not replace anything.

**Ingestion is idempotent.** A document version (all rows of one identity and model with one
``ingested_at``) that the store already holds, unit for unit, as its version current at that
``ingested_at`` is skipped: re-adding the same score files (after an interruption, or on every
re-run) changes nothing, even when the rows are stamped "now". Rows that cannot be used
(no id, source or model, no or out-of-calendar ``published_at``, probabilities that are not a
distribution) are not stored: the whole document version goes to the returned rejects with the
reason, so one bad row can never make later builds fail.

Every write runs in one transaction (a failed write leaves the file as it was), and
:meth:`FeatureStore.transaction` groups several (``features build`` adds and builds in one).
Parquet exports are written to a temporary file and renamed. DuckDB lets one process write a
store file at a time: another process gets :class:`~nlp.errors.StoreBusyError` (exit 3), and a
file that is not a readable DuckDB store gives :class:`StoreDamagedError` (exit 3).
"""
from __future__ import annotations

import functools
import logging
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from nlp.contracts import DOCUMENT_SCHEMA, SCORE_SCHEMA, validate_daily_features, validate_scores
from nlp.errors import EXIT_STORE, AltsignalError, StoreBusyError, UsageError
from nlp.rejects import Rejects
from signals.config import DEFAULT_CONFIG, SignalsConfig
from signals.features import (calendar_span, compute_features, connect, feature_columns, output_columns, parquet_scan,
                              query_df)
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
_NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                  "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL")
_OPTIONAL_COLUMNS = ("ingested_at", "section", "speaker_role", "title", "publisher", "url")


def _ddl(schema: pa.Schema) -> str:
    return ", ".join(f'"{f.name}" {_DUCK_TYPES[f.type]}' for f in schema)


class StoreError(UsageError):
    """A request the store cannot answer (unknown table, entity, time order...)."""


class StoreDamagedError(AltsignalError):
    """The store file is not a readable DuckDB database (truncated, corrupt, another format): exit 3."""

    exit_code = EXIT_STORE


def _file_error(exc: duckdb.Error, path: Path) -> AltsignalError | None:
    """The user-facing error for a DuckDB error about the store file itself, else None."""
    msg = str(exc)
    if "Could not set lock" in msg:
        pid = re.search(r"PID (\d+)", msg)
        return StoreBusyError(
            f"feature store {path} is in use by another process{f' (PID {pid[1]})' if pid else ''}",
            hint="DuckDB allows one writing process per store file; wait for the other command to finish, then rerun",
        )
    if ("not a valid DuckDB database" in msg or "Could not read enough bytes" in msg
            or "Corrupt database file" in msg or "Serialization Error" in msg):
        return StoreDamagedError(
            f"feature store {path} is damaged or not a DuckDB file: {msg.splitlines()[0]}",
            hint="move it aside and rebuild it with `altsignal features build` from the score folders",
        )
    if "Is a directory" in msg or "Permission denied" in msg or "Cannot open file" in msg:
        return StoreError(f"cannot open feature store {path}: {msg.splitlines()[0]}",
                          hint="--db must name a DuckDB file in a folder you can write")
    return None


@contextmanager
def store_errors(path: str | Path):
    """Report DuckDB errors about the store file (locked, truncated, corrupt) as one clear error naming it."""
    try:
        yield
    except duckdb.Error as exc:
        err = _file_error(exc, Path(path))
        if err is None:
            raise
        raise err from exc


def _file_errors(method):
    """Run a store method under :func:`store_errors`: damage shows up on the first read of a bad block."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with store_errors(self.path):
            return method(self, *args, **kwargs)

    return wrapper


@dataclass
class IngestResult:
    """What one ``add_scores``/``add_documents`` call did: rows in = added + unchanged + rejected."""

    added: int = 0
    unchanged: int = 0  # already in the store (same document version), or repeated within the input
    rejects: Rejects = field(default_factory=Rejects)

    def summary(self, what: str) -> str:
        reasons = ", ".join(f"{n:,} {r}" for r, n in self.rejects.counts().items())
        return (f"{what}: {self.added:,} added, {self.unchanged:,} already in the store, "
                f"{len(self.rejects):,} rejected" + (f" ({reasons})" if reasons else ""))


class FeatureStore:
    """Point-in-time feature store in one DuckDB file (``cfg.db_path`` by default)."""

    def __init__(self, path: str | Path | None = None, cfg: SignalsConfig = DEFAULT_CONFIG, read_only: bool = False):
        self.cfg = cfg
        self.path = Path(path or cfg.db_path)
        self._depth = 0  # transaction nesting
        self._scratch: list[tuple[str, str]] = []  # (VIEW|TABLE, name) to drop when the transaction ends
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif not self.path.is_file():
            raise StoreError(f"feature store {self.path} does not exist",
                             hint="create it with `altsignal features build --scores ... --db ...`")
        with store_errors(self.path):
            self.con = connect(cfg, self.path) if not read_only else duckdb.connect(str(self.path), read_only=True)
            if read_only:
                self.con.execute("SET TimeZone = 'UTC'")
            else:
                self._create()

    # -- schema -----------------------------------------------------------------------------
    def _create(self) -> None:
        feats = ", ".join(f'"{c}" {"BIGINT" if c.startswith("n_") else "DOUBLE"}' for c in feature_columns(self.cfg))
        for table, schema in (("documents", DOCUMENT_SCHEMA), ("scores", SCORE_SCHEMA)):
            self.con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({_ddl(schema)}, feed VARCHAR)")
            has_feed = self.con.execute(
                "SELECT count(*) FROM duckdb_columns() WHERE table_name = $t AND column_name = 'feed'", {"t": table}
            ).fetchall()[0][0]
            if not has_feed:  # a store written before document identity included the feed
                with self.transaction():
                    self.con.execute(f"ALTER TABLE {table} ADD COLUMN feed VARCHAR")
                    self.con.execute(f"UPDATE {table} SET feed = source")
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
    @contextmanager
    def transaction(self):
        """One DuckDB transaction: committed if the block finishes, rolled back on any error.

        Nested calls join the outermost transaction. Scratch views and tables made inside are
        dropped when it ends: a failed statement aborts the transaction, so they cannot be
        dropped before the rollback.
        """
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self.con.execute("BEGIN")
        self._depth = 1
        try:
            yield
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        else:
            self.con.execute("COMMIT")
        finally:
            self._depth = 0
            scratch, self._scratch = self._scratch, []
            for kind, name in scratch:
                self.con.execute(f"DROP {kind} IF EXISTS {name}")

    def _scratch_frame(self, name: str, data) -> None:
        self.con.register(name, data)
        self._scratch.append(("VIEW", name))

    def _insert(self, table: str, data, schema: pa.Schema, ingested_at, feed: str | None) -> IngestResult:
        where = str(data) if isinstance(data, (str, Path)) else table
        with self.transaction():
            if isinstance(data, (str, Path)):
                self.con.execute(f"CREATE OR REPLACE TEMP VIEW _incoming AS SELECT * FROM {parquet_scan(data)}")
                self._scratch.append(("VIEW", "_incoming"))
            else:
                self._scratch_frame("_incoming", data)
            select, params = self._normalized(table, schema, ingested_at, feed)
            key = ["feed", "source", "doc_id"] + (["model_id"] if table == "scores" else [])
            checks, check_params = self._row_checks(table)
            column = " ".join(f"WHEN {cond} THEN '{col}'" for col, cond, _ in checks)
            reason = " ".join(f"WHEN {cond} THEN ${f'r{i}'}" for i, (_, cond, _) in enumerate(checks))
            params |= check_params | {f"r{i}": text for i, (_, _, text) in enumerate(checks)}
            self.con.execute(
                f"""CREATE OR REPLACE TEMP TABLE _in AS
                    SELECT *, CASE {column} END AS _column, CASE {reason} END AS _reason, _reason AS _why
                    FROM (SELECT DISTINCT {select} FROM _incoming)""",
                params,
            )
            self._scratch.append(("TABLE", "_in"))
            if self.con.execute("SELECT count(*) FROM _in WHERE _why IS NOT NULL").fetchall()[0][0]:
                # A bad row rejects its whole document version: a partial version would be wrong silently.
                on = " AND ".join(f"_in.{k} = b.{k}" for k in [*key, "ingested_at"])
                self.con.execute(
                    f"""UPDATE _in SET _why = b.why
                        FROM (SELECT {", ".join(key)}, ingested_at, min(_reason) AS why FROM _in GROUP BY ALL) b
                        WHERE {on} AND _in._why IS NULL AND b.why IS NOT NULL"""
                )
            result = IngestResult(rejects=self._rejects(where, "'unit=' || unit" if table == "scores" else "NULL"))
            result.added = self._append_versions(table, schema, key)
            rows_in = self.con.execute("SELECT count(*) FROM _incoming").fetchall()[0][0]
            result.unchanged = rows_in - result.added - len(result.rejects)
        (log.warning if len(result.rejects) else log.info)("%s", result.summary(f"{table} from {where}"))
        return result

    def _normalized(self, table: str, schema: pa.Schema, ingested_at, feed: str | None) -> tuple[str, dict]:
        """SELECT list casting ``_incoming`` to the table's columns, with ``feed`` and ``ingested_at`` filled."""
        types = {r[0]: r[1] for r in self.con.execute("DESCRIBE _incoming").fetchall()}
        naive = [c for c in ("published_at", "ingested_at") if c in types and types[c] != "TIMESTAMP WITH TIME ZONE"]
        if naive:
            raise StoreError(f"{table}: {naive} must be timezone-aware timestamps, got {[types[c] for c in naive]}")
        missing = [f.name for f in schema if f.name not in types and f.name not in _OPTIONAL_COLUMNS]
        if missing:
            raise StoreError(f"{table}: incoming rows lack column(s) {missing}")
        wrong = {f.name: types[f.name] for f in schema if f.name in types and (
            (_DUCK_TYPES[f.type] in ("INTEGER", "FLOAT") and types[f.name].split("(")[0] not in _NUMERIC_TYPES)
            or (_DUCK_TYPES[f.type] == "VARCHAR[]" and not types[f.name].endswith("[]")))}
        if wrong:
            expected = {c: _DUCK_TYPES[schema.field(c).type] for c in wrong}
            raise StoreError(f"{table}: column(s) of the wrong type {wrong}", hint=f"expected {expected}")
        now = pd.Timestamp(ingested_at) if ingested_at is not None else pd.Timestamp.now(tz="UTC")
        parts = []
        for f in schema:
            duck = _DUCK_TYPES[f.type]
            if f.name == "ingested_at":
                parts.append("coalesce(ingested_at, $now) AS ingested_at" if "ingested_at" in types else "$now AS ingested_at")
            else:
                parts.append(f'CAST("{f.name}" AS {duck}) AS "{f.name}"' if f.name in types else f'NULL::{duck} AS "{f.name}"')
        own = "feed, " if "feed" in types else ""
        parts.append(f"coalesce({own}$feed, CAST(source AS VARCHAR)) AS feed")
        return ", ".join(parts), {"now": now, "feed": feed}

    def _row_checks(self, table: str) -> tuple[list[tuple[str, str, str]], dict]:
        """(column, SQL condition of a bad row, reason) in order of precedence, and the conditions' parameters."""
        first, last = calendar_span(self.cfg)
        cal = self.cfg.sessions.calendar
        checks = [
            ("doc_id", "doc_id IS NULL OR trim(doc_id) = ''", "missing doc_id"),
            ("source", "source IS NULL OR trim(source) = ''", "missing source"),
            ("published_at", "published_at IS NULL", "missing published_at"),
            ("published_at", "published_at < $first OR published_at >= $last",
             f"published_at outside the {cal} calendar: documents must fall in {first.date()}..{last.date()}"),
        ]
        if table == "scores":
            checks += [
                ("model_id", "model_id IS NULL OR trim(model_id) = ''", "missing model_id"),
                ("p_pos", "NOT coalesce(p_neg BETWEEN 0 AND 1 AND p_neu BETWEEN 0 AND 1 AND p_pos BETWEEN 0 AND 1 "
                          "AND abs(p_neg + p_neu + p_pos - 1) <= 1e-3 AND NOT isnan(score), false)",
                 "invalid probabilities: p_neg, p_neu, p_pos must lie in [0, 1] and sum to 1"),
            ]
        return checks, {"first": first, "last": last}

    def _rejects(self, where: str, unit_sql: str) -> Rejects:
        rows = self.con.execute(
            f"""SELECT _column, coalesce(_reason, 'another row of this document version was rejected: ' || _why),
                       concat_ws(' ', 'doc_id=' || doc_id, {unit_sql}, 'published_at=' || published_at::VARCHAR)
                FROM _in WHERE _why IS NOT NULL"""
        ).fetchall()
        rejects = Rejects()
        for column, reason, raw in rows:
            rejects.add(where, 0, column or "", reason, raw)
        return rejects

    def _append_versions(self, table: str, schema: pa.Schema, key: list[str]) -> int:
        """Insert the good rows of ``_in`` whose document version is new; returns how many."""
        content = ", ".join(f'"{f.name}"' for f in schema if f.name not in key and f.name != "ingested_at")
        on = " AND ".join(f"i.{k} = s.{k}" for k in key)
        keys = ", ".join(key)
        # A version's content as the count and XOR of its distinct rows' 64-bit hashes: 7x cheaper
        # than sorted lists of rows; a collision is ~2**-64 per document. Distinct, because stores
        # written before ingestion was idempotent may hold a row twice.
        version = f"count(DISTINCT hash({content})) AS n, bit_xor(DISTINCT hash({content})) AS content"
        self.con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _versions AS
                WITH inc AS (SELECT {keys}, ingested_at, {version} FROM _in WHERE _why IS NULL GROUP BY ALL),
                     st AS (SELECT {keys}, ingested_at, {version} FROM {table} SEMI JOIN inc USING ({keys}) GROUP BY ALL)
                SELECT {", ".join("i." + k for k in key)}, i.ingested_at,
                       i.n = s.n AND i.content = s.content AS same, i.ingested_at = s.ingested_at AS same_time
                FROM inc i ASOF LEFT JOIN st s ON {on} AND i.ingested_at >= s.ingested_at"""
        )
        self._scratch.append(("TABLE", "_versions"))
        clash = self.con.execute(
            f"SELECT count(*), any_value(concat_ws(' ', {keys}, ingested_at)) FROM _versions WHERE same_time AND NOT same"
        ).fetchall()[0]
        if clash[0]:
            raise StoreError(
                f"{table}: {clash[0]:,} document version(s) are already stored with other content at the same "
                f"ingested_at (e.g. {clash[1]})",
                hint="a corrected document needs a later ingested_at (or its own --feed if it is another document)",
            )
        cols = ", ".join(f'"{f.name}"' for f in schema) + ", feed"
        return self.con.execute(
            f"""INSERT INTO {table} ({cols}) SELECT {cols} FROM _in
                SEMI JOIN (SELECT {keys}, ingested_at FROM _versions WHERE same IS NOT TRUE) USING ({keys}, ingested_at)
                WHERE _why IS NULL"""
        ).fetchall()[0][0]

    @_file_errors
    def add_documents(self, docs, ingested_at=None, feed: str | None = None) -> IngestResult:
        """Add Document rows (see the module docstring for identity, idempotence and rejects).

        Rows without ``ingested_at`` get ``ingested_at`` (default now); rows without ``feed``
        get ``feed`` (default their source).
        """
        return self._insert("documents", docs, DOCUMENT_SCHEMA, ingested_at, feed)

    @_file_errors
    def add_scores(self, scores, ingested_at=None, feed: str | None = None) -> IngestResult:
        """Add Score rows (DataFrame, Arrow table or Parquet path/folder/glob), like :meth:`add_documents`.

        A DataFrame is checked as our scorer's output (a bad probability raises); rows read from
        files or Arrow are checked row by row and bad document versions rejected.
        """
        if isinstance(scores, pd.DataFrame):
            validate_scores(scores)
        return self._insert("scores", scores, SCORE_SCHEMA, ingested_at, feed)

    @_file_errors
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
        keys = "date, entity, source"
        with self.transaction():
            self._scratch_frame("_new", feats)
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE _cur AS {self._latest_sql(None)}")
            self._scratch.append(("TABLE", "_cur"))
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

    @_file_errors
    def score_rows(self, as_of) -> pd.DataFrame:
        """Score rows known at ``as_of`` (latest version of each unit), each with its ``session``."""
        from signals.sessions import assign_session, config_kwargs

        rows = self.con.sql(
            """SELECT feed, source, doc_id, unit, model_id, score, published_at, entities FROM scores
               WHERE ingested_at <= $as_of
               QUALIFY row_number() OVER (PARTITION BY feed, source, doc_id, unit ORDER BY ingested_at DESC) = 1""",
            params={"as_of": _aware(as_of, "as_of")}).to_arrow_table().to_pandas()
        rows["published_at"] = pd.to_datetime(rows["published_at"], utc=True)
        rows["session"] = assign_session(rows["published_at"], **config_kwargs(self.cfg.sessions)).to_numpy()
        return rows

    @_file_errors
    def entities(self) -> list[str]:
        return [r[0] for r in self.con.execute("SELECT DISTINCT entity FROM daily_features ORDER BY 1").fetchall()]

    @_file_errors
    def sources(self) -> list[str]:
        """Sources with feature rows, the all-sources key included."""
        return [r[0] for r in self.con.execute("SELECT DISTINCT source FROM daily_features ORDER BY 1").fetchall()]

    @_file_errors
    def daily(self, start=None, end=None, entities=None, sources=None, features=None, as_of=None,
              carry_events: bool = True) -> pd.DataFrame:
        """Daily feature rows as known at ``as_of`` (default: the latest build), long format.

        Columns: date, entity, source, the features, known_at. Unknown entities or sources and
        ``start`` after ``end`` raise :class:`StoreError`; a range without documents gives an
        empty frame. With
        ``carry_events`` the event sources (earnings calls) get a row on every session from a call
        to the next one: decayed levels (``DECAYED_EVENT_COLUMNS`` x 0.5 ** (age / half-life)),
        other columns as at the call, ``event_age`` in sessions, and ``known_at`` no earlier than
        that session's cutoff.
        """
        check_range(start, end)
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
            known = self.sources()
            unknown = sorted(set(sources) - set(known))
            if unknown:
                raise StoreError(f"unknown sources {unknown}: the feature store has {known or 'no feature rows yet'}")
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

    @_file_errors
    def monthly(self, start=None, end=None, entities=None, sources=None, features=None, as_of=None) -> pd.DataFrame:
        """Month-end samples: per key, the latest daily row known by each month-end instant.

        The month-end instant is 00:00 New York on the next month's first day (as for macro data);
        ``date`` is the month end, ``row_date`` the session the row came from.
        """
        from signals.macro import month_end_instant

        check_range(start, end)
        daily = self.daily(None, end, entities, sources, features, as_of, carry_events=True)
        if daily.empty:
            return daily.assign(row_date=daily["date"])
        lo = pd.Timestamp(start) if start is not None else daily["date"].min()
        hi = pd.Timestamp(end) if end is not None else daily["date"].max()
        months = pd.date_range(lo + pd.offsets.MonthEnd(0), hi + pd.offsets.MonthEnd(0), freq="ME")
        return self.sample(daily, months, month_end_instant(months, self.cfg.sessions.tz))

    @_file_errors
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
    @_file_errors
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
            # The relation API takes the path as an argument: no SQL text is built from it.
            self.con.sql(sql, params=params).write_parquet(str(tmp))
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
        return out

    @_file_errors
    def counts(self) -> dict[str, int]:
        return {t: self.con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in TABLES}


def check_range(start, end) -> None:
    """A read range must not end before it starts (it would silently give nothing)."""
    if start is not None and end is not None and pd.Timestamp(start) > pd.Timestamp(end):
        raise StoreError(f"start {start} is after end {end}")


def _aware(ts, name: str) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    if t.tzinfo is None:
        raise StoreError(f"{name} must be timezone-aware")
    return t
