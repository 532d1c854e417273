"""The store's reader methods for the application layer give what SQL on its tables gives."""
from __future__ import annotations

import pandas as pd
import pytest

from signals.store import FeatureStore, StoreError
from signals.store.reader import LATEST
from signals.synthetic import score_frame

T = pd.Timestamp("2016-03-01T12:00Z")
H = pd.Timedelta(hours=1)


def _doc(doc_id, hours, source="news", text="x"):
    return {"doc_id": doc_id, "source": source, "published_at": T + (hours - 1) * H, "ingested_at": T + hours * H,
            "text": text, "entities": ["AAA"]}


@pytest.fixture()
def store(tmp_path):
    with FeatureStore(tmp_path / "f.duckdb") as st:
        st.add_documents(pd.DataFrame([_doc("a", 1), _doc("b", 2), _doc("c", 3, source="social")]), feed="wire")
        st.add_documents(pd.DataFrame([_doc("a", 5, text="corrected"), _doc("d", 6)]), feed="wire")
        st.add_documents(pd.DataFrame([_doc("a", 4)]), feed="other")  # same id, another feed: another document
        rows = [{"doc_id": d, "unit": u, "source": "news", "published_at": T + (h - 1) * H, "ingested_at": T + h * H,
                 "p_pos": p, "p_neg": 0.1, "entities": ["AAA"]}
                for d, h, p in (("a", 1, 0.8), ("b", 2, 0.6), ("a", 5, 0.2), ("d", 6, 0.7)) for u in (0, 1)]
        st.add_scores(score_frame(rows, model_id="m"), feed="wire")
        for h in (2, 4, 6):
            st.build(as_of=T + h * H)
        yield st


def _sql(store, sql, params=None):
    return store.con.sql(sql, params=params or {}).to_arrow_table().to_pandas()


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    key = ["feed", "source", "doc_id"] + (["unit"] if "unit" in a else [])
    pd.testing.assert_frame_equal(a.sort_values(key).reset_index(drop=True), b.sort_values(key).reset_index(drop=True))


def test_doc_ids_by_feed(store):
    expected: dict[str, set[str]] = {}
    for feed, doc_id in store.con.execute("SELECT feed, doc_id FROM documents").fetchall():
        expected.setdefault(feed, set()).add(doc_id)
    assert store.doc_ids_by_feed() == expected == {"wire": {"a", "b", "c", "d"}, "other": {"a"}}


def test_previous_build(store):
    sql = "SELECT epoch_us(max(built_at)) FROM builds WHERE built_at < $t"
    for t in (T, T + 2 * H, T + 3 * H, T + 6 * H, T + 9 * H):
        got = store.previous_build(t)
        want = store.con.execute(sql, {"t": t}).fetchall()[0][0]
        assert (got is None and want is None) or got == pd.Timestamp(want, unit="us", tz="UTC")
    assert store.previous_build(T + 2 * H) is None and store.previous_build(T + 5 * H) == T + 4 * H
    assert store.last_build() == T + 6 * H


def test_documents_in_a_window_as_daily_operation_reads_them(store):
    t = T + 6 * H
    prev = store.previous_build(t)
    fresh = _sql(store, f"""SELECT * FROM documents WHERE feed IN (SELECT unnest($feeds)) AND ingested_at >
                             coalesce((SELECT max(built_at) FROM builds WHERE built_at < $t), '-infinity'::TIMESTAMPTZ)
                             AND ingested_at <= $t {LATEST}""", {"feeds": ["wire"], "t": t})
    _same(store.documents(after=prev, until=t, feeds=["wire"]), fresh)
    assert set(fresh["doc_id"]) == {"a", "d"} and fresh.loc[fresh["doc_id"] == "a", "text"].item() == "corrected"
    assert store.documents(after=prev, until=t, feeds=[]).empty
    b = T + 2 * H
    _same(store.documents(since=b, until=t),
          _sql(store, f"SELECT * FROM documents WHERE ingested_at >= $b AND ingested_at <= $t {LATEST}", {"b": b, "t": t}))
    _same(store.documents(), _sql(store, f"SELECT * FROM documents {LATEST}"))
    # The bound's two sides: a row stamped at the bound is in with since and out with after.
    assert "b" in set(store.documents(since=b)["doc_id"]) and "b" not in set(store.documents(after=b)["doc_id"])


def test_scores_in_a_window(store):
    b, t = T + H, T + 4 * H
    got = store.scores(since=b, until=t)
    _same(got, _sql(store, f"SELECT * FROM scores WHERE ingested_at >= $b AND ingested_at <= $t {LATEST}", {"b": b, "t": t}))
    assert sorted(got["doc_id"]) == ["a", "a", "b", "b"]  # a's correction is later than t
    _same(store.scores(), _sql(store, f"SELECT * FROM scores {LATEST}"))
    latest = store.scores()
    assert latest.loc[latest["doc_id"] == "a", "p_pos"].tolist() == pytest.approx([0.2, 0.2])


def test_window_bounds_are_checked(store):
    with pytest.raises(StoreError, match="not both"):
        store.documents(after=T, since=T)
    with pytest.raises(StoreError, match="timezone-aware"):
        store.scores(until=pd.Timestamp("2016-03-01"))


def test_date_span_is_the_first_and_last_feature_date(store, tmp_path):
    dates = _sql(store, "SELECT date FROM daily_features")["date"]
    assert store.date_span() == (pd.Timestamp(dates.min()), pd.Timestamp(dates.max()))
    with FeatureStore(tmp_path / "empty.duckdb") as empty:
        assert empty.date_span() == (None, None)
