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
* ``builds`` — one row per build (instant, rows written, feature rows current after it).

**Incremental builds** (:meth:`FeatureStore.build`, ``incremental=True``, the default) give the
versions a full build would write while reading a small part of the store. State, kept in the
same transaction as the build (so a failed or killed build leaves it as it was):

* ``scores.batch`` — the number of the ``add_scores`` call that stored a row (old rows: 0).
* ``build_state`` — the previous build's ``as_of``, ``model_id``, highest batch, and config.
* ``day_aggregates`` — one row per current feature row (entity, source, session number ``s``):
  the feature values as last stored, the day's ``max_ing``, and the *running state before the
  row* (``s_first``, ``s_prev``, ``seen`` = running max of ``ingested_at``, running sums of
  log1p(n_docs) and of the count/sum/sum of squares of tones, EW numerators/denominators per
  half-life). Written in session order, so reads of recent sessions skip older row groups.
* ``key_tail`` — per (entity, source), the running state after its last row.
* ``doc_latest`` — identities with several versions, and their current version's ``ingested_at``.

A build at T after one at P: (1) the documents with a row visible at T that was not at P
(a later batch — a backfill stamped in the past included — or stamped after P: future-stamped
rows, late arrivals) and all their versions give the sessions S to re-aggregate (a correction's
old version leaves its session, the new one enters its own); (2) every current document of S is
aggregated again (the same kernels as a full build) and compared with the stored cells; the
(entity, source) keys with a changed, new or vanished cell — ``__MARKET__`` and the all-sources
rows included — are rerun from their first changed session s0, resuming from the state stored
before their first row in [s0 - window, s0) (or their tail state): the running sums are the same
additions in the same order as a full pass, so trailing windows, EW tones (infinite memory) and
``known_at`` come out bit for bit; (3) those rows are compared with the current rows kept in
``day_aggregates`` (not with a scan of ``daily_features``), changed ones appended as versions,
vanished ones tombstoned. Why running state rather than reading each touched key's whole
history: a day's documents touch nearly every key, so rereading histories costs about a full
build. Day means and dispersions are sums whose order may differ between runs: equal within
the change tolerance below, as for two full builds. A store without the state (the first build,
or one written before this change: the tables are created on open, ``batch`` added as 0), a
build with another model or config, or ``incremental=False`` does a full build and resets it.

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
store file at a time: another process gets :class:`~core.errors.StoreBusyError` (exit 3), and a
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
import numpy as np
import pandas as pd
import pyarrow as pa

from core.errors import EXIT_STORE, AltsignalError, StoreBusyError, UsageError
from core.rejects import Rejects
from nlp.contracts import DOCUMENT_SCHEMA, SCORE_SCHEMA, validate_daily_features, validate_scores
from signals.config import DEFAULT_CONFIG, SignalsConfig
from signals.features import (
    _DAY_US,
    _frame,
    aggregate_source,
    calendar_span,
    compute_features,
    connect,
    empty_features,
    feature_columns,
    output_columns,
    parquet_scan,
    query_df,
)
from signals.scans import Daily, fresh_state
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


@contextmanager
def new_store(path: str | Path):
    """Run a command that may create the store ``path``: if the file is new and the command fails,
    the file (and its write-ahead log) is removed. A failed command creates no store; an existing
    store is left to its transactions."""
    path = Path(path)
    created = not path.exists()
    try:
        yield
    except BaseException:
        if created:
            for p in (path, path.with_name(path.name + ".wal")):
                p.unlink(missing_ok=True)
        raise


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
        has_batch = self.con.execute(
            "SELECT count(*) FROM duckdb_columns() WHERE table_name = 'scores' AND column_name = 'batch'").fetchall()[0][0]
        if not has_batch:  # a store written before incremental builds: its rows predate any build state
            self.con.execute("ALTER TABLE scores ADD COLUMN batch BIGINT DEFAULT 0")
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS daily_features (date DATE, entity VARCHAR, source VARCHAR, "
            f"{feats}, known_at TIMESTAMPTZ, ingested_at TIMESTAMPTZ, deleted BOOLEAN)"
        )
        self.con.execute("CREATE TABLE IF NOT EXISTS builds (built_at TIMESTAMPTZ, rows_written BIGINT, rows_total BIGINT)")
        state = ", ".join(f"{c} {'BIGINT' if c in ('s_first', 's_prev', 'seen') else 'DOUBLE'}" for c in self._state_names())
        self.con.execute(f"CREATE TABLE IF NOT EXISTS day_aggregates (s INTEGER, entity VARCHAR, source VARCHAR, {feats}, "
                         f"known_at TIMESTAMPTZ, max_ing BIGINT, {state})")
        self.con.execute(f"CREATE TABLE IF NOT EXISTS key_tail (entity VARCHAR, source VARCHAR, {state})")
        self.con.execute("CREATE TABLE IF NOT EXISTS doc_latest (feed VARCHAR, source VARCHAR, doc_id VARCHAR, ingested_at TIMESTAMPTZ)")
        self.con.execute("CREATE TABLE IF NOT EXISTS doc_multi (feed VARCHAR, source VARCHAR, doc_id VARCHAR, model_id VARCHAR)")
        self.con.execute("CREATE TABLE IF NOT EXISTS build_state (as_of TIMESTAMPTZ, model_id VARCHAR, batch BIGINT, config VARCHAR)")

    def _state_names(self) -> list[str]:
        """Columns of the running state kept before each ``day_aggregates`` row (see :func:`signals.scans.running_state`)."""
        hl = self.cfg.features.half_lives
        return (["s_first", "s_prev", "seen", "v_run", "c_run", "t_run", "q_run"]
                + [f"ew_num_{h}" for h in hl] + [f"ew_den_{h}" for h in hl])

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
            f"""CREATE OR REPLACE TEMP TABLE _stored AS
                SELECT {keys}, ingested_at, {version} FROM {table}
                SEMI JOIN (SELECT DISTINCT {keys} FROM _in WHERE _why IS NULL) USING ({keys}) GROUP BY ALL""")
        self._scratch.append(("TABLE", "_stored"))
        self.con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _versions AS
                WITH inc AS (SELECT {keys}, ingested_at, {version} FROM _in WHERE _why IS NULL GROUP BY ALL)
                SELECT {", ".join("i." + k for k in key)}, i.ingested_at,
                       i.n = s.n AND i.content = s.content AS same, i.ingested_at = s.ingested_at AS same_time
                FROM inc i ASOF LEFT JOIN _stored s ON {on} AND i.ingested_at >= s.ingested_at"""
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
        into, values = cols, cols
        if table == "scores":  # the insert's batch number: incremental builds find rows added since the last build
            into += ", batch"
            values += ", (SELECT coalesce(max(batch), 0) + 1 FROM scores)"
            # Identities that now have several versions: an incremental build looks up only their other versions.
            self.con.execute(
                f"""INSERT INTO doc_multi
                    SELECT * FROM (SELECT {keys} FROM (SELECT {keys}, ingested_at FROM _stored
                                                       UNION SELECT {keys}, ingested_at FROM _versions WHERE same IS NOT TRUE)
                                   GROUP BY ALL HAVING count(*) > 1)
                    EXCEPT SELECT {keys} FROM doc_multi""")
        return self.con.execute(
            f"""INSERT INTO {table} ({into}) SELECT {values} FROM _in
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
    def last_build(self) -> pd.Timestamp | None:
        """The ``as_of`` of the latest build (None before the first)."""
        last = self.con.execute("SELECT epoch_us(max(built_at)) FROM builds").fetchall()[0][0]
        return None if last is None else pd.Timestamp(last, unit="us", tz="UTC")

    @_file_errors
    def build(self, as_of=None, model_id: str | None = None, incremental: bool = True) -> pd.DataFrame:
        """Compute daily features from the scores known at ``as_of`` (default now); store a version.

        ``as_of`` may not precede the latest stored build: history is append-only. With
        ``incremental`` (the default) only what the score rows that became visible since the
        previous build can change is recomputed (see the module docstring); the stored versions
        are those a full build would write. The first build of a store, a store written before
        incremental builds, another ``model_id`` or another feature/session config than the
        previous build's, and ``incremental=False`` do a full build (and reset the state).

        Returns the feature rows this build computed: every row for a full build; for an
        incremental one, the rows of the keys it recomputed, from their first changed session on.
        """
        t = _aware(as_of, "as_of") if as_of is not None else pd.Timestamp.now(tz="UTC")
        last = self.last_build()
        if last is not None and t < last:
            raise StoreError(f"build as_of {t} precedes the latest build {last}")
        with self.transaction():
            state = self._build_state(model_id) if incremental else None
            if state is None:
                return self._build_full(t, model_id)
            return self._build_incremental(t, model_id, *state)

    @_file_errors
    def rollback(self, to) -> dict[str, int]:
        """Forget what the store learned after its build at ``to``: rows stamped later and later
        builds. Returns the rows removed per table.

        ``to`` must be a build of the store (so reads as of ``to`` are unchanged). The incremental
        state is dropped, so the next build is a full one (it rewrites that state). Made for the
        daily store (``altsignal rollback``), whose rows are stamped when each day adds them; a
        backfill stamped before ``to`` but added later would be kept.
        """
        t = _aware(to, "to")
        built = self.con.execute("SELECT count(*) FROM builds WHERE built_at = $t", {"t": t}).fetchall()[0][0]
        if not built:
            raise StoreError(f"{self.path} has no build at {t}", hint="roll back to the instant of an earlier build")
        removed = {}
        with self.transaction():
            for table, stamp in (("documents", "ingested_at"), ("scores", "ingested_at"),
                                 ("daily_features", "ingested_at"), ("builds", "built_at")):
                removed[table] = self.con.execute(f"DELETE FROM {table} WHERE {stamp} > $t", {"t": t}).fetchall()[0][0]
            self.con.execute("DELETE FROM build_state")
        return removed

    def _config_key(self) -> str:
        return repr((self.cfg.features, self.cfg.sessions))

    def _build_state(self, model_id: str | None):
        """(as_of, batch) of the previous build when an incremental build can follow it, else None."""
        rows = self.con.execute("SELECT epoch_us(as_of), model_id, batch, config FROM build_state").fetchall()
        if len(rows) != 1:
            return None
        as_of, model, batch, config = rows[0]
        if model != model_id or config != self._config_key():
            return None
        if model_id is None and self.con.execute("SELECT count(DISTINCT model_id) FROM scores").fetchall()[0][0] > 1:
            return None  # the full build raises the "several models" error
        return pd.Timestamp(as_of, unit="us", tz="UTC"), batch

    def _score_filter(self, t, model_id: str | None) -> tuple[str, dict]:
        params = {"t": t} | ({"m": model_id} if model_id is not None else {})
        return "ingested_at <= $t" + (" AND model_id = $m" if model_id is not None else ""), params

    def _build_full(self, t, model_id: str | None) -> pd.DataFrame:
        feats, state = compute_features(self.con, "scores", self.cfg, as_of=t, model_id=model_id, with_state=True)
        validate_daily_features(feats)
        keys = "date, entity, source"
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
        self._write_full_state(feats, state, t, model_id)
        log.info("build at %s: %d feature rows, %d new versions, %d tombstones", t, len(feats), written, deleted)
        return feats

    def _write_full_state(self, feats: pd.DataFrame, state, t, model_id: str | None) -> None:
        """Replace the incremental-build state by the one of a full build at ``t``."""
        for table in ("day_aggregates", "key_tail", "doc_latest", "doc_multi", "build_state"):
            self.con.execute(f"DELETE FROM {table}")
        if state is not None:
            ents, srcs = pa.array(state["entities"], pa.string()), pa.array(state["sources"], pa.string())
            # Rows in session order: the daily reads of recent sessions skip the older row groups.
            order = np.argsort(state["s"], kind="stable")
            cols = {"s": state["s"][order], "entity": ents.take(pa.array(state["eid"][order])),
                    "source": srcs.take(pa.array(state["sid"][order]))}
            for c in feature_columns(self.cfg):
                cols[c] = feats[c].to_numpy()[order]
            cols["known_at"] = pa.array(feats["known_at"]).take(pa.array(order))
            cols["max_ing"] = state["max_ing"][order]
            cols |= {k: v[order] for k, v in self._state_arrays(*state["before"]).items()}
            self._scratch_frame("_agg", pa.table(cols))
            self.con.execute("INSERT INTO day_aggregates BY NAME SELECT * FROM _agg")
            tail = {"entity": ents.take(pa.array(state["run_eid"])), "source": srcs.take(pa.array(state["run_sid"]))}
            self._scratch_frame("_tail", pa.table(tail | self._state_arrays(*state["after"])))
            self.con.execute("INSERT INTO key_tail BY NAME SELECT * FROM _tail")
        where, params = self._score_filter(t, model_id)
        # Identities on more than one row (any model, any time), by hash: only those can have several versions.
        hashes = self.con.sql("SELECT hash(feed, source, doc_id) AS h FROM scores").fetchnumpy()["h"]
        hashes.sort()
        self._scratch_frame("_several", pa.table({"h": np.unique(hashes[1:][hashes[1:] == hashes[:-1]])}))
        del hashes
        self.con.execute(
            """INSERT INTO doc_multi SELECT feed, source, doc_id, model_id FROM scores u
               SEMI JOIN _several s ON hash(u.feed, u.source, u.doc_id) = s.h
               GROUP BY ALL HAVING count(DISTINCT ingested_at) > 1""")
        self.con.execute(
            f"""INSERT INTO doc_latest SELECT feed, source, doc_id, max(ingested_at) FROM scores u
                SEMI JOIN _several s ON hash(u.feed, u.source, u.doc_id) = s.h
                WHERE {where} GROUP BY ALL HAVING count(DISTINCT ingested_at) > 1""", params)
        self._save_build_state(t, model_id)

    def _save_build_state(self, t, model_id: str | None) -> None:
        self.con.execute("DELETE FROM build_state")
        self.con.execute("INSERT INTO build_state SELECT $t, $m, coalesce(max(batch), 0), $c FROM scores",
                         {"t": t, "m": model_id, "c": self._config_key()})

    def _state_arrays(self, ints, floats, ew) -> dict:
        return dict(zip(self._state_names(), [*ints, *floats, *ew]))

    def _build_incremental(self, t, model_id: str | None, prev, batch) -> pd.DataFrame:
        """Recompute the keys the score rows visible since the previous build (at ``prev``) touch.

        1. Touched documents: identities with a row visible now that was not at ``prev`` (added
           in a later batch, or stamped after ``prev``); all their versions give the sessions S
           to re-aggregate (an old version's session loses it, the new one's gains it).
        2. Every document of S (its latest version: ``doc_latest`` says which version of a
           corrected document is current) is aggregated again into day cells, compared with the
           stored cells; (entity, source) keys with a changed, new or vanished cell are rerun
           from their first changed session s0, starting from the running state stored before
           their first row in [s0 - window, s0) (or the key's tail state), bit for bit as a full
           pass would; their rows from s0 on are compared with the stored current rows.
        """
        fc = self.cfg.features
        con = self.con
        where, params = self._score_filter(t, model_id)
        # Two scans, not one OR: each filter is pushed into its scan (the OR read every row's identity).
        cols = "feed, source, doc_id, published_at, ingested_at"
        con.execute(f"""CREATE OR REPLACE TEMP TABLE _tv AS SELECT DISTINCT * FROM (
                            SELECT {cols} FROM scores WHERE {where} AND batch > $b
                            UNION ALL SELECT {cols} FROM scores WHERE {where} AND ingested_at > $p)""",
                    params | {"b": batch, "p": prev})
        self._scratch.append(("TABLE", "_tv"))
        con.execute("CREATE OR REPLACE TEMP TABLE _tid AS SELECT DISTINCT feed, source, doc_id FROM _tv")
        self._scratch.append(("TABLE", "_tid"))
        # Other versions exist only for identities in doc_multi (kept by every insert): look only those up.
        model = " AND m.model_id = $m" if model_id is not None else ""
        con.execute(f"""CREATE OR REPLACE TEMP TABLE _tmulti AS SELECT DISTINCT t.* FROM _tid t JOIN doc_multi m
                        ON t.feed = m.feed AND t.source = m.source AND t.doc_id = m.doc_id{model}""",
                    {"m": model_id} if model_id is not None else {})
        self._scratch.append(("TABLE", "_tmulti"))
        if con.execute("SELECT count(*) FROM _tmulti").fetchall()[0][0]:
            con.execute(f"""INSERT INTO _tv SELECT {cols} FROM scores SEMI JOIN _tmulti USING (feed, source, doc_id)
                            WHERE {where} EXCEPT SELECT * FROM _tv""", params)
        con.execute("DELETE FROM doc_latest USING _tid x WHERE doc_latest.feed = x.feed AND doc_latest.source = x.source "
                    "AND doc_latest.doc_id = x.doc_id")
        con.execute("""INSERT INTO doc_latest SELECT feed, source, doc_id, max(ingested_at) FROM _tv
                       GROUP BY ALL HAVING count(DISTINCT ingested_at) > 1""")
        pub = con.execute("SELECT DISTINCT epoch_us(published_at) AS p FROM _tv").fetchnumpy()["p"]
        all_ = sessions(self.cfg.sessions.calendar)
        dates = all_.to_numpy(dtype="datetime64[ns]")
        cutoffs = session_cutoffs(all_, self.cfg.sessions.cutoff, self.cfg.sessions.tz).as_unit("us").asi8
        touched = np.unique(np.searchsorted(cutoffs, pub, side="right")).astype(np.int64)
        written = deleted = 0
        out = empty_features(self.cfg)
        if len(touched):
            cells = self._session_cells(touched, where, params, dates, cutoffs)
            out, written, deleted = self._rerun(t, touched, cells, dates, cutoffs)
        total = con.execute("SELECT count(*) FROM day_aggregates").fetchall()[0][0]
        con.execute("INSERT INTO builds VALUES ($t, $w, $n)", {"t": t, "w": written + deleted, "n": total})
        self._save_build_state(t, model_id)
        log.info("incremental build at %s: %d sessions re-aggregated, %d rows recomputed, %d new versions, %d tombstones",
                 t, len(touched), len(out), written, deleted)
        return out

    def _session_cells(self, touched: np.ndarray, where: str, params: dict, dates, cutoffs) -> pd.DataFrame:
        """Day cells (s, entity, source, aggregates) of every document counting for the sessions ``touched``."""
        con = self.con
        first, _ = calendar_span(self.cfg)
        lo = np.where(touched > 0, cutoffs[np.maximum(touched - 1, 0)], first.value // 1000)
        hi = cutoffs[touched]
        day = _DAY_US
        spans = [(d, a, b) for a, b in zip(lo, hi) for d in range(a // day, (b - 1) // day + 1)]
        d, a, b = (np.array(x, dtype=np.int64) for x in zip(*spans))
        self._scratch_frame("_wdays", pa.table({"day": d, "lo": a, "hi": b}))
        # First the rows published in the spans (a range filter pushed into the scan: one scan per
        # cluster of nearby sessions, at most 16, so a late document years back does not read the
        # years between), then the exact sessions.
        cuts = np.flatnonzero(np.diff(touched) > 20) + 1
        if len(cuts) > 15:
            cuts = cuts[np.argsort(np.diff(touched)[cuts - 1])[::-1][:15]]
            cuts.sort()
        verb = "CREATE OR REPLACE TEMP TABLE _w0 AS"
        for part in np.split(np.arange(len(touched)), cuts):
            con.execute(
                f"""{verb} SELECT feed, doc_id, p_neg, p_neu, p_pos, score, source, published_at, entities, ingested_at
                    FROM scores WHERE {where} AND published_at >= $wlo AND published_at < $whi""",
                params | {"wlo": pd.Timestamp(int(lo[part].min()), unit="us", tz="UTC"),
                          "whi": pd.Timestamp(int(hi[part].max()), unit="us", tz="UTC")})
            verb = "INSERT INTO _w0"
        self._scratch.append(("TABLE", "_w0"))
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _w AS
                SELECT u.feed, u.doc_id, u.p_neg, u.p_neu, u.p_pos, u.score, u.source, u.published_at, u.entities, u.ingested_at
                FROM _w0 u
                JOIN _wdays w ON epoch_us(u.published_at) // {day} = w.day
                              AND epoch_us(u.published_at) >= w.lo AND epoch_us(u.published_at) < w.hi
                LEFT JOIN doc_latest l ON u.feed = l.feed AND u.source = l.source AND u.doc_id = l.doc_id
                WHERE l.ingested_at IS NULL OR u.ingested_at = l.ingested_at""")
        self._scratch.append(("TABLE", "_w"))
        lo_us, hi_us, n, srcs = con.execute(
            "SELECT epoch_us(min(published_at)), epoch_us(max(published_at)), count(*), "
            "list(DISTINCT source ORDER BY source) FROM _w").fetchall()[0]
        if not n:
            return pd.DataFrame({"s": pd.Series(dtype="int64"), "entity": pd.Series(dtype=object), "source": pd.Series(dtype=object)}
                                | {c: pd.Series(dtype="int64") for c in ("n_docs", "n_pos", "n_neg", "max_ing")}
                                | {c: pd.Series(dtype="float64") for c in ("mean_score", "dispersion")})
        daily, entities, sources, _, _ = aggregate_source(con, "_w", "", {}, self.cfg, lo_us, hi_us, srcs)
        return pd.DataFrame({
            "s": daily.s.astype(np.int64),
            "entity": pa.array(entities, pa.string()).take(pa.array(daily.eid)).to_numpy(zero_copy_only=False),
            "source": pa.array(sources, pa.string()).take(pa.array(daily.sid)).to_numpy(zero_copy_only=False),
            "n_docs": daily.n_docs, "n_pos": daily.n_pos, "n_neg": daily.n_neg,
            "mean_score": daily.mean_score, "dispersion": daily.dispersion, "max_ing": daily.max_ing,
        })

    def _rerun(self, t, touched: np.ndarray, cells: pd.DataFrame, dates, cutoffs) -> tuple[pd.DataFrame, int, int]:
        """Rerun the keys whose day cells in ``touched`` changed; write their changed rows; returns (rows, written, tombstones)."""
        con = self.con
        fc = self.cfg.features
        agg = ["n_docs", "n_pos", "n_neg", "mean_score", "dispersion", "max_ing"]
        self._scratch_frame("_touched", pa.table({"s": touched}))
        self._scratch_frame("_ncell", cells)
        floats = " OR ".join(f"abs(n.{c} - o.{c}) > 1e-12 * greatest(1.0, abs(o.{c}))" for c in ("mean_score", "dispersion"))
        ints = " OR ".join(f"n.{c} <> o.{c}" for c in ("n_docs", "n_pos", "n_neg", "max_ing"))
        kc = query_df(con, f"""
            WITH o AS (SELECT s, entity, source, {", ".join(agg)} FROM day_aggregates
                       WHERE s BETWEEN $lo AND $hi AND s IN (SELECT s FROM _touched))
            SELECT coalesce(n.entity, o.entity) AS entity, coalesce(n.source, o.source) AS source,
                   min(coalesce(n.s, o.s))::BIGINT AS s0
            FROM _ncell n FULL JOIN o ON n.s = o.s AND n.entity = o.entity AND n.source = o.source
            WHERE n.n_docs IS NULL OR o.n_docs IS NULL OR {ints} OR {floats}
            GROUP BY ALL""", {"lo": int(touched.min()), "hi": int(touched.max())})
        if kc.empty:
            return empty_features(self.cfg), 0, 0
        window = max(fc.volume_window, fc.surprise_window)
        self._scratch_frame("_kc", kc)
        olo = int(kc["s0"].min()) - window
        old = query_df(con, f"""SELECT d.*, k.s0 FROM day_aggregates d JOIN _kc k USING (entity, source)
                                WHERE d.s >= $olo AND d.s >= k.s0 - {window}""", {"olo": olo})
        tails = query_df(con, "SELECT t.* FROM key_tail t SEMI JOIN _kc USING (entity, source)")
        new = cells.merge(kc, on=["entity", "source"])
        new = new[new["s"] >= new["s0"]]
        old_s = old["s"].to_numpy()
        keep = (old_s < old["s0"].to_numpy()) | ~np.isin(old_s, touched)
        hist = pd.concat([old.loc[keep, ["s", "entity", "source", "s0", *agg]], new[["s", "entity", "source", "s0", *agg]]],
                         ignore_index=True)
        ents = sorted(set(kc["entity"]))
        srcs = sorted(set(kc["source"]))
        hist["eid"] = pd.Index(ents).get_indexer(hist["entity"]).astype(np.int32)
        hist["sid"] = pd.Index(srcs).get_indexer(hist["source"]).astype(np.int32)
        hist = hist.sort_values(["eid", "sid", "s"], kind="stable").reset_index(drop=True)
        # Each key's starting state: before its first stored row in [s0 - window, ...), else after its last row, else none.
        names = self._state_names()
        start = (old.sort_values("s", kind="stable").drop_duplicates(["entity", "source"])[["entity", "source", *names]]
                 .assign(_from=0))
        start = pd.concat([start, tails[["entity", "source", *names]].assign(_from=1)], ignore_index=True)
        start = start.sort_values("_from", kind="stable").drop_duplicates(["entity", "source"])
        runs = hist.drop_duplicates(["eid", "sid"])[["entity", "source"]].merge(start, on=["entity", "source"], how="left")
        nh = len(fc.half_lives)
        init_int, init_float, init_ew = fresh_state(hist["eid"].to_numpy(np.int64) * len(srcs) + hist["sid"].to_numpy(), nh)
        has = runs["s_prev"].notna().to_numpy()
        for j, c in enumerate(names):
            dst = init_int[j] if j < 3 else init_float[j - 3] if j < 7 else init_ew[j - 7]
            dst[has] = runs.loc[has, c].to_numpy()
        daily = Daily(hist["eid"].to_numpy(np.int32), hist["sid"].to_numpy(np.int32), hist["s"].to_numpy(np.int32),
                      hist["n_docs"].to_numpy(np.int64), hist["n_pos"].to_numpy(np.int64), hist["n_neg"].to_numpy(np.int64),
                      hist["mean_score"].to_numpy(np.float64), hist["dispersion"].to_numpy(np.float64),
                      hist["max_ing"].to_numpy(np.int64))
        frame, state = _frame(daily, self.cfg, dates, cutoffs, ents, srcs, with_state=True,
                              init=(init_int, init_float, init_ew))
        mine = hist["s"].to_numpy() >= hist["s0"].to_numpy()
        rows = frame[mine].reset_index(drop=True)
        validate_daily_features(rows)
        # Versions: the recomputed rows against the current rows they replace (day_aggregates holds them).
        cur = old[old["s"] >= old["s0"]]
        cur = cur.assign(date=dates[cur["s"].to_numpy()])[output_columns(self.cfg)]
        self._scratch_frame("_new", rows)
        self._scratch_frame("_cur", cur)
        keys = "date, entity, source"
        written = con.execute(
            f"""INSERT INTO daily_features
                SELECT {", ".join("n." + c for c in output_columns(self.cfg))}, $t, false
                FROM (SELECT CAST(date AS DATE) AS date, * EXCLUDE (date) FROM _new) n
                LEFT JOIN (SELECT CAST(date AS DATE) AS date, * EXCLUDE (date) FROM _cur) c USING ({keys})
                WHERE c.entity IS NULL OR {self._changed_sql()}""", {"t": t}).fetchall()[0][0]
        nulls = ", ".join("NULL" for _ in feature_columns(self.cfg))
        deleted = con.execute(
            f"""INSERT INTO daily_features
                SELECT CAST(c.date AS DATE), c.entity, c.source, {nulls}, NULL, $t, true
                FROM _cur c ANTI JOIN _new n USING ({keys})""", {"t": t}).fetchall()[0][0]
        # The state: the keys' rows from s0 on, and their tails.
        con.execute(f"""DELETE FROM day_aggregates d USING _kc k
                        WHERE d.entity = k.entity AND d.source = k.source AND d.s >= k.s0 AND d.s >= {int(kc['s0'].min())}""")
        before = {k: v[mine] for k, v in self._state_arrays(*state["before"]).items()}
        cols = {"s": hist["s"].to_numpy(np.int32)[mine], "entity": rows["entity"].to_numpy(), "source": rows["source"].to_numpy()}
        cols |= {c: rows[c].to_numpy() for c in feature_columns(self.cfg)}
        cols["known_at"] = rows["known_at"]
        cols["max_ing"] = hist["max_ing"].to_numpy(np.int64)[mine]
        self._scratch_frame("_agg", pd.DataFrame(cols | before))
        con.execute("INSERT INTO day_aggregates BY NAME SELECT * FROM _agg")
        con.execute("DELETE FROM key_tail t USING _kc k WHERE t.entity = k.entity AND t.source = k.source")
        after = pd.DataFrame({"entity": runs["entity"].to_numpy(), "source": runs["source"].to_numpy()}
                             | self._state_arrays(*state["after"]))
        # A key left without rows from s0 on keeps the state it started from (none: no history left).
        gone = start.merge(kc, on=["entity", "source"]).merge(runs[["entity", "source"]], how="left", indicator=True)
        gone = gone[(gone["_merge"] == "left_only") & (gone["s_prev"] >= 0)][["entity", "source", *names]]
        self._scratch_frame("_tail", pd.concat([after, gone], ignore_index=True) if len(gone) else after)
        con.execute("INSERT INTO key_tail BY NAME SELECT * FROM _tail")
        return rows, written, deleted

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
