"""A daily feature is one spec plus its kernel: a toy spec registered here lands in full and
incremental builds alike, with the built-in features unchanged."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from signals import feature_specs
from signals.feature_specs import FeatureSpec
from signals.features import build_daily_features, feature_columns
from signals.store import FeatureStore
from signals.synthetic import score_frame, synthetic_scores

KEY = ["date", "entity", "source"]
WINDOW = 5


def neg_window(rows, fc, init):
    """Negative documents over sessions [s - 4, s]: a running sum and a trailing pointer per key,
    as the kernels of signals.scans do (plain Python: the test data is small)."""
    s, neg, bounds = rows.s, rows.n_neg, rows.bounds
    out = np.empty(len(s), np.int64)
    before, after = np.empty((1, len(s))), np.empty_like(init)
    for r in range(len(bounds) - 1):
        run = lagged = init[0, r]
        lag = bounds[r]
        for i in range(bounds[r], bounds[r + 1]):
            before[0, i] = run
            while s[lag] <= s[i] - WINDOW:
                lagged += neg[lag]
                lag += 1
            out[i] = int(run - lagged + neg[i])
            run += neg[i]
        after[0, r] = run
    return out, before, after


TOY = FeatureSpec("neg_window", ("n_neg_window",), neg_window, state=("neg_run",), window=lambda fc: WINDOW, integer=True)


@pytest.fixture()
def with_toy(monkeypatch):
    monkeypatch.setattr(feature_specs, "DAILY_FEATURES", [*feature_specs.DAILY_FEATURES, TOY])


def _reference(feats: pd.DataFrame) -> pd.Series:
    """The toy column from the features' own n_neg, by pandas over the sessions of each key."""
    from signals.sessions import DEFAULT_SESSIONS

    f = feats.sort_values(["entity", "source", "date"]).reset_index(drop=True)
    s = DEFAULT_SESSIONS.index(f["date"])
    out = np.empty(len(f), np.int64)
    for idx in f.groupby(["entity", "source"], sort=False).indices.values():
        ss, neg = s[idx], f["n_neg"].to_numpy()[idx]
        out[idx] = [neg[(ss > x - WINDOW) & (ss <= x)].sum() for x in ss]
    return pd.Series(out, index=pd.MultiIndex.from_frame(f[KEY]))


def _batches():
    base = synthetic_scores(2_000, 5, start="2016-01-04", years=0.15, seed=3, late_share=0.1).to_pandas()
    cuts = base["ingested_at"].quantile([0.5, 0.7, 0.85]).tolist() + [base["ingested_at"].max()]
    prev = None
    for t in cuts:
        yield t, base[(base["ingested_at"] <= t) & ((base["ingested_at"] > prev) if prev is not None else True)]
        prev = t
    # A late negative document for an early session, and a correction of it.
    first = base["published_at"].min()
    late = [{"doc_id": "late", "published_at": first + pd.Timedelta(days=3), "ingested_at": prev + pd.Timedelta(hours=1),
             "p_pos": 0.05, "p_neg": 0.9, "entities": ["T0001"]}]
    yield prev + pd.Timedelta(hours=2), score_frame(late, model_id="synthetic-v1")
    late[0] |= {"ingested_at": prev + pd.Timedelta(hours=3), "p_neg": 0.1, "p_pos": 0.8}
    yield prev + pd.Timedelta(hours=4), score_frame(late, model_id="synthetic-v1")


def test_a_toy_spec_lands_in_full_and_incremental_builds(tmp_path, with_toy):
    assert feature_columns()[-1] == "n_neg_window"
    inc, full = FeatureStore(tmp_path / "inc.duckdb"), FeatureStore(tmp_path / "full.duckdb")
    with inc, full:
        for t, rows in _batches():
            inc.add_scores(rows)
            full.add_scores(rows)
            inc.build(as_of=t)
            full.build(as_of=t, incremental=False)
            a = inc.daily(as_of=t, carry_events=False).sort_values(KEY).reset_index(drop=True)
            b = full.daily(as_of=t, carry_events=False).sort_values(KEY).reset_index(drop=True)
            pd.testing.assert_frame_equal(a, b, check_dtype=False, rtol=1e-12, atol=1e-12)
            got = a.set_index(KEY)["n_neg_window"]
            pd.testing.assert_series_equal(got, _reference(a).reindex(got.index), check_names=False)
        assert inc.con.execute("SELECT count(*) FROM key_tail WHERE neg_run > 0").fetchall()[0][0] > 0


def test_a_toy_spec_leaves_the_other_columns_alone(with_toy, monkeypatch):
    scores = synthetic_scores(2_000, 5, start="2016-01-04", years=0.15, seed=3)
    toy = build_daily_features(scores)
    monkeypatch.undo()
    plain = build_daily_features(scores)
    pd.testing.assert_frame_equal(toy.drop(columns="n_neg_window"), plain)


def test_a_store_built_before_a_spec_gets_its_columns_and_a_full_build(tmp_path, monkeypatch):
    batches = list(_batches())
    with FeatureStore(tmp_path / "f.duckdb") as store:
        for t, rows in batches[:2]:
            store.add_scores(rows)
            store.build(as_of=t)
    monkeypatch.setattr(feature_specs, "DAILY_FEATURES", [*feature_specs.DAILY_FEATURES, TOY])
    with FeatureStore(tmp_path / "f.duckdb") as store, FeatureStore(tmp_path / "ref.duckdb") as ref:
        for t, rows in batches[:3]:
            ref.add_scores(rows)
        t, rows = batches[2]
        store.add_scores(rows)
        store.build(as_of=t)
        ref.build(as_of=t)
        pd.testing.assert_frame_equal(store.daily(carry_events=False), ref.daily(carry_events=False))
