"""Feature store (versions, as_of, export, transactions) and the FeatureProvider API."""
from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signals import FeatureProvider
from signals.store import FeatureStore, StoreError
from signals.synthetic import score_frame, synthetic_scores

KEY = ["date", "entity", "source"]


@pytest.fixture(scope="module")
def scores():
    return synthetic_scores(8_000, 12, start="2016-01-04", years=1.1, seed=7, units_per_call=10).to_pandas()


def _sorted(df):
    return df.sort_values(KEY).reset_index(drop=True)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(day1=st.integers(30, 200), gap=st.integers(1, 150))
def test_as_of_reproduces_an_earlier_build_exactly(tmp_path_factory, scores, day1, gap):
    db = tmp_path_factory.mktemp("store") / "f.duckdb"
    t1 = pd.Timestamp("2016-01-04", tz="UTC") + pd.Timedelta(days=day1)
    t2 = t1 + pd.Timedelta(days=gap)
    with FeatureStore(db) as store:
        store.add_scores(scores[scores["ingested_at"] <= t1])
        first = store.build(as_of=t1)
        store.add_scores(scores[scores["ingested_at"] > t1])  # late, later and corrected rows
        second = store.build(as_of=t2)
        again = store.daily(as_of=t1, carry_events=False).drop(columns="event_age")
        pd.testing.assert_frame_equal(_sorted(again), _sorted(first), check_dtype=False)
        latest = store.daily(as_of=t2, carry_events=False).drop(columns="event_age")
        # an incremental build returns the rows it recomputed: each equals the row read back
        pd.testing.assert_frame_equal(_sorted(latest.merge(second[KEY])), _sorted(second), check_dtype=False)


def test_corrected_document_does_not_leak_into_the_past(tmp_path):
    doc = dict(doc_id="a", published_at="2016-09-14T14:00Z", ingested_at="2016-09-14T14:01Z", p_pos=0.8, p_neg=0.1, entities=["AAA"])
    with FeatureStore(tmp_path / "f.duckdb") as store:
        store.add_scores(score_frame([doc]))
        store.build(as_of=pd.Timestamp("2016-09-15", tz="UTC"))
        store.add_scores(score_frame([dict(doc, ingested_at="2016-09-20T10:00Z", p_pos=0.1, p_neg=0.8)]))
        store.build(as_of=pd.Timestamp("2016-09-21", tz="UTC"))
        then = store.daily(entities=["AAA"], sources=["news"], as_of=pd.Timestamp("2016-09-16", tz="UTC"))
        now = store.daily(entities=["AAA"], sources=["news"])
    assert then["tone"].tolist() == [1.0] and now["tone"].tolist() == [-1.0]
    assert now["known_at"].iloc[0] == pd.Timestamp("2016-09-20T10:00Z")


def test_builds_are_append_only_and_transactional(tmp_path, scores):
    with FeatureStore(tmp_path / "f.duckdb") as store:
        store.add_scores(scores.head(500))
        store.build(as_of=pd.Timestamp("2018-01-01", tz="UTC"))
        before = store.counts()
        with pytest.raises(StoreError, match="precedes the latest build"):
            store.build(as_of=pd.Timestamp("2017-01-01", tz="UTC"))
        with pytest.raises(StoreError, match=r"wrong type \{'p_pos': 'VARCHAR'\}"):
            store.add_scores(pa.Table.from_pandas(scores.head(10).assign(p_pos="not a number"), preserve_index=False))
        with pytest.raises(StoreError, match="timezone-aware"):
            store.add_scores(pa.Table.from_pandas(scores.head(10).assign(published_at=scores["published_at"].head(10).dt.tz_localize(None)), preserve_index=False))
        assert store.counts() == before
        # Rebuilding with nothing new writes no new versions.
        store.build(as_of=pd.Timestamp("2018-01-02", tz="UTC"))
        assert store.counts()["daily_features"] == before["daily_features"]


def test_reads_filters_and_unknown_names(tmp_path, scores):
    with FeatureStore(tmp_path / "f.duckdb") as store:
        store.add_scores(scores)
        store.build(as_of=pd.Timestamp("2018-01-01", tz="UTC"))
        with pytest.raises(StoreError, match=r"unknown entities \['ZZZZ'\]"):
            store.daily(entities=["ZZZZ"])
        with pytest.raises(StoreError, match="unknown features"):
            store.daily(features=["nope"], sources=["news"])
        empty = store.daily("2030-01-01", "2030-02-01", sources=["news"])
        assert empty.empty  # a range without documents: documented empty result
        some = store.daily("2016-03-01", "2016-03-31", entities=["T0001"], sources=["news"], features=["tone"])
        assert list(some.columns) == ["date", "entity", "source", "tone", "known_at"]
        assert some["date"].between("2016-03-01", "2016-03-31").all()


def test_event_rows_carry_forward_with_decay(tmp_path):
    call = [dict(doc_id="c1", unit=i, source="transcript", published_at="2016-09-14T12:00Z", p_pos=0.9, p_neg=0.05, entities=["AAA"]) for i in range(3)]
    with FeatureStore(tmp_path / "f.duckdb") as store:
        store.add_scores(score_frame(call))
        store.build(as_of=pd.Timestamp("2017-01-01", tz="UTC"))
        rows = store.daily("2016-09-13", "2016-10-31", entities=["AAA"], sources=["transcript"])
    assert rows["date"].min() == pd.Timestamp("2016-09-14")  # nothing before the call
    assert rows["event_age"].tolist() == list(range(len(rows)))
    half = store.cfg.features.event_half_life
    assert rows.loc[half, "tone"] == pytest.approx(0.5) and rows.loc[0, "tone"] == 1.0
    assert (rows["known_at"] >= rows["date"].dt.tz_localize("America/New_York").dt.tz_convert("UTC")).all()


def test_export_parquet(tmp_path, scores):
    db = tmp_path / "f.duckdb"
    with FeatureStore(db) as store:
        store.add_scores(scores.head(2000))
        built = store.build(as_of=pd.Timestamp("2018-01-01", tz="UTC"))
        out = store.export("daily_features", tmp_path / "out" / "daily.parquet", as_of=pd.Timestamp("2018-01-01", tz="UTC"))
        with pytest.raises(StoreError, match="unknown table"):
            store.export("secrets", tmp_path / "x.parquet")
    assert pq.read_table(out).num_rows == len(built)
    assert not list((tmp_path / "out").glob(".*tmp"))


def test_provider_daily_monthly_panel(tmp_path, scores):
    db = tmp_path / "f.duckdb"
    with FeatureStore(db) as store:
        store.add_scores(scores)
        store.build(as_of=pd.Timestamp("2018-01-01", tz="UTC"))
    fp = FeatureProvider(db)
    daily = fp.daily("2016-05-02", "2016-05-31", entities=["T0002"], sources=["news"])
    assert daily.index.names == ["date", "entity", "source"] and len(daily) > 0
    monthly = fp.monthly("2016-02-01", "2016-12-31", entities=["__MARKET__"], sources=["all"])
    instants = pd.DatetimeIndex(monthly.index.get_level_values("date")).tz_localize("America/New_York") + pd.Timedelta(days=1)
    assert (monthly["known_at"] <= instants.tz_convert("UTC")).all()  # known by the month end
    panel = fp.panel("2015-10-01", "2016-12-31", frequency="monthly")
    assert panel.index.is_unique and "all_tone" in panel and "mkt_Mkt-RF_ret_1m" in panel
    # Scores start in January 2016: masked (0.0) and NaN before, available after.
    assert panel.loc["2015-11-30", "avail_news"] == 0.0 and pd.isna(panel.loc["2015-11-30", "news_tone"])
    assert panel.loc["2016-06-30", "avail_news"] == 1.0
    assert (panel["mkt_known_at"] <= (panel.index + pd.Timedelta(days=1)).tz_localize("America/New_York").tz_convert("UTC")).all()
    daily_panel = fp.panel("2016-06-01", "2016-06-30", frequency="daily")
    assert len(daily_panel) == 22 and daily_panel["avail_macro"].eq(1.0).all()
    fp.close()
