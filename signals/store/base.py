"""The store's file: its connection, schema, transactions and the errors about the file itself."""
from __future__ import annotations

import functools
import re
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from core.errors import EXIT_STORE, AltsignalError, StoreBusyError, UsageError
from nlp.contracts import DOCUMENT_SCHEMA, SCORE_SCHEMA
from signals.config import DEFAULT_CONFIG, SignalsConfig
from signals.feature_specs import BASE_STATE, integer_columns, state_names
from signals.features import connect, feature_columns
from signals.sessions import Sessions

TABLES = ("documents", "scores", "daily_features", "builds")

_DUCK_TYPES = {
    pa.string(): "VARCHAR",
    pa.int32(): "INTEGER",
    pa.float32(): "FLOAT",
    pa.timestamp("us", tz="UTC"): "TIMESTAMPTZ",
    pa.list_(pa.string()): "VARCHAR[]",
}
_NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                  "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL")
_OPTIONAL_COLUMNS = ("ingested_at", "section", "speaker_role", "title", "publisher", "url", "entity")


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


class StoreBase:
    """The open store: connection, configuration, session calendar and transactions, shared by its parts."""

    def __init__(self, path: str | Path | None = None, cfg: SignalsConfig = DEFAULT_CONFIG, read_only: bool = False,
                 sessions: Sessions | None = None):
        self.cfg = cfg
        self.sessions = sessions or Sessions(cfg.sessions)
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
        ints = integer_columns(self.cfg.features)
        feat_types = {c: "BIGINT" if c in ints else "DOUBLE" for c in feature_columns(self.cfg)}
        state_types = {c: "BIGINT" if c in BASE_STATE else "DOUBLE" for c in state_names(self.cfg.features)}
        feats = ", ".join(f'"{c}" {t}' for c, t in feat_types.items())
        for table, schema in (("documents", DOCUMENT_SCHEMA), ("scores", SCORE_SCHEMA)):
            self.con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({_ddl(schema)}, feed VARCHAR)")
            has_feed = self.con.execute(
                "SELECT count(*) FROM duckdb_columns() WHERE table_name = $t AND column_name = 'feed'", {"t": table}
            ).fetchall()[0][0]
            if not has_feed:  # a store written before document identity included the feed
                with self.transaction():
                    self.con.execute(f"ALTER TABLE {table} ADD COLUMN feed VARCHAR")
                    self.con.execute(f"UPDATE {table} SET feed = source")
        if not self.con.execute("SELECT count(*) FROM duckdb_columns() WHERE table_name = 'scores' "
                                "AND column_name = 'entity'").fetchall()[0][0]:  # a store from before entity-level rows
            self.con.execute("ALTER TABLE scores ADD COLUMN entity VARCHAR")
        has_batch = self.con.execute(
            "SELECT count(*) FROM duckdb_columns() WHERE table_name = 'scores' AND column_name = 'batch'").fetchall()[0][0]
        if not has_batch:  # a store written before incremental builds: its rows predate any build state
            self.con.execute("ALTER TABLE scores ADD COLUMN batch BIGINT DEFAULT 0")
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS daily_features (date DATE, entity VARCHAR, source VARCHAR, "
            f"{feats}, known_at TIMESTAMPTZ, ingested_at TIMESTAMPTZ, deleted BOOLEAN)"
        )
        self.con.execute("CREATE TABLE IF NOT EXISTS builds (built_at TIMESTAMPTZ, rows_written BIGINT, rows_total BIGINT)")
        state = ", ".join(f"{c} {t}" for c, t in state_types.items())
        self.con.execute(f"CREATE TABLE IF NOT EXISTS day_aggregates (s INTEGER, entity VARCHAR, source VARCHAR, {feats}, "
                         f"known_at TIMESTAMPTZ, max_ing BIGINT, {state})")
        self.con.execute(f"CREATE TABLE IF NOT EXISTS key_tail (entity VARCHAR, source VARCHAR, {state})")
        self.con.execute("CREATE TABLE IF NOT EXISTS doc_latest (feed VARCHAR, source VARCHAR, doc_id VARCHAR, ingested_at TIMESTAMPTZ)")
        self.con.execute("CREATE TABLE IF NOT EXISTS doc_multi (feed VARCHAR, source VARCHAR, doc_id VARCHAR, model_id VARCHAR)")
        self.con.execute("CREATE TABLE IF NOT EXISTS build_state (as_of TIMESTAMPTZ, model_id VARCHAR, batch BIGINT, config VARCHAR)")
        # A store written before a feature spec was added gets its columns (NULL until the next
        # build, which is a full one: the build config names the specs).
        for table, types in (("daily_features", feat_types), ("day_aggregates", feat_types | state_types),
                             ("key_tail", state_types)):
            have = {r[0] for r in self.con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE table_name = $t", {"t": table}).fetchall()}
            for c, t in types.items():
                if c not in have:
                    self.con.execute(f'ALTER TABLE {table} ADD COLUMN "{c}" {t}')

    def close(self) -> None:
        self.con.close()

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


def check_range(start, end) -> None:
    """A read range must not end before it starts (it would silently give nothing)."""
    if start is not None and end is not None and pd.Timestamp(start) > pd.Timestamp(end):
        raise StoreError(f"start {start} is after end {end}")


def _aware(ts, name: str) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    if t.tzinfo is None:
        raise StoreError(f"{name} must be timezone-aware")
    return t
