"""``published_at`` parsing under the point-in-time rules of DESIGN.md.

- A timestamp with an explicit offset (``2020-06-05 10:30:00-04:00``, ``...Z``,
  ``Thu Jan 02 15:45:02 +0000 2014`` with a ``%z`` format) is exact; it is converted to UTC.
- A naive timestamp is an error unless the caller declares its zone (``timezone``).
- A date without a time of day (``2016-02-26``) is, by default, known at the END of that day
  in the declared zone (23:59:59.999999 local), so it can never count for a session whose
  cutoff falls on that day. ``start_of_day`` exists for sources known to publish before the
  open; ``reject`` refuses such rows. A date-only value without a declared zone is refused:
  "end of the day" means nothing without a zone.
- An offset outside -12:00..+14:00 (``+15:00``) is refused: no zone has it, so it is a typo
  that would move the time by hours (``core.instants`` has the range).
- A time outside the plausible range is refused (:func:`implausible`): by default before
  1990-01-01, where the exchange calendars of ``signals`` start, or more than a day after the
  document was ingested (a document cannot be known before it is published). Years such as
  0001, 1800 or 9999 are typos or placeholders, and one of them would break every feature build.
Each bad value gets a reason; the caller turns reasons into rejects.
"""
from __future__ import annotations

from typing import Literal

import pandas as pd

from core.instants import MAX_OFFSET, MIN_OFFSET, offset_reason

DateOnlyPolicy = Literal["end_of_day", "start_of_day", "reject"]

_AWARE = r"(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$"
# The offset of an aware value: at its end (ISO) or before a trailing year (the %z formats of Twitter dumps).
_OFFSET = r"([+-])(\d{2}):?(\d{2})?(?:\s+\d{4})?$"
_DATE_ONLY = r"\d{4}-\d{2}-\d{2}"
_END_OF_DAY = pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)

MISSING = "missing published_at: expected a timestamp"
UNPARSEABLE = "unparseable published_at: expected ISO-8601 with a UTC offset"
NAIVE = "naive published_at without a declared zone: give the offset or set ColumnMapping.timezone"
DATE_NO_ZONE = "date-only published_at without a declared zone: set ColumnMapping.timezone"
DATE_REJECTED = "date-only published_at refused: ColumnMapping.date_only is 'reject'"


def parse_published(
    values: pd.Series,
    timezone: str | None = None,
    date_only: DateOnlyPolicy = "end_of_day",
    time_format: str | None = None,
) -> tuple[pd.Series, pd.Series]:
    """Return (UTC timestamps, reasons); a row with a reason has NaT and must be rejected."""
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us, UTC]")
    reasons = pd.Series([None] * len(values), index=values.index, dtype="object")

    if isinstance(values.dtype, pd.DatetimeTZDtype):
        out[:] = values.dt.tz_convert("UTC")
        reasons[values.isna()] = MISSING
        return out, reasons
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return _localize_naive(values, values.notna(), timezone, out, reasons)

    s = values.astype("string").str.strip()
    missing = s.isna() | s.eq("")
    reasons[missing] = MISSING
    todo = ~missing
    is_date = todo & s.str.fullmatch(_DATE_ONLY).fillna(False).astype(bool)
    if is_date.any():
        _dates(s[is_date], timezone, date_only, out, reasons)
    todo &= ~is_date

    if time_format is not None:
        aware = todo if "%z" in time_format else pd.Series(False, index=s.index)
        fmt = time_format
    else:
        aware = todo & s.str.contains(_AWARE, regex=True).fillna(False).astype(bool)
        fmt = "ISO8601"
    if aware.any():
        parsed = pd.to_datetime(s[aware], format=fmt, utc=True, errors="coerce")
        out[aware] = parsed
        reasons[aware & out.isna()] = UNPARSEABLE
        _check_offsets(s[aware], out, reasons)
    naive = todo & ~aware
    if naive.any():
        parsed = pd.to_datetime(s[naive], format=fmt, errors="coerce")
        bad = parsed.isna()
        reasons[bad[bad].index] = UNPARSEABLE
        _localize_naive(parsed, ~bad, timezone, out, reasons)
    return out, reasons


def _check_offsets(s: pd.Series, out: pd.Series, reasons: pd.Series) -> None:
    """Refuse (NaT and a reason) the values whose UTC offset no zone has."""
    parts = s.str.extract(_OFFSET)
    minutes = (pd.to_numeric(parts[1]) * 60 + pd.to_numeric(parts[2]).fillna(0)) * parts[0].map({"+": 1, "-": -1})
    offsets = pd.to_timedelta(minutes, unit="min")
    for idx, offset in offsets[(offsets < MIN_OFFSET) | (offsets > MAX_OFFSET)].items():
        out[idx], reasons[idx] = pd.NaT, f"impossible published_at: {offset_reason(offset)}"


def _localize_naive(values: pd.Series, ok: pd.Series, timezone: str | None, out: pd.Series, reasons: pd.Series):
    idx = ok[ok].index
    if timezone is None:
        reasons[idx] = NAIVE
        return out, reasons
    local = values[idx].dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
    out[idx] = local.dt.tz_convert("UTC")
    reasons[local[local.isna()].index] = f"published_at does not exist or is ambiguous in {timezone} (DST change)"
    return out, reasons


def _dates(s: pd.Series, timezone: str | None, policy: DateOnlyPolicy, out: pd.Series, reasons: pd.Series) -> None:
    if policy == "reject":
        reasons[s.index] = DATE_REJECTED
        return
    if timezone is None:
        reasons[s.index] = DATE_NO_ZONE
        return
    days = pd.to_datetime(s, format="%Y-%m-%d", errors="coerce")
    bad = days.isna()
    reasons[bad[bad].index] = UNPARSEABLE
    days = days[~bad]
    if policy == "end_of_day":
        days = days + _END_OF_DAY
    out[days.index] = days.dt.tz_localize(timezone).dt.tz_convert("UTC")


def implausible(ts: pd.Series, earliest: pd.Timestamp, latest: pd.Timestamp) -> pd.Series:
    """Reasons for times before ``earliest`` or after ``latest`` (None elsewhere, NaT included)."""
    reasons = pd.Series([None] * len(ts), index=ts.index, dtype="object")
    reasons[ts < earliest] = f"implausible published_at: before {earliest.isoformat(timespec='seconds')} (see --earliest)"
    reasons[ts > latest] = f"implausible published_at: after {latest.isoformat(timespec='seconds')} (see --latest)"
    return reasons
