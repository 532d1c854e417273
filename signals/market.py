"""Market data: Ken French factor returns, S&P 500 prices and the market features built on them.

Sources of :func:`load_french`:

* ``"packaged"`` — ``linearmodels.datasets.french`` (monthly 1949-01..2017-03; Mkt-RF, SMB, HML,
  Mom, RF; decimals). It is the embedded default that needs no network. There is no packaged
  *daily* French data, so ``load_french("daily", "packaged")`` raises. (``arch.data.frenchdata``
  is not used: its loader mis-parses the YYYYMM index as nanoseconds, see MEASURED.md.)
* a folder holding the library's CSV files (e.g. ``../shared/datasets/fama_french``) as
  ``.CSV``/``.csv`` or as the library's ``*_CSV.zip`` downloads;
* a URL: the library's base ``ftp/`` URL (both zip files are fetched), or the URL of one
  ``.zip``/``.csv`` file. ``file://`` URLs work too, which is how the online path is tested.

Every frame is indexed by the *period end* (``date``: the session date for daily data, the
calendar month-end for monthly data), with **decimal** returns (0.01 = 1%). The library's
percent values are divided by 100 and its missing codes -99.99 / -999 become NaN. The 5-factor
and momentum files are outer-joined on date: momentum starts in 1926, the 5 factors in 1963, so
early rows carry NaN for the 5-factor columns.

Availability (``known_at``): a factor return of session D is treated as known at D's close
(16:00 America/New_York). Ken French publishes with a delay of weeks, but the returns can be
replicated from closing prices, which is how a live user would build them; a month's return is
known at the month-end close. :func:`french_known_at` gives these instants; the feature frames
from :func:`market_features` carry them in a ``known_at`` column.
"""
from __future__ import annotations

import io
import logging
import re
import urllib.request
import zipfile
from datetime import time
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import UsageError
from signals.config import DEFAULT_CONFIG, SignalsConfig

log = logging.getLogger(__name__)

FRENCH_FILES: dict[str, tuple[str, ...]] = {
    "monthly": ("F-F_Research_Data_5_Factors_2x3", "F-F_Momentum_Factor"),
    "daily": ("F-F_Research_Data_5_Factors_2x3_daily", "F-F_Momentum_Factor_daily"),
}
FACTORS: tuple[str, ...] = ("Mkt-RF", "SMB", "HML", "RMW", "CMA", "Mom", "RF")
_DATE_WIDTH = {8: "daily", 6: "monthly", 4: "annual"}
_MISSING_CODES = (-99.99, -999.0)
_DATA_ROW = re.compile(r"^\s*(\d+)\s*,(.*)$")


class FrenchFormatError(UsageError):
    """A Ken French CSV file does not have the library's layout."""


def parse_french_csv(text: str, name: str = "<text>") -> dict[str, pd.DataFrame]:
    """Parse one Ken French library CSV text into its sections.

    Returns ``{"daily"|"monthly": frame, "annual": frame}`` (whichever are present), keyed by the
    width of the date token (YYYYMMDD, YYYYMM, YYYY). Values stay in the file's percent units with
    missing codes turned into NaN. Any deviation from the layout (a data row before a column row,
    a wrong number of values, a non-numeric value, mixed date widths or duplicate dates within a
    section, a column row with no data after it) raises :class:`FrenchFormatError` naming the
    file and line.
    """
    sections: dict[str, pd.DataFrame] = {}
    columns: list[str] | None = None
    col_line = 0
    kind: str | None = None
    dates: list[str] = []
    rows: list[list[float]] = []

    def close(lineno: int) -> None:
        nonlocal columns, kind, dates, rows
        if columns is None:
            return
        if not rows:
            raise FrenchFormatError(f"{name}:{col_line}: column row {columns} has no data rows after it")
        assert kind is not None
        if kind in sections:
            raise FrenchFormatError(f"{name}:{col_line}: a second {kind} section (line {lineno})")
        frame = pd.DataFrame(np.array(rows, dtype=float), columns=columns)
        frame.index = _french_index(dates, kind, name)
        if frame.index.duplicated().any():
            dup = frame.index[frame.index.duplicated()][0]
            raise FrenchFormatError(f"{name}: duplicate date {dup.date()} in the {kind} section")
        for code in _MISSING_CODES:
            frame = frame.mask(np.isclose(frame.to_numpy(), code))
        sections[kind] = frame
        columns, kind, dates, rows = None, None, [], []

    for lineno, line in enumerate(text.splitlines(), start=1):
        if line.startswith(","):
            close(lineno)
            columns = [c.strip() for c in line.split(",")[1:]]
            if not all(columns) or len(set(columns)) != len(columns):
                raise FrenchFormatError(f"{name}:{lineno}: bad column row {line!r} (empty or duplicate names)")
            col_line = lineno
            continue
        m = _DATA_ROW.match(line)
        if m is None:  # header text, blank line, section title or copyright footer ends a section
            close(lineno)
            continue
        if columns is None:
            raise FrenchFormatError(f"{name}:{lineno}: data row {line.strip()!r} before any column row")
        token, rest = m.group(1), m.group(2)
        row_kind = _DATE_WIDTH.get(len(token))
        if row_kind is None:
            raise FrenchFormatError(f"{name}:{lineno}: date {token!r} is not YYYYMMDD, YYYYMM or YYYY")
        if kind is None:
            kind = row_kind
        elif row_kind != kind:
            raise FrenchFormatError(f"{name}:{lineno}: {row_kind} date {token!r} inside a {kind} section")
        cells = rest.split(",")
        if len(cells) != len(columns):
            raise FrenchFormatError(
                f"{name}:{lineno}: {len(cells)} values for {len(columns)} columns {columns}: {line.strip()!r}"
            )
        try:
            rows.append([float(c) for c in cells])
        except ValueError:
            raise FrenchFormatError(f"{name}:{lineno}: non-numeric value in {line.strip()!r}") from None
        dates.append(token)
    close(-1)
    if not sections:
        raise FrenchFormatError(f"{name}: no data section found (expected a column row starting with ',')")
    return sections


def _french_index(tokens: list[str], kind: str, name: str) -> pd.DatetimeIndex:
    fmt = {"daily": "%Y%m%d", "monthly": "%Y%m", "annual": "%Y"}[kind]
    try:
        idx = pd.to_datetime(pd.Index(tokens), format=fmt)
    except ValueError as exc:
        raise FrenchFormatError(f"{name}: invalid {kind} date in the data rows ({exc})") from None
    if kind == "monthly":
        idx = idx + pd.offsets.MonthEnd(0)
    elif kind == "annual":
        idx = idx + pd.offsets.YearEnd(0)
    return pd.DatetimeIndex(idx, name="date")


def _read_bytes(location: str | Path) -> tuple[bytes, str]:
    loc = str(location)
    if re.match(r"^(https?|file)://", loc):
        log.info("fetching %s", loc)
        with urllib.request.urlopen(loc, timeout=60) as resp:  # noqa: S310 (user-given URL)
            return resp.read(), loc
    return Path(loc).read_bytes(), loc


def _french_text(location: str | Path) -> tuple[str, str]:
    """Text of one library file given as ``.csv`` or as the library's ``_CSV.zip``."""
    data, name = _read_bytes(location)
    if data[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = [m for m in zf.namelist() if m.lower().endswith(".csv")]
            if len(members) != 1:
                raise FrenchFormatError(f"{name}: expected one .csv member in the zip, found {zf.namelist()}")
            data = zf.read(members[0])
            name = f"{name}!{members[0]}"
    return data.decode("latin-1"), name


def _main_section(location: str | Path, frequency: str) -> pd.DataFrame:
    text, name = _french_text(location)
    sections = parse_french_csv(text, name)
    if frequency not in sections:
        raise FrenchFormatError(f"{name}: no {frequency} section (found {sorted(sections)})")
    return sections[frequency]


def _locate_in_folder(folder: Path, stem: str) -> Path:
    wanted = {f"{stem}.csv".lower(), f"{stem}_csv.zip".lower()}
    for p in sorted(folder.iterdir()):
        if p.name.lower() in wanted:
            return p
    raise FileNotFoundError(f"{folder}: no {stem}.CSV or {stem}_CSV.zip")


def load_french(frequency: str = "monthly", source: str | Path = "packaged") -> pd.DataFrame:
    """Fama/French 5 factors + momentum, decimal returns, indexed by period-end ``date``.

    ``source``: ``"packaged"`` (monthly only), a folder, a single file, a base URL or a file URL
    (see the module docstring). Columns are the subset of :data:`FACTORS` the source has, in that
    order.
    """
    if frequency not in FRENCH_FILES:
        raise ValueError(f"frequency must be 'monthly' or 'daily', got {frequency!r}")
    src = str(source)
    if src == "packaged":
        return _packaged_french(frequency)
    if re.match(r"^(https?|file)://", src):
        if src.lower().endswith((".zip", ".csv")):
            parts = [_main_section(src, frequency)]
        else:
            base = src if src.endswith("/") else src + "/"
            parts = [_main_section(f"{base}{stem}_CSV.zip", frequency) for stem in FRENCH_FILES[frequency]]
    else:
        path = Path(src)
        if path.is_dir():
            parts = [_main_section(_locate_in_folder(path, stem), frequency) for stem in FRENCH_FILES[frequency]]
        elif path.is_file():
            parts = [_main_section(path, frequency)]
        else:
            raise FileNotFoundError(f"Ken French source {src!r} is neither 'packaged', a URL, a folder nor a file")
    out = pd.concat(parts, axis=1, join="outer", sort=True) / 100.0
    out.columns = ["Mom" if c.upper() in ("MOM", "UMD") else c for c in out.columns]
    if out.columns.duplicated().any():
        raise FrenchFormatError(f"{src}: the files share columns {list(out.columns[out.columns.duplicated()])}")
    known = [c for c in FACTORS if c in out.columns]
    return out[known + [c for c in out.columns if c not in known]]


def _packaged_french(frequency: str) -> pd.DataFrame:
    if frequency != "monthly":
        raise ValueError(
            "no daily Ken French data ships inside a package; pass a folder or URL as source "
            "(e.g. the shared datasets' fama_french folder or the library's ftp URL)"
        )
    from linearmodels.datasets import french

    raw = french.load()
    out = raw.set_index("dates")[["MktRF", "SMB", "HML", "Mom", "RF"]].rename(columns={"MktRF": "Mkt-RF"})
    out.index = pd.DatetimeIndex(pd.to_datetime(out.index) + pd.offsets.MonthEnd(0), name="date")
    return out.astype(float)


def close_instant(dates: pd.DatetimeIndex, at: str, tz: str) -> pd.DatetimeIndex:
    """``at`` (HH:MM) local time on each date, as UTC instants."""
    t = time.fromisoformat(at)
    local = pd.DatetimeIndex(dates).normalize() + pd.Timedelta(hours=t.hour, minutes=t.minute)
    return local.tz_localize(tz).tz_convert("UTC")


def french_known_at(index: pd.DatetimeIndex, cfg: SignalsConfig = DEFAULT_CONFIG) -> pd.DatetimeIndex:
    """When each period's factor return is known: the close on its period-end date (see module doc)."""
    return close_instant(index, cfg.market.close_time, cfg.sessions.tz)


def load_sp500(source: str | Path = "packaged") -> pd.DataFrame:
    """S&P 500 daily closes (``close``; ``open`` too from a Yahoo file) indexed by session ``date``.

    ``"packaged"`` = ``arch.data.sp500`` (1999..2018); a path = Yahoo's ``^GSPC.csv`` layout.
    """
    if str(source) == "packaged":
        from arch.data import sp500

        raw = sp500.load()
        out = raw[["Adj Close"]].rename(columns={"Adj Close": "close"})
    else:
        raw = pd.read_csv(source)
        missing = {"Date", "Close"} - set(raw.columns)
        if missing:
            raise ValueError(f"{source}: S&P 500 file lacks columns {sorted(missing)} (Yahoo layout expected)")
        cols = ["Close", "Open"] if "Open" in raw.columns else ["Close"]
        out = raw.set_index(pd.to_datetime(raw["Date"], format="%Y-%m-%d"))[cols].rename(columns=str.lower)
    out.index = pd.DatetimeIndex(out.index, name="date")
    return out.sort_index().astype(float)


def trailing_returns(returns: pd.DataFrame, windows: dict[str, int]) -> pd.DataFrame:
    """Compounded trailing returns ``prod(1 + r) - 1`` over each window (in rows), NaN until full."""
    logr = np.log1p(returns)
    parts = {
        f"{col}_ret_{label}": np.expm1(logr[col].rolling(n, min_periods=n).sum())
        for label, n in windows.items()
        for col in returns.columns
    }
    return pd.DataFrame(parts, index=returns.index)


def realized_volatility(daily_returns: pd.DataFrame, windows: tuple[int, ...]) -> pd.DataFrame:
    """Annualized (x sqrt 252) rolling standard deviation of daily returns, NaN until full."""
    parts = {
        f"{col}_rv_{w}d": daily_returns[col].rolling(w, min_periods=w).std() * np.sqrt(252.0)
        for w in windows
        for col in daily_returns.columns
    }
    return pd.DataFrame(parts, index=daily_returns.index)


def market_features(
    frequency: str = "monthly", source: str | Path = "packaged", cfg: SignalsConfig = DEFAULT_CONFIG
) -> pd.DataFrame:
    """Trailing factor returns (1/3/12 months) and realized volatilities, with ``known_at``.

    Monthly: trailing returns from the monthly factors; realized volatilities from daily returns
    sampled at each month's last session — daily French factors when the source has them, else
    (``packaged``) the S&P 500 daily returns of ``arch.data.sp500`` (column prefix ``SP500``).
    Daily (needs a folder/URL source): windows of 21 sessions per month. RF is a rate, so it is
    kept as a level rather than compounded.
    """
    mc = cfg.market
    if frequency == "monthly":
        monthly = load_french("monthly", source)
        factors = monthly.drop(columns=["RF"], errors="ignore")
        feats = trailing_returns(factors, {f"{m}m": m for m in mc.trailing_months})
        daily = _daily_returns_for_vol(source)
        rv = realized_volatility(daily, mc.vol_windows)
        rv = rv.groupby(rv.index + pd.offsets.MonthEnd(0)).last()  # value at the month's last session
        feats = feats.join(rv, how="left")
        if "RF" in monthly:
            feats["RF"] = monthly["RF"]
    elif frequency == "daily":
        daily = load_french("daily", source)
        factors = daily.drop(columns=["RF"], errors="ignore")
        feats = trailing_returns(factors, {f"{m}m": 21 * m for m in mc.trailing_months})
        feats = feats.join(realized_volatility(factors, mc.vol_windows))
        if "RF" in daily:
            feats["RF"] = daily["RF"]
    else:
        raise ValueError(f"frequency must be 'monthly' or 'daily', got {frequency!r}")
    feats["known_at"] = french_known_at(feats.index, cfg)
    return feats


def _daily_returns_for_vol(source: str | Path) -> pd.DataFrame:
    if str(source) == "packaged":
        close = load_sp500("packaged")["close"]
        return pd.DataFrame({"SP500": close.pct_change()}).dropna()
    return load_french("daily", source).drop(columns=["RF"], errors="ignore")
