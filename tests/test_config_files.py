"""The one config loader (core.config_files): extends chains, deep merge, loops, dotted overrides."""
from __future__ import annotations

import json

import pytest

from altsignal.run_config import RunConfig
from core.config_files import ConfigError, apply_overrides, load, load_validated, parse_value
from timing.config import TimingConfig


def _write(folder, name, text):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_extends_chain_is_relative_to_each_file_and_merges_deep(tmp_path):
    _write(tmp_path, "base/grand.toml", 'a = 1\nlist = [1, 2]\n[t]\nx = 1\ny = 1\n[t.deep]\np = 1\nq = 1\n')
    _write(tmp_path, "base/parent.toml", 'extends = "grand.toml"\nlist = [3]\n[t]\ny = 2\n[t.deep]\nq = 2\n')
    child = _write(tmp_path, "child.toml", 'extends = "base/parent.toml"\n[t.deep]\nr = 3\n')
    assert load(child) == {"a": 1, "list": [3], "t": {"x": 1, "y": 2, "deep": {"p": 1, "q": 2, "r": 3}}}


def test_a_table_may_extend_a_file_and_parents_overrides_survive(tmp_path):
    _write(tmp_path, "timing.toml", 'seed = 1\n[network]\nhidden = 8\nepochs = 5\n')
    _write(tmp_path, "parent.toml", '[timing]\nextends = "timing.toml"\n[timing.network]\nepochs = 7\n')
    child = _write(tmp_path, "child.toml", 'extends = "parent.toml"\n[timing.network]\nhidden = 4\n')
    assert load(child) == {"timing": {"seed": 1, "network": {"hidden": 4, "epochs": 7}}}


def test_json_files_load_and_extend(tmp_path):
    _write(tmp_path, "base.json", json.dumps({"epochs": 3, "lr": 1e-4}))
    child = _write(tmp_path, "child.json", json.dumps({"extends": "base.json", "lr": 2e-4}))
    assert load(child) == {"epochs": 3, "lr": 2e-4}
    with pytest.raises(ConfigError, match="JSON syntax error"):
        load(_write(tmp_path, "bad.json", "{"))


@pytest.mark.parametrize("nested", [False, True])
def test_extends_loop_names_the_chain(tmp_path, nested):
    _write(tmp_path, "a.toml", '[t]\nextends = "b.toml"\n' if nested else 'extends = "b.toml"\n')
    _write(tmp_path, "b.toml", 'extends = "a.toml"\n')
    with pytest.raises(ConfigError, match=r"`extends` loop: .*a\.toml -> .*b\.toml -> .*a\.toml"):
        load(tmp_path / "a.toml")


def test_missing_base_names_the_file(tmp_path):
    child = _write(tmp_path, "c.toml", 'extends = "nope.toml"\n')
    with pytest.raises(ConfigError, match=f"config file {tmp_path / 'nope.toml'} does not exist"):
        load(child)


def test_override_values_are_toml_literals_else_text():
    assert parse_value("16") == 16 and parse_value("true") is True and parse_value("[0, 1]") == [0, 1]
    assert parse_value('"x y"') == "x y" and parse_value("bf16") == "bf16"
    assert parse_value("2016-01-31") == "2016-01-31"  # a date stays text: the configs' dates are strings
    assert parse_value("{ a = 1 }") == {"a": 1}


def test_dotted_overrides_set_merge_and_leave_the_input_alone():
    raw = {"timing": {"network": {"hidden": 8, "grid": {"lr": [1.0]}}}}
    out = apply_overrides(raw, ["timing.network.hidden=16", "scoring.job.engine.numeric=bf16",
                                "timing.network.grid={ weight_decay = [0.1] }", "timing.walkforward.n_jobs=1"], RunConfig)
    assert out == {"timing": {"network": {"hidden": 16, "grid": {"lr": [1.0], "weight_decay": [0.1]}},
                              "walkforward": {"n_jobs": 1}},
                   "scoring": {"job": {"engine": {"numeric": "bf16"}}}}
    assert raw["timing"]["network"]["hidden"] == 8


@pytest.mark.parametrize("item, message", [
    ("timing.network.hiden=16", "unknown key 'hiden' at timing.network; valid keys: dropout, encoder"),
    ("scorng.numeric=bf16", "unknown key 'scorng' at the top level; valid keys: annotations, documents, health"),
    ("signals.sessions.cutof=15:00", "unknown key 'cutof' at signals.sessions; valid keys: calendar, cutoff, tz"),
    ("name.first=x", "name is a value, not a table"),
    ("timing.network.hidden", "expected dotted.key=value"),
])
def test_unknown_override_key_names_the_valid_keys(item, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        apply_overrides({}, [item], RunConfig)


def test_overrides_are_validated_with_the_file(tmp_path):
    path = _write(tmp_path, "t.toml", '[network]\nhidden = 8\n')
    assert load_validated(TimingConfig, path, ["network.hidden=16"]).network.hidden == 16
    with pytest.raises(ConfigError, match=r"with --set network.hidden=-1: network.hidden"):
        load_validated(TimingConfig, path, ["network.hidden=-1"])


def test_the_readme_run_configuration_example_validates(tmp_path):
    import re
    from pathlib import Path

    from altsignal.run_config import load_run_config

    root = Path(__file__).resolve().parents[1]
    section = (root / "docs" / "configuration.md").read_text().split("## Run configuration", 1)[1]
    example = re.search(r"```toml\n(.*?)```", section, flags=re.S).group(1)
    cfg = load_run_config(_write(tmp_path, "mine.toml", example.replace('"timing/configs/', f'"{root}/timing/configs/')),
                          ["timing.network.hidden=32", "scoring.job.engine.numeric=bf16"])
    assert cfg.signals.sessions.cutoff == "15:30" and cfg.timing.network.hidden == 32 and cfg.scoring.job.engine.numeric == "bf16"
    assert cfg.timing.data.end == "1999-12-31" and len(cfg.documents.inputs) == 3  # validation.toml's, run_default's


def test_finetune_config_file_uses_the_one_loader_and_flags_override_it(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from altsignal.cli import app

    (tmp_path / "base.json").write_text('{"epochs": 5, "lr": 0.001, "model_id": "from-base"}')
    (tmp_path / "mine.toml").write_text('extends = "base.json"\nlr = 0.0002\n')
    seen = {}

    def record(cfg, out, command):
        seen["cfg"] = cfg
        return out

    monkeypatch.setattr("nlp.models.finetune.finetune", record)
    res = CliRunner().invoke(app, ["models", "finetune", "--config", str(tmp_path / "mine.toml"), "--epochs", "2",
                                   "--out", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    cfg = seen["cfg"]
    assert (cfg.epochs, cfg.lr, cfg.model_id) == (2, 0.0002, "from-base")


def test_run_config_composes_the_scoring_job_and_old_spellings_still_load(tmp_path, capsys):
    from altsignal.run_config import DEFAULT_RUN_CONFIG, load_run_config

    new = load_run_config(DEFAULT_RUN_CONFIG, ["scoring.job.chunk_rows=50", "scoring.job.engine.batch_tokens=512"])
    assert new.scoring.job.chunk_rows == 50 and new.scoring.job.engine.batch_tokens == 512  # every job knob
    old = _write(tmp_path, "old.toml", f'extends = "{DEFAULT_RUN_CONFIG}"\n[scoring]\nnumeric = "bf16"\nengine = "ray"\n')
    cfg = load_run_config(old)
    assert cfg.scoring.job.engine.numeric == "bf16" and cfg.scoring.job.engine_kind == "ray"
    err = capsys.readouterr().err
    assert "`scoring.numeric` is now `scoring.job.engine.numeric`" in err and "`scoring.engine` is now" in err


def test_research_counts_on_the_run_calendar_set_once(tmp_path):
    from altsignal.run_config import DEFAULT_RUN_CONFIG, load_run_config

    cfg = load_run_config(DEFAULT_RUN_CONFIG, ['signals.sessions.cutoff="15:30"', "research.entry.rule=at"])
    assert cfg.research.sessions == cfg.signals.sessions and cfg.research.sessions.cutoff == "15:30"
    assert cfg.research.entry.rule == "at"
    with pytest.raises(ConfigError, match="set the sessions once"):
        load_run_config(DEFAULT_RUN_CONFIG, ['research.sessions.cutoff="15:00"'])
