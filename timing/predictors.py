"""Predictors with published evidence, computed point in time from the panel itself.

- Factor momentum (Ehsani & Linnainmaa 2022; Gupta & Kelly 2019): each factor's own trailing
  1, 3 and 12-month compounded return, ``market.<f>_ret_<m>m``. The market loaders already
  provide them for the packaged and provider panels; they are added here only where missing.
- Factor volatility (Moreira & Muir 2017): each factor's trailing realized variance, the mean
  of squared returns over the last ``m`` months of panel rows, annualized,
  ``market.<f>_rvar_<m>m``. Windows with fewer than three rows (one month of monthly data) are
  skipped: one squared return is not a variance estimate.
- Term and default spreads: ``macro.term_spread`` = 10-year minus 3-month Treasury yield and
  ``macro.default_spread`` = BAA minus AAA yield, from FRED-MD's spreads over fed funds
  (``T10YFFM - TB3SMFFM``, ``BAAFFM - AAAFFM``). The packaged history has the default spread
  (arch.data) but no long yield, so the packaged panel has no term spread; point
  ``data.macro_source`` at FRED-MD to get one. Inflation comes from the macro loaders
  (``macro.core_cpi_infl_12m``, or FRED-MD's ``CPIAUCSL``).

A factor return in the row dated D is realised over the period ending at D and known at D's
close, so every value here uses rows up to D only (trailing windows, never centred ones).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from timing.config import PERIODS_PER_YEAR, horizon_periods
from timing.dataset import MASK_SUFFIX

MOMENTUM_MONTHS = (1, 3, 12)


def rows_per_month(frequency: str) -> int:
    return horizon_periods(frequency, "monthly")


def realized_variance(returns: pd.DataFrame, rows: int, periods_per_year: int) -> pd.DataFrame:
    """Annualized mean of squared returns over the trailing ``rows`` rows (NaN until full)."""
    return (returns.astype(float) ** 2).rolling(rows, min_periods=rows).mean() * periods_per_year


def factor_predictors(returns: pd.DataFrame, frequency: str, variance_months: tuple[int, ...],
                      existing: pd.Index | None = None) -> pd.DataFrame:
    """Momentum (where not in ``existing``) and realized variance of each factor column."""
    from signals.market import trailing_returns

    per_month = rows_per_month(frequency)
    existing = pd.Index([]) if existing is None else existing
    momentum = trailing_returns(returns, {f"{m}m": m * per_month for m in MOMENTUM_MONTHS}).add_prefix("market.")
    parts = [momentum[[c for c in momentum.columns if c not in existing]]]
    for m in variance_months:
        rows = m * per_month
        if rows >= 3:
            rv = realized_variance(returns, rows, PERIODS_PER_YEAR[frequency])
            parts.append(rv.rename(columns=lambda f, m=m: f"market.{f}_rvar_{m}m"))
    return pd.concat(parts, axis=1)


def _spread(panel: pd.DataFrame, name: str, long: str, short: str) -> dict[str, pd.Series]:
    """``macro.<name> = macro.<long> - macro.<short>`` where both exist and the panel lacks it."""
    cols = {f"macro.{long}", f"macro.{short}"}
    if f"macro.{name}" in panel.columns or not cols <= set(panel.columns):
        return {}
    return {f"macro.{name}": panel[f"macro.{long}"] - panel[f"macro.{short}"]}


def add_predictors(panel: pd.DataFrame, factors: list[str], frequency: str,
                   variance_months: tuple[int, ...]) -> pd.DataFrame:
    """The panel with factor momentum, factor variance and the term spread added (with masks)."""
    new = factor_predictors(panel[factors], frequency, variance_months, panel.columns)
    spreads = _spread(panel, "term_spread", "T10YFFM", "TB3SMFFM") | _spread(panel, "default_spread", "BAAFFM", "AAAFFM")
    for name, values in spreads.items():
        new[name] = values
    masks = new.notna().astype(np.float32).add_suffix(MASK_SUFFIX)
    return pd.concat([panel, new, masks], axis=1)
