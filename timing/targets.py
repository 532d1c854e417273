"""Targets from any return file: the ``[targets]`` section of a timing config and its reader.

The Fama-French factors of ``data`` stay the default targets (``targets`` absent). With a
``[targets]`` section the run times the ids of a return file instead (``timing.zoo_backtest``):
- ``layout = "long"``: one row per (id, date) with ``id_column``, ``date_column``,
  ``return_column``; ``"wide"``: a ``date_column`` and one column per id.
- ``units``: ``"decimal"`` (0.01 = 1%) or ``"percent"`` (1.0 = 1%).
- ``frequency``: ``"monthly"`` rows are used as they are (dated by their month end); ``"daily"``
  rows are compounded within each calendar month, and a month counts only if it has at least
  ``min_days`` returns.
- ``groups``: an optional map file (CSV) of id -> group (theme), ``group_id_column`` and
  ``group_column``; ids missing from it are their own group. ``keep_groups`` / ``ids`` restrict
  the run to some groups / ids (the CI-sized zoo).
- ``preset = "jkp_usa"``: the Jensen-Kelly-Pedersen US factor zoo under the datasets root
  (``datasets:factor_zoo/...``, 153 factors, 13 themes), read in place, never copied.
A month in which an id has no return (absent row or NaN) is *missing*: the id does not exist yet
(or no more); models mask it in their losses and the books hold none of it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from core.config_files import Strict

PRESETS: dict[str, dict] = {
    "jkp_usa": dict(
        path="datasets:factor_zoo/jkp_usa_factors_monthly_vw_cap_to2018.parquet", layout="long",
        id_column="name", date_column="date", return_column="ret", units="decimal", frequency="monthly",
        groups="datasets:factor_zoo/cluster_labels.csv", group_id_column="characteristic",
        group_column="cluster"),
}


class TargetsConfig(Strict):
    """Where the targets come from (module docstring); fields left unset take the preset's."""

    preset: Literal["jkp_usa"] | None = None
    path: str | None = None
    layout: Literal["long", "wide"] = "long"
    id_column: str = "id"
    date_column: str = "date"
    return_column: str = "return"
    units: Literal["decimal", "percent"] = "decimal"
    frequency: Literal["monthly", "daily"] = "monthly"
    min_days: int = Field(15, ge=1, description="daily files: fewest returns for a month to count")
    groups: str | None = None
    group_id_column: str = "id"
    group_column: str = "group"
    keep_groups: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data):
        if isinstance(data, dict) and data.get("preset"):
            if data["preset"] not in PRESETS:
                raise ValueError(f"unknown targets preset {data['preset']!r}; known: {sorted(PRESETS)}")
            return {**PRESETS[data["preset"]], **data}
        return data

    @model_validator(mode="after")
    def _needs_path(self) -> "TargetsConfig":
        if self.path is None:
            raise ValueError("targets needs a path (or a preset)")
        lower = self.path.lower()
        if not lower.endswith((".csv", ".csv.gz", ".parquet", ".pq")):
            raise ValueError(f"targets.path {self.path!r} must end in .csv, .csv.gz or .parquet")
        return self


def _resolve(path: str) -> str:
    from core.paths import resolve_data_path

    return resolve_data_path(path)


def _read(path: str) -> pd.DataFrame:
    from core.errors import MissingFileError

    where = _resolve(path)
    if not where.startswith(("http://", "https://")) and not Path(where).exists():
        raise MissingFileError(f"targets file {where}: not found")
    return pd.read_parquet(where) if where.lower().endswith((".parquet", ".pq")) else pd.read_csv(where)


def _dates(values: pd.Series, where: str) -> pd.DatetimeIndex:
    from core.errors import UsageError

    if pd.api.types.is_numeric_dtype(values):  # 20200131 or 202001
        text = values.astype("Int64").astype(str)
        fmt = "%Y%m" if text.str.len().eq(6).all() else "%Y%m%d"
        dates = pd.to_datetime(text, format=fmt, errors="coerce")
    else:
        dates = pd.to_datetime(values, errors="coerce")
    if dates.isna().any():
        raise UsageError(f"targets file {where}: {int(dates.isna().sum())} unparseable date(s), first {values[dates.isna()].iloc[0]!r}")
    return pd.DatetimeIndex(dates).tz_localize(None) if getattr(dates.dt, "tz", None) else pd.DatetimeIndex(dates)


def read_targets(cfg: TargetsConfig) -> tuple[pd.DataFrame, pd.Series]:
    """(returns: month-end dates x ids in decimals, NaN where an id has no return; groups: id -> group)."""
    from core.errors import UsageError

    raw = _read(cfg.path)
    where = _resolve(cfg.path)
    need = [cfg.date_column] + ([cfg.id_column, cfg.return_column] if cfg.layout == "long" else [])
    missing = [c for c in need if c not in raw.columns]
    if missing:
        raise UsageError(f"targets file {where}: no column(s) {missing}; it has {list(raw.columns)}")
    dates = _dates(raw[cfg.date_column], where)
    if cfg.layout == "long":
        long = pd.DataFrame({"date": dates, "id": raw[cfg.id_column].astype(str).to_numpy(),
                             "ret": pd.to_numeric(raw[cfg.return_column], errors="coerce").to_numpy()})
        if long.duplicated(["date", "id"]).any():
            raise UsageError(f"targets file {where}: duplicate (id, date) rows")
        wide = long.pivot(index="date", columns="id", values="ret")
    else:
        wide = raw.drop(columns=[cfg.date_column]).apply(pd.to_numeric, errors="coerce").set_axis(dates)
        if wide.index.has_duplicates:
            raise UsageError(f"targets file {where}: duplicate dates")
        wide.columns = wide.columns.astype(str)
    wide = wide.sort_index().astype(float)
    if cfg.units == "percent":
        wide = wide / 100.0
    month = wide.index.to_period("M").to_timestamp("M")
    if cfg.frequency == "daily":
        counts = wide.notna().groupby(month).sum()
        wide = np.log1p(wide).groupby(month).sum(min_count=1).pipe(np.expm1).where(counts >= cfg.min_days)
    else:
        if month.has_duplicates:
            raise UsageError(f"targets file {where}: two rows in one month; set frequency = 'daily'")
        wide = wide.set_axis(month)
    groups = pd.Series(wide.columns, index=wide.columns)
    if cfg.groups is not None:
        gmap = _read(cfg.groups)
        gmap = gmap.set_index(gmap[cfg.group_id_column].astype(str))[cfg.group_column].astype(str)
        groups = pd.Series([gmap.get(i, i) for i in wide.columns], index=wide.columns)
    keep = pd.Series(True, index=wide.columns)
    if cfg.ids:
        unknown = sorted(set(cfg.ids) - set(wide.columns))
        if unknown:
            raise UsageError(f"targets.ids not in {where}: {unknown[:5]}")
        keep &= wide.columns.isin(cfg.ids)
    if cfg.keep_groups:
        unknown = sorted(set(cfg.keep_groups) - set(groups))
        if unknown:
            raise UsageError(f"targets.keep_groups not in the group map: {unknown}")
        keep &= groups.isin(cfg.keep_groups)
    wide = wide.loc[:, keep.to_numpy()].dropna(how="all")
    if wide.shape[1] == 0:
        raise UsageError(f"targets file {where}: no ids left after targets.ids / keep_groups")
    order = sorted(wide.columns, key=lambda i: (groups[i], i))
    return wide[order], groups[order].rename("group")
