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
Whatever the source, ``data.extra_predictors`` files (series no packaged set holds, e.g. value
spreads; none by default) are then joined as ``extra.<name>.<column>`` by :func:`add_extra_predictors`.

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
import warnings

import numpy as np
import pandas as pd

from core.errors import MissingFileError, UsageError
from signals.config import DEFAULT_CONFIG, SignalsConfig
from timing.config import ConfigError, DataConfig, ExtraPredictors, horizon_periods
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
    from core.paths import resolve_data_path

    return [resolve_data_path(s) for s in source] if isinstance(source, list) else resolve_data_path(source)


def _read_extra(spec: ExtraPredictors, where: str) -> pd.DataFrame:
    try:
        if spec.file_format == "parquet":
            return pd.read_parquet(where)
        return pd.read_csv(where)
    except FileNotFoundError:
        raise MissingFileError(f"extra predictor file {where}: not found (data.extra_predictors {spec.name!r})") from None
    except pd.errors.EmptyDataError:
        raise UsageError(f"extra predictor file {where}: empty (no header, no rows)") from None
    except Exception as exc:  # a corrupt Parquet file, a URL that does not answer, ...
        raise UsageError(f"extra predictor file {where}: cannot be read ({type(exc).__name__}: {exc})") from exc


def extra_predictor_frame(spec: ExtraPredictors) -> pd.DataFrame:
    """The file ``spec`` names as ``extra.<name>.<column>`` columns + ``known_at`` (UTC), checked.

    A date without a time is 00:00 New York (the sessions' zone); ``known_at`` is that instant plus
    ``known_lag_days``. Errors name the file and the problem: no date column, unparseable or
    duplicate dates, a requested column missing, non-numeric values, no rows.
    """
    where = str(_resolve(spec.path))
    raw = _read_extra(spec, where)
    if isinstance(raw.index, pd.DatetimeIndex) and spec.date_column not in raw.columns and raw.index.name == spec.date_column:
        raw = raw.reset_index()  # a Parquet file written with its dates as the index
    if spec.date_column not in raw.columns:
        raise UsageError(f"extra predictor file {where}: no date column {spec.date_column!r} "
                         f"(columns: {list(raw.columns)}); set date_column")
    if raw.empty:
        raise UsageError(f"extra predictor file {where}: no rows")
    text = raw[spec.date_column]
    if pd.api.types.is_numeric_dtype(text):  # 20200131: a number would otherwise be read as nanoseconds
        try:
            text = text.astype("Int64").astype(str).where(text.notna())
        except (TypeError, ValueError):  # 20200131.5: not a date; reported as unparseable below
            text = text.astype(str)
    with warnings.catch_warnings():  # "could not infer format": each date is parsed alone, then checked
        warnings.simplefilter("ignore", UserWarning)
        dates = pd.to_datetime(text, errors="coerce")
    if dates.isna().any():
        bad = text[dates.isna()]
        raise UsageError(f"extra predictor file {where}: {len(bad)} unparseable or missing date(s) in "
                         f"{spec.date_column!r}, first at row {bad.index[0]}: {bad.iloc[0]!r}")
    if dates.duplicated().any():
        dup = dates[dates.duplicated()].iloc[0]
        raise UsageError(f"extra predictor file {where}: duplicate date {dup} in {spec.date_column!r}; "
                         "one row per date")
    others = [c for c in raw.columns if c != spec.date_column]
    if spec.columns:
        missing = [c for c in spec.columns if c not in raw.columns]
        if missing:
            raise UsageError(f"extra predictor file {where}: no column(s) {missing}; it has {others}")
        columns = list(spec.columns)
    else:
        columns = [c for c in others if pd.api.types.is_numeric_dtype(raw[c])]
        skipped = [c for c in others if c not in columns]
        if not columns:
            raise UsageError(f"extra predictor file {where}: no numeric column besides {spec.date_column!r} "
                             f"(columns: {others})")
        if skipped:
            log.warning("extra predictor file %s: non-numeric column(s) %s not used (name them in columns "
                        "to have their bad values reported)", where, skipped)
    values = {}
    for c in columns:
        if str(c).endswith(MASK_SUFFIX):
            raise UsageError(f"extra predictor file {where}: column {c!r} ends in {MASK_SUFFIX!r}, "
                             "the suffix of availability masks; rename it")
        numbers = pd.to_numeric(raw[c], errors="coerce") if not pd.api.types.is_bool_dtype(raw[c]) else raw[c]
        bad = numbers.isna() & raw[c].notna()
        if bad.any():
            raise UsageError(f"extra predictor file {where}: column {c!r} has {int(bad.sum())} non-numeric "
                             f"value(s), first {raw[c][bad].iloc[0]!r} dated {dates[bad].iloc[0].date()}")
        values[f"extra.{spec.name}.{c}"] = numbers.astype(float).to_numpy()
    index = pd.DatetimeIndex(dates)
    if index.tz is None:
        local = (index + pd.Timedelta(days=spec.known_lag_days)).tz_localize(
            DEFAULT_CONFIG.sessions.tz, ambiguous=False, nonexistent="shift_forward")
    else:
        local = index + pd.Timedelta(days=spec.known_lag_days)
    frame = pd.DataFrame(values, index=index)
    frame["known_at"] = local.tz_convert("UTC")
    return frame.sort_values("known_at")


def add_extra_predictors(panel: pd.DataFrame, cfg: DataConfig) -> pd.DataFrame:
    """``panel`` with each ``cfg.extra_predictors`` file joined point in time, with ``__mask`` columns.

    The value at panel date t is the latest (per column, non-missing) value whose ``known_at`` is
    at or before t's close; before a file's first known row it is NaN with mask 0, as late macro
    series are. The last value is carried forward however stale: the file decides what is current.
    """
    if not cfg.extra_predictors:
        return panel
    parts = []
    for spec in cfg.extra_predictors:
        frame = extra_predictor_frame(spec)
        clash = [c for c in frame.columns if c != "known_at" and c in panel.columns]
        if clash:
            raise UsageError(f"extra predictor {spec.name!r}: the panel already has column(s) {clash}")
        aligned = as_of_align(frame, panel.index).ffill()
        if aligned.notna().sum().sum() == 0:
            log.warning("extra predictor file %s: no value is known by the panel's last date %s",
                        _resolve(spec.path), panel.index[-1].date())
        log.info("extra predictors %s from %s (known %d days after their date): %s", spec.name,
                 _resolve(spec.path), spec.known_lag_days, list(aligned.columns))
        parts += [aligned, aligned.notna().astype(np.float32).add_suffix(MASK_SUFFIX)]
    return pd.concat([panel, *parts], axis=1)


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

    def name(col: str) -> str:
        for prefix, group in (("mkt_", "market."), ("macro_", "macro.")):
            if col.startswith(prefix):
                return group + col[len(prefix):]
        return "sentiment." + col

    columns = _with_masks(frame[[c for c in frame.columns if not c.startswith("avail_")]], avail, name)
    returns = factors.reindex(frame.index)[[c for c in factors.columns if c != "RF"]]
    panel = pd.concat([returns, pd.DataFrame(columns, index=frame.index)], axis=1)
    panel = add_activity_indicator(panel, frequency)
    for c in ("macro.activity_gap", "macro.activity_chg6"):
        if c in panel.columns:
            panel[c + MASK_SUFFIX] = panel[c].notna().astype(np.float32)
    return panel


def load_panel(cfg: DataConfig, signals: SignalsConfig = DEFAULT_CONFIG) -> pd.DataFrame:
    """The panel ``cfg`` names; ``signals`` (sessions, windows) is how a provider store was built."""
    return add_extra_predictors(_source_panel(cfg, signals), cfg)


def text_block(cfg: DataConfig, signals: SignalsConfig, dates: pd.DatetimeIndex) -> pd.DataFrame:
    """The ``text.*`` group: market-wide features of the derived sources (``signals.annotations``:
    novel/stale documents, event types, relevant documents) from the text store, with masks.

    The store's ``all``-sources rows count a document once per derived source, so they are left out.
    """
    from signals.annotations import net_analyst
    from signals.provider import FeatureProvider

    provider = FeatureProvider(cfg.text_path, signals, market_source=None, macro_source=None)
    try:
        frame = provider.panel(cfg.start, cfg.end, frequency=cfg.frequency)
    finally:
        provider.close()
    key = signals.features.all_sources_key
    frame = frame.drop(columns=[c for c in frame.columns if c.startswith((f"{key}_", f"avail_{key}")) or c.endswith("known_at")])
    avail = {c[len("avail_"):]: frame.pop(c) for c in [c for c in frame.columns if c.startswith("avail_")]}
    frame = net_analyst(frame)
    return pd.DataFrame(_with_masks(frame, avail, lambda col: f"text.{col}"), index=frame.index).reindex(dates)


def _with_masks(frame: pd.DataFrame, avail: dict[str, pd.Series], name) -> dict[str, pd.Series]:
    """Each column as ``name(col)`` and its ``__mask``: observed where not NaN and its block
    (``avail_<block>``, the prefix of the column) has started."""
    out: dict[str, pd.Series] = {}
    for col in frame.columns:
        block = next((b for b in avail if col.startswith(f"{b}_")), None)
        observed = frame[col].notna()
        if block is not None:
            observed &= avail[block].fillna(0).astype(bool)
        out[name(col)] = frame[col].astype(float)
        out[name(col) + MASK_SUFFIX] = observed.astype(np.float32)
    return out


def _source_panel(cfg: DataConfig, signals: SignalsConfig) -> pd.DataFrame:
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
        panel = from_provider_panel(frame, load_french(cfg.frequency, cfg.market_source), cfg.frequency)
        if cfg.text_path is not None:
            panel = panel.join(text_block(cfg, signals, panel.index))
        return with_predictors(panel, cfg)
    panel = pd.read_parquet(cfg.path)
    if not isinstance(panel.index, pd.DatetimeIndex):
        if "date" not in panel.columns:
            raise ValueError(f"{cfg.path}: a panel needs a DatetimeIndex or a 'date' column")
        panel = panel.set_index(pd.DatetimeIndex(panel.pop("date")))
    if not panel.index.is_monotonic_increasing or panel.index.has_duplicates:
        raise ValueError(f"{cfg.path}: panel dates must be sorted and unique")
    return panel.loc[pd.Timestamp(cfg.start):pd.Timestamp(cfg.end)]
