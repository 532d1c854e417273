"""Bad timing configs fail early with errors that name the problem."""
from pathlib import Path

import pytest

from timing.config import ConfigError, TimingConfig, load_config
from timing.synthetic import synthetic_panel

DEFAULT = Path(__file__).resolve().parents[1] / "timing" / "configs" / "default.toml"


def _write(tmp_path, text):
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


def test_default_config_loads():
    cfg = load_config(DEFAULT)
    assert cfg.factors == ("Mkt-RF", "SMB", "HML", "Mom")
    assert cfg.horizon_periods == 1
    assert cfg.walkforward.purge_gap >= cfg.horizon_periods
    assert cfg.portfolio.cost_bps == 20.0 and cfg.portfolio.vol_target == 0.10


def test_unknown_factor(tmp_path):
    with pytest.raises(ConfigError, match="unknown factor.*'QMJ'"):
        load_config(_write(tmp_path, 'factors = ["Mkt-RF", "QMJ"]\n'))


def test_unknown_key_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match="lookbak"):
        load_config(_write(tmp_path, "[network]\nlookbak = 3\n"))


def test_purge_shorter_than_horizon(tmp_path):
    text = 'horizon = "weekly"\n[data]\nsource = "parquet"\npath = "x.parquet"\nfrequency = "daily"\n' \
           "[walkforward]\npurge_gap = 2\n"
    with pytest.raises(ConfigError, match="purge_gap 2 is shorter than the weekly horizon \\(5 daily periods\\)"):
        load_config(_write(tmp_path, text))


def test_horizon_shorter_than_data_period(tmp_path):
    with pytest.raises(ConfigError, match="daily horizon is shorter than one period of monthly data"):
        load_config(_write(tmp_path, 'horizon = "daily"\n'))


def test_rolling_needs_window():
    with pytest.raises(ValueError, match="rolling.*needs walkforward.window"):
        TimingConfig(walkforward={"scheme": "rolling"})


def test_unknown_baseline():
    with pytest.raises(ValueError, match="unknown baseline.*'oracle'"):
        TimingConfig(baselines=("ridge", "oracle"))


def test_horizon_longer_than_data():
    cfg = TimingConfig(horizon="monthly", data={"source": "parquet", "path": "x", "frequency": "daily"},
                       walkforward={"purge_gap": 21})
    panel = synthetic_panel(n=15)
    with pytest.raises(ConfigError, match="longer than the data \\(15 rows\\)"):
        cfg.check_panel(panel)


def test_empty_walkforward_window():
    cfg = TimingConfig(factors=("Mkt-RF", "SMB"), walkforward={"min_train": 500})
    with pytest.raises(ConfigError, match="empty walk-forward"):
        cfg.check_panel(synthetic_panel(n=300))


def test_empty_test_window():
    cfg = TimingConfig(factors=("Mkt-RF",), walkforward={"min_train": 50, "test_start": "2100-01-01"})
    with pytest.raises(ConfigError, match="empty test window"):
        cfg.check_panel(synthetic_panel(n=300))


def test_factor_missing_from_panel_is_dropped_but_none_is_an_error():
    cfg = TimingConfig(factors=("Mkt-RF", "RMW"), walkforward={"min_train": 50})
    assert cfg.check_panel(synthetic_panel(n=300)) == ("Mkt-RF",)
    with pytest.raises(ConfigError, match="none of the factors"):
        TimingConfig(factors=("RMW",)).check_panel(synthetic_panel(n=300))


def test_longer_history_and_validation_configs_share_the_default_design():
    default = load_config(DEFAULT)
    longer = load_config(DEFAULT.parent / "longer.toml")
    validation = load_config(DEFAULT.parent / "validation.toml")
    assert longer.data.source == "files" and longer.data.market_source.startswith("datasets:")
    assert validation.data.end == "1999-12-31"  # no test-part return is loaded
    for cfg in (longer, validation):
        assert cfg.network == default.network
        assert cfg.walkforward.validation_end == default.walkforward.validation_end == "1999-12-31"
        assert cfg.portfolio.turnover_penalty == default.portfolio.turnover_penalty


def test_shrinkage_weights_must_lie_in_the_unit_interval(tmp_path):
    with pytest.raises(ConfigError, match="shrinkage"):
        load_config(_write(tmp_path, "[network]\nshrinkage = [0.5, 1.5]\n"))


def test_baselines_register_themselves_and_the_config_checks_the_registry(monkeypatch):
    from timing import registry

    assert {"historical_mean", "ridge", "lightgbm", "single_factor"} <= set(registry.baseline_names())
    with pytest.raises(ValueError, match="unknown baseline.*'oracle'"):
        TimingConfig(baselines=("oracle",))
    monkeypatch.setitem(registry.BASELINES, "oracle", lambda spec, timer, seed: [])
    assert TimingConfig(baselines=("oracle",)).baselines == ("oracle",)
    with pytest.raises(ValueError, match="registered twice"):
        registry.register_baseline("oracle")(lambda spec, timer, seed: [])


def test_checking_baseline_names_loads_no_learner():
    import subprocess
    import sys

    code = ("import sys; from timing.config import TimingConfig; TimingConfig(baselines=('ridge', 'lightgbm')); "
            "print(sorted({'sklearn', 'lightgbm', 'torch'} & set(sys.modules)))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_the_default_timing_configs_extend_one_design():
    text = (DEFAULT.parent / "validation.toml").read_text() + (DEFAULT.parent / "longer.toml").read_text()
    assert text.count('extends = "default.toml"') == 2 and "[network]" not in text
