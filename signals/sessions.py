"""Trading sessions and the document -> session rule, on ``exchange_calendars``.

Rule (DESIGN.md): a document counts for session D only if it was published *strictly before*
D's cutoff (default 16:00 America/New_York on D). A document at or after the cutoff, or on a
weekend or holiday, rolls to the next session. The cutoff is a fixed local time on every
session, early-close days included (an early close at 13:00 still takes documents until 16:00:
no returns are traded between the two, so nothing leaks).

:class:`Sessions` is the calendar of one :class:`~signals.config.SessionConfig` (the one home of
the XNYS / 16:00 / New York defaults), passed to the code that places documents in sessions;
the functions below it answer for a calendar named by its parts.
"""
from __future__ import annotations

from datetime import time
from functools import lru_cache

import exchange_calendars as xcals
import numpy as np
import pandas as pd

from core.errors import UsageError
from signals.config import SessionConfig
from signals.market import close_instant

_CAL_START = pd.Timestamp("1990-01-01")
_CAL_END_YEARS_AHEAD = 1


_DEFAULT = SessionConfig()  # the defaults' one home: calendar, cutoff and zone of SessionConfig


@lru_cache(maxsize=8)
def _sessions(calendar: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    cal = xcals.get_calendar(calendar, start=start, end=end)
    return pd.DatetimeIndex(cal.sessions, name="date")


class Sessions:
    """The session calendar of one :class:`SessionConfig`, passed to the code that places documents
    in sessions (feature builds, the store, novelty) so that it never assumes a calendar itself."""

    def __init__(self, cfg: SessionConfig = _DEFAULT):
        self.cfg = cfg

    def __repr__(self) -> str:
        return f"Sessions({self.cfg!r})"

    @property
    def calendar(self) -> str:
        return self.cfg.calendar

    def dates(self, start=None, end=None) -> pd.DatetimeIndex:
        """Session dates (naive midnight) between ``start`` and ``end`` inclusive."""
        all_ = _sessions(self.cfg.calendar, _CAL_START,
                         pd.Timestamp.now().normalize() + pd.DateOffset(years=_CAL_END_YEARS_AHEAD))
        lo = 0 if start is None else all_.searchsorted(pd.Timestamp(start).tz_localize(None).normalize(), "left")
        hi = len(all_) if end is None else all_.searchsorted(pd.Timestamp(end).tz_localize(None).normalize(), "right")
        return all_[lo:hi]

    def cutoffs(self, dates) -> pd.DatetimeIndex:
        """The cutoff instant (UTC) of each session date."""
        return close_instant(dates, self.cfg.cutoff, self.cfg.tz)

    def span(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """The instants (UTC) a document may be published in, [first, last): from the calendar's
        first session to its last one (a document of the last session day may roll past it)."""
        all_ = self.dates()
        return all_[0].tz_localize("UTC"), all_[-1].tz_localize("UTC")

    def assign(self, published_at) -> pd.Series:
        """Session date (naive midnight) each timestamp counts for. Vectorized.

        ``published_at`` must be timezone-aware. Missing timestamps give NaT. Timestamps outside the
        calendar's range (before 1990, or beyond one year ahead) raise a clear ValueError.
        """
        ts = pd.Series(published_at)
        if not isinstance(ts.dtype, pd.DatetimeTZDtype):
            raise UsageError(f"published_at must be timezone-aware, got dtype {ts.dtype}")
        local = ts.dt.tz_convert(self.cfg.tz)
        t = time.fromisoformat(self.cfg.cutoff)
        cut = pd.Timedelta(hours=t.hour, minutes=t.minute)
        day = local.dt.tz_localize(None).dt.normalize()
        after = (local.dt.tz_localize(None) - day) >= cut  # at or after the cutoff -> next day onwards
        candidate = day + pd.to_timedelta(after.astype("int64"), unit="D")
        all_ = self.dates()
        pos = all_.searchsorted(candidate.to_numpy(dtype="datetime64[ns]"), side="left")
        valid = candidate.notna().to_numpy()
        if valid.any():
            lo, hi = candidate[valid].min(), candidate[valid].max()
            if lo < all_[0] or hi > all_[-1]:
                raise UsageError(
                    f"published_at spans {lo.date()}..{hi.date()}, outside the {self.cfg.calendar} calendar "
                    f"({all_[0].date()}..{all_[-1].date()})"
                )
        out = np.full(len(ts), np.datetime64("NaT"), dtype="datetime64[ns]")
        out[valid] = all_.to_numpy(dtype="datetime64[ns]")[pos[valid]]
        return pd.Series(out, index=ts.index, name="date")

    def index(self, dates) -> np.ndarray:
        """Ordinal of each session date in the calendar (consecutive sessions differ by 1)."""
        all_ = self.dates()
        d = pd.DatetimeIndex(dates)
        pos = all_.searchsorted(d)
        if len(d) and ((pos >= len(all_)) | (all_[np.minimum(pos, len(all_) - 1)] != d)).any():
            raise ValueError(f"not all dates are {self.cfg.calendar} sessions")
        return pos


DEFAULT_SESSIONS = Sessions()


# The functions below are the provider's methods for callers that name a calendar by its parts.
def sessions(calendar: str = _DEFAULT.calendar, start=None, end=None) -> pd.DatetimeIndex:
    """Session dates (naive midnight) of ``calendar`` between ``start`` and ``end`` inclusive."""
    return Sessions(SessionConfig(calendar=calendar)).dates(start, end)


def session_cutoffs(dates, cutoff: str = _DEFAULT.cutoff, tz: str = _DEFAULT.tz) -> pd.DatetimeIndex:
    """The cutoff instant (UTC) of each session date."""
    return Sessions(SessionConfig(cutoff=cutoff, tz=tz)).cutoffs(dates)


def assign_session(published_at, cutoff: str = _DEFAULT.cutoff, tz: str = _DEFAULT.tz,
                   calendar: str = _DEFAULT.calendar) -> pd.Series:
    """:meth:`Sessions.assign` of the calendar ``calendar`` with ``cutoff`` in ``tz``."""
    return Sessions(SessionConfig(calendar=calendar, cutoff=cutoff, tz=tz)).assign(published_at)


def session_index(dates, calendar: str = _DEFAULT.calendar) -> np.ndarray:
    """Ordinal of each session date in the calendar (consecutive sessions differ by 1)."""
    return Sessions(SessionConfig(calendar=calendar)).index(dates)


def config_kwargs(cfg: SessionConfig = _DEFAULT) -> dict:
    """Keyword arguments of :func:`assign_session` from a session config."""
    return {"cutoff": cfg.cutoff, "tz": cfg.tz, "calendar": cfg.calendar}
