"""Trading sessions and the document -> session rule, on ``exchange_calendars``.

Rule (DESIGN.md): a document counts for session D only if it was published *strictly before*
D's cutoff (default 16:00 America/New_York on D). A document at or after the cutoff, or on a
weekend or holiday, rolls to the next session. The cutoff is a fixed local time on every
session, early-close days included (an early close at 13:00 still takes documents until 16:00:
no returns are traded between the two, so nothing leaks).
"""
from __future__ import annotations

from datetime import time
from functools import lru_cache

import exchange_calendars as xcals
import numpy as np
import pandas as pd

from core.errors import UsageError
from signals.config import DEFAULT_CONFIG, SessionConfig
from signals.market import close_instant

_CAL_START = pd.Timestamp("1990-01-01")
_CAL_END_YEARS_AHEAD = 1


@lru_cache(maxsize=8)
def _sessions(calendar: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    cal = xcals.get_calendar(calendar, start=start, end=end)
    return pd.DatetimeIndex(cal.sessions, name="date")


def sessions(calendar: str = "XNYS", start=None, end=None) -> pd.DatetimeIndex:
    """Session dates (naive midnight) of ``calendar`` between ``start`` and ``end`` inclusive."""
    all_ = _sessions(calendar, _CAL_START, pd.Timestamp.now().normalize() + pd.DateOffset(years=_CAL_END_YEARS_AHEAD))
    lo = 0 if start is None else all_.searchsorted(pd.Timestamp(start).tz_localize(None).normalize(), "left")
    hi = len(all_) if end is None else all_.searchsorted(pd.Timestamp(end).tz_localize(None).normalize(), "right")
    return all_[lo:hi]


def session_cutoffs(dates, cutoff: str = "16:00", tz: str = "America/New_York") -> pd.DatetimeIndex:
    """The cutoff instant (UTC) of each session date."""
    return close_instant(dates, cutoff, tz)


def assign_session(
    published_at,
    cutoff: str = "16:00",
    tz: str = "America/New_York",
    calendar: str = "XNYS",
) -> pd.Series:
    """Session date (naive midnight) each timestamp counts for. Vectorized.

    ``published_at`` must be timezone-aware. Missing timestamps give NaT. Timestamps outside the
    calendar's range (before 1990, or beyond one year ahead) raise a clear ValueError.
    """
    ts = pd.Series(published_at)
    if not isinstance(ts.dtype, pd.DatetimeTZDtype):
        raise UsageError(f"published_at must be timezone-aware, got dtype {ts.dtype}")
    local = ts.dt.tz_convert(tz)
    t = time.fromisoformat(cutoff)
    cut = pd.Timedelta(hours=t.hour, minutes=t.minute)
    day = local.dt.tz_localize(None).dt.normalize()
    after = (local.dt.tz_localize(None) - day) >= cut  # at or after the cutoff -> next day onwards
    candidate = day + pd.to_timedelta(after.astype("int64"), unit="D")
    all_ = sessions(calendar)
    pos = all_.searchsorted(candidate.to_numpy(dtype="datetime64[ns]"), side="left")
    valid = candidate.notna().to_numpy()
    if valid.any():
        lo, hi = candidate[valid].min(), candidate[valid].max()
        if lo < all_[0] or hi > all_[-1]:
            raise UsageError(
                f"published_at spans {lo.date()}..{hi.date()}, outside the {calendar} calendar "
                f"({all_[0].date()}..{all_[-1].date()})"
            )
    out = np.full(len(ts), np.datetime64("NaT"), dtype="datetime64[ns]")
    out[valid] = all_.to_numpy(dtype="datetime64[ns]")[pos[valid]]
    return pd.Series(out, index=ts.index, name="date")


def session_index(dates, calendar: str = "XNYS") -> np.ndarray:
    """Ordinal of each session date in the calendar (consecutive sessions differ by 1)."""
    all_ = sessions(calendar)
    d = pd.DatetimeIndex(dates)
    pos = all_.searchsorted(d)
    if len(d) and ((pos >= len(all_)) | (all_[np.minimum(pos, len(all_) - 1)] != d)).any():
        raise ValueError(f"not all dates are {calendar} sessions")
    return pos


def config_kwargs(cfg: SessionConfig = DEFAULT_CONFIG.sessions) -> dict:
    """Keyword arguments of :func:`assign_session` from a session config."""
    return {"cutoff": cfg.cutoff, "tz": cfg.tz, "calendar": cfg.calendar}
