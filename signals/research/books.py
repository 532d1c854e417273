"""Daily long-short books on a per-entity feature, after costs (the design of Ke, Kelly & Xiu 2019).

Each entry session e (:func:`signals.research.returns.entry_positions`, close or open entry), the
names with a value that session are ranked; the book is long the top ``top`` names (or the top
quantile) and short the bottom ones, each side summing to 1 (equal or dollar-volume weights). A
book is held ``holding`` sessions and the day's portfolio averages the last ``holding`` books, with
constant weights (rebalanced daily). The portfolio of session e earns the period from e's entry
price to e+1's, split into its overnight and intraday legs (:func:`signals.research.returns.period_legs`).

Traded weight is ``sum |w_e - w_{e-1}|``; costs are ``cost_bps`` per unit of it; ``turnover`` is a
quarter of it (1.0 = both sides of a $1/$1 book replaced). Characteristics for weights and splits
(trailing dollar volume, trailing volatility) end at the session before entry.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.errors import UsageError
from signals.research.config import DEFAULT_RESEARCH, ResearchConfig
from signals.research.prices import Prices
from signals.research.returns import at_entry, period_legs
from signals.research.stats import factor_alpha, mean_t, nw_lags
from signals.research.tearsheet import align, quantile_labels


@dataclass
class Books:
    daily: pd.DataFrame  # per session: gross, cost, net, overnight, intraday, long, short, turnover, names
    summary: dict
    splits: pd.DataFrame = field(default_factory=pd.DataFrame)  # net Sharpe by size / volatility half
    counts: dict[str, int] = field(default_factory=dict)


def dollar_volume(prices: Prices, window: int) -> pd.DataFrame | None:
    """Mean close x volume over the ``window`` sessions before each session (None without volumes)."""
    if prices.volume is None:
        return None
    dv = (prices.close * prices.volume).rolling(window, min_periods=max(1, window // 2)).mean()
    return dv.shift(1)


def trailing_volatility(prices: Prices, window: int) -> pd.DataFrame:
    return prices.returns.rolling(window, min_periods=window // 2).std().shift(1)


def cohort_weights(feat: pd.DataFrame, cfg: ResearchConfig, size: pd.DataFrame | None = None) -> pd.DataFrame:
    """Weights of the book formed at each entry session: +1 over the long side, -1 over the short side."""
    bc = cfg.books
    n = feat.notna().sum(axis=1)
    if bc.top:
        enough = (n >= max(bc.min_entities, 2 * bc.top)).to_numpy()[:, None]
        long = (feat.rank(axis=1, ascending=False, method="first") <= bc.top) & enough
        short = (feat.rank(axis=1, ascending=True, method="first") <= bc.top) & enough
    else:
        labels = quantile_labels(feat, bc.quantiles, bc.min_entities)
        long, short = labels == bc.quantiles, labels == 1
    if bc.weighting == "value":
        if size is None:
            raise UsageError("value weights need volumes (a dollar-volume proxy); this price source has none",
                             hint="use --weighting equal, or a price file with a 'volume' column")
        base = size.reindex_like(feat).where(size > 0)
    else:
        base = pd.DataFrame(1.0, index=feat.index, columns=feat.columns)
    side = lambda mask: base.where(mask).div(base.where(mask).sum(axis=1), axis=0)  # noqa: E731
    return side(long).fillna(0.0) - side(short).fillna(0.0)


def book_returns(feat: pd.DataFrame, period: pd.DataFrame, legs: dict[str, pd.DataFrame], cfg: ResearchConfig,
             size: pd.DataFrame | None = None) -> pd.DataFrame:
    """Daily gross/net return, legs and turnover of the book on an aligned feature."""
    bc = cfg.books
    cohorts = cohort_weights(feat, cfg, size)
    w = cohorts.rolling(bc.holding, min_periods=1).sum() / bc.holding
    traded = w.diff().abs().sum(axis=1)
    traded.iloc[0] = w.iloc[0].abs().sum()
    earn = lambda r: (w * r.reindex_like(w).fillna(0.0)).sum(axis=1)  # noqa: E731
    gross = earn(period)
    cost = traded * bc.cost_bps / 1e4
    out = pd.DataFrame({
        "gross": gross, "cost": cost, "net": gross - cost,
        **{leg: earn(r) for leg, r in legs.items()},
        "long": (w.clip(lower=0) * period.reindex_like(w).fillna(0.0)).sum(axis=1),
        "short": (w.clip(upper=0) * period.reindex_like(w).fillna(0.0)).sum(axis=1),
        "turnover": traded / 4, "names": (w != 0).sum(axis=1),
        # a held name without a return that period (gap, flagged move, end of data) earns nothing
        "unpriced_weight": (w.abs() * period.reindex_like(w).isna()).sum(axis=1),
    })
    active = out["names"] > 0
    if not active.any():
        return out.iloc[0:0]
    first, last = active.idxmax(), active[::-1].idxmax()
    return out.loc[first:last]


def _stats(daily: pd.DataFrame, cfg: ResearchConfig) -> dict:
    ann = cfg.books.annualization
    sharpe = lambda x: float(x.mean() / x.std() * np.sqrt(ann)) if len(x) > 2 and x.std() > 0 else np.nan  # noqa: E731
    lags = nw_lags(len(daily), cfg.books.holding)
    mean_net, t_net, n = mean_t(daily["net"], lags) if len(daily) else (np.nan, np.nan, 0)
    out = {"sessions": n, "net_mean": mean_net, "net_t": t_net, "net_sharpe": sharpe(daily["net"]),
           "gross_mean": float(daily["gross"].mean()), "gross_sharpe": sharpe(daily["gross"]),
           "turnover": float(daily["turnover"].mean()), "names": float(daily["names"].mean())}
    for leg in ("overnight", "intraday"):
        out[f"{leg}_mean"] = float(daily[leg].mean())
        out[f"{leg}_t"] = mean_t(daily[leg], lags)[1] if len(daily) else np.nan
        out[f"{leg}_sharpe"] = sharpe(daily[leg])
    return out


def books(feature: pd.DataFrame, prices: Prices, cfg: ResearchConfig = DEFAULT_RESEARCH,
          factors: pd.DataFrame | None = None) -> Books:
    """The long-short book of one feature (long rows ``entity``, ``value``, ``known_at``), its
    statistics, the Fama-French alpha (``factors``: daily decimal returns with ``RF``) and the
    size / volatility split."""
    entry_px = at_entry(prices, cfg)
    feat, counts = align(feature, entry_px, cfg)
    feat = feat.where(entry_px.close.notna())
    period = entry_px.returns.shift(-1)
    legs = period_legs(prices, cfg)
    size = dollar_volume(prices, cfg.books.size_window)
    daily = book_returns(feat, period, legs, cfg, size)
    counts["book_sessions"] = int((daily["names"] > 0).sum()) if len(daily) else 0
    summary = _stats(daily, cfg)
    if factors is not None and len(daily):
        cols = [c for c in factors.columns if c != "RF"]
        summary.update({f"ff_{k}": v for k, v in factor_alpha(daily["net"], factors[cols], nw_lags(len(daily))).items()
                        if k in ("alpha", "t_alpha", "r2", "n")})
    splits = []
    chars = {"volatility": trailing_volatility(prices, cfg.books.vol_window)}
    if size is not None:
        chars = {"size": size, **chars}
    for name, char in chars.items():
        c = char.where(feat.notna())
        median = c.median(axis=1)
        for half, mask in (("low", c.le(median, axis=0)), ("high", c.gt(median, axis=0))):
            d = book_returns(feat.where(mask), period, legs, cfg, size)
            splits.append({"split": name, "half": half, **(_stats(d, cfg) if len(d) else {"sessions": 0})})
    return Books(daily=daily, summary=summary, splits=pd.DataFrame(splits), counts=counts)
