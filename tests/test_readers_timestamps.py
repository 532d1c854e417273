"""published_at parsing: offsets, UTC, date-only -> end of day ET, naive without zone -> rejected."""
import pandas as pd

from nlp.readers import timestamps as ts
from nlp.readers.timestamps import parse_published


def _one(value, **kw):
    out, reasons = parse_published(pd.Series([value]), **kw)
    return out.iloc[0], reasons.iloc[0]


def test_explicit_offsets_and_utc():
    values = pd.Series(["2016-09-14T08:05:00-04:00", "2016-12-14 08:05:00-05:00", "2016-09-14T13:22:05Z"])
    out, reasons = parse_published(values)
    assert reasons.isna().all()
    assert out.tolist() == [pd.Timestamp("2016-09-14 12:05", tz="UTC"), pd.Timestamp("2016-12-14 13:05", tz="UTC"),
                            pd.Timestamp("2016-09-14 13:22:05", tz="UTC")]
    assert str(out.dtype) == "datetime64[us, UTC]"


def test_twitter_layout_with_format():
    value, reason = _one("Thu Jan 02 15:45:02 +0000 2014", time_format="%a %b %d %H:%M:%S %z %Y")
    assert reason is None and value == pd.Timestamp("2014-01-02 15:45:02", tz="UTC")


def test_naive_needs_a_declared_zone():
    value, reason = _one("2016-09-14 08:05:00")
    assert pd.isna(value) and reason == ts.NAIVE
    value, reason = _one("2016-09-14 08:05:00", timezone="America/New_York")
    assert reason is None and value == pd.Timestamp("2016-09-14 12:05", tz="UTC")


def test_date_only_is_known_at_end_of_day_new_york():
    value, reason = _one("2016-02-26", timezone="America/New_York")
    assert reason is None
    assert value == pd.Timestamp("2016-02-26 23:59:59.999999", tz="America/New_York")
    # never before the 16:00 cutoff of that day: it cannot count for that session
    assert value > pd.Timestamp("2016-02-26 16:00", tz="America/New_York")
    value, _ = _one("2016-07-26", timezone="America/New_York", date_only="start_of_day")
    assert value == pd.Timestamp("2016-07-26 04:00", tz="UTC")
    assert _one("2016-02-26", timezone="America/New_York", date_only="reject")[1] == ts.DATE_REJECTED
    assert _one("2016-02-26")[1] == ts.DATE_NO_ZONE


def test_bad_values_get_reasons():
    values = pd.Series(["yesterday", "", None, "2016-13-45T10:00:00Z", "2016-03-13 02:30:00"])
    out, reasons = parse_published(values, timezone="America/New_York")
    assert out.isna().all()
    assert reasons.tolist()[:4] == [ts.UNPARSEABLE, ts.MISSING, ts.MISSING, ts.UNPARSEABLE]
    assert "DST" in reasons.iloc[4]  # 02:30 did not exist in New York that night


def test_typed_columns():
    aware = pd.Series(pd.to_datetime(["2016-01-04 10:00"]).tz_localize("America/New_York"))
    assert parse_published(aware)[0].iloc[0] == pd.Timestamp("2016-01-04 15:00", tz="UTC")
    naive = pd.Series(pd.to_datetime(["2016-01-04 10:00"]))
    assert parse_published(naive)[1].iloc[0] == ts.NAIVE
