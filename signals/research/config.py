"""Every tunable of signal research, in one typed place.

Sessions are counted on the exchange calendar of :class:`signals.config.SessionConfig`.
Horizons and windows are in sessions.
"""
from __future__ import annotations

from datetime import time
from typing import Literal

from pydantic import Field, field_validator, model_validator

from core.config_files import Strict
from signals.config import SessionConfig


class EntryConfig(Strict):
    """When and at which price a value known at ``known_at`` is traded.

    ``price="close"`` (default), ``rule="after"`` (conservative): at the close of the first session
    whose close is strictly after ``known_at``; a daily feature row dated D (known at D's 16:00
    cutoff) enters at D+1's close. ``rule="at"`` loosens this to a close at or after ``known_at``.

    ``price="open"``: a value known strictly before ``open_cutoff`` (local time of the session
    calendar) of session D trades at D's open, otherwise at the next session's open. The default
    09:30 is New York's open; Ke, Kelly & Xiu count news up to 09:00 (``open_cutoff="09:00"``).
    A cut-off after the open would trade on text not yet known, so it is refused.
    """

    price: Literal["close", "open"] = "close"
    rule: Literal["after", "at"] = "after"  # close entry only
    open_cutoff: str = "09:30"

    @field_validator("open_cutoff")
    @classmethod
    def _before_open(cls, v: str) -> str:
        if time.fromisoformat(v) > time(9, 30):
            raise ValueError(f"open_cutoff {v} is after the 09:30 open: the position would be entered before the text is known")
        return v

    @model_validator(mode="after")
    def _rule_is_for_closes(self) -> "EntryConfig":
        if self.price == "open" and self.rule != "after":
            raise ValueError("rule='at' loosens close entry only; open entry has its cut-off (open_cutoff)")
        return self


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


class BookConfig(Strict):
    """Daily long-short books: each entry session, long the highest-valued names and short the lowest.

    ``top`` > 0: that many names per side; ``top=0``: the top and bottom of ``quantiles``. A book
    formed at entry session e is held ``holding`` sessions; the daily portfolio is the average of
    the last ``holding`` books (Jegadeesh-Titman overlap; a session without a book leaves its share
    in cash). ``weighting="value"`` weights names by trailing dollar volume (close x volume over
    ``size_window`` sessions before entry), a liquidity proxy because the price set has no share
    counts. Costs are ``cost_bps`` per unit of one-way traded weight.
    """

    top: int = Field(0, ge=0)
    quantiles: int = Field(5, ge=2)
    weighting: Literal["equal", "value"] = "equal"
    holding: int = Field(1, ge=1)
    cost_bps: float = Field(10.0, ge=0)
    min_entities: int = Field(5, ge=2)  # sessions with fewer valued names form no book
    size_window: int = Field(20, ge=1)  # sessions of dollar volume for value weights and the size split
    vol_window: int = Field(60, ge=5)  # sessions of returns for the volatility split
    annualization: int = 252


class MarketTestConfig(Strict):
    horizons: tuple[int, ...] = (1, 5)
    min_train: int = Field(252, ge=20)  # sessions before the first out-of-sample forecast


class EventConfig(Strict):
    """Event windows are inclusive ``(first, last)`` event days; day k is the return from the entry price
    (close, or open for open entry) of session entry+k to that of entry+k+1, so day 0 is the first return after entry. Windows that
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
    books: BookConfig = BookConfig()
    market: MarketTestConfig = MarketTestConfig()
    events: EventConfig = EventConfig()
    stocknet: StockNetConfig = StockNetConfig()


DEFAULT_RESEARCH = ResearchConfig()
