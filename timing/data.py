"""Assemble the timing panel from market and macro history: packaged (no network) or files.

Factor returns come from ``signals.market.load_french``; market features (trailing factor
returns, S&P 500 realized volatility, the T-bill rate) from ``signals.market.market_features``;
macro features from ``signals.macro.packaged_macro`` or, with ``data.source = "files"``, from
the FRED-MD file(s) named by ``data.macro_source`` (``signals.macro.load_fredmd``, publication
lag applied there). Every panel but a Parquet one then gets the predictors of
``timing.predictors`` (factor momentum and variance, term spread). A panel built later by
``signals.FeatureProvider.panel(...)`` (which adds sentiment columns) is used with
``DataConfig(source="provider", db=...)``: :func:`from_provider_panel` renames its blocks into
the contract of ``timing.dataset`` (``mkt_*`` -> ``market.*``, ``macro_*`` -> ``macro.*``, other
feature columns -> ``sentiment.*``; ``avail_<block>`` -> per-feature ``__mask``) and joins the
factor returns. A Parquet file already in the contract is read with ``source="parquet"``.

Point in time: a panel row dated D is the decision at D's close (16:00 New York). Every source
row carries ``known_at``; it is placed on the first panel date whose close is at or after
``known_at`` (an as-of join). The packaged macro rows are known at 00:00 after their month-end,
so they enter one month later than their label -- conservative, and never early.

The activity indicator for the macro-regime rule is the negative BAA-AAA default spread (credit
conditions move with the business cycle, and it is the only cycle series in the packaged data
that spans the 1960s): ``macro.activity_gap`` is its distance to its own trailing 10-year mean,
``macro.activity_chg6`` its 6-month change, both computed from already lagged values.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from signals.config import DEFAULT_CONFIG, SignalsConfig
from timing.config import ConfigError, DataConfig, horizon_periods
from timing.dataset import MASK_SUFFIX

log = logging.getLogger(__name__)

def as_of_align(frame: pd.DataFrame, dates: pd.DatetimeIndex) -> pd.DataFrame:
    """Put each row of ``frame`` (with a ``known_at`` column) on the first decision date that knows it."""
    from signals.market import french_known_at

    decision = french_known_at(dates)  # the decision is taken at the close of each date
    pos = decision.searchsorted(pd.DatetimeIndex(frame["known_at"]), side="left")
    values = frame.drop(columns="known_at")
    keep = pos < len(dates)
    values = values[keep].set_axis(dates[pos[keep]])
    return values.groupby(level=0).last().reindex(dates)


def _resolve(source: str | list[str]) -> str | list[str]:
    from nlp.paths import resolve_data_path

    return [resolve_data_path(s) for s in source] if isinstance(source, list) else resolve_data_path(source)


def history_panel(cfg: DataConfig) -> pd.DataFrame:
    """Factor returns, ``market.*`` and ``macro.*`` features and ``__mask`` columns, no text.

    ``source="packaged"`` reads the packaged monthly history whatever the sources say;
    ``source="files"`` reads ``market_source`` (Ken French) and ``macro_source`` (FRED-MD).
    """
    from signals.macro import load_fredmd, packaged_macro
    from signals.market import load_french, market_features

    packaged = cfg.source == "packaged"
    if packaged and cfg.frequency != "monthly":
        raise ValueError("the packaged history is monthly only; use data.source='files' or 'parquet' for other frequencies")
    market_source = "packaged" if packaged else _resolve(cfg.market_source)
    factors = load_french(cfg.frequency, market_source)
    dates = factors.index
    market = as_of_align(market_features(cfg.frequency, market_source), dates).add_prefix("market.")
    if packaged or cfg.macro_source == "packaged":
        macro_rows = packaged_macro()
    else:
        macro_rows = load_fredmd(_resolve(cfg.macro_source))[1].drop(columns=["vintage"])
    macro = as_of_align(macro_rows, dates).add_prefix("macro.")
    panel = add_activity_indicator(pd.concat([factors.drop(columns=["RF"]), market, macro], axis=1), cfg.frequency)
    panel = panel.loc[pd.Timestamp(cfg.start):pd.Timestamp(cfg.end)]
    if panel.empty:
        raise ConfigError(f"no {cfg.frequency} factor data between data.start {cfg.start} and data.end {cfg.end} "
                          f"(the data covers {dates[0].date()}..{dates[-1].date()})")
    features = [c for c in panel.columns if "." in c]
    panel = pd.concat([panel, panel[features].notna().astype(np.float32).add_suffix(MASK_SUFFIX)], axis=1)
    log.info("%s panel %s..%s, %d rows, %d features", cfg.source, panel.index[0].date(), panel.index[-1].date(),
             len(panel), len(features))
    return panel


def with_predictors(panel: pd.DataFrame, cfg: DataConfig) -> pd.DataFrame:
    """Add ``timing.predictors``; keep only ``cfg.macro_columns`` of the raw macro series if named."""
    from timing.config import KNOWN_FACTORS
    from timing.predictors import add_predictors

    factors = [c for c in KNOWN_FACTORS if c in panel.columns]
    panel = add_predictors(panel, factors, cfg.frequency, cfg.variance_months)
    if cfg.macro_columns:
        derived = {"default_spread", "core_cpi_infl_12m", "term_spread", "activity_gap", "activity_chg6"}
        keep = set(cfg.macro_columns) | derived
        drop = [c for c in panel.columns if c.startswith("macro.")
                and c.removesuffix(MASK_SUFFIX).split(".", 1)[1] not in keep]
        panel = panel.drop(columns=drop)
    return panel


def add_activity_indicator(panel: pd.DataFrame, frequency: str) -> pd.DataFrame:
    """Add ``macro.activity_gap``/``macro.activity_chg6`` (the regime rule's inputs) where possible.

    Activity = minus the BAA-AAA default spread: ``macro.default_spread`` (packaged data), else
    ``macro.BAAFFM - macro.AAAFFM`` (FRED-MD's spreads over fed funds; their difference is
    BAA-AAA). Windows are 10 years (gap) and 6 months (change) in the panel's own periods. The
    inputs are already publication-lagged, so the indicator is too. Without a spread the panel is
    returned unchanged and the macro_regime baseline says which columns it lacks.
    """
    if "macro.default_spread" in panel.columns:
        spread = panel["macro.default_spread"]
    elif {"macro.BAAFFM", "macro.AAAFFM"} <= set(panel.columns):
        spread = panel["macro.BAAFFM"] - panel["macro.AAAFFM"]
    else:
        return panel
    per_month = horizon_periods(frequency, "monthly")
    activity = -spread.ffill()
    out = panel.copy()
    out["macro.activity_gap"] = activity - activity.rolling(120 * per_month, min_periods=12 * per_month).mean()
    out["macro.activity_chg6"] = activity.diff(6 * per_month)
    return out


def from_provider_panel(frame: pd.DataFrame, factors: pd.DataFrame, frequency: str = "monthly") -> pd.DataFrame:
    """A ``FeatureProvider.panel`` frame + factor returns -> a panel in the timing contract."""
    frame = frame.drop(columns=[c for c in frame.columns if c.endswith("known_at")])
    avail = {c[len("avail_"):]: frame[c] for c in frame.columns if c.startswith("avail_")}
    columns: dict[str, pd.Series] = {}
    for col in frame.columns:
        if col.startswith("avail_"):
            continue
        if col.startswith("mkt_"):
            name, block = "market." + col[len("mkt_"):], "mkt"
        elif col.startswith("macro_"):
            name, block = "macro." + col[len("macro_"):], "macro"
        else:
            name = "sentiment." + col
            block = next((b for b in avail if col.startswith(f"{b}_")), None)
        observed = frame[col].notna()
        if block in avail:
            observed &= avail[block].fillna(0).astype(bool)
        columns[name] = frame[col].astype(float)
        columns[name + MASK_SUFFIX] = observed.astype(np.float32)
    returns = factors.reindex(frame.index)[[c for c in factors.columns if c != "RF"]]
    panel = pd.concat([returns, pd.DataFrame(columns, index=frame.index)], axis=1)
    panel = add_activity_indicator(panel, frequency)
    for c in ("macro.activity_gap", "macro.activity_chg6"):
        if c in panel.columns:
            panel[c + MASK_SUFFIX] = panel[c].notna().astype(np.float32)
    return panel


def load_panel(cfg: DataConfig, signals: SignalsConfig = DEFAULT_CONFIG) -> pd.DataFrame:
    """The panel ``cfg`` names; ``signals`` (sessions, windows) is how a provider store was built."""
    if cfg.source in ("packaged", "files"):
        return with_predictors(history_panel(cfg), cfg)
    if cfg.source == "provider":
        from signals.market import load_french
        from signals.provider import FeatureProvider

        provider = FeatureProvider(cfg.path, signals, market_source=cfg.market_source, macro_source=cfg.macro_source)
        try:
            frame = provider.panel(cfg.start, cfg.end, frequency=cfg.frequency)
        finally:
            provider.close()
        return with_predictors(from_provider_panel(frame, load_french(cfg.frequency, cfg.market_source), cfg.frequency), cfg)
    panel = pd.read_parquet(cfg.path)
    if not isinstance(panel.index, pd.DatetimeIndex):
        if "date" not in panel.columns:
            raise ValueError(f"{cfg.path}: a panel needs a DatetimeIndex or a 'date' column")
        panel = panel.set_index(pd.DatetimeIndex(panel.pop("date")))
    if not panel.index.is_monotonic_increasing or panel.index.has_duplicates:
        raise ValueError(f"{cfg.path}: panel dates must be sorted and unique")
    return panel.loc[pd.Timestamp(cfg.start):pd.Timestamp(cfg.end)]
