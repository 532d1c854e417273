"""The CLI's one error handler, run/timing config errors, and the run's stage folders.

Known errors print ``error: ...`` (and ``hint: ...``) and exit with their code; anything else
is a bug: exit 1, one line, the traceback only with ``--verbose``. Config problems are found
before any stage runs, and ``altsignal run`` never deletes a folder it did not create.
"""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from altsignal.cli import app
from altsignal.orchestrator import check_run
from altsignal.run_config import DEFAULT_RUN_CONFIG, load_run_config
from altsignal.stage_cache import cached_stage
from core.errors import EXIT_BUG, EXIT_USAGE, AltsignalError
from timing import CONFIG_DIR
from timing.config import load_config


def _cli(*args: str):
    return CliRunner().invoke(app, list(args))


def _one_error_line(res, code: int = EXIT_USAGE) -> str:
    assert res.exit_code == code, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert lines[0].startswith("error: ") and all(l.startswith(("error: ", "hint: ")) for l in lines), res.output
    assert "Traceback" not in res.output
    return lines[0]


def test_known_error_classes_go_through_one_path():
    from nlp.contracts import ContractError
    from nlp.evaluate import EvalInputError
    from nlp.scoring.job import JobMismatch
    from nlp.splits import SplitManifestError
    from signals.macro import FredMDFormatError
    from signals.market import FrenchFormatError
    from signals.store import StoreError
    from timing.config import ConfigError

    for cls in (ContractError, EvalInputError, SplitManifestError, JobMismatch, FrenchFormatError,
                FredMDFormatError, StoreError, ConfigError):
        assert issubclass(cls, AltsignalError), cls


def test_timing_config_validation_error_names_file_and_field(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text('factors = ["Mkt-RF", "XYZ"]\n[walkforward]\nrefit_every = 0\n')
    line = _one_error_line(_cli("timing", "backtest", "--config", str(cfg)))
    assert str(cfg) in line and "factors: unknown factor(s) ['XYZ']" in line
    assert "walkforward.refit_every" in line


def test_toml_syntax_error_names_the_file(tmp_path):
    cfg = tmp_path / "broken.toml"
    cfg.write_text('factors = ["Mkt-RF"\n')
    line = _one_error_line(_cli("timing", "backtest", "--config", str(cfg)))
    assert str(cfg) in line and "TOML syntax error" in line


def test_extends_loop_is_a_clear_error(tmp_path):
    (tmp_path / "a.toml").write_text('extends = "b.toml"\nname = "a"\n')
    (tmp_path / "b.toml").write_text('extends = "a.toml"\n')
    line = _one_error_line(_cli("run", "--config", str(tmp_path / "a.toml")))
    assert "`extends` loop" in line and "a.toml -> " in line and "b.toml" in line


def test_run_config_field_error_names_file_and_field(tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'extends = "{DEFAULT_RUN_CONFIG}"\n[scoring.job]\nengine_kind = "gpu-farm"\n')
    line = _one_error_line(_cli("run", "--config", str(cfg)))
    assert str(cfg) in line and "scoring.job.engine_kind" in line


def test_date_range_without_data_is_a_clear_error(tmp_path):
    cfg = tmp_path / "old.toml"
    cfg.write_text('factors = ["Mkt-RF"]\nbaselines = ["historical_mean"]\n[data]\nstart = "1900-01-31"\nend = "1910-12-31"\n')
    line = _one_error_line(_cli("timing", "backtest", "--config", str(cfg), "--out", str(tmp_path / "o")))
    assert "no monthly factor data between data.start 1900-01-31 and data.end 1910-12-31" in line


def test_missing_timing_config_is_reported_before_any_stage(tmp_path):
    out = tmp_path / "run"
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'extends = "{DEFAULT_RUN_CONFIG}"\noutput_dir = "{out}"\n[timing]\nextends = "nope.toml"\n')
    line = _one_error_line(_cli("run", "--config", str(cfg)))
    assert str(tmp_path / "nope.toml") in line and "does not exist" in line
    assert not out.exists()  # nothing was scored or written


def test_missing_model_folder_is_reported_before_any_stage(tmp_path):
    cfg = load_run_config(DEFAULT_RUN_CONFIG)
    cfg = cfg.model_copy(update={"output_dir": tmp_path / "run",
                                 "scoring": cfg.scoring.model_copy(update={"model": str(tmp_path / "no-model")})})
    with pytest.raises(AltsignalError, match="not a model artifact"):
        check_run(cfg)
    assert not (tmp_path / "run").exists()


def test_timing_base_is_relative_to_the_file_that_names_it(tmp_path):
    cfg = tmp_path / "mine.toml"
    cfg.write_text(f'extends = "{DEFAULT_RUN_CONFIG}"\nname = "mine"\n')
    (tmp_path / "timing.toml").write_text('factors = ["Mkt-RF"]\n')
    assert load_run_config(cfg).timing == load_config(CONFIG_DIR / "default.toml")  # run_default's own base
    cfg.write_text(f'extends = "{DEFAULT_RUN_CONFIG}"\nname = "mine"\n[timing]\nextends = "timing.toml"\n')
    assert load_run_config(cfg).timing.factors == ("Mkt-RF",)


@pytest.mark.parametrize("stage", ["documents", "scores", "features", "timing"])
def test_existing_user_folders_are_never_deleted(tmp_path, stage):
    out = tmp_path / "run"
    mine = out / stage / "keep.txt"
    mine.parent.mkdir(parents=True)
    mine.write_text("the user's own file")
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'extends = "{DEFAULT_RUN_CONFIG}"\noutput_dir = "{out}"\n')
    for extra in ([], ["--force", stage]):
        res = _cli("run", "--config", str(cfg), *extra)
        line = _one_error_line(res)
        assert f"{out / stage} was not written by `altsignal run`" in line and "hint: choose another" in res.output
        assert mine.read_text() == "the user's own file"
    assert sorted(p.name for p in out.iterdir()) == [stage]  # no stage ran


def test_output_folder_that_is_a_file_is_refused_before_any_stage(tmp_path):
    out = tmp_path / "run"
    out.write_text("not a folder")
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'extends = "{DEFAULT_RUN_CONFIG}"\noutput_dir = "{out}"\n')
    assert f"output folder {out} is a file" in _one_error_line(_cli("run", "--config", str(cfg)))
    assert out.read_text() == "not a folder"


def test_stage_is_built_aside_and_renamed_into_place(tmp_path):
    folder = tmp_path / "scores"
    seen = []

    def build(where):
        seen.append(where)
        (where / "part.txt").write_text("rows")
        return {"rows": 1}

    first = cached_stage(folder, "k1", build)
    assert first["rows"] == 1 and first["cached"] is False
    assert seen == [tmp_path / "scores.partial"] and not seen[0].exists()
    assert json.loads((folder / "stage.json").read_text())["status"] == "complete"
    assert cached_stage(folder, "k1", build)["cached"] is True and len(seen) == 1
    # another key replaces the run's own folder, never before the new one is complete
    assert cached_stage(folder, "k2", lambda where: {"rows": 2})["rows"] == 2
    assert not (folder / "part.txt").exists()


def test_partial_killed_while_writing_its_first_marker_is_still_the_runs(tmp_path):
    partial = tmp_path / "timing.partial"
    partial.mkdir()
    (partial / ".stage.json.x1y2.tmp").write_text('{"key"')  # kill -9 inside the atomic write
    assert cached_stage(tmp_path / "timing", "k", lambda where: {"ok": True})["ok"] is True
    (tmp_path / "scores.partial").mkdir()
    (tmp_path / "scores.partial" / "notes.txt").write_text("mine")
    with pytest.raises(AltsignalError, match="was not written by `altsignal run`"):
        cached_stage(tmp_path / "scores", "k", lambda where: {})


def test_interrupted_stage_is_marked_and_kept_for_resume(tmp_path):
    folder = tmp_path / "scores"

    def interrupted(where):
        (where / "chunk-0").write_text("done")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cached_stage(folder, "k", interrupted, resume=True)
    partial = tmp_path / "scores.partial"
    assert json.loads((partial / "stage.json").read_text())["status"] == "interrupted"
    assert not folder.exists()
    resumed = cached_stage(folder, "k", lambda where: {"chunks": sorted(p.name for p in where.iterdir())}, resume=True)
    assert "chunk-0" in resumed["chunks"]  # the finished chunk was still there
    assert not partial.exists()


def test_usage_error_from_the_command_line():
    line = _one_error_line(_cli("timing", "backtest", "--no-such-option"))
    assert "No such option" in line


def test_unexpected_error_exits_1_and_verbose_shows_the_traceback(tmp_path, monkeypatch):
    import timing.config

    def broken(path, overrides=()):
        raise ZeroDivisionError("simulated bug")

    monkeypatch.setattr(timing.config, "load_config", broken)
    cfg = CONFIG_DIR / "default.toml"
    res = _cli("timing", "report", "--config", str(cfg))
    line = _one_error_line(res, EXIT_BUG)
    assert line == "error: unexpected ZeroDivisionError: simulated bug"
    assert "rerun with --verbose" in res.output
    res = _cli("--verbose", "timing", "report", "--config", str(cfg))
    assert res.exit_code == EXIT_BUG
    assert "Traceback" in res.output and "ZeroDivisionError: simulated bug" in res.output


def test_verbose_shows_the_traceback_of_known_errors_too(tmp_path):
    cfg = tmp_path / "broken.toml"
    cfg.write_text("factors = [\n")
    res = _cli("--verbose", "timing", "backtest", "--config", str(cfg))
    assert res.exit_code == EXIT_USAGE and "Traceback" in res.output and "error: " in res.output


# -- one run config: validated whole before any stage, --set, --out -----------------------------
@pytest.mark.parametrize("section", ['[signals.sessions]\ncutof = "15:00"', "[timing.network]\nlookbak = 3",
                                     "[research]\nhorizon = 5", '[scoring.job]\nengine_kind = "gpu-farm"'])
def test_a_bad_key_in_any_section_fails_at_once_and_writes_nothing(tmp_path, section):
    out = tmp_path / "run"
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'extends = "{DEFAULT_RUN_CONFIG}"\noutput_dir = "{out}"\n{section}\n')
    line = _one_error_line(_cli("run", "--config", str(cfg)))
    assert str(cfg) in line and section.split("\n")[1].split(" ")[0] in line
    assert not out.exists()


def test_set_reaches_the_run_config_and_unknown_keys_name_the_valid_ones(tmp_path):
    out = tmp_path / "run"
    base = ["run", "--set", f'output_dir="{out}"']
    line = _one_error_line(_cli(*base, "--set", "timing.network.hiden=16"))
    assert "unknown key 'hiden' at timing.network; valid keys: dropout, encoder" in line
    line = _one_error_line(_cli(*base, "--set", f"scoring.model={tmp_path / 'no-model'}"))
    assert f"scoring.model {tmp_path / 'no-model'} is not a model artifact" in line
    line = _one_error_line(_cli(*base, "--set", "timing.data.macro_source=/no/fred.csv", "--set", "timing.network.hidden=4"))
    assert "market, macro or extra predictor source /no/fred.csv does not exist" in line
    line = _one_error_line(_cli(*base, "--set", "timing.network.hidden=0"))
    assert "--set timing.network.hidden=0: timing.network.hidden" in line
    assert not out.exists()


def test_set_on_timing_commands(tmp_path):
    line = _one_error_line(_cli("timing", "backtest", "--config", str(CONFIG_DIR / "default.toml"),
                                "--set", "walkforward.refit_every=0"))
    assert "walkforward.refit_every" in line
    line = _one_error_line(_cli("timing", "fit", "--set", "portfolio.vol_taget=0.2"))
    assert "unknown key 'vol_taget' at portfolio" in line


def test_old_output_dir_spelling_warns_and_still_works(tmp_path):
    empty = tmp_path / "empty"
    res = _cli("timing", "report", "--output-dir", str(empty))
    assert res.exit_code == EXIT_USAGE
    assert "deprecated: `--output-dir` is now `--out`" in res.output and f"no backtest in {empty}" in res.output
    afile = tmp_path / "afile"
    afile.write_text("x")
    res = _cli("run", "--output-dir", str(afile))
    assert "deprecated: `--output-dir` is now `--out`" in res.output and f"output folder {afile} is a file" in res.output
    assert "--output-dir" not in _cli("run", "--help").output and "--out" in _cli("run", "--help").output
    line = _one_error_line(_cli("run", "--out", str(afile), "--output-dir", str(afile)))
    assert "give only --out" in line


def test_features_commands_tell_bad_input_from_bugs(tmp_path, monkeypatch):
    """Bad input is found where it is read (exit 2, one line); any other ValueError in a features
    command is a bug (exit 1), not a usage error."""
    db = tmp_path / "none.duckdb"
    line = _one_error_line(_cli("features", "show", "--db", str(db), "--as-of", "2017-01-31"))
    assert "--as-of '2017-01-31' has no UTC offset" in line
    line = _one_error_line(_cli("features", "show", "--db", str(db), "--as-of", "yesterday-ish"))
    assert "is not an ISO instant" in line

    import signals.store

    def broken(*args, **kwargs):
        raise ValueError("an internal inconsistency")

    monkeypatch.setattr(signals.store.FeatureStore, "__init__", broken)
    res = _cli("features", "show", "--db", str(db))
    assert res.exit_code == EXIT_BUG and "unexpected ValueError" in res.output and "this is a bug" in res.output


def test_models_commands_tell_bad_input_from_bugs(tmp_path, monkeypatch):
    """Unknown names and bad options are usage errors raised where they are found; a ValueError
    or RuntimeError from deeper down (torch, a bug) is not turned into one."""
    line = _one_error_line(_cli("models", "eval", "nosuch:set", "-o", str(tmp_path / "a")))
    assert line.startswith("error: unknown labeled set 'nosuch:set'")  # no KeyError quotes
    line = _one_error_line(_cli("models", "eval", "sample:labeled", "--label-map", "{oops", "-o", str(tmp_path / "b")))
    assert "bad --label-map" in line
    line = _one_error_line(_cli("models", "explain", "Profit rose.", "-m", str(tmp_path / "not_a_model")))
    assert "is not an altsignal model artifact" in line

    import nlp.evaluate

    for exc in (ValueError("an internal inconsistency"), RuntimeError("a kernel failed")):
        def broken(*args, exc=exc, **kwargs):
            raise exc

        monkeypatch.setattr(nlp.evaluate, "evaluate", broken)
        res = _cli("models", "eval", "sample:labeled", "-o", str(tmp_path / "c"))
        assert res.exit_code == EXIT_BUG and "this is a bug" in res.output, res.output


# --- issue 30: timing commands give clear errors where `run` does -----------------------------------------

def test_a_missing_extra_predictor_file_is_a_clear_error_in_backtest(tmp_path):
    line = _one_error_line(_cli("timing", "backtest", "--out", str(tmp_path / "o"),
                                "--set", 'data.extra_predictors=[{path="nope.csv", name="x"}]'))
    assert "nope.csv" in line and "not found" in line


@pytest.mark.parametrize("as_of, named", [("1900-01-31", "no row on or before 1900-01-31"),
                                          ("2100-01-31", "--allow-future-as-of")])
def test_predict_refuses_an_as_of_before_or_far_past_the_panel(tmp_path, as_of, named):
    res = _cli("timing", "predict", "--as-of", as_of, "--out", str(tmp_path / "o"))
    assert named in res.output, res.output
    _one_error_line(res)
    assert not (tmp_path / "o" / "allocations.parquet").exists()
