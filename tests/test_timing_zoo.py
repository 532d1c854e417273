"""The many-task study (issue 23): targets from any return file, point-in-time predictors, masking
of tasks that do not exist yet, a combination that uses no test-part outcome, a user's own
four-asset CSV end to end, and the CI-sized zoo on the shared JKP data."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import typer
from typer.testing import CliRunner

from altsignal.commands.timing import register
from timing.config import load_config
from timing.targets import TargetsConfig, read_targets
from timing.zoo_books import book, covariances, dmspe_weights, equal_combination
from timing.zoo_config import ZooNetworkConfig
from timing.zoo_data import goyal_welch, own_predictors
from timing.zoo_network import ZooTimer

ASSETS = ["SPX", "NDX", "UST", "GOLD"]


def _cli():
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:
        pass

    return app


def _asset_csv(path, daily: bool = False, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("1985-01-01", "2016-12-31") if daily else pd.date_range("1985-01-31", "2016-12-31", freq="ME")
    scale = np.array([4.0, 5.5, 1.5, 4.5]) / (np.sqrt(21) if daily else 1.0)
    ret = rng.standard_normal((len(dates), 4)) * scale + 0.5 / (21 if daily else 1)  # percent
    frame = pd.DataFrame(ret, index=dates, columns=ASSETS)
    frame.loc[frame.index < "1990-01-01", "GOLD"] = np.nan  # gold enters later: masked until then
    frame.rename_axis("date").reset_index().to_csv(path, index=False)
    return frame


def test_targets_wide_percent_daily_are_compounded_to_months(tmp_path):
    daily = _asset_csv(tmp_path / "assets.csv", daily=True)
    cfg = TargetsConfig(path=str(tmp_path / "assets.csv"), layout="wide", units="percent", frequency="daily")
    monthly, groups = read_targets(cfg)
    jan = daily.loc["1995-01", "SPX"] / 100
    assert monthly.loc["1995-01-31", "SPX"] == pytest.approx(np.prod(1 + jan) - 1)
    assert monthly.loc["1989-12-31", "GOLD"] != monthly.loc["1989-12-31", "GOLD"]  # NaN: not yet there
    assert list(groups.index) == sorted(ASSETS)


def test_targets_long_file_with_group_map_and_subsets(tmp_path):
    frame = _asset_csv(tmp_path / "wide.csv")
    long = frame.rename_axis("month").reset_index().melt("month", var_name="ticker", value_name="r").dropna()
    long["month"] = long["month"].dt.strftime("%Y%m").astype(int)
    long.to_csv(tmp_path / "long.csv", index=False)
    pd.DataFrame({"ticker": ASSETS, "kind": ["equity", "equity", "bonds", "gold"]}).to_csv(tmp_path / "map.csv", index=False)
    cfg = TargetsConfig(path=str(tmp_path / "long.csv"), id_column="ticker", date_column="month", return_column="r",
                        units="percent", groups=str(tmp_path / "map.csv"), group_id_column="ticker",
                        group_column="kind", keep_groups=("equity", "gold"))
    returns, groups = read_targets(cfg)
    assert list(returns.columns) == ["NDX", "SPX", "GOLD"]  # sorted by group, then id
    assert groups["GOLD"] == "gold"
    assert returns.loc["2000-03-31", "SPX"] == pytest.approx(frame.loc["2000-03-31", "SPX"] / 100)
    with pytest.raises(Exception, match="duplicate"):
        pd.concat([long, long.head(1)]).to_csv(tmp_path / "dup.csv", index=False)
        read_targets(cfg.model_copy(update={"path": str(tmp_path / "dup.csv")}))


def _gw_file(path, tamper_after: int | None = None) -> None:
    months = pd.period_range("1950-01", "2000-12", freq="M")
    rng = np.random.default_rng(1)
    n = len(months)
    frame = pd.DataFrame({"yyyymm": [int(m.strftime("%Y%m")) for m in months],
                          "Index": np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.04, n))), 2),
                          "D12": 3 + rng.random(n), "E12": 6 + rng.random(n), "b/m": 0.5 + 0.1 * rng.random(n),
                          "tbl": 0.05 + 0.01 * rng.random(n), "AAA": 0.07 + 0.01 * rng.random(n),
                          "BAA": 0.08 + 0.01 * rng.random(n), "lty": 0.06 + 0.01 * rng.random(n),
                          "ntis": 0.01 * rng.standard_normal(n), "infl": 0.003 * rng.standard_normal(n),
                          "svar": 0.002 * rng.random(n)})
    if tamper_after is not None:
        later = frame["yyyymm"] > tamper_after
        cols = [c for c in frame.columns if c != "yyyymm"]
        frame.loc[later, cols] = frame.loc[later, cols] * 7 + 3
    frame.to_csv(path, index=False)


def test_goyal_welch_predictors_are_used_only_after_their_lag(tmp_path):
    _gw_file(tmp_path / "gw.csv")
    _gw_file(tmp_path / "gw_tampered.csv", tamper_after=198006)
    clean = goyal_welch(str(tmp_path / "gw.csv"), 1, 2)
    tampered = goyal_welch(str(tmp_path / "gw_tampered.csv"), 1, 2)
    # June 1980's values are first used at the end of July (ep and infl: August); nothing earlier moves
    fast = [c for c in clean.columns if not c.endswith(("_ep", "_infl"))]
    slow = ["macro.gw_ep", "macro.gw_infl"]
    pd.testing.assert_frame_equal(clean.loc[:"1980-07-31", fast], tampered.loc[:"1980-07-31", fast])
    pd.testing.assert_frame_equal(clean.loc[:"1980-08-31", slow], tampered.loc[:"1980-08-31", slow])
    assert not np.allclose(clean.loc["1980-08-31", fast], tampered.loc["1980-08-31", fast])
    raw = pd.read_csv(tmp_path / "gw.csv").set_index("yyyymm")
    assert clean.loc["1980-07-31", "macro.gw_dfy"] == pytest.approx(raw.loc[198006, "BAA"] - raw.loc[198006, "AAA"])
    assert clean.loc["1980-08-31", "macro.gw_infl"] == pytest.approx(raw.loc[198006, "infl"])


def test_own_predictors_use_only_past_returns():
    rng = np.random.default_rng(2)
    dates = pd.date_range("1990-01-31", periods=120, freq="ME")
    returns = pd.DataFrame(rng.normal(0.005, 0.03, (120, 3)), index=dates, columns=list("abc"))
    returns.iloc[:30, 2] = np.nan  # c starts late
    own, names, tsfm = own_predictors(returns, (1, 3, 12), 12)
    later = returns.copy()
    later.iloc[80:] = 5.0
    own2, _, tsfm2 = own_predictors(later, (1, 3, 12), 12)
    np.testing.assert_array_equal(own[:80], own2[:80])
    np.testing.assert_array_equal(tsfm[:80], tsfm2[:80])
    assert names == ["ret_1m", "ret_3m", "ret_12m", "vol_12m"]
    assert own[50, 0, 2] == pytest.approx(np.prod(1 + returns.iloc[39:51, 0]) - 1)
    assert np.isnan(own[:41, 2, 3]).all() and np.isfinite(own[41, 2, 3])  # c's 12-month vol needs 12 of its months


def _toy(seed=0, n=120, K=5, start_late=3):
    rng = np.random.default_rng(seed)
    s = rng.standard_normal((n, 4)).astype(np.float32)
    o = rng.standard_normal((n, K, 3)).astype(np.float32)
    y = (0.3 * o[:, :, 0] + 0.2 * s[:, :1] + rng.standard_normal((n, K))).astype(np.float64)
    y[:start_late * 10, K - 1] = np.nan  # the last task does not exist in the first months
    return s, o, y


@pytest.mark.parametrize("twins", [False, True])
def test_missing_target_months_are_masked_in_training(twins):
    """A task's inputs in months where its target is missing cannot move the fitted network."""
    s, o, y = _toy()
    cfg = ZooNetworkConfig(hidden=8, task_dim=2, theme_dim=2, epochs=5, patience=5, seeds=(0,), twin_hidden=4)
    groups = np.array([0, 0, 1, 1, 1])
    a = ZooTimer(cfg, groups, 2, twins=twins).fit(s, o, y)
    o2 = o.copy()
    o2[:30, 4] = 1e3  # garbage where task 4 has no target
    b = ZooTimer(cfg, groups, 2, twins=twins).fit(s, o2, y)
    for na, nb in zip(a.nets_, b.nets_):
        for (k, va), vb in zip(na.state_dict().items(), nb.state_dict().values()):
            torch.testing.assert_close(va, vb, msg=k)
    np.testing.assert_array_equal(a.predict(s[-5:], o[-5:]), b.predict(s[-5:], o[-5:]))


def test_book_holds_nothing_in_a_task_before_it_exists():
    from timing.config import PortfolioConfig

    rng = np.random.default_rng(3)
    dates = pd.date_range("1970-01-31", periods=200, freq="ME")
    ret = pd.DataFrame(rng.normal(0.004, 0.02, (200, 4)), index=dates, columns=list("abcd"))
    ret.iloc[:150, 3] = np.nan  # d exists from row 150 on
    decisions = dates[100:199]
    covs = covariances(ret, decisions, 120)
    signals = pd.DataFrame(1.0, index=decisions, columns=ret.columns)
    res = book(signals, ret, covs, PortfolioConfig(), False, np.full(4, 20.0))
    first_live = dates[150 + 23]  # needs its return at the decision and 24 months in the window
    assert (res.weights.loc[:first_live - pd.offsets.MonthEnd(1), "d"] == 0).all()
    assert (res.weights.loc[first_live:, "d"] != 0).all()
    assert np.isfinite(res.net).all()


def test_dmspe_combination_uses_no_test_part_outcome():
    rng = np.random.default_rng(4)
    dates = pd.date_range("1980-01-31", periods=240, freq="ME")
    ids = ["a", "b", "c"]
    groups = pd.Series(["x", "x", "y"], index=ids)
    realised = pd.DataFrame(rng.normal(0, 0.03, (240, 3)), index=dates, columns=ids)
    fc = {m: pd.DataFrame(rng.normal(0, 0.01 * (i + 1), (240, 3)), index=dates, columns=ids)
          for i, m in enumerate(["network", "single_task_net", "ridge", "factor_momentum"])}
    members = tuple(fc)
    vend = pd.Timestamp("1994-12-31")
    w = dmspe_weights(fc, members, realised, groups, vend, 0.95, 60)
    # the test part's outcomes and forecasts changed: no weight moves
    realised2 = realised.copy()
    realised2.loc["1994-12-31":] = 9.0
    fc2 = {m: f.copy() for m, f in fc.items()}
    fc2["network"].loc["1994-12-31":] = 0.5
    w2 = dmspe_weights(fc2, members, realised2, groups, vend, 0.95, 60)
    for m in members:
        pd.testing.assert_frame_equal(w[m], w2[m])
    test_rows = w["network"].loc["1995-01-31":]
    assert (test_rows.nunique() == 1).all()  # frozen at the last validation weights
    assert not np.allclose(w["ridge"].loc["1994-11-30"], 0.25)  # they did move away from equal
    assert np.allclose(sum(w[m] for m in members), 1.0)
    eq = equal_combination(fc, members)
    assert np.allclose(eq, sum(fc.values()) / 4)


CSV_CONFIG = """
horizon = "monthly"
output_dir = "{out}"
[targets]
path = "{csv}"
layout = "wide"
units = "percent"
frequency = "monthly"
[data]
source = "packaged"
start = "1985-01-31"
end = "2016-12-31"
[walkforward]
min_train = 120
refit_every = 60
test_start = "1997-01-31"
validation_end = "2006-12-31"
[portfolio]
max_weight = 2.0
[zoo]
n_jobs = 1
bootstrap_reps = 100
pc_k = 2
[zoo.network]
hidden = 8
epochs = 5
patience = 3
seeds = [0]
[explain]
level = "none"
"""


@pytest.mark.slow
def test_user_four_asset_csv_end_to_end(tmp_path):
    _asset_csv(tmp_path / "assets.csv")
    cfg = tmp_path / "assets.toml"
    cfg.write_text(CSV_CONFIG.format(out=tmp_path / "run", csv=tmp_path / "assets.csv"))
    result = CliRunner().invoke(_cli(), ["timing", "backtest", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    rets = pd.read_parquet(tmp_path / "run" / "returns.parquet")
    assert list(rets.columns) == ["date", "strategy", "gross", "net", "turnover", "cost"]
    names = set(rets.strategy)
    assert {"network", "single_task_net", "equal_weight", "factor_momentum", "combination", "combination_dmspe",
            "ridge", "pooled_ridge", "pc_timing", "vol_managed", "network:themes"} <= names
    fm = pd.read_parquet(tmp_path / "run" / "forecast_metrics.parquet")
    assert {"factor", "model", "part", "oos_r2", "cw_p", "theme"} <= set(fm.columns)
    assert set(fm.factor) == set(ASSETS) and {"validation", "test"} <= set(fm.part)
    weights = pd.read_parquet(tmp_path / "run" / "weights.parquet")
    assert (weights[(weights.factor == "GOLD") & (weights.date < "1990-01-01")].weight == 0).all()
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["study"] == "zoo" and summary["n_tasks"] == 4
    report = CliRunner().invoke(_cli(), ["timing", "report", "--config", str(cfg)])
    assert report.exit_code == 0, report.output
    text = (tmp_path / "run" / "report.md").read_text()
    assert "single-task twins" in text and "Clark-West" in text


@pytest.mark.slow
@pytest.mark.shared
def test_ci_sized_zoo_runs_from_the_shared_data(shared_datasets, tmp_path):
    """Two themes of the JKP zoo, Goyal-Welch and FRED-MD, through the same command as zoo.toml."""
    config = str(Path(__file__).resolve().parents[1] / "timing" / "configs" / "zoo_ci.toml")
    cfg = load_config(config)
    assert cfg.targets.preset == "jkp_usa" and cfg.zoo.goyal_welch
    result = CliRunner().invoke(_cli(), ["timing", "backtest", "--config", config,
                                         "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["n_tasks"] == 11 and len(set(summary["themes"].values())) == 2
    assert any(f.startswith("macro.gw_") for f in summary["features"])
    fm = pd.read_parquet(tmp_path / "forecast_metrics.parquet")
    assert {"network", "single_task_net", "ridge", "pooled_ridge", "factor_momentum", "pc_timing", "combination",
            "combination_dmspe"} <= set(fm.model)
    assert np.isfinite(fm.oos_r2).all()


def test_fold_inputs_of_earlier_folds_ignore_later_returns():
    """The walk-forward slices before fitting: garbage after a fold's test rows changes none of its inputs."""
    from timing.config import WalkForwardConfig
    from timing.walkforward import make_folds
    from timing.zoo_backtest import fold_inputs
    from timing.zoo_config import ZooConfig
    from timing.zoo_data import build_zoo_panel

    rng = np.random.default_rng(5)
    dates = pd.date_range("1970-01-31", periods=240, freq="ME")
    returns = pd.DataFrame(rng.normal(0.005, 0.03, (240, 3)), index=dates, columns=list("abc"))
    panel = pd.DataFrame({"macro.x": rng.standard_normal(240)}, index=dates)
    groups = pd.Series(["g", "g", "h"], index=list("abc"))
    zp = build_zoo_panel(returns, groups, panel, ZooConfig())
    later = returns.copy()
    later.iloc[180:] = 3.0
    zp2 = build_zoo_panel(later, groups, panel, ZooConfig())
    folds = make_folds(zp.dates, WalkForwardConfig(min_train=120), 1, 1)
    early = [f for f in folds if f.test_rows[1] <= 180]
    assert len(early) >= 3
    for f in early:
        a, b = fold_inputs(zp, f), fold_inputs(zp2, f)
        for field in ("shared_tr", "own_tr", "tsfm_tr", "y_tr", "shared_te", "own_te", "tsfm_te"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(fold_inputs(zp, folds[-1]).y_tr, fold_inputs(zp2, folds[-1]).y_tr)


@pytest.mark.slow
@pytest.mark.shared
def test_ci_sized_zoo_direct_allocators_hold_the_themes_point_in_time(shared_datasets):
    """zoo_ci.toml's two themes as assets, end to end and PPO with tiny step counts on the zoo's
    folds: books on every test date within the theme cap, and later theme returns change no
    earlier weight."""
    from core.errors import UsageError
    from timing.data import load_panel
    from timing.walkforward import make_folds
    from timing.zoo_books import theme_frames
    from timing.zoo_data import build_zoo_panel
    from timing.zoo_direct import direct_theme_books

    config = Path(__file__).resolve().parents[1] / "timing" / "configs" / "zoo_ci.toml"
    cfg = load_config(config, ['portfolio.allocator=["end_to_end", "rl_ppo"]', "direct.epochs=3", "direct.seeds=[0]",
                               "direct.rl_steps=64", "direct.rl_seeds=[0]"])
    returns, groups = read_targets(cfg.targets)
    zp = build_zoo_panel(returns, groups, load_panel(cfg.data), cfg.zoo, cfg.data.start, cfg.data.end)
    folds = make_folds(zp.dates, cfg.walkforward, 1, 1)
    themes = theme_frames(zp.returns_frame(), groups)
    tpc = cfg.portfolio.model_copy(update={"max_weight": cfg.zoo.theme_max_weight})
    costs = np.full(2, cfg.portfolio.cost_bps)
    books, _, curves = direct_theme_books(cfg, zp, folds, themes, tpc, costs, progress=False)
    test_dates = pd.DatetimeIndex(np.concatenate([zp.dates[f.test_rows[0]:f.test_rows[1]] for f in folds]))
    assert set(books) == {"end_to_end:themes", "rl_ppo:themes"} and len(curves["rl_ppo"]) == len(folds)
    for b in books.values():
        assert list(b.weights.columns) == ["Short-Term Reversal", "Size"]
        assert b.weights.index.equals(test_dates) and np.isfinite(b.net).all()
        assert (b.weights.abs() <= cfg.zoo.theme_max_weight + 1e-12).all().all() and b.turnover.sum() > 0

    cut = folds[-1].test_rows[0]  # later theme returns: only the last fold may change
    later = themes.copy()
    later.iloc[cut:] = 0.3
    e2e = tpc.model_copy(update={"allocator": ("end_to_end",)})
    same, changed = (direct_theme_books(cfg, zp, folds[-2:], t, e2e, costs, progress=False)[0]["end_to_end:themes"].weights
                     for t in (themes, later))
    before = zp.dates[folds[-2].test_rows[0]:cut]
    pd.testing.assert_frame_equal(changed.loc[before], same.loc[before])
    assert not changed.equals(same)
    with pytest.raises(UsageError, match="one cost"):
        direct_theme_books(cfg, zp, folds, themes, tpc, np.array([20.0, 40.0]), progress=False)
