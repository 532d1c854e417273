"""Synthetic panels with a known answer, for tests and for trying the pipeline without data.

``synthetic_panel(signal=True)`` plants a linear relation between features dated D and factor
returns over D+1: factor ``A`` loads on ``market.x1``, factor ``B`` on ``sentiment.s1`` (which,
like real alternative data, only starts halfway through and is masked before), factor ``C`` is
noise. ``signal=False`` gives returns independent of every feature. Regime columns for the
macro rule are included so every baseline can run. ``synthetic_daily_panel`` has the shape of a
daily news study, for timing the harness (bench/timing_fit.py).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from timing.config import KNOWN_FACTORS
from timing.dataset import MASK_SUFFIX


def synthetic_panel(n: int = 360, signal: bool = True, seed: int = 0, start: str = "1990-01-31") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.date_range(start, periods=n, freq="ME")
    x1 = rng.standard_normal(n)
    s1 = rng.standard_normal(n)
    noise = rng.standard_normal((n, 3)) * 0.02
    beta = (0.03, 0.02) if signal else (0.0, 0.0)
    ret = np.empty((n, 3))
    ret[0] = noise[0]
    ret[1:, 0] = beta[0] * x1[:-1] + noise[1:, 0]   # return over D+1 driven by x1 at D
    ret[1:, 1] = beta[1] * s1[:-1] + noise[1:, 1]
    ret[1:, 2] = noise[1:, 2]
    ret[0] = noise[0]
    panel = pd.DataFrame(ret + 0.004, index=dates, columns=["Mkt-RF", "SMB", "HML"])
    panel["market.x1"] = x1
    panel["macro.m1"] = rng.standard_normal(n)
    panel["macro.activity_gap"] = np.sin(np.arange(n) / 9.0)
    panel["macro.activity_chg6"] = np.cos(np.arange(n) / 9.0)
    sent = s1.copy()
    sent[: n // 2] = np.nan  # alternative data starts late
    panel["sentiment.s1"] = sent
    panel["sentiment.s1" + MASK_SUFFIX] = panel["sentiment.s1"].notna().astype(float)
    return panel


def synthetic_daily_panel(n: int = 1800, n_features: int = 185, factors: tuple[str, ...] = KNOWN_FACTORS,
                          seed: int = 0, start: str = "2010-01-04") -> pd.DataFrame:
    """A daily panel shaped like a news study: ``n`` sessions, ``n_features`` features, ``factors``.

    Two thirds of the features are macro series that change once a month (forward-filled, like
    FRED-MD on a daily index), a sixth are daily market series and a sixth daily sentiment series
    that start halfway (masked before). The first market feature carries a weak weekly signal for
    the first factor, so the numbers are not all noise; the panel exists to time the harness.
    """
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range(start, periods=n)
    n_drawn = n_features - 2  # the two activity columns count as features
    n_macro = 2 * n_drawn // 3
    n_sent = n_drawn // 6
    n_market = n_drawn - n_macro - n_sent
    months = dates.to_period("M")
    macro_months = rng.standard_normal((months.nunique(), n_macro)).cumsum(axis=0) * 0.1
    macro = macro_months[pd.factorize(months)[0]]
    market = rng.standard_normal((n, n_market))
    sent = rng.standard_normal((n, n_sent))
    sent[: n // 2] = np.nan
    ret = rng.standard_normal((n, len(factors))) * 0.006 + 0.0002
    signal = pd.Series(market[:, 0]).rolling(5, min_periods=1).mean().to_numpy()
    ret[1:, 0] += 0.001 * signal[:-1]
    panel = pd.DataFrame(ret, index=dates, columns=list(factors))
    blocks = [pd.DataFrame(macro, index=dates).add_prefix("macro.m"),
              pd.DataFrame(market, index=dates).add_prefix("market.x"),
              pd.DataFrame(sent, index=dates).add_prefix("sentiment.s")]
    sentiment_mask = blocks[2].notna().astype(float).add_suffix(MASK_SUFFIX)
    activity = pd.DataFrame({"macro.activity_gap": np.sin(np.arange(n) / 200.0),
                             "macro.activity_chg6": np.cos(np.arange(n) / 200.0)}, index=dates)
    return pd.concat([panel, *blocks, activity, sentiment_mask], axis=1)
