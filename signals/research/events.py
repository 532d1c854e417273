"""Event study: cumulative abnormal returns after document events, by tone group.

Events are rows (``entity``, ``known_at``, ``value``): an earnings call with its whole-call tone, a
news burst with its tone. Each enters at its entry close (:mod:`signals.research.returns`); event
day k is the return of the session after entry+k. Abnormal returns are market-adjusted (stock minus
S&P 500) and market-model (alpha and beta from the estimation window, which ends before the earliest
event window). Tone groups use breakpoints from *earlier* events only (an expanding window), so a
group never depends on a tone not yet known when the event was traded.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.errors import UsageError
from signals.research.config import DEFAULT_RESEARCH, ResearchConfig
from signals.research.prices import Prices
from signals.research.returns import at_entry, entry_positions, event_day_matrix, market_model
from signals.research.stats import clustered_regression

MODELS = ("market_model", "market_adjusted")


@dataclass
class EventStudy:
    events: pd.DataFrame  # one row per usable event: entity, entry date, value, group, CAR per window/model
    windows: pd.DataFrame  # per window and model: mean CAR by group, top-minus-bottom and tone slope tests
    curves: pd.DataFrame  # mean CAR path per group and model with 95% bands (rows = event days)
    counts: dict[str, int] = field(default_factory=dict)


def window_label(lo: int, hi: int) -> str:
    return f"[{lo:+d},{hi:+d}]"


def expanding_groups(values: pd.Series, order: pd.Series, groups: int, min_prior: int) -> pd.Series:
    """Group (1..groups) of each value from quantile breakpoints of values strictly earlier in ``order``."""
    frame = pd.DataFrame({"v": values.to_numpy(), "t": order.to_numpy()}).sort_values("t", kind="stable")
    out = pd.Series(np.nan, index=frame.index)
    qs = np.linspace(0, 1, groups + 1)[1:-1]
    for t, block in frame.groupby("t", sort=True):
        prior = frame.loc[frame["t"] < t, "v"].to_numpy()
        if len(prior) >= min_prior:
            out[block.index] = np.searchsorted(np.quantile(prior, qs), block["v"].to_numpy(), side="right") + 1
    out.index = values.index[out.index]
    return out.reindex(values.index)


def event_study(events: pd.DataFrame, prices: Prices, cfg: ResearchConfig = DEFAULT_RESEARCH) -> EventStudy:
    ec = cfg.events
    if cfg.entry.price == "open" and prices.market_open is None:
        raise UsageError("abnormal returns from an open entry need the market index's opens", hint="give a Yahoo-layout --market file with an Open column")
    prices = at_entry(prices, cfg)
    counts = {"events": len(events)}
    ev = events.dropna(subset=["value"]).copy()
    counts["events_without_value"] = counts["events"] - len(ev)
    priced = ev["entity"].isin(set(prices.close.columns[prices.close.notna().any()]))
    counts["events_ticker_without_prices"] = int((~priced).sum())
    ev = ev[priced]
    ev["pos"] = entry_positions(ev["known_at"], prices.sessions, cfg)
    counts["events_outside_price_range"] = int((ev["pos"] < 0).sum())
    ev = ev[ev["pos"] >= 0].reset_index(drop=True)

    lo = min(ec.estimation[0], ec.curve_days[0], *(w[0] for w in ec.windows))
    hi = max(ec.curve_days[1], *(w[1] for w in ec.windows))
    days = np.arange(lo, hi + 1)
    col = pd.Series(np.arange(prices.returns.shape[1]), index=prices.returns.columns)
    pos = ev["pos"].to_numpy()
    R = event_day_matrix(prices.returns.to_numpy(float), pos, col[ev["entity"]].to_numpy(), days)
    M = event_day_matrix(prices.market_returns.to_numpy(float)[:, None], pos, np.zeros(len(ev), dtype=int), days)
    est = (days >= ec.estimation[0]) & (days <= ec.estimation[1])
    fits = [market_model(R[i, est], M[i, est], ec.min_estimation) for i in range(len(ev))]
    alpha = np.array([f[0] for f in fits])
    beta = np.array([f[1] for f in fits])
    ev["beta"], ev["estimation_sessions"] = beta, [f[2] for f in fits]
    counts["events_short_history"] = int(np.isnan(beta).sum()) if len(ev) else 0
    abnormal = {"market_adjusted": R - M, "market_model": R - (alpha[:, None] + beta[:, None] * M)}

    ev["entry_date"] = prices.sessions[ev["pos"].to_numpy()]
    ev["group"] = expanding_groups(ev["value"], ev["known_at"], ec.groups, ec.min_prior_events)
    counts["events_before_breakpoints"] = int(ev["group"].isna().sum())
    for lo_w, hi_w in ec.windows:
        sel = (days >= lo_w) & (days <= hi_w)
        for model, ar in abnormal.items():
            # A window with any missing session (a gap, a flagged move, the data's end) has no CAR.
            ev[f"car_{model}_{window_label(lo_w, hi_w)}"] = ar[:, sel].sum(axis=1)
        counts[f"events_incomplete_{window_label(lo_w, hi_w)}"] = int(ev[f"car_market_adjusted_{window_label(lo_w, hi_w)}"].isna().sum())
    counts["events_used"] = len(ev)
    return EventStudy(events=ev.drop(columns=["pos"]), windows=_window_tests(ev, cfg), curves=_curves(ev, abnormal, days, cfg),
                      counts=counts)


def _window_tests(ev: pd.DataFrame, cfg: ResearchConfig) -> pd.DataFrame:
    g = cfg.events.groups
    rows = []
    for lo, hi in cfg.events.windows:
        for model in MODELS:
            car = ev[f"car_{model}_{window_label(lo, hi)}"]
            row = {"window": window_label(lo, hi), "tradable": lo >= 0, "model": model, "n": int(car.notna().sum())}
            for k in range(1, g + 1):
                row[f"mean_car_g{k}"] = float(car[ev["group"] == k].mean())
            ends = ev["group"].isin([1, g])
            tb = clustered_regression(car[ends], (ev.loc[ends, "group"] == g).astype(float), ev.loc[ends, "entry_date"])
            row.update(top_minus_bottom=tb["slope"], t_tmb=tb["t"], p_tmb=tb["p"], n_tmb=tb["n"], date_clusters=tb["clusters"])
            slope = clustered_regression(car, (ev["value"] - ev["value"].mean()) / ev["value"].std(), ev["entry_date"])
            row.update(slope_per_sd=slope["slope"], t_slope=slope["t"], p_slope=slope["p"])
            rows.append(row)
    return pd.DataFrame(rows)


def _curves(ev: pd.DataFrame, abnormal: dict[str, np.ndarray], days: np.ndarray, cfg: ResearchConfig) -> pd.DataFrame:
    lo, hi = cfg.events.curve_days
    sel = (days >= lo) & (days <= hi)
    parts = []
    for model, ar in abnormal.items():
        cum = np.nancumsum(ar[:, sel], axis=1)
        # A missing day ends an event's path there rather than counting as zero.
        cum = np.where(np.isnan(ar[:, sel]).cumsum(axis=1) > 0, np.nan, cum)
        for k in range(1, cfg.events.groups + 1):
            mask = (ev["group"] == k).to_numpy()
            path = cum[mask]
            n = np.isfinite(path).sum(axis=0)
            mean = np.nanmean(path, axis=0) if mask.any() else np.full(sel.sum(), np.nan)
            se = np.nanstd(path, axis=0, ddof=1) / np.sqrt(np.maximum(n, 1)) if mask.sum() > 1 else np.full(sel.sum(), np.nan)
            parts.append(pd.DataFrame({"day": days[sel], "model": model, "group": k, "mean_car": mean,
                                       "lo95": mean - 1.96 * se, "hi95": mean + 1.96 * se, "n": n}))
    return pd.concat(parts, ignore_index=True)
