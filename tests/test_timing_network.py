"""The network recovers a planted relation, finds nothing in noise, and is deterministic."""
import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge, RidgeCV

from timing.artifact import load_forecaster, save_forecaster
from timing.baselines import HistoricalMean
from timing.config import WalkForwardConfig
from timing.dataset import PanelSpec, feature_columns, forward_returns, training_samples
from timing.explain import integrated_gradients
from timing.forecaster import WindowForecaster, choose_shrinkage
from timing.metrics import oos_r2
from timing.network import RIDGE_ALPHAS, MultiTaskTimer, ridge_loo_predictions
from timing.registry import baseline_factory
from timing.synthetic import synthetic_panel
from timing.walkforward import make_folds, run_walkforward

FACTORS = ("Mkt-RF", "SMB", "HML")
SMALL_SHRINK = (0.0, 0.5, 1.0)
SMALL = dict(hidden=8, epochs=80, patience=10, lr=1e-2, seeds=(0,), grid=None, shrinkage=SMALL_SHRINK)


def _oos(panel, timer_kwargs, skips=(0,), lookback=2):
    spec = PanelSpec(tuple(feature_columns(panel)), FACTORS, lookback, 1)
    folds = make_folds(panel.index, WalkForwardConfig(refit_every=60, min_train=150), lookback, 1)
    net = run_walkforward(panel, lambda: WindowForecaster("network", MultiTaskTimer(**timer_kwargs), spec, False),
                          folds, FACTORS, lookback, progress=False).predictions
    bench = run_walkforward(panel, lambda: HistoricalMean(spec), folds, FACTORS, lookback, progress=False).predictions
    y = forward_returns(panel, FACTORS, 1).loc[net.index]
    return [{f: oos_r2(y[f].iloc[k:], net[f].iloc[k:], bench[f].iloc[k:]) for f in FACTORS} for k in skips]


def test_planted_relation_is_recovered():
    r2, late = _oos(synthetic_panel(n=400, signal=True), SMALL, skips=(0, 100))
    assert r2["Mkt-RF"] > 0.3  # true R^2 ~ 0.69
    assert r2["SMB"] > 0.05  # signal in a sentiment feature that only starts at row 200
    assert r2["HML"] < 0.05  # noise factor
    # once the sentiment feature has a long enough history, its factor is predicted too
    assert late["SMB"] > 0.15  # true R^2 ~ 0.5


def test_pure_noise_gives_no_oos_r2():
    r2, = _oos(synthetic_panel(n=400, signal=False, seed=3), SMALL)
    assert max(r2.values()) < 0.02
    assert np.mean(list(r2.values())) <= 0.005


def _samples(n=200):
    panel = synthetic_panel(n=n)
    spec = PanelSpec(tuple(feature_columns(panel)), FACTORS, 3, 1)
    return training_samples(panel, spec)[0]


def test_same_seed_same_forecasts_and_other_seed_differs():
    s = _samples()
    a = MultiTaskTimer(**dict(SMALL, epochs=20)).fit(s.X, s.y).predict(s.X)
    b = MultiTaskTimer(**dict(SMALL, epochs=20)).fit(s.X, s.y).predict(s.X)
    c = MultiTaskTimer(**dict(SMALL, epochs=20, seeds=(7,))).fit(s.X, s.y).predict(s.X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.parametrize("encoder", ["mlp", "lstm", "transformer"])
@pytest.mark.parametrize("weighting", ["uncertainty", "fixed"])
def test_encoders_and_task_weightings_fit(encoder, weighting):
    s = _samples(120)
    timer = MultiTaskTimer(encoder=encoder, task_weighting=weighting, hidden=8, epochs=3, seeds=(0, 1),
                           grid={"weight_decay": [1e-3, 1e-2]}).fit(s.X, s.y)
    assert timer.predict(s.X).shape == (len(s.X), 3)
    assert (timer.predict_vol(s.X) > 0).all()
    assert len(timer.models_) == 2 and len(timer.grid_scores_) == 2


def test_untrained_network_forecasts_the_training_mean():
    s = _samples()
    timer = MultiTaskTimer(**dict(SMALL, lr=1e-12, epochs=1, linear_core=False, shrinkage=(1.0,))).fit(s.X, s.y)
    fit_part = slice(0, len(s.X) - int(np.ceil(0.2 * len(s.X))) - 1)
    np.testing.assert_allclose(timer.predict(s.X[:3]), np.tile(s.y[fit_part].mean(axis=0), (3, 1)), atol=1e-6)


def test_untrained_network_with_a_linear_core_is_ridge():
    s = _samples()
    timer = MultiTaskTimer(**dict(SMALL, lr=1e-12, epochs=1, shrinkage=(1.0,))).fit(s.X, s.y)
    flat = s.X.reshape(len(s.X), -1)
    ridge = RidgeCV(alphas=RIDGE_ALPHAS, alpha_per_target=True).fit(flat, (s.y - timer.y_mean_) / timer.y_std_)
    expected = ridge.predict(flat[:5]) * timer.y_std_ + timer.y_mean_
    np.testing.assert_allclose(timer.predict(s.X[:5]), expected, rtol=1e-4, atol=1e-6)


def _ridge_oos(panel):
    spec = PanelSpec(tuple(feature_columns(panel)), FACTORS, 1, 1)
    folds = make_folds(panel.index, WalkForwardConfig(refit_every=60, min_train=150), 1, 1)
    ridge = run_walkforward(panel, lambda: WindowForecaster("ridge", baseline_factory("ridge")(spec, None, 0)[0]().estimator,
                                                            spec, True),
                            folds, FACTORS, 1, progress=False).predictions
    bench = run_walkforward(panel, lambda: HistoricalMean(spec), folds, FACTORS, 1, progress=False).predictions
    y = forward_returns(panel, FACTORS, 1).loc[ridge.index]
    return {f: oos_r2(y[f], ridge[f], bench[f]) for f in FACTORS}


@pytest.mark.slow
def test_linear_core_guarantee_on_a_linear_signal():
    """On a planted linear signal the network's OOS R^2 is within a small tolerance of ridge's."""
    panel = synthetic_panel(n=400, signal=True, seed=5)
    ridge = _ridge_oos(panel)
    net, = _oos(panel, dict(SMALL, seeds=(0, 1)), lookback=1)
    for f in ("Mkt-RF", "SMB"):  # the two planted factors (true R^2 ~ 0.69 and ~ 0.5)
        assert ridge[f] > 0.2
        assert net[f] >= ridge[f] - 0.02, (f, net[f], ridge[f])
    # and without the core, the same network trails ridge on the late-starting sentiment signal
    bare, = _oos(panel, dict(SMALL, seeds=(0, 1), linear_core=False), lookback=1)
    assert bare["SMB"] < net["SMB"]


def test_shrinkage_weight_is_chosen_per_factor_on_the_validation_tail():
    y = np.array([[1.0, 1.0], [-1.0, -1.0], [2.0, 2.0]])
    model = np.array([[1.0, -1.0], [-1.0, 1.0], [2.0, -2.0]])  # right on factor 0, wrong on factor 1
    w = choose_shrinkage(y, model, np.zeros(2), (0.0, 0.5, 1.0))
    np.testing.assert_array_equal(w, [1.0, 0.0])


def test_shrinkage_weight_ignores_rows_after_the_training_window():
    """Rows outside the training window cannot move the chosen weights: the fit sees only X, y."""
    s = _samples(200)
    a = MultiTaskTimer(**dict(SMALL, epochs=15)).fit(s.X[:150], s.y[:150])
    poisoned = s.y.copy()
    poisoned[150:] = -poisoned[150:] * 50  # test rows that would favour a different weight
    b = MultiTaskTimer(**dict(SMALL, epochs=15)).fit(s.X[:150], poisoned[:150])
    np.testing.assert_array_equal(a.shrink_weight_, b.shrink_weight_)
    assert set(a.shrink_weight_) <= set(SMALL_SHRINK)


def test_integrated_gradients_completeness():
    s = _samples(150)
    timer = MultiTaskTimer(**dict(SMALL, epochs=20)).fit(s.X, s.y)
    x = torch.from_numpy(s.X[:5])
    base = x.clone()
    base[..., : x.shape[2] // 2] = 0
    attr = integrated_gradients(timer.torch_forward, x, base, output=0, steps=64)
    with torch.no_grad():
        gap = timer.torch_forward(x)[:, 0] - timer.torch_forward(base)[:, 0]
    np.testing.assert_allclose(attr.sum(dim=(1, 2)).numpy(), gap.numpy(), rtol=0.05, atol=1e-5)


@pytest.mark.parametrize("windows", [(), (60,)])
def test_artifact_round_trip(tmp_path, windows):
    panel = synthetic_panel(n=200)
    spec = PanelSpec(tuple(feature_columns(panel)), FACTORS, 2, 1)
    model = WindowForecaster("network", MultiTaskTimer(**dict(SMALL, epochs=10, seeds=(0, 1), windows=windows)), spec, False)
    model.fit(panel.iloc[:150])
    save_forecaster(model, tmp_path / "m")
    loaded = load_forecaster(tmp_path / "m")
    feats = panel.drop(columns=list(FACTORS))
    dates = panel.index[160:170]
    np.testing.assert_allclose(loaded.predict(feats, dates), model.predict(feats, dates), rtol=1e-6, atol=1e-9)


def test_ridge_loo_predictions_match_refitting_without_the_row():
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((40, 3)), rng.standard_normal((40, 2))
    loo = ridge_loo_predictions(X, Y, alpha=2.0)
    for i in (0, 17, 39):
        keep = np.arange(40) != i
        fit = Ridge(alpha=2.0).fit(X[keep], Y[keep])
        np.testing.assert_allclose(loo[i], fit.predict(X[i:i + 1])[0], rtol=1e-8)


def test_ridge_loo_predictions_take_one_penalty_per_column_and_more_inputs_than_rows():
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((30, 50)), rng.standard_normal((30, 2))
    loo = ridge_loo_predictions(X, Y, alpha=np.array([0.5, 20.0]))
    for k, a in enumerate((0.5, 20.0)):
        keep = np.arange(30) != 7
        fit = Ridge(alpha=a).fit(X[keep], Y[keep, k])
        np.testing.assert_allclose(loo[7, k], fit.predict(X[7:8])[0], rtol=1e-8)


def test_single_task_twins_do_not_see_other_factors():
    """A twin's forecast of one factor is the same whatever the other factors' targets are."""
    s = _samples(160)
    other = s.y.copy()
    other[:, 1:] = np.random.default_rng(9).standard_normal(other[:, 1:].shape) * 0.05
    kwargs = dict(SMALL, epochs=25, seeds=(0, 1), vol_head=False, sign_head=False, separate_trunks=True)
    a = MultiTaskTimer(**kwargs).fit(s.X, s.y).predict(s.X)
    b = MultiTaskTimer(**kwargs).fit(s.X, other).predict(s.X)
    np.testing.assert_allclose(a[:, 0], b[:, 0], rtol=1e-5, atol=1e-8)
    assert not np.allclose(a[:, 1], b[:, 1])


def test_window_members_fit_only_the_last_rows_and_are_averaged():
    s = _samples(200)
    kw = dict(SMALL, epochs=10)
    ens = MultiTaskTimer(**dict(kw, windows=(60, 500))).fit(s.X, s.y)
    assert len(ens.members_) == 1  # 500 >= the 198 samples: that window would repeat the whole-window fit
    full = MultiTaskTimer(**kw).fit(s.X, s.y)
    short = MultiTaskTimer(**kw).fit(s.X[-60:], s.y[-60:])
    np.testing.assert_allclose(ens.predict(s.X), (full.predict(s.X) + short.predict(s.X)) / 2, rtol=1e-5, atol=1e-9)
    # rows before the short window change the whole-window fit, never the short member
    poisoned = s.y.copy()
    poisoned[:100] *= -3
    again = MultiTaskTimer(**dict(kw, windows=(60,))).fit(s.X, poisoned)
    np.testing.assert_allclose(again.members_[0].predict(s.X), short.predict(s.X), rtol=1e-6, atol=1e-9)
    with torch.no_grad():
        np.testing.assert_allclose(ens.torch_forward(torch.from_numpy(s.X)).numpy(), ens.predict(s.X), rtol=1e-4, atol=1e-7)
