"""FRED-MD (transform codes, publication lag, vintages), VIX, default spread, packaged macro."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signals.macro import (
    FredMDFormatError,
    apply_transform,
    load_default_spread,
    load_fredmd,
    load_vix,
    month_end_instant,
    packaged_macro,
)
from signals.provider import asof_join


def _fredmd_text(months: list[str], values: dict[str, list[float]], codes: dict[str, int]) -> str:
    head = "sasdate," + ",".join(values)
    tr = "Transform:," + ",".join(str(codes[c]) for c in values)
    rows = [f"{m}," + ",".join("" if np.isnan(values[c][i]) else str(values[c][i]) for c in values) for i, m in enumerate(months)]
    return "\r\n".join([head, tr, *rows]) + "\r\n"


def test_real_fredmd_file(shared_datasets):
    levels, tr = load_fredmd(shared_datasets / "fred_md" / "current.csv")
    assert levels.shape[0] == 720 and levels.index[-1] == pd.Timestamp("2018-12-31")
    assert tr.shape[1] == 126 + 2  # series + known_at + vintage
    # RPI has code 5: first difference of logs.
    assert tr.loc["1959-02-28", "RPI"] == pytest.approx(np.log(2593.596 / 2583.56))
    # Publication lag: March 2018 is known from the end of April 2018 (00:00 New York, 1 May).
    assert tr.loc["2018-03-31", "known_at"] == pd.Timestamp("2018-05-01 04:00Z")


@pytest.mark.parametrize(
    "code, expected",
    [
        (1, [1.0, 2.0, 4.0, 8.0]),
        (2, [np.nan, 1.0, 2.0, 4.0]),
        (3, [np.nan, np.nan, 1.0, 2.0]),
        (4, list(np.log([1.0, 2.0, 4.0, 8.0]))),
        (5, [np.nan] + [np.log(2)] * 3),
        (6, [np.nan, np.nan, 0.0, 0.0]),
        (7, [np.nan, np.nan, 0.0, 0.0]),
    ],
)
def test_transform_codes(code, expected):
    out = apply_transform(pd.Series([1.0, 2.0, 4.0, 8.0], name="x"), code)
    np.testing.assert_allclose(out.to_numpy(), expected, atol=1e-12, equal_nan=True)


def test_unknown_code_and_missing_transform_row(tmp_path):
    with pytest.raises(FredMDFormatError, match="unknown transformation code 9"):
        apply_transform(pd.Series([1.0], name="x"), 9)
    bad = tmp_path / "no_transform.csv"
    bad.write_text("sasdate,A\n1/1/2000,1.0\n2/1/2000,2.0\n")
    with pytest.raises(FredMDFormatError, match="row 2 must be the 'Transform:' row"):
        load_fredmd(bad)
    bad.write_text("sasdate,A,B\nTransform:,5,\n1/1/2000,1.0,2\n")
    with pytest.raises(FredMDFormatError, match="series B has transformation code ''"):
        load_fredmd(bad)
    bad.write_text("sasdate,A\nTransform:,5\n1/1/2000,abc\n")
    with pytest.raises(FredMDFormatError, match="non-numeric value 'abc'"):
        load_fredmd(bad)


def test_vintages_use_what_was_available(tmp_path):
    months = ["1/1/2000", "2/1/2000", "3/1/2000"]
    # Vintage 2000-03 has Jan..Feb; vintage 2000-04 revises Feb and adds Mar.
    (tmp_path / "2000-03.csv").write_text(_fredmd_text(months[:2], {"A": [10.0, 20.0]}, {"A": 1}))
    (tmp_path / "2000-04.csv").write_text(_fredmd_text(months, {"A": [10.0, 25.0, 30.0]}, {"A": 1}))
    levels, _ = load_fredmd(tmp_path)
    # Feb is due at the end of March (lag 1); vintage 2000-03 is available then -> first release 20.
    assert levels.loc["2000-02-29", "A"] == 20.0
    assert levels.loc["2000-02-29", "known_at"] == month_end_instant(pd.DatetimeIndex(["2000-03-31"]))[0]
    assert levels.loc["2000-03-31", "A"] == 30.0
    assert levels.loc["2000-03-31", "vintage"] == pd.Timestamp("2000-04-30")


@settings(max_examples=30, deadline=None)
@given(lag=st.integers(1, 3), month=st.integers(0, 119), day=st.integers(0, 40))
def test_macro_value_never_used_before_publication(lag, month, day):
    from signals.config import MarketConfig, SignalsConfig

    cfg = SignalsConfig(market=MarketConfig(fredmd_lag_months=lag))
    idx = pd.date_range("2000-01-31", periods=120, freq="ME")
    frame = pd.DataFrame({"x": np.arange(120.0)}, index=idx)
    frame["known_at"] = month_end_instant(idx + pd.offsets.MonthEnd(lag), cfg.sessions.tz)
    decision = pd.Timestamp("2000-01-01", tz="UTC") + pd.Timedelta(days=30 * month + day)
    got = asof_join(frame, pd.DatetimeIndex([decision]), pd.DatetimeIndex([decision.tz_localize(None)]))
    value = got["x"].iloc[0]
    if not np.isnan(value):
        ref_month = idx[int(value)]
        # The value's reference month ended at least `lag` months before the decision.
        assert decision >= month_end_instant(pd.DatetimeIndex([ref_month + pd.offsets.MonthEnd(lag)]))[0]
        assert got["known_at"].iloc[0] <= decision


def test_vix_shared_and_packaged(shared_datasets):
    shared = load_vix(shared_datasets / "vix_and_market" / "VIX_History.csv")
    assert len(shared) == 7304 and shared.loc["2018-12-31", "vix"] == pytest.approx(25.42)
    assert shared.loc["2018-12-31", "known_at"] == pd.Timestamp("2018-12-31 21:15Z")
    packaged = load_vix("packaged")
    both = shared.join(packaged, how="inner", suffixes=("", "_pk"))
    assert len(both) > 1000 and (both["vix"] - both["vix_pk"]).abs().max() < 0.05


def test_default_spread_and_packaged_macro():
    spread = load_default_spread()
    assert spread.loc["2008-12-31", "default_spread"] > 2.0  # the crisis peak
    macro = packaged_macro()
    assert {"core_cpi_infl_12m", "default_spread", "vix", "sp500_ret_1m", "known_at"} <= set(macro.columns)
    # Row M is aligned by availability: known at M's month-end instant.
    assert (macro["known_at"] == month_end_instant(macro.index)).all()
    assert 0.0 < macro.loc["2016-12-31", "core_cpi_infl_12m"] < 0.04
