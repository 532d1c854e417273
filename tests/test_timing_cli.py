"""End to end on a small synthetic Parquet panel: fit, backtest, report through the CLI."""
import json

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from altsignal.commands.timing import register
from timing.synthetic import synthetic_panel

CONFIG = """
factors = ["Mkt-RF", "SMB", "HML"]
horizon = "monthly"
output_dir = "{out}"
baselines = ["historical_mean", "ridge", "elastic_net", "random_forest", "lightgbm", "single_task_net", "macro_regime", "equal_weight",
             "vol_managed", "single_factor"]
[data]
source = "parquet"
path = "{panel}"
start = "1990-01-31"
end = "2020-12-31"
[network]
lookback = 2
hidden = 8
epochs = 30
patience = 5
lr = 1e-2
seeds = [0, 1]
grid = {{ weight_decay = [1e-3, 1e-2] }}
[walkforward]
min_train = 120
refit_every = 60
n_jobs = 1
validation_end = "2008-12-31"
[portfolio]
vol_overlay = true
turnover_penalty = 0.02
[explain]
level = "full"
permutation_repeats = 1
ig_steps = 8
ablate_groups = ["sentiment"]
"""


def _app():
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # a second command keeps "timing" a named subcommand
    return app


@pytest.mark.slow
def test_fit_backtest_report(synthetic_run):
    cfg, out = synthetic_run(CONFIG, 260)
    runner = CliRunner()

    res = runner.invoke(_app(), ["timing", "backtest", "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    for name in ("forecasts", "returns", "weights", "forecast_metrics", "portfolio_metrics", "importance",
                 "integrated_gradients", "ablation"):
        assert (out / f"{name}.parquet").exists(), name
    pm = pd.read_parquet(out / "portfolio_metrics.parquet")
    strategies = set(pm.strategy)
    assert {"network", "network+vol", "ridge", "lightgbm", "single_task_net", "macro_regime", "equal_weight",
            "vol_managed", "only:SMB"} <= strategies
    assert set(pm.part) == {"validation", "test", "all"}
    n = pm[(pm.strategy == "network") & (pm.basis == "net")].set_index("part")["n"]
    assert n["validation"] + n["test"] == n["all"]  # the two parts split the out-of-sample rows
    tests = pd.read_parquet(out / "sharpe_tests.parquet")
    assert {"validation", "test", "all"} == set(tests.part) and {"gross", "net"} == set(tests.basis)
    assert tests.p_value.between(0, 1).all()
    fm = pd.read_parquet(out / "forecast_metrics.parquet")
    net = fm[(fm.model == "network") & (fm.part == "all")].set_index("factor")
    assert net.loc["Mkt-RF", "oos_r2"] > 0.2  # the planted relation shows through the whole pipeline
    ablation = pd.read_parquet(out / "ablation.parquet")
    assert list(ablation.status) == ["with", "without"]
    smb = ablation.set_index("status")["oos_r2:SMB"]
    assert smb["with"] > smb["without"]  # SMB is driven by the sentiment feature
    importance = pd.read_parquet(out / "importance.parquet").set_index("group")
    assert set(importance.index) == {"macro", "market", "sentiment"}
    assert importance.loc["market", "importance"] > importance.loc["macro", "importance"]
    folds = json.loads((out / "folds.json").read_text())
    assert all(f["train_dates"][1] < f["test_dates"][0] for f in folds)

    res = runner.invoke(_app(), ["timing", "report", "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    report = (out / "report.md").read_text()
    assert "## Targets" in report and "Clark-West" in report and "test part" in report
    assert "cost drag" in report and "Sharpe-difference tests" in report
    for png in ("cumulative", "drawdowns", "weights", "oos_r2", "importance"):
        assert (out / "img" / f"{png}.png").stat().st_size > 1000

    res = runner.invoke(_app(), ["timing", "fit", "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    assert (out / "model" / "seed_1.safetensors").exists()
    assert "expected" in res.output and "trade" in res.output


def test_bad_config_exits_with_the_reason(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('factors = ["Mkt-RF", "Quality"]\n')
    res = CliRunner().invoke(_app(), ["timing", "backtest", "--config", str(cfg)])
    assert res.exit_code != 0
    assert "unknown factor" in str(res.exception)


def test_predict_appends_todays_allocation_refits_on_schedule_and_is_point_in_time(tmp_path):
    from altsignal.operate import read_history

    panel = synthetic_panel(n=200)
    panel_path = tmp_path / "panel.parquet"
    panel.rename_axis("date").reset_index().to_parquet(panel_path)
    out = tmp_path / "run"
    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG.format(out=out, panel=panel_path))
    quick = ["--set", "network.epochs=5", "--set", "network.seeds=[0]", "--set", "walkforward.refit_every=3"]
    runner = CliRunner()

    def predict(day, *extra):
        res = runner.invoke(_app(), ["timing", "predict", "--config", str(cfg), "--as-of", day, *quick, *extra])
        assert res.exit_code == 0, res.output
        return res.output

    d = panel.index
    res = runner.invoke(_app(), ["timing", "predict", "--config", str(cfg), "--as-of", str(d[150].date()),
                                 "--no-refit", *quick])
    # Under the root app's handler the error is printed (exit 2); under this bare app it is raised.
    assert res.exit_code != 0 and "no saved model" in res.output + str(res.exception), (res.output, res.exception)
    assert "refitted" in predict(str(d[150].date()))  # no model yet: fit on what day 150 knew
    first = read_history(out)
    assert set(first["as_of"]) == {d[150]} and (first["previous_weight"] == 0).all()
    assert (first["model_train_end"] < d[150]).all()  # trained only on targets realised by then
    assert "refitted" not in predict(str(d[151].date()))  # one period later: not due
    hist = read_history(out)
    later = hist[hist["as_of"] == d[151]].set_index("factor")
    np.testing.assert_allclose(later["previous_weight"], first.set_index("factor")["weight"])
    np.testing.assert_allclose(later["trade"], later["weight"] - later["previous_weight"])
    predict(str(d[151].date()))  # the same day again replaces its rows
    pd.testing.assert_frame_equal(read_history(out), hist)
    assert "refitted" in predict(str(d[154].date()))  # three periods later: due

    # Point in time: the allocation of day 151 from the model of day 150 ignores every later row.
    from altsignal.operate import allocate, fit_model
    from timing.artifact import load_forecaster
    from timing.config import load_config

    tcfg = load_config(cfg, quick[1::2])
    model = fit_model(tcfg, panel, d[150], tmp_path / "m")
    full = allocate(tcfg, load_forecaster(tmp_path / "m"), panel, d[151], None)
    cut = allocate(tcfg, model, panel.iloc[:152], d[151], None)
    pd.testing.assert_frame_equal(full, cut)
