"""Session assignment: strictly-before-cutoff rule, weekends and holidays roll forward."""
from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signals.sessions import assign_session, session_cutoffs, sessions

NY = "America/New_York"


def _one(ts: str) -> pd.Timestamp:
    return assign_session(pd.Series([pd.Timestamp(ts)]))[0]


def test_cutoff_is_strict():
    assert _one("2016-09-14T15:59:59.999-04:00") == pd.Timestamp("2016-09-14")
    assert _one("2016-09-14T16:00:00-04:00") == pd.Timestamp("2016-09-15")


def test_weekend_and_holiday_roll_to_next_session():
    assert _one("2016-09-16T17:00:00-04:00") == pd.Timestamp("2016-09-19")  # Friday after close
    assert _one("2016-09-17T10:00:00-04:00") == pd.Timestamp("2016-09-19")  # Saturday
    assert _one("2016-12-26T09:00:00-05:00") == pd.Timestamp("2016-12-27")  # Christmas observed
    assert _one("2016-07-04T08:00:00-04:00") == pd.Timestamp("2016-07-05")  # Independence Day


def test_utc_input_and_dst():
    # 20:30 UTC is 16:30 EDT in September (after the cutoff) but 15:30 EST in December (before).
    assert _one("2016-09-14T20:30:00Z") == pd.Timestamp("2016-09-15")
    assert _one("2016-12-14T20:30:00Z") == pd.Timestamp("2016-12-14")


def test_naive_and_out_of_range_inputs_are_errors():
    with pytest.raises(ValueError, match="timezone-aware"):
        assign_session(pd.Series([pd.Timestamp("2016-09-14 10:00")]))
    with pytest.raises(ValueError, match="outside the XNYS calendar"):
        assign_session(pd.Series([pd.Timestamp("1985-01-02T10:00Z")]))


def test_missing_timestamp_gives_nat():
    out = assign_session(pd.Series([pd.Timestamp("2016-09-14T10:00Z"), pd.NaT], dtype="datetime64[ns, UTC]"))
    assert out.isna().tolist() == [False, True]


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=pd.Timestamp("2005-01-01").to_pydatetime(), max_value=pd.Timestamp("2024-12-31").to_pydatetime()))
def test_assigned_session_is_first_whose_cutoff_is_after(dt):
    ts = pd.Timestamp(dt, tz="UTC")
    d = assign_session(pd.Series([ts]))[0]
    cut = session_cutoffs([d])[0]
    assert ts < cut  # published strictly before its session's cutoff
    prev = sessions("XNYS", d - pd.Timedelta(days=10), d - pd.Timedelta(days=1))[-1]
    assert ts >= session_cutoffs([prev])[0]  # and not before the previous session's cutoff
