"""The network recovers a planted relation, finds nothing in noise, and is deterministic."""
import numpy as np
import pytest
import torch

from timing.artifact import load_forecaster, save_forecaster
from timing.baselines import HistoricalMean
from timing.config import WalkForwardConfig
from timing.dataset import PanelSpec, feature_columns, forward_returns, training_samples
from timing.explain import integrated_gradients
from timing.forecaster import WindowForecaster
from timing.metrics import oos_r2
from timing.network import MultiTaskTimer
from timing.synthetic import synthetic_panel
from timing.walkforward import make_folds, run_walkforward

FACTORS = ("Mkt-RF", "SMB", "HML")
SMALL = dict(hidden=8, epochs=80, patience=10, lr=1e-2, seeds=(0,), grid=None)


def _oos(panel, timer_kwargs, skips=(0,)):
    spec = PanelSpec(tuple(feature_columns(panel)), FACTORS, 2, 1)
    folds = make_folds(panel.index, WalkForwardConfig(refit_every=60, min_train=150), 2, 1)
    net = run_walkforward(panel, lambda: WindowForecaster("network", MultiTaskTimer(**timer_kwargs), spec, False),
                          folds, FACTORS, 2, progress=False).predictions
    bench = run_walkforward(panel, lambda: HistoricalMean(spec), folds, FACTORS, 2, progress=False).predictions
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
    timer = MultiTaskTimer(**dict(SMALL, lr=1e-12, epochs=1)).fit(s.X, s.y)
    fit_part = slice(0, len(s.X) - int(np.ceil(0.2 * len(s.X))) - 1)
    np.testing.assert_allclose(timer.predict(s.X[:3]), np.tile(s.y[fit_part].mean(axis=0), (3, 1)), atol=1e-6)


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


def test_artifact_round_trip(tmp_path):
    panel = synthetic_panel(n=200)
    spec = PanelSpec(tuple(feature_columns(panel)), FACTORS, 2, 1)
    model = WindowForecaster("network", MultiTaskTimer(**dict(SMALL, epochs=10, seeds=(0, 1))), spec, False)
    model.fit(panel.iloc[:150])
    save_forecaster(model, tmp_path / "m")
    loaded = load_forecaster(tmp_path / "m")
    feats = panel.drop(columns=list(FACTORS))
    dates = panel.index[160:170]
    np.testing.assert_allclose(loaded.predict(feats, dates), model.predict(feats, dates), rtol=1e-6)
