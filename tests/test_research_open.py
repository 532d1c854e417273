"""Entry at the open: the cut-off rule, the overnight / intraday legs, point-in-time, daily books,
and the tear sheet against alphalens."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.errors import UsageError
from signals.research.books import books, cohort_weights
from signals.research.config import DEFAULT_RESEARCH, BookConfig, EntryConfig
from signals.research.prices import price_panel
from signals.research.returns import at_entry, entry_positions, period_legs
from signals.research.synthetic import synthetic_study
from signals.research.tearsheet import align, tear_sheet
from signals.sessions import sessions


def _cfg(price: str = "open", cutoff: str = "09:30", **book):
    return DEFAULT_RESEARCH.model_copy(update={"entry": EntryConfig(price=price, open_cutoff=cutoff),
                                               "books": BookConfig(**book)})


OPEN, CLOSE = _cfg("open"), _cfg("close")


def test_open_entry_rule_and_cutoff():
    grid = sessions("XNYS", "2015-11-23", "2015-12-01")  # 11-26 is Thanksgiving
    # Sessions: 11-23 (0), 11-24 (1), 11-25 (2), 11-27 (3), 11-30 (4), 12-01 (5).
    known = pd.Series(pd.to_datetime(["2015-11-24 09:29", "2015-11-24 09:30", "2015-11-24 09:10", "2015-11-24 15:00",
                                      "2015-11-25 20:00", "2015-11-28 12:00", "2015-12-01 10:00"])
                      .tz_localize("America/New_York"))
    assert list(entry_positions(known, grid, OPEN)) == [1, 2, 1, 2, 3, 4, -1]
    assert list(entry_positions(known, grid, _cfg("open", "09:00"))) == [2, 2, 2, 2, 3, 4, -1]  # KKX's 09:00
    assert list(entry_positions(known, grid, CLOSE)) == [1, 1, 1, 1, 3, 4, 5]


def test_open_cutoff_after_the_open_is_refused():
    with pytest.raises(ValueError, match="after the 09:30 open"):
        EntryConfig(price="open", open_cutoff="10:00")
    with pytest.raises(ValueError, match="close entry only"):
        EntryConfig(price="open", rule="at")


def test_prices_without_opens_give_a_clear_error():
    prices, feature = synthetic_study(n_tickers=6, n_sessions=30)
    bare = price_panel(prices.close.stack().rename("close").rename_axis(["date", "ticker"]).reset_index(),
                       prices.market, prices.sessions[0], prices.sessions[-1])
    assert bare.open is None
    with pytest.raises(UsageError, match="needs open prices"):
        tear_sheet(feature, bare, OPEN)


def test_legs_compound_to_the_open_to_open_return():
    prices, _ = synthetic_study(n_tickers=5, n_sessions=40, seed=2)
    for cfg in (OPEN, CLOSE):
        legs = period_legs(prices, cfg)
        whole = (1 + legs["overnight"]) * (1 + legs["intraday"]) - 1
        period = at_entry(prices, cfg).returns.shift(-1)
        np.testing.assert_allclose(whole.iloc[1:-1].to_numpy(), period.iloc[1:-1].to_numpy(), atol=1e-12)


def test_planted_pre_open_signal_is_recovered_at_the_open_not_at_the_close():
    # Text known at 08:00 moves that day's open-to-close return: an open entry earns it, a close
    # entry (at that day's close) comes after it.
    prices, feature = synthetic_study(strength=0.4, seed=5, planted_leg="intraday", known_time="08:00")
    at_open, at_close = books(feature, prices, OPEN).summary, books(feature, prices, CLOSE).summary
    assert at_open["intraday_t"] > 8 and at_open["net_t"] > 5
    assert abs(at_open["overnight_t"]) < 3
    assert abs(at_close["intraday_t"]) < 3 and abs(at_close["overnight_t"]) < 3 and at_close["net_t"] < 0
    ts_open = tear_sheet(feature, prices, OPEN).summary.set_index("horizon")
    ts_close = tear_sheet(feature, prices, CLOSE).summary.set_index("horizon")
    assert ts_open.loc[1, "t_rank_ic"] > 8 and abs(ts_close.loc[1, "t_rank_ic"]) < 3


def test_intraday_text_moving_the_next_overnight_return_is_a_close_entry_overnight_leg():
    # Text known at 15:00 moves that night's return (close -> next open): a close entry holds it
    # overnight and it shows in the overnight leg only; the next open comes after the move.
    prices, feature = synthetic_study(strength=0.4, seed=6, planted_leg="overnight", planted_day=1, known_time="15:00")
    s = books(feature, prices, OPEN).summary
    assert abs(s["overnight_t"]) < 3 and abs(s["intraday_t"]) < 3
    s = books(feature, prices, CLOSE).summary
    assert s["overnight_t"] > 8 and abs(s["intraday_t"]) < 3


def _rebuild(prices, close: pd.DataFrame, opens: pd.DataFrame):
    long = pd.DataFrame({"close": close.stack(), "open": opens.stack(), "volume": prices.volume.stack()})
    long = long.rename_axis(["date", "ticker"]).reset_index()
    return price_panel(long, prices.market, close.index[0], close.index[-1], list(close.columns),
                       market_open=prices.market_open)


def test_prices_before_the_entry_open_change_nothing():
    prices, feature = synthetic_study(seed=4, strength=0.5, planted_leg="intraday", known_time="08:00")
    e = 100
    one_day = feature[feature["date"] == prices.sessions[e]]  # known 08:00, enters at session e's open
    rng = np.random.default_rng(0)
    close, opens = prices.close.copy(), prices.open.copy()
    close.iloc[:e] *= rng.uniform(0.5, 2.0, close.iloc[:e].shape)  # every close before the entry open
    opens.iloc[:e] *= rng.uniform(0.5, 2.0, opens.iloc[:e].shape)
    shaken = _rebuild(prices, close, opens)
    cols = ["mean_ic", "mean_rank_ic", "ls_spread"]
    a, b = tear_sheet(one_day, prices, OPEN), tear_sheet(one_day, shaken, OPEN)
    pd.testing.assert_frame_equal(a.summary[a.summary["tradable"]][cols], b.summary[b.summary["tradable"]][cols])
    pd.testing.assert_frame_equal(a.quantiles, b.quantiles)
    assert a.summary.iloc[-1]["mean_ic"] != b.summary.iloc[-1]["mean_ic"]  # the pre-entry diagnostic does move
    ba, bb = books(one_day, prices, OPEN).daily, books(one_day, shaken, OPEN).daily
    pd.testing.assert_frame_equal(ba[["gross", "net", "overnight", "intraday"]], bb[["gross", "net", "overnight", "intraday"]])
    # ...while the same shake reaches a close-entry book: its day-0 overnight leg starts at close e
    close.iloc[e] *= 1.3
    moved = _rebuild(prices, close, opens)
    assert not books(one_day, prices, CLOSE).daily["net"].equals(books(one_day, moved, CLOSE).daily["net"])


def test_later_prices_and_later_text_change_nothing_earlier():
    prices, feature = synthetic_study(seed=7, strength=0.3, planted_leg="intraday", known_time="08:00")
    x = 200
    base = books(feature, prices, OPEN).daily
    rng = np.random.default_rng(1)
    close, opens = prices.close.copy(), prices.open.copy()
    close.iloc[x:] *= rng.uniform(0.7, 1.3, close.iloc[x:].shape)
    opens.iloc[x:] *= rng.uniform(0.7, 1.3, opens.iloc[x:].shape)
    later = feature.copy()
    after = pd.to_datetime(later["known_at"]) >= pd.Timestamp(prices.sessions[x]).tz_localize("America/New_York")
    later.loc[after, "value"] = rng.normal(size=int(after.sum()))
    moved = books(later, _rebuild(prices, close, opens), OPEN).daily
    # the book formed at session x-2 earns open x-2 -> open x-1: the last one priced before open x
    upto = prices.sessions[x - 2]
    pd.testing.assert_frame_equal(base.loc[:upto], moved.loc[:upto])
    assert not base.loc[prices.sessions[x - 1]:].equals(moved.loc[prices.sessions[x - 1]:])


def test_book_weights_costs_and_holding():
    prices, feature = synthetic_study(n_tickers=20, n_sessions=60, seed=8)
    feat, _ = align(feature, at_entry(prices, OPEN), OPEN)
    for cfg in (_cfg(top=3), _cfg(quantiles=4), _cfg(top=3, weighting="value")):
        w = cohort_weights(feat, cfg, prices.volume)
        live = w.abs().sum(axis=1) > 0
        np.testing.assert_allclose(w[live].clip(lower=0).sum(axis=1), 1.0)
        np.testing.assert_allclose(w[live].clip(upper=0).sum(axis=1), -1.0)
    assert (cohort_weights(feat, _cfg(top=3), None) > 0).sum(axis=1).max() == 3
    one = books(feature, prices, _cfg(cost_bps=20)).daily
    np.testing.assert_allclose(one["gross"] - one["net"], one["turnover"] * 4 * 20 / 1e4)
    held = books(feature, prices, _cfg(holding=5)).daily
    assert held["turnover"].iloc[10:].mean() < one["turnover"].iloc[10:].mean() / 2


def test_books_report_alpha_and_splits():
    prices, feature = synthetic_study(strength=0.3, seed=9, planted_leg="intraday", known_time="08:00")
    rng = np.random.default_rng(0)
    ff = pd.DataFrame(rng.normal(0, 0.01, (len(prices.sessions), 3)), index=prices.sessions, columns=["Mkt-RF", "SMB", "RF"])
    b = books(feature, prices, OPEN, ff)
    assert b.summary["ff_t_alpha"] > 5 and b.summary["ff_n"] > 250
    assert set(zip(b.splits["split"], b.splits["half"])) == {(s, h) for s in ("size", "volatility") for h in ("low", "high")}
    assert (b.splits["net_sharpe"] > 2).all()


def test_tear_sheet_agrees_with_alphalens():
    from alphalens.performance import factor_information_coefficient, mean_return_by_quantile
    from alphalens.utils import get_clean_factor_and_forward_returns

    cfg = _cfg()
    cfg = cfg.model_copy(update={"tearsheet": cfg.tearsheet.model_copy(update={"horizons": (1, 5), "quantiles": 5})})
    prices, feature = synthetic_study(n_tickers=30, n_sessions=120, strength=0.3, seed=10, planted_leg="intraday",
                                      known_time="08:00")
    ours = tear_sheet(feature, prices, cfg)
    # alphalens gets the same factor at its entry session and the open prices (our entry logic, its statistics)
    entry_px = at_entry(prices, cfg)
    feat, _ = align(feature, entry_px, cfg)
    factor = feat.where(entry_px.close.notna()).stack().rename("factor")
    factor.index = factor.index.set_names(["date", "asset"])
    data = get_clean_factor_and_forward_returns(factor, entry_px.close, quantiles=5, periods=(1,), max_loss=1.0,
                                                cumulative_returns=True)
    ic = factor_information_coefficient(data)
    both = pd.concat([ours.ic["rank_ic_1"], ic["1D"]], axis=1, join="inner").dropna()
    assert len(both) >= 110  # every session but the last
    np.testing.assert_allclose(both.iloc[:, 0], both.iloc[:, 1], atol=1e-10)
    q, _ = mean_return_by_quantile(data, demeaned=False)
    np.testing.assert_allclose(q["1D"].to_numpy(), ours.quantiles["fwd_1"].to_numpy(), rtol=1e-6)
