"""Every tunable of signal research, in one typed place.

Sessions are counted on the exchange calendar of :class:`signals.config.SessionConfig`.
Horizons and windows are in sessions.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from core.config_files import Strict
from signals.config import SessionConfig


class EntryConfig(Strict):
    """When a value known at ``known_at`` can be traded.

    ``"after"`` (default, conservative): at the close of the first session whose close is strictly
    after ``known_at``; a daily feature row dated D (known at D's 16:00 cutoff) enters at D+1's
    close. ``"at"`` loosens this to a close at or after ``known_at`` (the row for D enters at D's
    own close, as if the order were placed at the cutoff instant).
    """


    rule: Literal["after", "at"] = "after"


class PriceQualityConfig(Strict):
    max_abs_daily_return: float = Field(0.5, gt=0)  # larger close-to-close moves are flagged (splits, glitches)
    drop_flagged: bool = True  # flagged returns become NaN rather than entering a statistic


class TearSheetConfig(Strict):
    horizons: tuple[int, ...] = (1, 5, 21)
    decay_horizons: tuple[int, ...] = tuple(range(1, 22))
    quantiles: int = Field(5, ge=2)
    min_entities: int = Field(5, ge=3)  # sessions with fewer entities carry no IC / quantile row
    # a horizon measured on fewer sessions is reported but never named the best (4 sessions once gave |t| 22)
    min_sessions: int = Field(20, ge=2)
    annualization: int = 252


class MarketTestConfig(Strict):
    horizons: tuple[int, ...] = (1, 5)
    min_train: int = Field(252, ge=20)  # sessions before the first out-of-sample forecast


class EventConfig(Strict):
    """Event windows are inclusive ``(first, last)`` event days; day k is the return from the close of
    session entry+k to the close of entry+k+1, so day 0 is the first return after entry. Windows that
    start before day 0 are pre-entry diagnostics (not tradable) and are labeled as such."""


    windows: tuple[tuple[int, int], ...] = ((0, 1), (2, 20), (2, 60), (-2, -1))
    estimation: tuple[int, int] = (-280, -31)  # market-model window, ends a month before entry
    min_estimation: int = Field(120, ge=20)  # sessions with returns inside the estimation window
    curve_days: tuple[int, int] = (-5, 60)
    groups: int = Field(3, ge=2)  # tone terciles
    min_prior_events: int = Field(30, ge=1)  # earlier events needed to set breakpoints; before that: counted, not grouped
    news_burst_z: float = 2.0  # abnormal_volume above this marks a news burst

    @model_validator(mode="after")
    def _windows_ordered(self) -> "EventConfig":
        for lo, hi in (*self.windows, self.estimation, self.curve_days):
            if lo > hi:
                raise ValueError(f"window ({lo}, {hi}) has its first day after its last")
        if self.estimation[1] >= min(lo for lo, _ in self.windows):
            raise ValueError("the estimation window must end before every event window starts")
        return self


class StockNetConfig(Strict):
    """Xu & Cohen (ACL 2018) task rules."""


    lag: int = 5
    down: float = -0.005  # movement <= down is 0
    up: float = 0.0055  # movement > up is 1; the rest are dropped
    train: tuple[str, str] = ("2014-01-01", "2015-08-01")
    dev: tuple[str, str] = ("2015-08-01", "2015-10-01")
    test: tuple[str, str] = ("2015-10-01", "2016-01-01")
    seed: int = 13


class ResearchConfig(Strict):
    sessions: SessionConfig = SessionConfig()
    entry: EntryConfig = EntryConfig()
    prices: PriceQualityConfig = PriceQualityConfig()
    tearsheet: TearSheetConfig = TearSheetConfig()
    market: MarketTestConfig = MarketTestConfig()
    events: EventConfig = EventConfig()
    stocknet: StockNetConfig = StockNetConfig()


DEFAULT_RESEARCH = ResearchConfig()
