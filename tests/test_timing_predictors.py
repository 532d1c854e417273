"""Factor momentum and volatility predictors are point in time; the files panel reads user files."""
import numpy as np
import pandas as pd
import pytest

from timing.config import DataConfig
from timing.dataset import MASK_SUFFIX
from timing.predictors import add_predictors, factor_predictors, realized_variance
from timing.synthetic import synthetic_panel

FACTORS = ["Mkt-RF", "SMB", "HML"]


@pytest.mark.parametrize("frequency,months", [("monthly", (1, 6, 12)), ("daily", (1, 6))])
def test_changing_returns_after_t_changes_nothing_before_t(frequency, months):
    panel = synthetic_panel(n=400, seed=2)
    if frequency == "daily":
        panel.index = pd.bdate_range("2010-01-01", periods=400)
    clean = factor_predictors(panel[FACTORS], frequency, months)
    t = 250
    poisoned = panel[FACTORS].copy()
    poisoned.iloc[t:] = 9.0
    dirty = factor_predictors(poisoned, frequency, months)
    pd.testing.assert_frame_equal(clean.iloc[:t], dirty.iloc[:t])
    assert not np.allclose(clean.iloc[t].to_numpy(), dirty.iloc[t].to_numpy())  # row t knows its own return
    assert any(c.endswith("_rvar_6m") for c in clean) and any(c.endswith("_ret_12m") for c in clean)


def test_momentum_and_variance_by_hand():
    panel = synthetic_panel(n=30)
    out = factor_predictors(panel[FACTORS], "monthly", (1, 6))
    r = panel["SMB"]
    assert out["market.SMB_ret_3m"].iloc[10] == pytest.approx((1 + r.iloc[8:11]).prod() - 1)
    assert out["market.SMB_rvar_6m"].iloc[10] == pytest.approx((r.iloc[5:11] ** 2).mean() * 12)
    assert "market.SMB_rvar_1m" not in out  # one monthly return is not a variance
    assert out["market.SMB_rvar_6m"].iloc[:5].isna().all()
    np.testing.assert_allclose(realized_variance(panel[["SMB"]], 6, 12)["SMB"], out["market.SMB_rvar_6m"])


def test_add_predictors_keeps_existing_momentum_and_adds_masks():
    panel = synthetic_panel(n=60)
    panel["market.SMB_ret_1m"] = 42.0  # a loader already supplied it: left alone
    out = add_predictors(panel, FACTORS, "monthly", (6,))
    assert (out["market.SMB_ret_1m"] == 42.0).all()
    assert out["market.HML_rvar_6m" + MASK_SUFFIX].iloc[:5].eq(0).all()
    assert out["market.HML_rvar_6m" + MASK_SUFFIX].iloc[5:].eq(1).all()


def test_term_spread_from_fredmd_columns():
    panel = synthetic_panel(n=20)
    panel["macro.T10YFFM"], panel["macro.TB3SMFFM"] = 2.0, 0.5
    out = add_predictors(panel, FACTORS, "monthly", (6,))
    assert (out["macro.term_spread"] == 1.5).all()


@pytest.mark.slow
def test_files_panel_reads_user_french_and_fredmd_files(shared_datasets):
    from timing.data import load_panel

    root = shared_datasets
    cfg = DataConfig(source="files", market_source=str(root / "fama_french"),
                     macro_source=str(root / "fred_md" / "current.csv"), start="1990-01-31", end="2018-12-31",
                     macro_columns=("CPIAUCSL", "UNRATE"))
    panel = load_panel(cfg)
    assert {"RMW", "CMA", "macro.term_spread", "macro.CPIAUCSL", "market.RMW_rvar_6m"} <= set(panel.columns)
    assert "macro.INDPRO" not in panel.columns  # not named in macro_columns
    assert panel.index[-1] == pd.Timestamp("2018-12-31")
