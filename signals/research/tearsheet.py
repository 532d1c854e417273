"""Cross-sectional tear sheet of one daily per-entity feature (after alphalens).

The feature's rows (``date``, ``entity``, ``value``, ``known_at``) are placed at their entry session
(:func:`signals.research.returns.entry_positions`) and valued at the entry price (close or open);
every statistic uses only returns after that entry. The one exception is the ``pre-entry``
diagnostic row (the IC against the return that ends at the entry price): it is labeled not tradable and never enters the
tradable tables.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from signals.research.config import DEFAULT_RESEARCH, ResearchConfig
from signals.research.prices import Prices
from signals.research.returns import at_entry, entry_instants, entry_positions, forward_returns
from signals.research.stats import mean_t, nw_lags


@dataclass
class TearSheet:
    summary: pd.DataFrame  # one row per horizon: IC, rank IC with NW t, quantile spread, Sharpe
    ic: pd.DataFrame  # daily IC and rank IC per horizon (columns ic_{h}, rank_ic_{h})
    decay: pd.DataFrame  # mean rank IC and its t for horizons 1..21
    quantiles: pd.DataFrame  # mean forward return per quantile (rows) and horizon (columns)
    spread: pd.DataFrame  # daily top-minus-bottom forward return per horizon
    daily: pd.DataFrame  # coverage, top-quantile turnover and rank autocorrelation per session
    counts: dict[str, int] = field(default_factory=dict)


def align(feature: pd.DataFrame, prices: Prices, cfg: ResearchConfig = DEFAULT_RESEARCH) -> tuple[pd.DataFrame, dict]:
    """Wide feature at entry sessions (sessions x tickers of ``prices``) and the counts of rows lost."""
    need = {"entity", "value", "known_at"}
    if need - set(feature.columns):
        raise ValueError(f"feature frame needs columns {sorted(need)}, got {list(feature.columns)}")
    f = feature.dropna(subset=["value"]).copy()
    counts = {"feature_rows": len(feature), "rows_without_value": len(feature) - len(f)}
    priced = f["entity"].isin(set(prices.close.columns[prices.close.notna().any()]))
    counts["rows_entity_without_prices"] = int((~priced).sum())
    counts["entities_without_prices"] = int(f.loc[~priced, "entity"].nunique())
    f = f[priced]
    f["pos"] = entry_positions(f["known_at"], prices.sessions, cfg)
    before = pd.to_datetime(f["known_at"], utc=True) < entry_instants(prices.sessions[:1], cfg)[0]
    counts["rows_before_prices"] = int(before.sum())
    counts["rows_after_prices"] = int((f["pos"] < 0).sum())
    f = f[(f["pos"] >= 0) & ~before]
    # Two rows entering at the same close (a late row catching up): the latest known one is what a
    # trader holds at that close.
    f = f.sort_values("known_at").drop_duplicates(["entity", "pos"], keep="last")
    counts["rows_used"] = len(f)
    wide = f.pivot(index="pos", columns="entity", values="value").reindex(range(len(prices.sessions)))
    wide.index = prices.sessions
    return wide.reindex(columns=prices.close.columns), counts


def rowwise_corr(a: np.ndarray, b: np.ndarray, min_n: int) -> np.ndarray:
    """Pearson correlation of each row of ``a`` with the same row of ``b`` over jointly finite cells."""
    ok = np.isfinite(a) & np.isfinite(b)
    n = ok.sum(axis=1)
    a0, b0 = np.where(ok, a, 0.0), np.where(ok, b, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ma, mb = a0.sum(1) / n, b0.sum(1) / n
        da, db = np.where(ok, a0 - ma[:, None], 0), np.where(ok, b0 - mb[:, None], 0)
        r = (da * db).sum(1) / np.sqrt((da**2).sum(1) * (db**2).sum(1))
    r[n < min_n] = np.nan
    return r


def _ranks(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return pd.DataFrame(np.where(mask, values, np.nan)).rank(axis=1).to_numpy()


def ic_series(feat: pd.DataFrame, fwd: pd.DataFrame, min_n: int) -> tuple[np.ndarray, np.ndarray]:
    """Daily Pearson IC and rank (Spearman) IC across entities."""
    a, b = feat.to_numpy(float), fwd.to_numpy(float)
    ok = np.isfinite(a) & np.isfinite(b)
    return rowwise_corr(a, b, min_n), rowwise_corr(_ranks(a, ok), _ranks(b, ok), min_n)


def quantile_labels(feat: pd.DataFrame, q: int, min_n: int) -> pd.DataFrame:
    """Quantile (1..q) of each entity's value within its session; NaN where fewer than ``min_n``."""
    ranks = feat.rank(axis=1, pct=True, method="first")
    labels = np.ceil(ranks * q)
    enough = feat.notna().sum(axis=1) >= min_n
    return labels.where(np.broadcast_to(enough.to_numpy()[:, None], labels.shape))


def tear_sheet(feature: pd.DataFrame, prices: Prices, cfg: ResearchConfig = DEFAULT_RESEARCH) -> TearSheet:
    """All tear-sheet tables for one feature (long rows: ``entity``, ``value``, ``known_at``)."""
    tc = cfg.tearsheet
    prices = at_entry(prices, cfg)
    feat, counts = align(feature, prices, cfg)
    # Entities without a forward return cannot enter a cross-section; count the session-entities dropped.
    feat = feat.where(prices.close.notna())
    labels = quantile_labels(feat, tc.quantiles, tc.min_entities)
    ic_cols, summary, spreads, qmeans = {}, [], {}, {}
    for h in sorted(set(tc.horizons) | set(tc.decay_horizons)):
        fwd = forward_returns(prices.returns, h)
        ic, ric = ic_series(feat, fwd, tc.min_entities)
        ic_cols[f"ic_{h}"], ic_cols[f"rank_ic_{h}"] = ic, ric
        if h not in tc.horizons:
            continue
        lags = nw_lags(int(np.isfinite(ric).sum()), h)
        m_ic, t_ic, n = mean_t(ic, lags)
        m_ric, t_ric, _ = mean_t(ric, lags)
        by_q = {k: fwd.where(labels == k).mean(axis=1) for k in range(1, tc.quantiles + 1)}
        qmeans[f"fwd_{h}"] = {k: float(v.mean()) for k, v in by_q.items()}
        # The spread counts on the sessions whose cross-section also gives an IC (same entity minimum).
        spread = (by_q[tc.quantiles] - by_q[1]).where(np.isfinite(ric))
        spreads[f"spread_{h}"] = spread
        m_sp, t_sp, _ = mean_t(spread, lags)
        # Non-overlapping holding periods for the Sharpe ratio of an h-session spread.
        sampled = spread.dropna().iloc[::h]
        sharpe = float(sampled.mean() / sampled.std() * np.sqrt(tc.annualization / h)) if len(sampled) > 2 else np.nan
        summary.append({"horizon": h, "tradable": True, "sessions": n, "mean_ic": m_ic, "t_ic": t_ic,
                        "mean_rank_ic": m_ric, "t_rank_ic": t_ric, "ls_spread": m_sp, "t_spread": t_sp,
                        "ls_sharpe": sharpe, "nw_lags": lags})
    # Diagnostic only: the entry session's own return ends at the entry close, before the position exists.
    same = prices.returns
    d_ic, d_ric = ic_series(feat, same, tc.min_entities)
    lags = nw_lags(int(np.isfinite(d_ric).sum()))
    m_ic, t_ic, n = mean_t(d_ic, lags)
    m_ric, t_ric, _ = mean_t(d_ric, lags)
    summary.append({"horizon": 0, "tradable": False, "sessions": n, "mean_ic": m_ic, "t_ic": t_ic,
                    "mean_rank_ic": m_ric, "t_rank_ic": t_ric, "ls_spread": np.nan, "t_spread": np.nan,
                    "ls_sharpe": np.nan, "nw_lags": lags})
    ic = pd.DataFrame(ic_cols, index=prices.sessions)
    decay = pd.DataFrame([
        dict(zip(("mean_rank_ic", "t_rank_ic", "sessions"), mean_t(ic[f"rank_ic_{h}"], nw_lags(len(ic), h))), horizon=h)
        for h in tc.decay_horizons
    ]).set_index("horizon")
    counts["sessions_with_cross_section"] = int(ic[f"rank_ic_{tc.horizons[0]}"].notna().sum())
    daily = pd.DataFrame({
        "coverage": feat.notna().sum(axis=1),
        "top_turnover": _turnover(labels == tc.quantiles),
        "rank_autocorr": _rank_autocorr(feat, tc.min_entities),
    }, index=prices.sessions)
    return TearSheet(
        summary=pd.DataFrame(summary),
        ic=ic.dropna(how="all"),
        decay=decay,
        quantiles=pd.DataFrame(qmeans).rename_axis("quantile").rename(index=int),
        spread=pd.DataFrame(spreads).dropna(how="all"),
        daily=daily[daily["coverage"] > 0],
        counts=counts,
    )


def _turnover(top: pd.DataFrame) -> pd.Series:
    """Share of the top quantile that was not in it at the previous session with a top quantile."""
    rows = top[top.any(axis=1)]
    prev = rows.shift(1, fill_value=False)
    new = (rows & ~prev).sum(axis=1) / rows.sum(axis=1)
    new.iloc[:1] = np.nan
    return new.reindex(top.index)


def _rank_autocorr(feat: pd.DataFrame, min_n: int) -> pd.Series:
    """Spearman correlation of the feature across entities between consecutive sessions with data."""
    rows = feat[feat.notna().sum(axis=1) >= min_n]
    a, b = rows.to_numpy(float), rows.shift(1).to_numpy(float)
    ok = np.isfinite(a) & np.isfinite(b)
    return pd.Series(rowwise_corr(_ranks(a, ok), _ranks(b, ok), min_n), index=rows.index).reindex(feat.index)
