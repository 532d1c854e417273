"""Every tunable of the ``signals`` package, in one typed place.

Defaults follow DESIGN.md: XNYS sessions, a 16:00 America/New_York cutoff, FRED-MD used with a
one-month publication lag. Windows and half-lives are counted in *sessions* for daily features
and in *months* for market features sampled monthly.

A run file sets any of these in its ``[signals]`` table (``[signals.sessions]``, ``[signals.features]``,
``[signals.market]``); ``altsignal run`` passes the result to the features stage and to the feature
provider the timing stage reads, so both see the same sessions and windows. Unknown keys are errors
(``extra="forbid"``): a misspelt window would otherwise be a silent default.
"""
from __future__ import annotations

from datetime import time
from pathlib import Path

from pydantic import Field, field_validator

from core.config_files import Strict


class SessionConfig(Strict):
    calendar: str = "XNYS"
    cutoff: str = "16:00"  # a document counts for session D only if published strictly before D's cutoff
    tz: str = "America/New_York"

    @field_validator("cutoff")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        time.fromisoformat(v)  # raises a clear ValueError on e.g. "25:00"
        return v


class FeatureConfig(Strict):
    half_lives: tuple[int, ...] = (5, 21, 63)  # sessions, for the EW tone columns
    volume_window: int = Field(63, ge=2)  # trailing sessions for abnormal volume
    surprise_window: int = Field(63, ge=2)  # trailing sessions for the tone surprise
    min_periods: int = Field(5, ge=2)  # trailing rows needed before volume/surprise are defined
    event_half_life: int = Field(21, ge=1)  # sessions; decay of earnings-call aggregates
    event_sources: tuple[str, ...] = ("transcript",)  # sources treated as events, carried forward
    # Daily features are computed per these sources plus an "all sources" row.
    all_sources_key: str = "all"


class MarketConfig(Strict):
    trailing_months: tuple[int, ...] = (1, 3, 12)
    vol_windows: tuple[int, ...] = (21, 63)  # sessions, realized volatility from daily returns
    fredmd_lag_months: int = Field(1, ge=1)  # a month-M value is known from the end of month M+lag
    close_time: str = "16:00"  # factor returns of session D are known at D's close
    vix_close_time: str = "16:15"  # VIX settles 15 minutes after the equity close


class SignalsConfig(Strict):
    sessions: SessionConfig = SessionConfig()
    features: FeatureConfig = FeatureConfig()
    market: MarketConfig = MarketConfig()
    db_path: Path = Path("runs/features.duckdb")  # a run keeps its store in <output_dir>/features/ instead
    duckdb_threads: int | None = None  # None = DuckDB's default (all cores)


DEFAULT_CONFIG = SignalsConfig()
