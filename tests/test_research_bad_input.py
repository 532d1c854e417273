"""Bad input gives counts and clear messages, never a crash or a silent drop."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.errors import UsageError
from signals.research.config import DEFAULT_RESEARCH, EventConfig
from signals.research.events import event_study
from signals.research.prices import price_panel, read_prices
from signals.research.runs import event_report, tearsheet_report
from signals.research.synthetic import synthetic_study
from signals.research.tearsheet import tear_sheet
from signals.sessions import session_cutoffs, sessions

GRID = sessions("XNYS", "2015-01-02", "2015-03-31")


def _long(ticker: str, close: np.ndarray, grid=GRID) -> pd.DataFrame:
    return pd.DataFrame({"date": grid[: len(close)], "ticker": ticker, "close": close})


def test_price_problems_are_counted_and_flagged_moves_removed():
    n = len(GRID)
    good = _long("GOOD", 100 * np.cumprod(np.full(n, 1.001)))
    split = 90 * np.cumprod(np.full(n, 1.001))
    split[30:] /= 3  # an unadjusted 3:1 split: a -67% "return"
    gappy = _long("GAP", np.linspace(50, 60, n)).drop(index=[10, 11, 40])
    extra = pd.DataFrame({"date": [pd.Timestamp("2015-01-03"), GRID[5], GRID[6]], "ticker": ["GOOD", "GOOD", "GOOD"],
                          "close": [1.0, 2.0, -1.0]})  # a Saturday, a duplicate, a negative price
    long = pd.concat([good, _long("SPLIT", split), gappy, extra], ignore_index=True)
    p = price_panel(long, pd.Series(2000.0, index=GRID), GRID[0], GRID[-1], ["GOOD", "SPLIT", "GAP", "NOPE"])
    assert p.issues["rows_off_calendar"] == 1
    assert p.issues["duplicate_rows"] == 2  # the duplicate and the negative one both repeat (GOOD, date)
    assert p.issues["gap_sessions"] == 3
    assert p.issues["flagged_moves"] == 1 and p.flags.iloc[0]["ticker"] == "SPLIT"
    assert np.isnan(p.returns.loc[GRID[30], "SPLIT"])
    assert p.issues["tickers_without_prices"] == 1 and p.missing_tickers == ["NOPE"]
    assert p.returns["GAP"].isna().sum() == 1 + 3 + 2  # first day, the 3 gaps, and the 2 sessions after a gap


def test_non_positive_price_counted():
    long = _long("NEG", np.r_[10.0, -1.0, np.full(len(GRID) - 2, 10.0)])
    p = price_panel(long, pd.Series(2000.0, index=GRID), GRID[0], GRID[-1])
    assert p.issues["non_positive_or_missing_close"] == 1


def test_missing_price_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="not found"):
        read_prices(tmp_path / "nope.parquet")
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"day": ["2015-01-02"], "px": [1.0]}).to_csv(bad, index=False)
    with pytest.raises(UsageError, match="lacks column"):
        read_prices(bad)


def test_feature_without_overlap_reports_zero_rows_used(tmp_path):
    prices, feature = synthetic_study(n_tickers=8, n_sessions=60, seed=1)
    other = feature.assign(entity="ZZZ" + feature["entity"])
    ts = tear_sheet(other, prices)
    assert ts.counts["rows_used"] == 0 and ts.counts["entities_without_prices"] == 8
    assert ts.summary["sessions"].eq(0).all()

    class Provider:  # the two calls tearsheet_report makes
        def daily(self, start, end, entities=None, sources=None):
            return other.assign(source="social", event_age=pd.NA).set_index(["date", "entity", "source"])

    report, summary = tearsheet_report(Provider(), prices, "social", ["value"])
    path = report.write(tmp_path / "r")
    assert "No overlap" in path.read_text() and "best_t" not in summary


@pytest.mark.slow
def test_events_without_history_or_prices_are_counted(tmp_path):
    prices, _ = synthetic_study(n_tickers=3, n_sessions=300, seed=2)
    grid = prices.sessions
    events = pd.DataFrame({
        "entity": ["S000", "S001", "NOPE", "S002", "S000"],
        "value": [0.1, 0.2, 0.3, np.nan, 0.5],
        "known_at": session_cutoffs(grid[[10, 250, 250, 250, 299]]),
    })
    cfg = DEFAULT_RESEARCH.model_copy(update={"events": EventConfig(windows=((0, 1), (2, 20)), estimation=(-150, -10),
                                                                     min_estimation=100)})
    study = event_study(events, prices, cfg)
    c = study.counts
    assert c["events_ticker_without_prices"] == 1 and c["events_without_value"] == 1
    assert c["events_outside_price_range"] == 1  # known at the last close: enters after the data ends
    assert c["events_short_history"] == 1  # the one at session 10
    assert c["events_used"] == 2
    report, summary = event_report(events, prices, "bad events", cfg)
    text = report.write(tmp_path / "ev").read_text()
    assert "events_short_history" in text and summary["events"] == 2


def test_a_store_whose_sessions_are_not_xnys_is_a_usage_error():
    """A store built on another calendar (24h news: weekends are sessions) cannot be traded at XNYS closes."""
    from signals.research.returns import session_closes

    grid = pd.date_range("2015-01-02", periods=10, freq="D")  # a Saturday and a Sunday among them
    with pytest.raises(UsageError, match="not XNYS sessions, first 2015-01-03.*another calendar"):
        session_closes(grid)
