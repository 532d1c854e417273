"""The packaged panel puts every value on the first decision date that could know it."""
import pandas as pd
import pytest

from signals.macro import load_default_spread
from timing.config import DataConfig
from timing.data import as_of_align, history_panel
from timing.dataset import MASK_SUFFIX


@pytest.fixture(scope="module")
def panel():
    return history_panel(DataConfig(start="1990-01-31", end="2017-03-31"))


def test_macro_enters_after_its_known_at(panel):
    spread = load_default_spread()["default_spread"]
    # February's average spread is known at 00:00 on March 1st, after February's close: used at March's end
    assert panel.loc["2017-03-31", "macro.default_spread"] == pytest.approx(spread.loc["2017-02-28"])


def test_market_features_are_known_at_the_close(panel):
    assert panel.loc["2016-12-31", "market.Mkt-RF_ret_1m"] == pytest.approx(panel.loc["2016-12-31", "Mkt-RF"])


def test_late_series_are_masked(panel):
    assert panel.loc["2010-06-30", "macro.vix" + MASK_SUFFIX] == 0.0
    assert panel.loc["2016-06-30", "macro.vix" + MASK_SUFFIX] == 1.0


def test_as_of_align_by_hand():
    dates = pd.DatetimeIndex(["2020-01-31", "2020-02-29", "2020-03-31"])
    known = pd.to_datetime(["2020-01-31 20:00", "2020-01-31 21:30", "2020-03-01 05:00"], utc=True)
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "known_at": known})
    out = as_of_align(frame, dates)
    # 20:00 UTC = 15:00 New York (before the close) -> Jan; 21:30 UTC is after the close -> Feb
    assert out["x"].tolist()[:2] == [1.0, 2.0] and out["x"].iloc[2] == 3.0
