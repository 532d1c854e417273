"""Point-in-time: the entry rule, no return before entry reaches a statistic, no future leaks back."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from signals.research.config import DEFAULT_RESEARCH, EntryConfig, EventConfig
from signals.research.events import event_study
from signals.research.market_test import expanding_forecasts
from signals.research.prices import price_panel
from signals.research.returns import entry_positions
from signals.research.stocknet import build_samples
from signals.research.synthetic import synthetic_study
from signals.research.tearsheet import tear_sheet
from signals.sessions import session_cutoffs, sessions

AT = DEFAULT_RESEARCH.model_copy(update={"entry": EntryConfig(rule="at")})


def test_entry_rule_strictly_after_known_at_by_default():
    grid = sessions("XNYS", "2015-11-23", "2015-12-01")  # 2015-11-27 closes early, at 13:00 New York
    known = pd.Series(pd.to_datetime(["2015-11-24 21:00", "2015-11-24 20:59", "2015-11-27 18:00",
                                      "2015-11-27 17:59", "2015-11-28 12:00", "2015-12-02 12:00"], utc=True))
    # Sessions: 11-23 (0), 11-24 (1), 11-25 (2), 11-27 (3), 11-30 (4), 12-01 (5).
    assert list(entry_positions(known, grid)) == [2, 1, 4, 3, 4, -1]
    assert list(entry_positions(known, grid, AT)) == [1, 1, 3, 3, 4, -1]


def test_returns_before_entry_never_reach_a_tradable_statistic():
    # The value moves the return of the entry session itself (it ends at the entry close): a trader
    # cannot earn it, so every tradable IC is noise while the labeled diagnostic sees it.
    prices, feature = synthetic_study(strength=1.0, planted_day=-1, seed=3)
    s = tear_sheet(feature, prices).summary.set_index("horizon")
    assert abs(s.loc[1, "t_rank_ic"]) < 3 and s.loc[0, "t_rank_ic"] > 20 and not s.loc[0, "tradable"]


def test_prices_before_entry_change_nothing():
    prices, feature = synthetic_study(seed=4, strength=0.5)
    day = prices.sessions[100]
    one_day = feature[feature["date"] == day]  # enters at session 101
    before = tear_sheet(one_day, prices)
    shaken = prices.close.copy()
    rng = np.random.default_rng(0)
    shaken.iloc[:101] *= rng.uniform(0.5, 2.0, shaken.iloc[:101].shape)
    after = tear_sheet(one_day, _rebuild(shaken, prices.market))
    cols = ["mean_ic", "mean_rank_ic", "ls_spread"]
    pd.testing.assert_frame_equal(before.summary[before.summary["tradable"]][cols],
                                  after.summary[after.summary["tradable"]][cols])
    pd.testing.assert_frame_equal(before.quantiles, after.quantiles)
    # The labeled diagnostic does use the entry session's own return, so it moves (the test can fail).
    assert before.summary.iloc[-1]["mean_ic"] != after.summary.iloc[-1]["mean_ic"]


def _rebuild(close: pd.DataFrame, market: pd.Series):
    long = close.stack().rename("close").reset_index()
    long.columns = ["date", "ticker", "close"]
    return price_panel(long, market, close.index[0], close.index[-1], list(close.columns))


def test_changing_prices_after_a_date_changes_nothing_computed_before_it():
    prices, feature = synthetic_study(seed=5, strength=0.5)
    cut = 200
    base = tear_sheet(feature, prices).ic
    shaken = prices.close.copy()
    shaken.iloc[cut + 1:] *= np.random.default_rng(1).uniform(0.9, 1.1, shaken.iloc[cut + 1:].shape)
    moved = tear_sheet(feature, _rebuild(shaken, prices.market)).ic
    for h in DEFAULT_RESEARCH.tearsheet.horizons:
        done = prices.sessions[: cut - h + 1]  # forward windows that end at or before session `cut`
        col = f"rank_ic_{h}"
        pd.testing.assert_series_equal(base[col].reindex(done), moved[col].reindex(done))
        assert not np.allclose(base[col].reindex(prices.sessions[cut:]).dropna(),
                               moved[col].reindex(prices.sessions[cut:]).dropna())


def test_event_cars_do_not_see_later_prices():
    prices, feature = synthetic_study(n_tickers=10, n_sessions=400, seed=6)
    events = feature[feature["date"].isin(prices.sessions[[300, 321]])]
    cfg = DEFAULT_RESEARCH.model_copy(update={"events": EventConfig(windows=((0, 1), (2, 20)), estimation=(-250, -20),
                                                                     min_estimation=100, curve_days=(0, 20))})
    base = event_study(events, prices, cfg).events
    shaken = prices.close.copy()
    # After the first batch's windows (entry 301: they end at session 322), inside the second's (entry 322).
    shaken.iloc[324:] *= np.random.default_rng(2).uniform(0.9, 1.1, shaken.iloc[324:].shape)
    moved = event_study(events, _rebuild(shaken, prices.market), cfg).events
    first = base["date"] == prices.sessions[300]
    cols = [c for c in base.columns if c.startswith("car_")]
    pd.testing.assert_frame_equal(base.loc[first, cols], moved.loc[first, cols])
    assert not np.allclose(base.loc[~first, "car_market_adjusted_[+2,+20]"], moved.loc[~first, "car_market_adjusted_[+2,+20]"])


def test_oos_forecasts_use_only_realized_targets():
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=80), rng.normal(size=80)
    h, k = 5, 50
    fc, hm = expanding_forecasts(x, y, h, min_train=20)
    y2 = y.copy()
    y2[k:] += 10.0
    fc2, hm2 = expanding_forecasts(x, y2, h, min_train=20)
    np.testing.assert_array_equal(fc[: k + h], fc2[: k + h])
    np.testing.assert_array_equal(hm[: k + h], hm2[: k + h])
    assert not np.allclose(fc[k + h:], fc2[k + h:])


@pytest.mark.parametrize("rule,used_for", [("after", 2), ("at", 1)])
def test_stocknet_text_enters_only_after_known(rule, used_for):
    grid = sessions("XNYS", "2015-09-01", "2015-10-30")
    close = 100 * np.cumprod(1 + np.tile([0.02, -0.02], len(grid) // 2 + 1)[: len(grid)])
    long = pd.DataFrame({"date": grid, "ticker": "AAA", "close": close})
    prices = price_panel(long, pd.Series(1000.0, index=grid), grid[0], grid[-1], ["AAA"])
    d = 30
    text = pd.DataFrame({"date": [grid[d]], "entity": ["AAA"], "known_at": session_cutoffs(grid[[d]]), "n_docs": [7],
                         "mean_score": [0.5], "tone": [1.0], "share_pos": [1.0], "share_neg": [0.0]})
    cfg = DEFAULT_RESEARCH.model_copy(update={"entry": EntryConfig(rule=rule)})
    cfg = cfg.model_copy(update={"stocknet": cfg.stocknet.model_copy(update={"train": ("2015-09-01", "2015-11-01")})})
    samples, _ = build_samples(prices, text, cfg)
    docs = samples.set_index("date")["text_docs"]
    assert docs[grid[d + used_for - 1]] == 0  # the target session whose movement starts at the close before entry
    assert docs[grid[d + used_for]] == pytest.approx(np.log1p(7))
    assert docs[grid[d + used_for + 4]] == pytest.approx(np.log1p(7))  # still inside the 5-session window
    assert docs[grid[d + used_for + 5]] == 0


def test_tone_groups_use_only_earlier_events():
    from signals.research.events import expanding_groups

    rng = np.random.default_rng(8)
    values = pd.Series(rng.normal(size=60))
    order = pd.Series(pd.date_range("2015-01-01", periods=60, freq="D", tz="UTC"))
    base = expanding_groups(values, order, 3, min_prior=10)
    later = values.copy()
    later[40:] += 100.0  # later tones change; groups up to and including event 40 cannot
    moved = expanding_groups(later, order, 3, min_prior=10)
    pd.testing.assert_series_equal(base[:41], moved[:41])
    assert base[:10].isna().all() and base[10:].notna().all()
    assert not base[41:].equals(moved[41:])
