"""The reader: daily and monthly features as of any instant, score rows, export and counts."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from signals.features import feature_columns, output_columns, query_df
from signals.store.base import TABLES, StoreBase, StoreError, _aware, _file_errors, check_range

# A corrected document: its last version (all the rows of that version).
LATEST = "QUALIFY rank() OVER (PARTITION BY feed, source, doc_id ORDER BY ingested_at DESC) = 1"
# Event features carried forward between calls; signed levels decay towards 0.
DECAYED_EVENT_COLUMNS = ("mean_score", "tone", "share_pos", "share_neg")


class StoreReader(StoreBase):
    """Reads of the store (every read as of an instant takes the latest version known then)."""

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
        """Unit score rows known at ``as_of`` (latest version of each unit), each with its ``session``;
        entity-level rows (``entity`` set) are left out: they are extra views of units counted here."""
        rows = self.con.sql(
            """SELECT feed, source, doc_id, unit, model_id, score, published_at, entities FROM scores
               WHERE ingested_at <= $as_of AND entity IS NULL
               QUALIFY row_number() OVER (PARTITION BY feed, source, doc_id, unit ORDER BY ingested_at DESC) = 1""",
            params={"as_of": _aware(as_of, "as_of")}).to_arrow_table().to_pandas()
        rows["published_at"] = pd.to_datetime(rows["published_at"], utc=True)
        rows["session"] = self.sessions.assign(rows["published_at"]).to_numpy()
        return rows

    @_file_errors
    def last_build(self) -> pd.Timestamp | None:
        """The ``as_of`` of the latest build (None before the first)."""
        return self.previous_build(None)

    @_file_errors
    def previous_build(self, before) -> pd.Timestamp | None:
        """The ``as_of`` of the latest build strictly before ``before`` (None: no such build; ``before``
        None: the latest build)."""
        cond, params = ("WHERE built_at < $t", {"t": _aware(before, "before")}) if before is not None else ("", {})
        last = self.con.execute(f"SELECT epoch_us(max(built_at)) FROM builds {cond}", params).fetchall()[0][0]
        return None if last is None else pd.Timestamp(last, unit="us", tz="UTC")

    @_file_errors
    def doc_ids_by_feed(self) -> dict[str, set[str]]:
        """The ``doc_id`` of every document the store holds (any version, any time), by feed."""
        held: dict[str, set[str]] = {}
        for feed, doc_id in self.con.execute("SELECT feed, doc_id FROM documents").fetchall():
            held.setdefault(feed, set()).add(doc_id)
        return held

    @_file_errors
    def documents(self, *, after=None, since=None, until=None, feeds=None) -> pd.DataFrame:
        """Document rows ingested in a window, each identity's latest version in it (all columns).

        ``after``: ``ingested_at > after``; ``since``: ``ingested_at >= since`` (give one of the
        two, or neither for no lower bound); ``until``: ``ingested_at <= until``; ``feeds``: only
        these feeds (an empty list gives nothing).
        """
        return self._latest_rows("documents", after, since, until, feeds)

    @_file_errors
    def scores(self, *, after=None, since=None, until=None) -> pd.DataFrame:
        """Score rows ingested in a window, each identity's latest version in it (all its units):
        the window as for :meth:`documents`."""
        return self._latest_rows("scores", after, since, until, None)

    def _latest_rows(self, table: str, after, since, until, feeds) -> pd.DataFrame:
        if after is not None and since is not None:
            raise StoreError("give after (exclusive) or since (inclusive), not both")
        where, params = [], {}
        for name, op, bound in (("after", ">", after), ("since", ">=", since), ("until", "<=", until)):
            if bound is not None:
                where.append(f"ingested_at {op} ${name}")
                params[name] = _aware(bound, name)
        if feeds is not None:
            where.append("list_contains($feeds, feed)")
            params["feeds"] = list(feeds)
        cond = ("WHERE " + " AND ".join(where)) if where else ""
        return query_df(self.con, f"SELECT * FROM {table} {cond} {LATEST}", params)

    @_file_errors
    def entities(self) -> list[str]:
        return [r[0] for r in self.con.execute("SELECT DISTINCT entity FROM daily_features ORDER BY 1").fetchall()]

    @_file_errors
    def sources(self) -> list[str]:
        """Sources with feature rows, the all-sources key included."""
        return [r[0] for r in self.con.execute("SELECT DISTINCT source FROM daily_features ORDER BY 1").fetchall()]

    @_file_errors
    def date_span(self) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
        """The first and last session dates with feature rows ((None, None) before the first build)."""
        lo, hi = self.con.execute("SELECT min(date), max(date) FROM daily_features").fetchone()
        return (None if lo is None else pd.Timestamp(lo)), (None if hi is None else pd.Timestamp(hi))

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
        grid = pd.DataFrame({"date": self.sessions.dates(lo, hi)})
        grid["s"] = self.sessions.index(grid["date"])
        grid["cutoff"] = self.sessions.cutoffs(grid["date"])
        rows["s"] = self.sessions.index(rows["date"])
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
        return self.sample(daily, months, month_end_instant(months, self.sessions.cfg.tz))

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
