"""Ingest: documents and scores into the store, as versions of their identities, with rejects."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa

from core.rejects import Rejects
from nlp.contracts import DOCUMENT_SCHEMA, SCORE_SCHEMA, validate_scores
from signals.features import parquet_scan
from signals.store.base import _DUCK_TYPES, _NUMERIC_TYPES, _OPTIONAL_COLUMNS, StoreBase, StoreError, _file_errors

log = logging.getLogger("signals.store")


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



class StoreIngest(StoreBase):
    """Adding documents and scores (see :mod:`signals.store` for identity, idempotence and rejects)."""

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
        first, last = self.sessions.span()
        cal = self.sessions.calendar
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
                ("p_pos", ("NOT coalesce(p_neg BETWEEN 0 AND 1 AND p_neu BETWEEN 0 AND 1 AND p_pos BETWEEN 0 AND 1 "
                           "AND abs(p_neg + p_neu + p_pos - 1) <= 1e-3 AND NOT isnan(score), false)"),
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
