"""Macro data with publication lags: FRED-MD (one file or several vintages), VIX, default spread.

Timing convention (used everywhere in this module):

* The *month-end instant* of month M is 00:00 America/New_York on the first day of M+1.
* A FRED-MD value of reference month M is known from the month-end instant of month M+lag
  (``MarketConfig.fredmd_lag_months``, default 1): the March value can first be used at the
  end of April, i.e. in a monthly model for the April month-end decision, or from the first
  session of May in a daily one.
* Vintages: a vintage file ``YYYY-MM.csv`` (FRED-MD's own naming) is taken as available from the
  month-end instant of its vintage month; a file without a date in its name gets the month after
  its last data row. With **several files**, row M comes from the latest vintage available at
  M's lag instant that contains M; if none is available then, from the first vintage that
  contains M, and ``known_at`` moves to that vintage's availability. Transformations are applied
  inside each vintage, so a growth rate never mixes two vintages, and nothing is revised
  backwards. A series missing (ragged edge) in the vintage chosen for a row stays NaN: filling it
  from a later vintage would need a later ``known_at``.
  With **one file** (e.g. the shared ``current.csv``, revised data of 2019-01) the lag rule
  alone applies: pseudo-real-time, the usual research convention; its values are revisions
  (see the dataset's PROVENANCE.md).

Every frame returned here has a ``known_at`` column (UTC instants).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import UsageError
from signals.config import DEFAULT_CONFIG, SignalsConfig
from signals.market import close_instant, load_sp500

TRANSFORM_CODES = {
    1: "level",
    2: "first difference",
    3: "second difference",
    4: "log",
    5: "first difference of log",
    6: "second difference of log",
    7: "first difference of percent change",
}
_VINTAGE_IN_NAME = re.compile(r"(\d{4})-(\d{2})")


class FredMDFormatError(UsageError):
    """A FRED-MD file does not have the McCracken-Ng layout."""


def month_end_instant(months: pd.DatetimeIndex, tz: str = DEFAULT_CONFIG.sessions.tz) -> pd.DatetimeIndex:
    """00:00 local on the first day after each date's month, as UTC instants."""
    nxt = pd.DatetimeIndex(months).normalize() + pd.offsets.MonthBegin(1)
    return nxt.tz_localize(tz).tz_convert("UTC")


def apply_transform(x: pd.Series, code: int) -> pd.Series:
    """McCracken-Ng transformation ``code`` (1-7) of one level series.

    Log codes (4-6) on non-positive values give NaN rather than an error: a few FRED-MD series
    hit zero in their early history.
    """
    if code not in TRANSFORM_CODES:
        raise FredMDFormatError(f"unknown transformation code {code!r} for {x.name}; expected 1-7")
    if code in (4, 5, 6):
        x = np.log(x.where(x > 0))
    if code in (1, 4):
        return x
    if code in (2, 5):
        return x.diff()
    if code in (3, 6):
        return x.diff().diff()
    return (x / x.shift(1) - 1.0).diff()  # code 7


def read_fredmd_file(path: str | Path) -> tuple[pd.DataFrame, dict[str, int], pd.Timestamp]:
    """One FRED-MD CSV -> (levels indexed by month-end ``date``, transform codes, vintage month-end)."""
    path = Path(path)
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    if raw.empty or raw.columns[0].strip().lower() != "sasdate":
        raise FredMDFormatError(f"{path}: first header cell must be 'sasdate', got {raw.columns[:1].tolist()}")
    first = raw.iloc[0, 0].strip().lower()
    if not first.startswith("transform"):
        raise FredMDFormatError(
            f"{path}: row 2 must be the 'Transform:' row of transformation codes (1-7); found {raw.iloc[0, 0]!r}"
        )
    codes: dict[str, int] = {}
    for col in raw.columns[1:]:
        cell = raw.at[0, col].strip()
        try:
            code = int(float(cell))
        except ValueError:
            raise FredMDFormatError(f"{path}: series {col} has transformation code {cell!r}; expected 1-7") from None
        if code not in TRANSFORM_CODES:
            raise FredMDFormatError(f"{path}: series {col} has transformation code {code}; expected 1-7")
        codes[col] = code
    body = raw.iloc[1:]
    body = body[body.iloc[:, 0].str.strip() != ""]  # FRED-MD files sometimes end with empty rows
    try:
        months = pd.to_datetime(body.iloc[:, 0].str.strip(), format="%m/%d/%Y")
    except ValueError as exc:
        raise FredMDFormatError(f"{path}: unparseable sasdate ({exc}); expected M/D/YYYY") from None
    values = body.iloc[:, 1:].replace("", np.nan).apply(pd.to_numeric, errors="coerce")
    bad = values.isna() & body.iloc[:, 1:].ne("")
    if bad.any().any():
        r, c = np.argwhere(bad.to_numpy())[0]
        raise FredMDFormatError(f"{path}: non-numeric value {body.iloc[r, c + 1]!r} for {values.columns[c]} on {body.iloc[r, 0]}")
    levels = values.set_axis(pd.DatetimeIndex(months + pd.offsets.MonthEnd(0), name="date"))
    if levels.index.duplicated().any():
        raise FredMDFormatError(f"{path}: duplicate month {levels.index[levels.index.duplicated()][0].date()}")
    m = _VINTAGE_IN_NAME.search(path.stem)
    if m:
        vintage = pd.Timestamp(int(m.group(1)), int(m.group(2)), 1) + pd.offsets.MonthEnd(0)
    else:
        vintage = levels.index.max() + pd.offsets.MonthEnd(1)
    return levels.sort_index(), codes, vintage


def load_fredmd(
    paths: str | Path | list[str | Path], cfg: SignalsConfig = DEFAULT_CONFIG
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """FRED-MD ``(levels, transformed)``, indexed by reference month-end ``date``.

    Both frames carry ``known_at`` and ``vintage`` columns; see the module docstring for the
    rule. ``paths``: one file, a folder of vintage files (``*.csv`` except ``dictionary.csv``),
    or a list of files.
    """
    files = _fredmd_files(paths)
    lag = cfg.market.fredmd_lag_months
    vintages = []
    for f in files:
        levels, codes, vintage = read_fredmd_file(f)
        transformed = pd.DataFrame({c: apply_transform(levels[c], codes[c]) for c in levels.columns})
        vintages.append((vintage, levels, transformed))
    vintages.sort(key=lambda v: v[0])
    months = pd.DatetimeIndex(sorted(set().union(*(v[1].index for v in vintages))), name="date")
    lag_instant = month_end_instant(months + pd.offsets.MonthEnd(lag), cfg.sessions.tz)
    if len(vintages) == 1:
        chosen = pd.Series(0, index=months)
        known_at = pd.Series(lag_instant, index=months)
    else:
        avail = month_end_instant(pd.DatetimeIndex([v[0] for v in vintages]), cfg.sessions.tz)
        chosen_list, known_list = [], []
        for month, instant in zip(months, lag_instant):
            holders = [i for i, v in enumerate(vintages) if month in v[1].index]
            ready = [i for i in holders if avail[i] <= instant]
            i = ready[-1] if ready else holders[0]
            chosen_list.append(i)
            known_list.append(max(instant, avail[i]))
        chosen = pd.Series(chosen_list, index=months)
        known_at = pd.Series(pd.DatetimeIndex(known_list), index=months)
    out = []
    for k in (1, 2):  # 1 = levels, 2 = transformed
        parts = [vintages[i][k].loc[chosen.index[chosen == i]] for i in sorted(chosen.unique())]
        frame = pd.concat(parts).sort_index()
        frame["known_at"] = known_at
        frame["vintage"] = [vintages[i][0] for i in chosen]
        out.append(frame)
    return out[0], out[1]


def _fredmd_files(paths: str | Path | list[str | Path]) -> list[Path]:
    if isinstance(paths, (str, Path)):
        p = Path(paths)
        if p.is_dir():
            files = sorted(f for f in p.glob("*.csv") if f.name.lower() != "dictionary.csv")
            if not files:
                raise FileNotFoundError(f"{p}: no FRED-MD .csv files")
            return files
        return [p]
    files = [Path(p) for p in paths]
    if not files:
        raise ValueError("load_fredmd: no paths given")
    return files


def load_vix(source: str | Path = "packaged", cfg: SignalsConfig = DEFAULT_CONFIG) -> pd.DataFrame:
    """VIX daily close (``vix``) indexed by session ``date``, known at 16:15 New York that day.

    ``"packaged"`` = ``arch.data.vix`` (2014-01..2019-01); a path = CBOE's ``VIX_History.csv``.
    """
    if str(source) == "packaged":
        from arch.data import vix

        out = vix.load()[["vix"]]
    else:
        raw = pd.read_csv(source)
        if not {"DATE", "CLOSE"} <= set(raw.columns):
            raise ValueError(f"{source}: VIX file needs DATE and CLOSE columns (CBOE layout), got {list(raw.columns)}")
        out = pd.DataFrame({"vix": raw["CLOSE"].astype(float).to_numpy()},
                           index=pd.to_datetime(raw["DATE"], format="%m/%d/%Y"))
    out.index = pd.DatetimeIndex(out.index, name="date")
    out = out.sort_index().astype(float)
    out["known_at"] = close_instant(out.index, cfg.market.vix_close_time, cfg.sessions.tz)
    return out


def load_default_spread(cfg: SignalsConfig = DEFAULT_CONFIG) -> pd.DataFrame:
    """Moody's BAA - AAA yield spread (percentage points) from ``arch.data.default``, monthly.

    The series are monthly averages of daily yields, so month M is known at its month-end instant.
    """
    from arch.data import default

    raw = default.load()
    out = pd.DataFrame({"default_spread": (raw["BAA"] - raw["AAA"]).astype(float)})
    out.index = pd.DatetimeIndex(pd.to_datetime(out.index) + pd.offsets.MonthEnd(0), name="date")
    out["known_at"] = month_end_instant(out.index, cfg.sessions.tz)
    return out


def packaged_macro(cfg: SignalsConfig = DEFAULT_CONFIG) -> pd.DataFrame:
    """Monthly macro/market state from ``arch.data``, *aligned by availability*.

    Row M holds what is known at M's month-end instant (``known_at``): core CPI inflation over 12
    months ending M-1 (CPI for a month is released mid next month, so a one-month lag),
    the BAA-AAA spread of M, the VIX close of M's last session (2014..2018 only in arch.data),
    and the S&P 500 return over M (1999..2018).
    """
    from arch.data import core_cpi

    cpi = core_cpi.load()["CPILFESL"].astype(float)
    cpi.index = pd.DatetimeIndex(pd.to_datetime(cpi.index) + pd.offsets.MonthEnd(0))
    infl = np.log(cpi).diff(12)
    infl.index = infl.index + pd.offsets.MonthEnd(1)  # inflation through M-1 is known at the end of M
    spread = load_default_spread(cfg)["default_spread"]
    vix = load_vix("packaged", cfg)["vix"]
    vix_m = vix.groupby(vix.index + pd.offsets.MonthEnd(0)).last()
    spx = load_sp500("packaged")["close"]
    spx_m = spx.groupby(spx.index + pd.offsets.MonthEnd(0)).last()
    out = pd.DataFrame(
        {
            "core_cpi_infl_12m": infl,
            "default_spread": spread,
            "vix": vix_m,
            "sp500_ret_1m": spx_m.pct_change(),
        }
    ).sort_index()
    out.index.name = "date"
    out["known_at"] = month_end_instant(out.index, cfg.sessions.tz)
    return out
