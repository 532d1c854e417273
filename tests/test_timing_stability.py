"""Forecasts stay on the training window's scale (issue 24): robust inputs fitted on training rows
only, shrinkage and the dispersion guard, unstable models flagged, weekly books on daily panels."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.base import BaseEstimator, RegressorMixin

from timing.backtest import make_spec, network_factory, run_backtest
from timing.baselines import build_baselines
from timing.config import PortfolioConfig, TimingConfig, load_config
from timing.dataset import MASK_SUFFIX, FeatureScaler, forward_returns
from timing.forecaster import WindowForecaster
from timing.metrics import forecast_table
from timing.portfolio import backtest
from timing.report import HEADLINE_COLUMNS, r2_cell, unstable_models, verdicts
from timing.synthetic import synthetic_daily_panel, synthetic_panel
from timing.walkforward import make_folds, run_walkforward

FACTORS = ("Mkt-RF", "SMB", "HML")
SMALL_NET = {"epochs": 10, "seeds": [0], "grid": {"weight_decay": [1e-3]}, "hidden": 8}
STRESS = Path(__file__).resolve().parents[1] / "timing" / "configs" / "stress_daily.toml"


def _cfg(**stability) -> TimingConfig:
    return TimingConfig(factors=FACTORS, baselines=("historical_mean", "ridge"), network=SMALL_NET,
                        stability=stability or {})


def _shifted(panel: pd.DataFrame, column: str, start: int, sds: float) -> pd.DataFrame:
    """``panel`` with ``column`` moved ``sds`` training standard deviations past its training maximum from row ``start``."""
    out = panel.copy()
    train = panel[column].iloc[:start]
    out.iloc[start:, out.columns.get_loc(column)] = train.max() + sds * train.std()
    return out


def _fit_and_forecast(factory, panel: pd.DataFrame, cut: int):
    model = factory().fit(panel.iloc[:cut])
    dates = panel.index[cut + 5:-1]  # the last row has no realised target
    return model, model.predict(panel.drop(columns=list(FACTORS)), dates)


@pytest.mark.parametrize("which", ["ridge", "network"])
def test_a_regime_shift_keeps_forecasts_on_the_training_scale(which):
    """One input 20 sd outside its training range in every test row: every forecast stays within
    the guard's distance of the training mean (and inside the training targets' range), and the
    OOS R^2 against the historical mean does not fall below -0.1."""
    panel = synthetic_panel(n=360, seed=3)
    cut = 240
    cfg = _cfg()
    spec = make_spec(cfg, panel, FACTORS)
    factory = network_factory(cfg, spec) if which == "network" else build_baselines(("ridge",), spec, None, 0)[0]
    shifted = _shifted(panel, "macro.m1", cut, 20.0)
    model, pred = _fit_and_forecast(factory, shifted, cut)
    dev = np.abs(pred.to_numpy() - model.center_)
    assert (dev <= model.limit_ + 1e-12).all()
    assert ((pred.to_numpy() >= model.bounds_[0]) & (pred.to_numpy() <= model.bounds_[1])).all()
    realised = forward_returns(panel, FACTORS, 1).loc[pred.index]
    bench = pd.DataFrame(np.tile(model.center_, (len(pred), 1)), index=pred.index, columns=list(FACTORS))
    assert forecast_table(realised, pred, bench, 1)["oos_r2"].min() >= -0.1


def test_without_scaling_clip_and_guard_the_same_shift_breaks_the_forecast():
    """The test above has teeth: unclipped standard scaling and no guard let the shift through."""
    panel = _shifted(synthetic_panel(n=360, seed=3), "macro.m1", 240, 20.0)
    spec = replace(make_spec(_cfg(scaling="standard", guard_k=float("inf"), linear_shrinkage=()), panel, FACTORS),
                   clip=np.inf)
    model, pred = _fit_and_forecast(build_baselines(("ridge",), spec, None, 0)[0], panel, 240)
    fitted_sd = np.std([model.estimator.predict(x[None, -1]) for x in model.samples(
        panel.drop(columns=list(FACTORS)), panel.index[10:240]).X], axis=0).ravel()
    assert (np.abs(pred.to_numpy() - model.center_).max(axis=0) > 3 * fitted_sd).any()


class _Huge(RegressorMixin, BaseEstimator):
    """Forecasts far beyond any realised return: every one ends clipped at the training bound."""

    def fit(self, X, y):
        self.k_ = y.shape[1]
        return self

    def predict(self, X):
        return np.full((len(X), self.k_), 10.0)


def test_a_model_whose_forecasts_are_all_clipped_is_reported_unstable():
    panel = synthetic_panel(n=300, seed=1)
    spec = make_spec(_cfg(guard_k=float("inf"), linear_shrinkage=()), panel, FACTORS)
    model, pred = _fit_and_forecast(lambda: WindowForecaster("exploding", _Huge(), spec, tabular=True), panel, 200)
    np.testing.assert_allclose(pred.to_numpy(), np.tile(model.bounds_[1], (len(pred), 1)))  # all clipped
    realised = forward_returns(panel, FACTORS, 1).loc[pred.index]
    bench = pd.DataFrame(np.tile(model.center_, (len(pred), 1)), index=pred.index, columns=list(FACTORS))
    fm = (forecast_table(realised, pred, bench, 1).assign(model="exploding", part="all")
          .rename_axis("factor").reset_index())
    fm = pd.concat([fm, fm.assign(model="network", oos_r2=0.01)])
    assert list(unstable_models(fm)) == ["exploding"]
    cell = r2_cell(float(fm.oos_r2.iloc[0]))
    assert cell.startswith('<b style="color:red">unstable</b>') and r2_cell(0.01) == "0.0100"
    pm = pd.DataFrame([{"part": "all", "basis": b, "strategy": "network", **{c: 0.1 for c in HEADLINE_COLUMNS[1:]}}
                       for b in ("net", "gross")])
    flagged = verdicts(fm, pm, pd.DataFrame(columns=["part", "basis", "strategy", "versus", "p_value"])).targets[-1]
    assert flagged.verdict == "unstable" and "exploding" in flagged.claim and "network" not in flagged.claim


def test_a_weekly_book_on_a_daily_panel_trades_on_its_horizon_schedule():
    panel = synthetic_daily_panel(n=400, n_features=8, factors=FACTORS)
    rng = np.random.default_rng(0)
    noisy = pd.DataFrame(rng.standard_normal((300, 3)) * 0.01, index=panel.index[100:], columns=list(FACTORS))
    cfg = PortfolioConfig(cov_window=60, turnover_penalty=0.1)
    weekly = backtest(noisy, panel[list(FACTORS)], cfg, horizon=5, periods_per_year=252, from_forecast=True)
    daily = backtest(noisy, panel[list(FACTORS)], cfg, horizon=1, periods_per_year=252, from_forecast=True)
    rows = panel.index.get_indexer(weekly.weights.index)
    assert (np.diff(rows) == 5).all()  # weights move only on every fifth session
    per_year = weekly.turnover.mean() * 252 / 5
    # at most 252 / 5 trades a year, each at most twice the gross exposure cap
    assert per_year <= 252 / 5 * 2 * len(FACTORS) * cfg.max_weight
    assert per_year < daily.turnover.mean() * 252  # the same forecasts traded daily turn over more


def test_scaler_and_guard_are_fitted_on_training_rows_only():
    """Point in time: garbage in the test rows changes no training statistic of the first fold."""
    panel = synthetic_panel(n=300)
    cfg = _cfg()
    spec = make_spec(cfg, panel, FACTORS)
    folds = make_folds(panel.index, cfg.walkforward.model_copy(update={"min_train": 150, "refit_every": 200}), 1, 1)
    poisoned = panel.copy()
    t0 = folds[0].test_rows[0]
    poisoned.iloc[t0:, 3:] = poisoned.iloc[t0:, 3:] * 1e3 + 50.0
    factory = build_baselines(("ridge",), spec, None, 0)[0]
    clean, dirty = (run_walkforward(p, factory, folds[:1], FACTORS, 1, keep_models=True, progress=False).models[0]
                    for p in (panel, poisoned))
    for attr in ("center", "scale", "live"):
        np.testing.assert_array_equal(getattr(clean.scaler_, attr), getattr(dirty.scaler_, attr))
    for attr in ("center_", "limit_", "shrink_weight_"):
        np.testing.assert_array_equal(getattr(clean, attr), getattr(dirty, attr))


def test_robust_scaling_keeps_the_calm_unit_and_dead_features_contribute_nothing():
    rng = np.random.default_rng(0)
    calm = rng.standard_normal((200, 3))
    calm[-10:, 0] *= 40  # a crisis in the last training rows of feature 0
    calm[:, 1] = 7.0  # constant in training
    mask = np.ones_like(calm)
    mask[:, 2] = 0  # never observed in training
    robust, standard = (FeatureScaler.fit(calm, mask, m) for m in ("robust", "standard"))
    assert 0.8 < robust.scale[0] < 1.3 < 5 < standard.scale[0]  # the crisis does not set the unit
    assert list(robust.live) == [True, False, False]
    later = np.array([[100.0, 9.0, 3.0]])
    z = robust.transform(later, np.ones_like(later), clip=5.0)
    assert z.tolist() == [[5.0, 0.0, 0.0]] and robust.live_mask(np.ones_like(later)).tolist() == [[1.0, 0.0, 0.0]]


def test_dead_inputs_leave_the_forecast_unchanged():
    panel = synthetic_panel(n=300)
    panel["macro.late"] = np.where(np.arange(300) < 250, np.nan, 3.0)
    panel["macro.late" + MASK_SUFFIX] = panel["macro.late"].notna().astype(float)
    spec = make_spec(_cfg(), panel, FACTORS)
    factory = build_baselines(("ridge",), spec, None, 0)[0]
    model = factory().fit(panel.iloc[:240])
    features = panel.drop(columns=list(FACTORS))
    moved = features.assign(**{"macro.late": features["macro.late"] * 100})
    dates = panel.index[255:290]
    pd.testing.assert_frame_equal(model.predict(features, dates), model.predict(moved, dates))
    absent = features.assign(**{"macro.late" + MASK_SUFFIX: 0.0, "macro.late": np.nan})
    pd.testing.assert_frame_equal(model.predict(features, dates), model.predict(absent, dates))


def test_the_scaling_method_is_a_typed_option():
    assert TimingConfig(stability={"scaling": "standard"}).stability.scaling == "standard"
    with pytest.raises(ValidationError):
        TimingConfig(stability={"scaling": "minmax"})
    with pytest.raises(ValidationError):
        TimingConfig(stability={"linear_shrinkage": [1.5]})
    assert TimingConfig(stability={"guard_k": "inf"}).stability.guard is None  # TOML inf: no guard


@pytest.mark.slow
def test_stress_config_in_miniature(shared_datasets, tmp_path):
    """The stress config (shared Fama-French daily, FRED-MD, VIX; no text) end to end on five
    months of 2008-2009, a small network and three baselines; the summary records turnover and
    how often the guard fired."""
    from timing.data import load_panel

    cfg = load_config(STRESS, [
        "data.start=2008-06-02", "data.end=2009-03-31", "walkforward.min_train=80", "walkforward.refit_every=40",
        "walkforward.validation_end=2008-12-31", "network.epochs=5", "network.seeds=[0]",
        "network.grid={weight_decay=[1e-3]}", "baselines=[\"historical_mean\",\"ridge\",\"equal_weight\"]",
        f"output_dir={tmp_path}"])
    assert cfg.data.source == "files" and cfg.horizon == "weekly" and cfg.data.frequency == "daily"
    panel = load_panel(cfg.data)
    assert "extra.vix.CLOSE" in panel.columns and not any(c.startswith(("sentiment.", "text.")) for c in panel.columns)
    result = run_backtest(cfg, panel, progress=False)
    assert set(result.summary["guard"]) == {"network", "ridge"}
    strategies = result.summary["strategies"]["all"]
    assert {"network", "ridge", "equal_weight"} <= set(strategies)
    assert strategies["network"]["turnover_annual"] <= 252 / 5 * 2 * 6  # weekly schedule, capped weights
    assert np.isfinite(result.forecast_metrics.oos_r2).all()


def test_stress_config_runs_the_study_design_on_market_and_macro_data():
    stress = load_config(STRESS)
    study = load_config(STRESS.parent / "study_timing.toml")
    assert stress.network == study.network and stress.portfolio == study.portfolio
    assert (stress.horizon, stress.data.frequency, stress.factors) == ("weekly", "daily", study.factors)
    assert stress.data.source == "files" and stress.data.text_path is None  # no feature store, no text
    assert (stress.data.start, stress.data.end, stress.walkforward.validation_end) == ("2006-11-01", "2013-11-29",
                                                                                         "2009-12-31")
    assert [e.known_lag_days for e in stress.data.extra_predictors] == [1]  # the VIX close is printed after 16:00


def test_a_model_saved_before_the_stability_keys_still_loads(tmp_path):
    """Daily operation reloads its saved model: an artifact written before issue 24 predicts as fitted."""
    import json

    from timing.artifact import load_forecaster, save_forecaster
    from timing.backtest import make_timer

    panel = synthetic_panel(n=200)
    cfg = _cfg(guard_k=float("inf"))
    spec = replace(make_spec(cfg, panel, FACTORS), shrinkage=())
    model = WindowForecaster("network", make_timer(cfg), spec, tabular=False).fit(panel.iloc[:150])
    save_forecaster(model, tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "meta.json").read_text())
    meta["scaler_mean"], meta["scaler_std"] = meta.pop("scaler_center"), meta.pop("scaler_scale")
    for key in ("scaler_live", "guard_center", "linear_shrink_weight", "guard_limit"):
        meta.pop(key)
    for key in ("clip", "scaling", "guard_k"):
        meta["spec"].pop(key)
    (tmp_path / "m" / "meta.json").write_text(json.dumps(meta))
    feats, dates = panel.drop(columns=list(FACTORS)), panel.index[160:170]
    # equal up to rounding: the old artifact shrinks around 0 with weight 1, the new one around the mean
    np.testing.assert_allclose(load_forecaster(tmp_path / "m").predict(feats, dates), model.predict(feats, dates),
                               rtol=1e-6, atol=1e-8)
