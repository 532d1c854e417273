"""``FeatureProvider``: the import API over the feature store, market and macro loaders.

    from signals import FeatureProvider
    fp = FeatureProvider("runs/features.duckdb")
    fp.daily("2016-06-01", "2017-02-28", entities=["NWE"], sources=["news"])
    fp.panel("2016-06-30", "2017-02-28", frequency="monthly")   # one row per month end

Every join of slower data (market factors, macro) onto feature dates is an as-of join on
``known_at``: a value is attached to a date only if it was known at that date's decision
instant — the session's cutoff for daily rows, the month-end instant (00:00 New York on the
next month's first day) for monthly rows.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from core.errors import UsageError
from nlp.contracts import MARKET_ENTITY
from signals.config import DEFAULT_CONFIG, SignalsConfig
from signals.macro import load_fredmd, month_end_instant, packaged_macro
from signals.market import market_features
from signals.store import FeatureStore, check_range

_KEYS = ["date", "entity", "source"]


class FeatureProvider:
    """Point-in-time features for modelling.

    ``market_source``: ``"packaged"`` (linearmodels/arch data), a Ken French folder/URL, or
    ``None``. ``macro_source``: ``"packaged"`` (:func:`signals.macro.packaged_macro`), FRED-MD
    path(s) (their transformed series), or ``None``.
    """

    def __init__(self, db: str | Path | None = None, cfg: SignalsConfig = DEFAULT_CONFIG,
                 market_source: str | Path | None = "packaged", macro_source="packaged"):
        self.cfg = cfg
        self.store = FeatureStore(db, cfg, read_only=True)
        self.market_source = market_source
        self.macro_source = macro_source

    def close(self) -> None:
        self.store.close()

    def daily(self, start=None, end=None, entities=None, sources=None, features=None, as_of=None) -> pd.DataFrame:
        """Daily features indexed by (date, entity, source); see :meth:`FeatureStore.daily`."""
        return self.store.daily(start, end, entities, sources, features, as_of).set_index(_KEYS)

    def monthly(self, start=None, end=None, entities=None, sources=None, features=None, as_of=None) -> pd.DataFrame:
        """Month-end samples of the daily features known by each month end, indexed like :meth:`daily`."""
        return self.store.monthly(start, end, entities, sources, features, as_of).set_index(_KEYS)

    def panel(self, start, end, frequency: str = "monthly", entities=(MARKET_ENTITY,), sources=None,
              features=None, as_of=None) -> pd.DataFrame:
        """One frame for modelling, indexed by ``date``.

        Columns: sentiment features wide as ``{source}_{feature}`` (one entity) or
        ``{entity}_{source}_{feature}`` (several), market features ``mkt_*``, macro ``macro_*``,
        and availability masks ``avail_{block}`` (1.0 once the block has data at that date,
        else 0.0 — a source that has not started yet is NaN *and* masked, never zero-filled).
        ``start`` after ``end`` and unknown entities or sources raise a usage error.
        """
        if frequency not in ("monthly", "daily"):
            raise UsageError(f"frequency must be 'monthly' or 'daily', got {frequency!r}")
        check_range(start, end)
        entities = [entities] if isinstance(entities, str) else list(entities)
        if frequency == "monthly":
            sent = self.store.monthly(start, end, entities, sources, features, as_of)
            dates = pd.date_range(pd.Timestamp(start) + pd.offsets.MonthEnd(0), pd.Timestamp(end) + pd.offsets.MonthEnd(0), freq="ME")
            decision = month_end_instant(dates, self.cfg.sessions.tz)
        else:
            dates = self.store.sessions.dates(start, end)
            decision = self.store.sessions.cutoffs(dates)
            # Rows are attached by known_at, not by date: a row made late by a late document
            # is replaced by the key's previous row until it became known.
            sent = self.store.daily(None, end, entities, sources, features, as_of)
            sent = self.store.sample(sent, dates, decision) if len(sent) else sent
        out = pd.DataFrame(index=pd.DatetimeIndex(dates, name="date"))
        out = out.join(self._wide_sentiment(sent, entities))
        first_col = "row_date" if "row_date" in sent.columns else "date"
        for src in sorted(sent["source"].unique()) if len(sent) else []:
            first = sent.loc[sent["source"] == src, first_col].min()
            out[f"avail_{src}"] = (out.index >= first).astype(float)
        blocks = {}
        if self.market_source is not None:
            freq = "daily" if frequency == "daily" and str(self.market_source) != "packaged" else "monthly"
            blocks["mkt"] = market_features(freq, self.market_source, self.cfg)
        if self.macro_source is not None:
            blocks["macro"] = (packaged_macro(self.cfg) if str(self.macro_source) == "packaged"
                               else load_fredmd(self.macro_source, self.cfg)[1].drop(columns=["vintage"]))
        for name, frame in blocks.items():
            out = out.join(asof_join(frame, decision, out.index, prefix=f"{name}_"))
            out[f"avail_{name}"] = out.filter(like=f"{name}_").notna().any(axis=1).astype(float)
        return out

    @staticmethod
    def _wide_sentiment(sent: pd.DataFrame, entities: list[str]) -> pd.DataFrame:
        if sent.empty:
            return pd.DataFrame()
        drop = [c for c in ("known_at", "row_date", "event_age") if c in sent.columns]
        long = sent.drop(columns=drop).set_index(_KEYS)
        wide = long.unstack(["entity", "source"])
        if len(entities) == 1:
            wide.columns = [f"{src}_{feat}" for feat, _, src in wide.columns]
        else:
            wide.columns = [f"{ent}_{src}_{feat}" for feat, ent, src in wide.columns]
        return wide.sort_index(axis=1)


def asof_join(frame: pd.DataFrame, decision: pd.DatetimeIndex, dates: pd.DatetimeIndex, prefix: str = "") -> pd.DataFrame:
    """For each decision instant, the latest row of ``frame`` with ``known_at`` at or before it.

    Returns a frame indexed by ``dates`` (one per decision instant), columns prefixed, without
    ``known_at`` (the source row's ``known_at`` is kept as ``{prefix}known_at`` for audits).
    """
    right = frame.dropna(subset=["known_at"]).sort_values("known_at")
    right = right.reset_index(drop=True).rename(columns=lambda c: f"{prefix}{c}")
    left = pd.DataFrame({"_t": pd.DatetimeIndex(decision).tz_convert("UTC"), "date": dates})
    right[f"{prefix}known_at"] = pd.to_datetime(right[f"{prefix}known_at"], utc=True).astype("datetime64[ns, UTC]")
    left["_t"] = left["_t"].astype("datetime64[ns, UTC]")
    merged = pd.merge_asof(left, right, left_on="_t", right_on=f"{prefix}known_at", direction="backward")
    return merged.drop(columns=["_t"]).set_index("date")
