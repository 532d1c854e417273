"""Predictors from a user's file (data.extra_predictors): checked, point in time, group "extra"."""
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from timing.config import ConfigError, DataConfig, ExtraPredictors, TimingConfig, load_config
from timing.data import add_extra_predictors, extra_predictor_frame, load_panel
from timing.dataset import FEATURE_GROUPS, MASK_SUFFIX, availability, feature_columns

CONFIGS = Path(__file__).resolve().parents[1] / "timing" / "configs"
DATES = pd.date_range("2000-01-31", periods=24, freq="ME")


def _panel() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    panel = pd.DataFrame({"Mkt-RF": rng.normal(0.005, 0.04, len(DATES)),
                          "market.Mkt-RF_ret_1m": rng.normal(0, 0.04, len(DATES))}, index=DATES)
    panel["market.Mkt-RF_ret_1m" + MASK_SUFFIX] = np.float32(1.0)
    return panel


def _spread_file(tmp_path: Path, name: str = "spreads.csv", values=None, start="1999-06-30") -> Path:
    dates = pd.date_range(start, periods=30, freq="ME")
    values = np.arange(len(dates), dtype=float) if values is None else values
    path = tmp_path / name
    frame = pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "hml": values, "smb": values * 2})
    frame.to_parquet(path, index=False) if name.endswith(".parquet") else frame.to_csv(path, index=False)
    return path


def _cfg(path, **kw) -> DataConfig:
    return DataConfig(extra_predictors=(ExtraPredictors(path=str(path), name="value_spread", **kw),))


def test_columns_land_in_the_extra_group_with_masks(tmp_path):
    panel = add_extra_predictors(_panel(), _cfg(_spread_file(tmp_path, start="2000-06-30")))
    cols = ["extra.value_spread.hml", "extra.value_spread.smb"]
    assert "extra" in FEATURE_GROUPS
    assert feature_columns(panel, ("extra",)) == cols
    assert feature_columns(panel, ("market",)) == ["market.Mkt-RF_ret_1m"]
    assert set(cols) <= set(feature_columns(panel))  # the default feature set includes the group
    # before the file's first date: NaN with mask 0, as a late macro series
    assert panel.loc[:"2000-05-31", cols].isna().all().all()
    avail = availability(panel, cols)
    assert (avail.loc[:"2000-05-31"] == 0).all().all() and (avail.loc["2000-06-30":] == 1).all().all()
    assert panel.loc["2000-06-30", "extra.value_spread.hml"] == 0.0


def test_a_row_is_not_visible_before_its_lag_has_passed(tmp_path):
    panel = add_extra_predictors(_panel(), _cfg(_spread_file(tmp_path), known_lag_days=31))
    hml = panel["extra.value_spread.hml"]
    # the file's rows are 0, 1, 2, ... from 1999-06-30; row d is known from d + 31 days
    # 2000-01-31: the latest row with d + 31 <= 2000-01-31 is 1999-12-31 (value 6), not 2000-01-31 (7)
    assert hml.loc["2000-01-31"] == 6.0
    # 2000-02-29: 2000-01-31 + 31 days = 2000-03-02 > 2000-02-29 -> still 1999-12-31's value
    assert hml.loc["2000-02-29"] == 6.0
    assert hml.loc["2000-03-31"] == 8.0  # 2000-02-29 + 31 = 2000-03-31: known that day, at its close
    lag0 = add_extra_predictors(_panel(), _cfg(_spread_file(tmp_path)))["extra.value_spread.hml"]
    assert lag0.loc["2000-01-31"] == 7.0  # without a lag a row dated d is used at d's close


@pytest.mark.parametrize("lag", [0, 31, 95])
def test_later_rows_never_change_earlier_panel_rows(tmp_path, lag):
    base = np.arange(30, dtype=float)
    cut = pd.Timestamp("2000-09-30")
    file_dates = pd.date_range("1999-06-30", periods=30, freq="ME")
    changed = np.where(file_dates > cut, -1000.0 - base, base)
    a = add_extra_predictors(_panel(), _cfg(_spread_file(tmp_path, "a.csv", base), known_lag_days=lag))
    b = add_extra_predictors(_panel(), _cfg(_spread_file(tmp_path, "b.csv", changed), known_lag_days=lag))
    # rows dated after T change nothing in panel rows dated before (first such row) + lag
    first_after = file_dates[file_dates > cut][0] + pd.Timedelta(days=lag)
    before = a.index[a.index < first_after]
    assert len(before) >= 9
    pd.testing.assert_frame_equal(a.loc[before], b.loc[before])
    assert not a.equals(b)  # and they do change what comes after


def test_parquet_files_and_named_columns(tmp_path):
    frame = extra_predictor_frame(ExtraPredictors(path=str(_spread_file(tmp_path, "s.parquet")), name="vs",
                                                  columns=("smb",), known_lag_days=2))
    assert list(frame.columns) == ["extra.vs.smb", "known_at"]
    # a date without a time is 00:00 New York; known 2 days later
    assert frame["known_at"].iloc[0] == pd.Timestamp("1999-07-02 04:00", tz="UTC")


def test_integer_dates_are_read_as_dates(tmp_path):
    path = tmp_path / "int.csv"
    path.write_text("date,x\n20000131,1.5\n20000229,2.5\n")
    frame = extra_predictor_frame(ExtraPredictors(path=str(path), name="i"))
    assert frame.index.tolist() == [pd.Timestamp("2000-01-31"), pd.Timestamp("2000-02-29")]


def test_datasets_references_resolve_like_market_source(tmp_path, monkeypatch):
    monkeypatch.setenv("ALTSIGNAL_DATASETS", str(tmp_path))
    (tmp_path / "mine").mkdir()
    _spread_file(tmp_path / "mine")
    frame = extra_predictor_frame(ExtraPredictors(path="datasets:mine/spreads.csv", name="vs"))
    assert len(frame) == 30


@pytest.mark.parametrize("text, kw, problem", [
    ("day,x\n2000-01-31,1\n", {}, "no date column 'date'"),
    ("date,x\n2000-01-31,1\nsoon,2\n", {}, "unparseable"),
    ("date,x\n2000-01-31,1\n,2\n", {}, "unparseable or missing"),
    ("date,x\n2000-01-31,1\n2000-01-31,2\n", {}, "duplicate date"),
    ("date,x\n2000-01-31,1\n", {"columns": ("x", "y")}, r"no column\(s\) \['y'\]"),
    ("date,x\n2000-01-31,1\n2000-02-29,n.a.\n", {"columns": ("x",)}, "column 'x' has 1 non-numeric"),
    ("date,label\n2000-01-31,a\n", {}, "no numeric column"),
    ("date,x\n", {}, "no rows"),
    ("", {}, "empty"),
])
def test_bad_files_give_errors_naming_the_file_and_problem(tmp_path, text, kw, problem):
    path = tmp_path / "bad_spreads.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=problem) as err:
        add_extra_predictors(_panel(), _cfg(path, **kw))
    assert "bad_spreads.csv" in str(err.value)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ValueError, match="nowhere.csv: not found"):
        add_extra_predictors(_panel(), _cfg(tmp_path / "nowhere.csv"))


@pytest.mark.parametrize("table, problem", [
    ('path = "a.csv"\nname = "Value-Spread"\n', "name"),
    ('path = "a.xlsx"\nname = "vs"\n', r"\.csv, \.csv\.gz or \.parquet"),
    ('path = "a.csv"\nname = "vs"\nknown_lag_days = -1\n', "known_lag_days"),
    ('path = "a.csv"\nname = "vs"\nlag = 3\n', "lag"),
    ('path = "a.csv"\nname = "vs"\n[[data.extra_predictors]]\npath = "b.csv"\nname = "vs"\n', "unique"),
])
def test_bad_extra_predictor_configs_fail_early(tmp_path, table, problem):
    path = tmp_path / "c.toml"
    path.write_text("[[data.extra_predictors]]\n" + table)
    with pytest.raises(ConfigError, match=problem):
        load_config(path)


def test_a_config_with_a_file_validates_and_extends_and_set_still_work(tmp_path):
    spreads = _spread_file(tmp_path)
    path = tmp_path / "mine.toml"
    path.write_text(f'extends = "{(CONFIGS / "longer.toml").as_posix()}"\n[data]\nend = "2010-12-31"\n'
                    f'[[data.extra_predictors]]\npath = "{spreads.as_posix()}"\nname = "value_spread"\n'
                    "known_lag_days = 31\n")
    cfg = load_config(path)
    longer = load_config(CONFIGS / "longer.toml")
    assert longer.data.extra_predictors == ()  # nothing by default: no value-spread data ships
    assert cfg.data.source == "files" and cfg.data.market_source == longer.data.market_source  # extends
    assert cfg.data.extra_predictors == (ExtraPredictors(path=str(spreads), name="value_spread", known_lag_days=31),)
    assert cfg.network == longer.network
    over = load_config(path, ["data.end=2005-12-31", "explain.ablate_groups=[\"extra\"]",
                              'data.extra_predictors=[{path = "other.parquet", name = "other"}]'])
    assert over.data.end == "2005-12-31" and over.explain.ablate_groups == ("extra",)
    assert [e.name for e in over.data.extra_predictors] == ["other"]  # a list replaces the base's
    with pytest.raises(ConfigError, match="unknown key 'extra_predictor'"):
        load_config(path, ["data.extra_predictor=[]"])
    assert TimingConfig().data.extra_predictors == ()


def test_the_commented_example_in_longer_toml_validates():
    lines = (CONFIGS / "longer.toml").read_text().splitlines()
    start = lines.index("# [[data.extra_predictors]]")
    block = []
    for line in lines[start + 1:]:
        if not line.startswith("# ") or "=" not in line:
            break
        block.append(line[2:])
    spec = ExtraPredictors.model_validate(tomllib.loads("\n".join(block)))
    assert spec.name == "value_spread" and spec.known_lag_days == 31


def test_load_panel_joins_extra_predictors_for_a_parquet_panel(tmp_path):
    panel_path = tmp_path / "panel.parquet"
    _panel().to_parquet(panel_path)
    cfg = DataConfig(source="parquet", path=panel_path, start="2000-01-31", end="2001-12-31",
                     extra_predictors=(ExtraPredictors(path=str(_spread_file(tmp_path)), name="vs"),))
    panel = load_panel(cfg)
    assert feature_columns(panel, ("extra",)) == ["extra.vs.hml", "extra.vs.smb"]
    assert panel["extra.vs.hml" + MASK_SUFFIX].eq(1.0).all()
    with pytest.raises(ValueError, match="already has column"):
        add_extra_predictors(panel, cfg)
