"""Instants a user types (``--as-of``, ``--ingested-at``), and how far ahead of the data they may reach.

Decisions:

- One rule for every command: an instant needs a UTC offset (``Z``, ``+00:00``, ``-05:00``). A
  naive one is refused, never read as UTC: DESIGN.md makes naive timestamps an error unless the
  caller names the zone, and ``16:00`` means another instant in New York than in London.
- A UTC offset lies in -12:00..+14:00 (the zones that exist). ``+15:00`` is a typo, and it would
  move the instant by hours silently; readers reject such ``published_at`` values too.
- An ``--as-of`` may not lie beyond the wall clock plus :data:`CLOCK_SLACK` (a day: zones and
  a scheduler that runs just after midnight UTC), nor beyond the latest input data plus
  :data:`DATA_TOLERANCE` (7 days: a long holiday weekend without documents, or a market file a
  few sessions behind, stays fine; a year typed wrongly, ``now`` on a corpus that ended years ago
  or a clock set wrong is refused). A run at such an instant would stamp a build that every later
  real day precedes. The refusal comes before anything is written; :data:`OVERRIDE_FLAG` lets a
  deliberate run through.
"""
from __future__ import annotations

import pandas as pd

from core.errors import UsageError

MIN_OFFSET = pd.Timedelta(hours=-12)
MAX_OFFSET = pd.Timedelta(hours=14)
CLOCK_SLACK = pd.Timedelta(days=1)
DATA_TOLERANCE = pd.Timedelta(days=7)
OVERRIDE_FLAG = "--allow-future-as-of"


def offset_reason(offset: pd.Timedelta) -> str | None:
    """Why a UTC offset cannot be real (None when it can)."""
    if MIN_OFFSET <= offset <= MAX_OFFSET:
        return None
    sign, minutes = "-" if offset < pd.Timedelta(0) else "+", int(abs(offset).total_seconds() // 60)
    return f"UTC offset {sign}{minutes // 60:02d}:{minutes % 60:02d} is outside -12:00..+14:00"


def parse_instant(value: str | None, option: str, now_ok: bool = False) -> pd.Timestamp | None:
    """``value`` as an aware instant (None stays None; ``now`` when ``now_ok``), or a usage error naming ``option``."""
    if value is None:
        return None
    if now_ok and value == "now":
        return pd.Timestamp.now(tz="UTC")
    hint = f"e.g. {option} 2017-01-31T21:00:00Z (an ISO instant with its UTC offset)"
    try:
        t = pd.Timestamp(value)
    except ValueError as exc:
        raise UsageError(f"{option} {value!r} is not an ISO instant: {exc}", hint=hint) from exc
    if t.tzinfo is None:
        raise UsageError(f"{option} {value!r} has no UTC offset: an instant is ambiguous without one", hint=hint)
    bad = offset_reason(t.utcoffset())
    if bad:
        raise UsageError(f"{option} {value!r}: {bad}", hint=hint)
    return t


def check_not_ahead(as_of: pd.Timestamp, latest: pd.Timestamp | None, what: str, allow: bool = False,
                    option: str = "--as-of") -> None:
    """Refuse an ``as_of`` past the clock plus a day, or past ``latest`` (the last ``what``) plus
    :data:`DATA_TOLERANCE`, unless ``allow`` (see the module docstring). ``latest`` None: no data
    to compare with, only the clock counts. Naive times are taken as UTC (panels are dated so)."""
    if allow:
        return
    as_of, now = _utc(as_of), pd.Timestamp.now(tz="UTC")
    hint = f"fix the date; pass {OVERRIDE_FLAG} only to run at that instant on purpose"
    if as_of > now + CLOCK_SLACK:
        raise UsageError(f"{option} {as_of} is more than a day after the clock ({now:%Y-%m-%d %H:%M}Z)", hint=hint)
    if latest is not None and as_of > _utc(latest) + DATA_TOLERANCE:
        raise UsageError(f"{option} {as_of} is {(as_of - _utc(latest)).days} days after the latest {what} "
                         f"({_utc(latest)}); more than {DATA_TOLERANCE.days} days is taken for a typo", hint=hint)


def _utc(t) -> pd.Timestamp:
    t = pd.Timestamp(t)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
