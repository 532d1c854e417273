"""Daily features: DuckDB SQL == pandas reference, point-in-time properties, bad input."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nlp.contracts import ContractError
from signals.config import FeatureConfig, SignalsConfig
from signals.features import build_daily_features, empty_features, output_columns
from signals.synthetic import score_frame, synthetic_scores

_spec = importlib.util.spec_from_file_location("bench_features", Path(__file__).resolve().parents[1] / "bench" / "features.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

SMALL = SignalsConfig(features=FeatureConfig(half_lives=(2, 10), volume_window=10, surprise_window=10, min_periods=3))


def test_duckdb_matches_pandas_reference_on_synthetic():
    table = synthetic_scores(6_000, 15, start="2016-01-01", years=1.0, seed=3, units_per_call=8)
    sql = build_daily_features(table, SMALL)
    ref = bench.pandas_features(table.to_pandas(), SMALL)
    bench.compare(sql, ref)
    assert set(sql["source"]) == {"news", "social", "transcript", "all"}
    assert (sql["entity"] == "__MARKET__").any()


def test_single_document_values():
    df = score_frame([
        dict(doc_id="a", published_at="2016-09-14T10:00:00-04:00", p_pos=0.7, p_neg=0.1, entities=["AAA"]),
        dict(doc_id="b", published_at="2016-09-14T11:00:00-04:00", p_pos=0.1, p_neg=0.6, entities=["AAA", "BBB"]),
        dict(doc_id="c", published_at="2016-09-14T12:00:00-04:00", p_pos=0.3, p_neg=0.3, entities=[]),
    ])
    out = build_daily_features(df).set_index(["entity", "source"])
    aaa = out.loc[("AAA", "news")]
    assert aaa["n_docs"] == 2 and aaa["n_pos"] == 1 and aaa["n_neg"] == 1 and aaa["tone"] == 0.0
    assert aaa["mean_score"] == pytest.approx((0.6 - 0.5) / 2)
    assert aaa["known_at"] == pd.Timestamp("2016-09-14 20:00Z")
    mkt = out.loc[("__MARKET__", "all")]
    assert mkt["n_docs"] == 3 and mkt["share_pos"] == pytest.approx(1 / 3)  # c is neutral (tie -> neutral)
    assert ("BBB", "all") in out.index and ("CCC", "all") not in out.index


def test_transcript_units_aggregate_to_the_document_first():
    units = [dict(doc_id="call", unit=i, source="transcript", published_at="2016-09-14T08:00:00-04:00",
                  p_pos=p, p_neg=0.1, entities=["AAA"]) for i, p in enumerate([0.8, 0.8, 0.1])]
    out = build_daily_features(score_frame(units))
    row = out[(out.entity == "AAA") & (out.source == "transcript")].iloc[0]
    assert row["n_docs"] == 1 and row["n_pos"] == 1  # mean p_pos 0.567 > p_neu 0.333 and p_neg 0.1


def test_corrected_document_replaces_its_earlier_version():
    first = dict(doc_id="a", published_at="2016-09-14T10:00:00Z", ingested_at="2016-09-14T10:01:00Z", p_pos=0.8, p_neg=0.1, entities=["AAA"])
    fixed = dict(first, ingested_at="2016-09-20T09:00:00Z", p_pos=0.1, p_neg=0.8)
    df = score_frame([first, fixed])
    now = build_daily_features(df).query("entity == 'AAA' and source == 'news'").iloc[0]
    assert now["n_neg"] == 1 and now["n_docs"] == 1
    assert now["known_at"] == pd.Timestamp("2016-09-20T09:00:00Z")  # known only once the fix arrived
    then = build_daily_features(df, as_of=pd.Timestamp("2016-09-15", tz="UTC")).query("entity == 'AAA' and source == 'news'").iloc[0]
    assert then["n_pos"] == 1 and then["known_at"] == pd.Timestamp("2016-09-14T20:00:00Z")


def test_empty_input_is_documented_empty_result():
    df = score_frame([dict(doc_id="a", published_at="2016-09-14T10:00:00Z", p_pos=0.5, p_neg=0.1)])
    out = build_daily_features(df, as_of=pd.Timestamp("2000-01-01", tz="UTC"))
    assert out.empty and list(out.columns) == output_columns()
    assert list(empty_features().columns) == output_columns()


def test_bad_input_is_a_clear_error():
    df = score_frame([dict(doc_id="a", published_at="2016-09-14T10:00:00Z", p_pos=0.5, p_neg=0.1)])
    with pytest.raises(ContractError, match="missing required column"):
        build_daily_features(df.drop(columns=["entities"]))
    naive = df.assign(published_at=df["published_at"].dt.tz_localize(None))
    with pytest.raises(ContractError, match="timezone-aware"):
        build_daily_features(naive)
    with pytest.raises(ValueError, match="outside the XNYS calendar"):
        build_daily_features(df.assign(published_at=pd.Timestamp("2099-01-05", tz="UTC")))
    with pytest.raises(ContractError, match="have no published_at"):
        build_daily_features(pd.concat([df, df.assign(doc_id="z", published_at=pd.NaT)], ignore_index=True))
    two = pd.concat([df, df.assign(model_id="other", doc_id="b")], ignore_index=True)
    with pytest.raises(ContractError, match="several models"):
        build_daily_features(two)
    assert len(build_daily_features(two, model_id="other")) > 0


def _docs(draw_list, base: pd.Timestamp) -> list[dict]:
    rows = []
    for i, (minutes, lag, ent, pos, neg, src) in enumerate(draw_list):
        pub = base + pd.Timedelta(minutes=minutes)
        rows.append(dict(doc_id=f"d{i}", published_at=pub, ingested_at=pub + pd.Timedelta(minutes=lag),
                         p_pos=pos, p_neg=neg, entities=[ent] if ent else [], source=src))
    return rows


doc_strategy = st.tuples(
    st.integers(0, 60 * 24 * 60),  # minutes after the base instant (60 days)
    st.integers(0, 60 * 24 * 3),  # ingestion lag up to 3 days
    st.sampled_from(["AAA", "BBB", None]),
    st.floats(0.0, 0.6), st.floats(0.0, 0.4),
    st.sampled_from(["news", "social"]),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=st.lists(doc_strategy, min_size=1, max_size=25), extra=st.lists(doc_strategy, min_size=1, max_size=10),
       cut_minutes=st.integers(0, 60 * 24 * 60))
def test_documents_after_t_change_nothing_known_by_t(base, extra, cut_minutes):
    start = pd.Timestamp("2016-03-01", tz="UTC")
    t = start + pd.Timedelta(minutes=cut_minutes)
    before = score_frame(_docs(base, start))
    later = score_frame(_docs(extra, t + pd.Timedelta(minutes=1))).assign(doc_id=lambda d: "x" + d["doc_id"])
    a = build_daily_features(before, SMALL)
    b = build_daily_features(pd.concat([before, later], ignore_index=True), SMALL)
    key = ["date", "entity", "source"]
    known_a = a[a["known_at"] <= t].sort_values(key).reset_index(drop=True)
    known_b = b[b["known_at"] <= t].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(known_a, known_b)


@settings(max_examples=25, deadline=None)
@given(minute=st.integers(0, 60 * 24 * 14))
def test_document_after_cutoff_lands_on_next_session(minute):
    from signals.sessions import session_cutoffs, sessions

    pub = pd.Timestamp("2016-09-12", tz="America/New_York") + pd.Timedelta(minutes=minute)
    out = build_daily_features(score_frame([dict(doc_id="a", published_at=pub, p_pos=0.9, p_neg=0.05)]))
    d = out["date"].iloc[0]
    assert pub < session_cutoffs([d])[0]
    prev = sessions("XNYS", d - pd.Timedelta(days=10), d - pd.Timedelta(days=1))[-1]
    assert pub >= session_cutoffs([prev])[0]
