"""Walk-forward never lets test rows reach fitting, scaling or selection."""
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge

from timing.baselines import HistoricalMean
from timing.config import WalkForwardConfig
from timing.dataset import PanelSpec, feature_columns, forward_returns, training_samples
from timing.forecaster import WindowForecaster
from timing.synthetic import synthetic_panel
from timing.walkforward import make_folds, run_walkforward

FACTORS = ("Mkt-RF", "SMB", "HML")


class Spy:
    """Records what the harness hands to fit and predict."""

    name, kind = "spy", "forecast"
    seen: list = []

    def fit(self, train):
        self.train_index = train.index
        self.train_columns = list(train.columns)
        return self

    def predict(self, features, dates):
        Spy.seen.append((self.train_index, list(features.columns), features.index, dates))
        return pd.DataFrame(0.0, index=dates, columns=list(FACTORS))


@pytest.mark.parametrize("scheme,window", [("expanding", None), ("rolling", 80)])
@pytest.mark.parametrize("horizon,gap", [(1, 1), (3, 4)])
def test_fit_frames_end_before_test_and_targets_do_not_overlap(scheme, window, horizon, gap):
    panel = synthetic_panel(n=300)
    cfg = WalkForwardConfig(scheme=scheme, window=window, refit_every=25, purge_gap=gap, min_train=80)
    folds = make_folds(panel.index, cfg, lookback=3, horizon=horizon)
    Spy.seen = []
    run_walkforward(panel, Spy, folds, FACTORS, lookback=3, progress=False)
    assert len(Spy.seen) == len(folds)
    for fold, (train_idx, pred_cols, feat_idx, dates) in zip(folds, Spy.seen):
        t0, t1 = fold.test_rows
        test_dates = panel.index[t0:t1]
        assert train_idx.max() < test_dates.min()  # no test row in the fit frame
        assert train_idx.max() == fold.train_dates[1] and train_idx.min() == fold.train_dates[0]
        # the last training sample's target window ends before the first test row
        spec = PanelSpec(tuple(feature_columns(panel)), FACTORS, 3, horizon)
        samples, _ = training_samples(panel.loc[train_idx], spec)
        last_row = panel.index.get_loc(samples.dates[-1])
        assert last_row + horizon <= t0 - 1 - (gap - horizon)
        assert not set(FACTORS) & set(pred_cols)  # predict never sees returns
        assert feat_idx.max() == test_dates.max()
        if scheme == "rolling":
            assert len(samples.dates) <= window
    starts = [f.test_rows[0] for f in folds]
    assert all(b - a == 25 for a, b in zip(starts, starts[1:]))
    assert folds[-1].test_rows[1] == len(panel) - horizon  # every test row has a realised target


def _forecasts(panel, folds):
    spec = PanelSpec(tuple(feature_columns(panel)), FACTORS, 2, 1)
    return run_walkforward(panel, lambda: WindowForecaster("ridge", Ridge(1.0), spec, tabular=True), folds,
                           FACTORS, 2, progress=False).predictions


def test_garbage_in_the_future_does_not_change_past_forecasts():
    panel = synthetic_panel(n=240)
    folds = make_folds(panel.index, WalkForwardConfig(refit_every=40, min_train=60), lookback=2, horizon=1)
    clean = _forecasts(panel, folds)
    k = 1
    t0, t1 = folds[k].test_rows
    poisoned = panel.copy()
    poisoned.iloc[t1:] = 1e6  # everything after fold k's test block
    poisoned.iloc[t0:, [panel.columns.get_loc(f) for f in FACTORS]] = 5.0  # and returns of its test rows
    dirty = _forecasts(poisoned, folds)
    upto = panel.index[t1 - 1]
    pd.testing.assert_frame_equal(clean.loc[:upto], dirty.loc[:upto])
    assert not np.allclose(clean.loc[upto:].iloc[1:], dirty.loc[upto:].iloc[1:])  # later folds did change


def test_scaler_is_fitted_on_the_training_frame_only():
    panel = synthetic_panel(n=200)
    spec = PanelSpec(("market.x1",), FACTORS, 1, 1, scaling="standard")
    _, scaler = training_samples(panel.iloc[:100], spec)
    assert scaler.center[0] == pytest.approx(panel["market.x1"].iloc[:100].mean())
    assert scaler.scale[0] == pytest.approx(panel["market.x1"].iloc[:100].std(ddof=0))


def test_targets_start_after_the_feature_date():
    panel = synthetic_panel(n=30)
    y = forward_returns(panel, ("Mkt-RF",), 2)
    d = panel.index[5]
    expected = (1 + panel["Mkt-RF"].iloc[6]) * (1 + panel["Mkt-RF"].iloc[7]) - 1
    assert y.loc[d, "Mkt-RF"] == pytest.approx(expected)
    assert y["Mkt-RF"].iloc[-2:].isna().all()


def test_historical_mean_uses_only_training_targets():
    panel = synthetic_panel(n=120)
    spec = PanelSpec(("market.x1",), FACTORS, 1, 1)
    hm = HistoricalMean(spec).fit(panel.iloc[:60])
    pred = hm.predict(panel.iloc[60:], panel.index[60:62])
    assert pred.iloc[0]["Mkt-RF"] == pytest.approx(panel["Mkt-RF"].iloc[1:60].mean())


def test_empty_walkforward_raises():
    panel = synthetic_panel(n=50)
    with pytest.raises(ValueError, match="empty walk-forward"):
        make_folds(panel.index, WalkForwardConfig(min_train=60), lookback=1, horizon=1)
