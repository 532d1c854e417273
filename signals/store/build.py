"""The build engine: full and incremental builds of the versioned daily features, their state, rollback."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pyarrow as pa

from nlp.contracts import validate_daily_features
from signals import feature_specs
from signals.features import (
    _DAY_US,
    _frame,
    aggregate_source,
    compute_features,
    empty_features,
    feature_columns,
    output_columns,
    query_df,
)
from signals.scans import Daily
from signals.store.base import StoreError, _aware, _file_errors
from signals.store.reader import StoreReader

log = logging.getLogger("signals.store")


class BuildEngine(StoreReader):
    """Builds of ``daily_features`` from the scores (see :mod:`signals.store` for the incremental state).

    A build reads what it replaces: the current rows as the reader sees them.
    """

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
        # The feature columns too: a store built before a spec was added gets a full build.
        return repr((self.cfg.features, self.sessions.cfg, feature_columns(self.cfg)))

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
        feats, state = compute_features(self.con, "scores", self.cfg, as_of=t, model_id=model_id, with_state=True,
                                        sessions=self.sessions)
        validate_daily_features(feats)
        self._scratch_frame("_new", feats)
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE _cur AS {self._latest_sql(None)}")
        self._scratch.append(("TABLE", "_cur"))
        written, deleted = self._write_versions(t)
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
            cols |= {k: v[order] for k, v in state["before"].items()}
            self._scratch_frame("_agg", pa.table(cols))
            self.con.execute("INSERT INTO day_aggregates BY NAME SELECT * FROM _agg")
            tail = {"entity": ents.take(pa.array(state["run_eid"])), "source": srcs.take(pa.array(state["run_sid"]))}
            self._scratch_frame("_tail", pa.table(tail | state["after"]))
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
        all_ = self.sessions.dates()
        dates = all_.to_numpy(dtype="datetime64[ns]")
        cutoffs = self.sessions.cutoffs(all_).as_unit("us").asi8
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
        first, _ = self.sessions.span()
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
                f"""{verb} SELECT feed, doc_id, unit, p_neg, p_neu, p_pos, score, source, published_at, entities, ingested_at, entity
                    FROM scores WHERE {where} AND published_at >= $wlo AND published_at < $whi""",
                params | {"wlo": pd.Timestamp(int(lo[part].min()), unit="us", tz="UTC"),
                          "whi": pd.Timestamp(int(hi[part].max()), unit="us", tz="UTC")})
            verb = "INSERT INTO _w0"
        self._scratch.append(("TABLE", "_w0"))
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _w AS
                SELECT u.feed, u.doc_id, u.unit, u.p_neg, u.p_neu, u.p_pos, u.score, u.source, u.published_at, u.entities,
                       u.ingested_at, u.entity
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
        daily, entities, sources, _, _ = aggregate_source(con, "_w", "", {}, self.cfg, self.sessions, lo_us, hi_us, srcs)
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
        window = feature_specs.state_window(fc)
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
        names = feature_specs.state_names(fc)
        start = (old.sort_values("s", kind="stable").drop_duplicates(["entity", "source"])[["entity", "source", *names]]
                 .assign(_from=0))
        start = pd.concat([start, tails[["entity", "source", *names]].assign(_from=1)], ignore_index=True)
        start = start.sort_values("_from", kind="stable").drop_duplicates(["entity", "source"])
        runs = hist.drop_duplicates(["eid", "sid"])[["entity", "source"]].merge(start, on=["entity", "source"], how="left")
        init = feature_specs.fresh_state(len(runs), fc)
        has = runs["s_prev"].notna().to_numpy()
        for c in names:
            init[c][has] = runs.loc[has, c].to_numpy()
        daily = Daily(hist["eid"].to_numpy(np.int32), hist["sid"].to_numpy(np.int32), hist["s"].to_numpy(np.int32),
                      hist["n_docs"].to_numpy(np.int64), hist["n_pos"].to_numpy(np.int64), hist["n_neg"].to_numpy(np.int64),
                      hist["mean_score"].to_numpy(np.float64), hist["dispersion"].to_numpy(np.float64),
                      hist["max_ing"].to_numpy(np.int64))
        frame, state = _frame(daily, self.cfg, dates, cutoffs, ents, srcs, with_state=True, init=init)
        mine = hist["s"].to_numpy() >= hist["s0"].to_numpy()
        rows = frame[mine].reset_index(drop=True)
        validate_daily_features(rows)
        # Versions: the recomputed rows against the current rows they replace (day_aggregates holds them).
        cur = old[old["s"] >= old["s0"]]
        cur = cur.assign(date=dates[cur["s"].to_numpy()])[output_columns(self.cfg)]
        self._scratch_frame("_new", rows)
        self._scratch_frame("_cur", cur)
        written, deleted = self._write_versions(t, "(SELECT CAST(date AS DATE) AS date, * EXCLUDE (date) FROM _cur)")
        # The state: the keys' rows from s0 on, and their tails.
        con.execute(f"""DELETE FROM day_aggregates d USING _kc k
                        WHERE d.entity = k.entity AND d.source = k.source AND d.s >= k.s0 AND d.s >= {int(kc['s0'].min())}""")
        before = {k: v[mine] for k, v in state["before"].items()}
        cols = {"s": hist["s"].to_numpy(np.int32)[mine], "entity": rows["entity"].to_numpy(), "source": rows["source"].to_numpy()}
        cols |= {c: rows[c].to_numpy() for c in feature_columns(self.cfg)}
        cols["known_at"] = rows["known_at"]
        cols["max_ing"] = hist["max_ing"].to_numpy(np.int64)[mine]
        self._scratch_frame("_agg", pd.DataFrame(cols | before))
        con.execute("INSERT INTO day_aggregates BY NAME SELECT * FROM _agg")
        con.execute("DELETE FROM key_tail t USING _kc k WHERE t.entity = k.entity AND t.source = k.source")
        after = pd.DataFrame({"entity": runs["entity"].to_numpy(), "source": runs["source"].to_numpy()}
                             | state["after"])
        # A key left without rows from s0 on keeps the state it started from (none: no history left).
        gone = start.merge(kc, on=["entity", "source"]).merge(runs[["entity", "source"]], how="left", indicator=True)
        gone = gone[(gone["_merge"] == "left_only") & (gone["s_prev"] >= 0)][["entity", "source", *names]]
        self._scratch_frame("_tail", pd.concat([after, gone], ignore_index=True) if len(gone) else after)
        con.execute("INSERT INTO key_tail BY NAME SELECT * FROM _tail")
        return rows, written, deleted

    def _write_versions(self, t, cur: str = "_cur") -> tuple[int, int]:
        """Append the rows of ``_new`` that are new or changed against the current rows ``cur`` as
        versions stamped ``t``, and tombstones for the rows of ``cur`` missing from ``_new``."""
        keys = "date, entity, source"
        cols = output_columns(self.cfg)
        into = f"INSERT INTO daily_features ({', '.join(cols)}, ingested_at, deleted)"
        new = "(SELECT CAST(date AS DATE) AS date, * EXCLUDE (date) FROM _new)"
        written = self.con.execute(
            f"""{into} SELECT {", ".join("n." + c for c in cols)}, $t, false
                FROM {new} n LEFT JOIN {cur} c USING ({keys})
                WHERE c.entity IS NULL OR {self._changed_sql()}""", {"t": t}).fetchall()[0][0]
        nulls = ", ".join("NULL" for _ in feature_columns(self.cfg))
        deleted = self.con.execute(
            f"""{into} SELECT c.date, c.entity, c.source, {nulls}, NULL, $t, true
                FROM {cur} c ANTI JOIN {new} n USING ({keys})""", {"t": t}).fetchall()[0][0]
        return written, deleted

    def _changed_sql(self) -> str:
        """A stored row counts as changed unless every column matches; floats within 1e-12 relative.

        DuckDB's parallel sums may differ in the last bits between runs; that is not a new version.
        """
        parts = []
        exact = feature_specs.integer_columns(self.cfg.features) | {"known_at"}
        for c in feature_columns(self.cfg) + ["known_at"]:
            if c in exact:
                parts.append(f"n.{c} IS DISTINCT FROM c.{c}")
            else:
                parts.append(f"((n.{c} IS NULL) <> (c.{c} IS NULL) OR abs(n.{c} - c.{c}) > 1e-12 * greatest(1.0, abs(c.{c})))")
        return "(" + " OR ".join(parts) + ")"
