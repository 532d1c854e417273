"""Synthetic panels with a known answer, for tests and for trying the pipeline without data.

``synthetic_panel(signal=True)`` plants a linear relation between features dated D and factor
returns over D+1: factor ``A`` loads on ``market.x1``, factor ``B`` on ``sentiment.s1`` (which,
like real alternative data, only starts halfway through and is masked before), factor ``C`` is
noise. ``signal=False`` gives returns independent of every feature. Regime columns for the
macro rule are included so every baseline can run.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

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
