"""Incremental builds (``FeatureStore.build(incremental=True)``) give what full builds give.

"Equal" means: same keys, dates, counts and ``known_at`` exactly, floats within the store's own
change tolerance (1e-12 relative, ``FeatureStore._changed_sql``): the per-day means and
dispersions are sums whose order can differ between runs; the running columns are carried bit
for bit.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from signals.store import FeatureStore
from signals.synthetic import score_frame, synthetic_scores

pytestmark = pytest.mark.slow  # ~1 minute: many builds on two stores

KEY = ["date", "entity", "source"]
T0 = pd.Timestamp("2016-02-01T22:30Z")


def _norm(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns="event_age").sort_values(KEY).reset_index(drop=True)


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(_norm(a), _norm(b), check_dtype=False, rtol=1e-12, atol=1e-12)


def _doc(doc_id, published_at, ingested_at, entities, p_pos=0.8, p_neg=0.1, source="news", unit=0):
    return dict(doc_id=doc_id, unit=unit, source=source, published_at=published_at, ingested_at=ingested_at,
                p_pos=p_pos, p_neg=p_neg, entities=entities)


def _extras(steps: list[pd.Timestamp]) -> dict[int, list[dict]]:
    """Documents added at given steps, beyond the day's regular rows."""
    h = pd.Timedelta(hours=1)
    return {
        1: [_doc("multi", steps[1] - 3 * h, steps[1] - 2 * h, ["T0001", "T0004", "T0001"]),
            _doc("mkt", steps[1] - 3 * h, steps[1] - 2 * h, [], p_pos=0.1, p_neg=0.7)],
        2: [_doc("c1", steps[2] - 5 * h, steps[2] - 4 * h, ["T0002"]),
            _doc("c2", steps[2] - 5 * h, steps[2] - 4 * h, ["GONE"], source="social")],
        # Future-stamped: added now, visible only from step 9 on.
        4: [_doc("future", steps[4] - 5 * h, steps[9] - h, ["T0003"], p_pos=0.05, p_neg=0.9)],
        # A late document for an old session.
        8: [_doc("late", steps[2] - 6 * h, steps[8] - h, ["T0001"], p_pos=0.05, p_neg=0.9)],
        # Corrections: c1 changes its score; c2 moves a session earlier and to another entity (GONE vanishes).
        10: [_doc("c1", steps[2] - 5 * h, steps[10] - h, ["T0002"], p_pos=0.1, p_neg=0.85),
             _doc("c2", steps[1] - 5 * h, steps[10] - h, ["T0003"], source="social", p_pos=0.2, p_neg=0.3)],
        # A backfill stamped in the past (ingested when published), for old sessions.
        12: [_doc(f"bf{i}", steps[i % 5] - (i + 2) * h, steps[i % 5] - (i + 1) * h, [f"T000{i % 3}"], p_pos=0.6, p_neg=0.2)
             for i in range(8)],
        # A late document for a session over a month back, with today's news: two separate spans to re-read.
        16: [_doc("very-late", "2016-01-06T15:00Z", steps[16] - h, ["T0002"], p_pos=0.1, p_neg=0.8),
             _doc("today", steps[16] - 3 * h, steps[16] - 2 * h, ["T0002"])],
        14: [_doc("newco", steps[14] - 3 * h, steps[14] - 2 * h, ["NEWCO"]),
             *[_doc("call", steps[14] - 3 * h, steps[14] - 2 * h, ["T0005"], source="transcript", unit=u) for u in range(3)]],
    }


@pytest.fixture(scope="module")
def daily_steps():
    rng = np.random.default_rng(11)
    steps = list(T0 + pd.to_timedelta(np.cumsum(rng.integers(1, 4, 18)), unit="D"))
    base = synthetic_scores(3_000, 6, start="2016-01-04", years=0.2, seed=5, units_per_call=5, late_share=0.1).to_pandas()
    return steps, base


def _adds(steps, base):
    """(step index, as_of, score rows added before that build): the rows ingested since the previous step."""
    extras = _extras(steps)
    prev = None
    for k, t in enumerate(steps):
        day = base[(base["ingested_at"] <= t) & ((base["ingested_at"] > prev) if prev is not None else True)]
        parts = [day] + ([score_frame(extras[k], model_id="synthetic-v1")] if k in extras else [])
        yield k, t, pd.concat(parts, ignore_index=True)
        prev = t


def test_daily_steps_match_full_builds(tmp_path, daily_steps):
    steps, base = daily_steps
    inc, ref = FeatureStore(tmp_path / "inc.duckdb"), FeatureStore(tmp_path / "full.duckdb")
    built = []
    for k, t, rows in _adds(steps, base):
        inc.add_scores(rows)
        ref.add_scores(rows)
        out = inc.build(as_of=t)
        ref.build(as_of=t, incremental=False)
        built.append(t)
        if k > 0:  # an incremental build returns only the rows it recomputed
            assert len(out) < inc.counts()["daily_features"]
        for u in built:  # every earlier build reads back the same
            _same(inc.daily(as_of=u, carry_events=False), ref.daily(as_of=u, carry_events=False))
    _same(inc.daily(), ref.daily())  # events carried forward too
    pd.testing.assert_frame_equal(inc.monthly(), ref.monthly(), check_dtype=False, rtol=1e-12, atol=1e-12)
    # The cases did happen: corrections are known as multi-version documents, the late document
    # changed an old row, GONE vanished, NEWCO appeared.
    assert {r[0] for r in inc.con.execute("SELECT doc_id FROM doc_multi").fetchall()} == {"c1", "c2"}
    latest = inc.daily(carry_events=False)
    assert "NEWCO" in set(latest["entity"]) and "GONE" not in set(latest["entity"])
    assert "GONE" in set(inc.daily(as_of=steps[9], carry_events=False)["entity"])
    old = inc.daily(entities=["T0001"], sources=["news"], carry_events=False)
    assert (old["known_at"] >= steps[8] - pd.Timedelta(hours=1)).any()
    # And a fresh store built once, fully, agrees with the incremental one at the end.
    with FeatureStore(tmp_path / "fresh.duckdb") as fresh:
        fresh.add_scores(pd.concat([r for _, _, r in _adds(steps, base)], ignore_index=True))
        fresh.build(as_of=steps[-1])
        _same(fresh.daily(carry_events=False), inc.daily(carry_events=False))
    inc.close()
    ref.close()


def test_rerun_is_idempotent_and_a_failed_build_changes_nothing(tmp_path, daily_steps, monkeypatch):
    steps, base = daily_steps
    adds = list(_adds(steps, base))
    with FeatureStore(tmp_path / "f.duckdb") as store:
        for _, t, rows in adds[:6]:
            store.add_scores(rows)
            store.build(as_of=t)
        before = store.counts()
        again = store.build(as_of=steps[5] + pd.Timedelta(minutes=1))  # nothing new
        assert again.empty and store.counts()["daily_features"] == before["daily_features"]
        assert store.con.execute("SELECT rows_written FROM builds ORDER BY built_at DESC LIMIT 1").fetchall() == [(0,)]

        def snapshot():
            return {t: store.con.execute(f"SELECT count(*), sum(hash(COLUMNS(*))) FROM {t}").fetchall()
                    for t in ("scores", "daily_features", "builds", "day_aggregates", "key_tail", "doc_latest", "doc_multi",
                                                                                      "build_state")}

        _, t, rows = adds[6]
        state = snapshot()

        def boom(*args, **kwargs):
            raise RuntimeError("killed mid-build")

        monkeypatch.setattr(FeatureStore, "_rerun", boom)
        with pytest.raises(RuntimeError, match="killed"):
            with store.transaction():  # as `features build` does: add and build in one transaction
                store.add_scores(rows)
                store.build(as_of=t)
        assert snapshot() == state
        monkeypatch.undo()
        store.add_scores(rows)
        store.build(as_of=t)
    with FeatureStore(tmp_path / "full.duckdb") as ref:
        for _, t, rows in adds[:7]:
            ref.add_scores(rows)
        ref.build(as_of=steps[6], incremental=False)
        with FeatureStore(tmp_path / "f.duckdb") as store:
            _same(store.daily(carry_events=False), ref.daily(carry_events=False))


def test_old_format_store_still_builds(tmp_path, daily_steps):
    steps, base = daily_steps
    adds = list(_adds(steps, base))
    db = tmp_path / "old.duckdb"
    with FeatureStore(db) as store:
        for _, t, rows in adds[:3]:
            store.add_scores(rows)
            store.build(as_of=t)
        # Make it look like a store written before incremental builds.
        for table in ("day_aggregates", "key_tail", "doc_latest", "doc_multi", "build_state"):
            store.con.execute(f"DROP TABLE {table}")
        store.con.execute("ALTER TABLE scores DROP COLUMN batch")
    with FeatureStore(db) as store, FeatureStore(tmp_path / "full.duckdb") as ref:
        for _, t, rows in adds[:3]:
            ref.add_scores(rows)
        for _, t, rows in adds[3:6]:
            store.add_scores(rows)
            ref.add_scores(rows)
            store.build(as_of=t)  # the first one is full and sets up the state; then incremental
            ref.build(as_of=t, incremental=False)
            _same(store.daily(as_of=t, carry_events=False), ref.daily(as_of=t, carry_events=False))
        assert store.con.execute("SELECT count(*) FROM build_state").fetchall() == [(1,)]
