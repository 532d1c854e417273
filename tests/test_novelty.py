"""Point-in-time novelty on hand-made vectors (signals.novelty)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from signals.novelty import STALE_THRESHOLD, novelty

# 2024-03-04 (Mon) .. 2024-03-15 (Fri): ten XNYS sessions; 15:00 UTC is before the 16:00 NY cutoff.
T0 = pd.Timestamp("2024-03-04 15:00", tz="UTC")


def _vec(*axes: float, dim: int = 8) -> np.ndarray:
    v = np.zeros(dim, np.float32)
    v[: len(axes)] = axes
    return v


def _frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["doc_id", "entity", "known_at", "embedding"])


def _by_id(res: pd.DataFrame) -> pd.DataFrame:
    return res.set_index(["doc_id", "entity"])


def test_exact_repeat_is_stale_and_unrelated_story_is_novel():
    f = _frame([("a", "X", T0, _vec(1, 0)), ("b", "X", T0 + pd.Timedelta("1h"), _vec(3, 0)),  # same direction
                ("c", "X", T0 + pd.Timedelta("2h"), _vec(0, 1))])
    r = _by_id(novelty(f))
    assert r.loc[("a", "X"), "novelty"] == 1.0 and np.isnan(r.loc[("a", "X"), "max_sim"])
    assert pd.isna(r.loc[("a", "X"), "nearest_doc_id"]) and not r.loc[("a", "X"), "stale"]
    assert r.loc[("b", "X"), "novelty"] == pytest.approx(0.0, abs=1e-6) and r.loc[("b", "X"), "stale"]
    assert r.loc[("b", "X"), "nearest_doc_id"] == "a"
    assert r.loc[("c", "X"), "novelty"] == pytest.approx(1.0, abs=1e-6) and not r.loc[("c", "X"), "stale"]
    assert list(novelty(f).columns) == ["doc_id", "entity", "novelty", "max_sim", "nearest_doc_id", "stale"]


def test_other_entities_do_not_count():
    f = _frame([("a", "X", T0, _vec(1, 0)), ("b", "Y", T0 + pd.Timedelta("1h"), _vec(1, 0))])
    assert novelty(f)["novelty"].tolist() == [1.0, 1.0]


def test_window_counts_sessions_not_days():
    # Friday 2024-03-08 and the following sessions; a weekend lies between Fri and Mon.
    fri = pd.Timestamp("2024-03-08 15:00", tz="UTC")
    rows = [("old", "X", fri, _vec(1, 0))]
    # Same text 4 sessions later (Thu 03-14: sessions Fri, Mon, Tue, Wed, Thu -> difference 4 < 5): seen.
    rows.append(("in", "X", pd.Timestamp("2024-03-14 15:00", tz="UTC"), _vec(1, 0)))
    r = _by_id(novelty(_frame(rows)))
    assert r.loc[("in", "X"), "stale"] and r.loc[("in", "X"), "nearest_doc_id"] == "old"
    # 5 sessions later (Fri 03-15) it is outside the default 5-session window.
    rows[1] = ("out", "X", pd.Timestamp("2024-03-15 15:00", tz="UTC"), _vec(1, 0))
    r = _by_id(novelty(_frame(rows)))
    assert r.loc[("out", "X"), "novelty"] == 1.0 and not r.loc[("out", "X"), "stale"]
    assert _by_id(novelty(_frame(rows), window_sessions=6)).loc[("out", "X"), "stale"]
    # After the 16:00 New York cutoff a document counts for the next session.
    rows[1] = ("late", "X", pd.Timestamp("2024-03-14 21:30", tz="UTC"), _vec(1, 0))  # 17:30 NY on Thu -> Fri
    assert _by_id(novelty(_frame(rows))).loc[("late", "X"), "novelty"] == 1.0


def test_later_documents_change_nothing_earlier():
    rng = np.random.default_rng(0)
    rows = [(f"d{i:03d}", ["X", "Y"][i % 2], T0 + pd.Timedelta(hours=3 * i), rng.normal(size=8).astype(np.float32))
            for i in range(60)]
    full = novelty(_frame(rows)).set_index(["doc_id", "entity"])
    cut = T0 + pd.Timedelta(hours=90)
    early = [r for r in rows if r[2] < cut]
    alone = novelty(_frame(early)).set_index(["doc_id", "entity"])
    pd.testing.assert_frame_equal(full.loc[alone.index], alone)
    # Changing later documents (even into exact copies of earlier ones) changes nothing before them.
    changed = early + [(d, e, t, early[0][3].copy()) for d, e, t, _ in rows if t >= cut]
    again = novelty(_frame(changed)).set_index(["doc_id", "entity"])
    pd.testing.assert_frame_equal(again.loc[alone.index], alone)
    # A document added at or after a row's own known time does not change that row.
    extra = _frame(rows + [("z", "X", rows[10][2], rows[10][3])])
    with_extra = novelty(extra).set_index(["doc_id", "entity"])
    pd.testing.assert_frame_equal(with_extra.loc[full.index[:11]], full.iloc[:11])


def test_same_instant_documents_do_not_see_each_other_and_ties_are_deterministic():
    f = _frame([("b", "X", T0, _vec(1, 0)), ("a", "X", T0, _vec(1, 0)),
                ("c", "X", T0 + pd.Timedelta("1h"), _vec(1, 0))])
    r = _by_id(novelty(f))
    assert r.loc[("a", "X"), "novelty"] == 1.0 and r.loc[("b", "X"), "novelty"] == 1.0
    assert r.loc[("c", "X"), "stale"] and r.loc[("c", "X"), "nearest_doc_id"] == "a"  # first in (time, doc_id)
    shuffled = novelty(f.iloc[[2, 0, 1]].reset_index(drop=True))
    pd.testing.assert_frame_equal(_by_id(shuffled).sort_index(), r.sort_index())


def test_entities_lists_explode_and_empty_is_market_wide():
    f = pd.DataFrame({"doc_id": ["a", "b", "c"], "entities": [["X", "Y"], ["Y"], []],
                      "published_at": [T0, T0 + pd.Timedelta("1h"), T0 + pd.Timedelta("2h")],
                      "embedding": [_vec(1, 0), _vec(1, 0), _vec(1, 0)]})
    r = novelty(f)
    assert list(zip(r["doc_id"], r["entity"])) == [("a", "X"), ("a", "Y"), ("b", "Y"), ("c", "__MARKET__")]
    assert r["stale"].tolist() == [False, False, True, False]


def test_block_boundaries_and_long_windows_match_a_naive_loop():
    rng = np.random.default_rng(1)
    n = 700
    ent = rng.choice(["A", "B", "C"], n, p=[0.8, 0.15, 0.05])
    t = T0 + pd.to_timedelta(np.sort(rng.integers(0, 20 * 24 * 3600, n)), unit="s")
    t = t.where(rng.random(n) > 0.1, t[0])  # many same-instant rows
    base = rng.normal(size=(20, 16)).astype(np.float32)
    emb = base[rng.integers(0, 20, n)] + 0.3 * rng.normal(size=(n, 16)).astype(np.float32)
    f = pd.DataFrame({"doc_id": [f"d{i}" for i in range(n)], "entity": ent, "known_at": t, "embedding": list(emb)})
    fast = novelty(f, block_rows=64, window_sessions=3)
    from signals.sessions import assign_session, session_index

    sess = session_index(assign_session(pd.Series(t)))
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    for i in range(n):
        m = (ent == ent[i]) & (t < t[i]) & (sess[i] - sess < 3)
        if not m.any():
            assert fast["novelty"][i] == 1.0
        else:
            assert fast["max_sim"][i] == pytest.approx((unit[m] @ unit[i]).max(), abs=1e-5)
    assert 0 < STALE_THRESHOLD < 0.5


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        novelty(_frame([("a", "X", pd.Timestamp("2024-03-04"), _vec(1))]))
    with pytest.raises(ValueError, match="duplicate"):
        novelty(_frame([("a", "X", T0, _vec(1)), ("a", "X", T0, _vec(1))]))
