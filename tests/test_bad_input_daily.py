"""Bad input in daily operation (issue 30): a far-future or naive --as-of, a failed day, rollback.

A far-future ``--as-of`` is refused before anything is written, a day that fails leaves the store
as it was (real processes), and a random sequence of daily commands never leaves the store
unusable (in-process). CI-sized: the sample corpus, the tiny scoring model, test_daily's small
timing network.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from scoring_support import tiny_model  # noqa: F401  (fixture)
from subprocess_jobs import Job
from test_daily import SMALL, _cfg, _cutoff, _daily_config
from typer.testing import CliRunner

from altsignal.cli import app
from altsignal.daily import read_state, rollback, run_day
from core.errors import UsageError
from signals.store import FeatureStore


def _error(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in output and "this is a bug" not in output, output
    return lines[0]


def _args(tmp_path: Path, model: Path, out: Path, as_of: str, *extra: str) -> list[str]:
    sets = [a for s in SMALL for a in ("--set", s)]
    return ["run", "--config", str(_daily_config(tmp_path, model, out)), "--as-of", as_of, *sets, *extra]


def _snapshot(out: Path) -> dict:
    """Every table of the daily store (all versions, all builds) and the state."""
    db = out / "daily" / "features.duckdb"
    with duckdb.connect(str(db), read_only=True) as con:
        tables = {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").df()
                  for t in ("documents", "scores", "daily_features", "builds")}
    return tables | {"state": read_state(out / "daily")}


def _same(a: dict, b: dict) -> None:
    assert a["state"] == b["state"]
    for t in ("documents", "scores", "daily_features", "builds"):
        pd.testing.assert_frame_equal(a[t], b[t])


@pytest.mark.parametrize("as_of", ["2100-01-01T21:00:00Z", "now", "2017-03-20T21:00:00Z"])
def test_an_as_of_far_past_the_data_or_the_clock_is_refused_before_anything_is_written(tiny_model, tmp_path, as_of):
    res = CliRunner().invoke(app, _args(tmp_path, tiny_model, tmp_path / "out", as_of))
    assert res.exit_code == 2 and "--allow-future-as-of" in res.output
    assert "after the latest input document" in _error(res.output) or "after the clock" in _error(res.output)
    assert not (tmp_path / "out").exists()


def test_a_naive_as_of_is_refused_as_features_build_refuses_it(tiny_model, tmp_path):
    for cmd in (_args(tmp_path, tiny_model, tmp_path / "out", "2017-02-17T21:00:00"),
                ["features", "build", "--scores", str(tmp_path), "--db", str(tmp_path / "f.duckdb"),
                 "--as-of", "2017-02-17T21:00:00"]):
        res = CliRunner().invoke(app, cmd)
        assert res.exit_code == 2 and "has no UTC offset" in _error(res.output)
    res = CliRunner().invoke(app, _args(tmp_path, tiny_model, tmp_path / "out", "2017-02-17T21:00:00+15:00"))
    assert res.exit_code == 2 and "outside -12:00..+14:00" in _error(res.output)
    assert not (tmp_path / "out").exists() and not (tmp_path / "f.duckdb").exists()


def test_a_far_future_as_of_writes_nothing_in_a_real_process(tiny_model, tmp_path):
    out = tmp_path / "out"
    job = Job(_args(tmp_path, tiny_model, out, "2100-01-01T21:00:00Z"))
    assert job.finish() == 2
    assert "after the clock" in _error(job.output) and not out.exists()


def test_rollback_to_an_unknown_run_is_a_usage_error(tmp_path):
    res = CliRunner().invoke(app, ["rollback", "--out", str(tmp_path / "out"), "--to", "2017-02-17T21:00:00Z"])
    assert res.exit_code == 2 and "no completed daily run" in _error(res.output)
    res = CliRunner().invoke(app, ["rollback", "--out", str(tmp_path / "out"), "--to", "2017-02-17"])
    assert res.exit_code == 2 and "has no UTC offset" in _error(res.output)


@pytest.mark.slow
def test_a_failed_day_leaves_the_store_as_it_was_in_a_real_process(tiny_model, tmp_path):
    out = tmp_path / "out"
    assert Job(_args(tmp_path, tiny_model, out, "2017-02-17T21:00:00Z")).finish() in (0, 4)
    before = _snapshot(out)
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file() and "batches" not in p.parts)
    # the next day adds documents and builds, then its timing step fails on a missing predictor file
    job = Job(_args(tmp_path, tiny_model, out, "2017-02-21T21:00:00Z",
                    "--set", 'timing.data.extra_predictors=[{path="nope.csv", name="x"}]'))
    assert job.finish() == 2 and "nope.csv" in _error(job.output)
    _same(_snapshot(out), before)
    assert sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file() and "batches" not in p.parts) == files
    # a far-future day with the override runs; rollback undoes it and the real next day runs
    assert Job(_args(tmp_path, tiny_model, out, "2017-03-20T21:00:00Z", "--allow-future-as-of")).finish() in (0, 4)
    res = CliRunner().invoke(app, ["rollback", "--config", str(tmp_path / "out.toml"), "--to", "2017-02-17T21:00:00Z"])
    assert res.exit_code == 0, res.output
    _same(_snapshot(out), before)
    assert Job(_args(tmp_path, tiny_model, out, "2017-02-21T21:00:00Z")).finish() in (0, 4)


@pytest.mark.slow
def test_random_daily_commands_never_leave_the_store_unusable(tiny_model, tmp_path):
    """A seeded random sequence of days, far-future days, repeats and rollbacks: after each step the
    store opens, its last build is the state's as_of, reads at that as_of answer, and a rollback
    gives back exactly the store its run left."""
    cfg = _cfg(tiny_model, tmp_path)
    days = [_cutoff(cfg, d) for d in ("2017-02-17", "2017-02-21", "2017-02-22", "2017-02-23")]
    rng = random.Random(30)
    snapshots: dict[pd.Timestamp, dict] = {}
    done: list[pd.Timestamp] = []
    for step in range(8):
        action = rng.choice(["next", "next", "future", "repeat", "rollback"]) if step else "next"
        if action == "future":
            with pytest.raises(UsageError, match="after the clock") as refused:
                run_day(cfg, pd.Timestamp("2100-01-01T21:00Z"))
            assert "--allow-future-as-of" in refused.value.hint
        elif action == "repeat" and done:
            run_day(cfg, done[-1])
        elif action == "rollback" and len(done) > 1:
            to = rng.choice(done[:-1])
            rollback(cfg, to)
            done = [d for d in done if d <= to]
            _same(_snapshot(tmp_path), snapshots[to])
        elif len(done) < len(days):
            run_day(cfg, days[len(done)])
            done.append(days[len(done)])
            snapshots[done[-1]] = _snapshot(tmp_path)
        state = read_state(tmp_path / "daily")
        with FeatureStore(tmp_path / "daily" / "features.duckdb", cfg.signals, read_only=True) as store:
            assert store.last_build() == done[-1] == pd.Timestamp(state["as_of"])
            assert not store.daily(as_of=done[-1]).empty
        assert not (tmp_path / "daily" / "staged.partial").exists()
    assert json.loads((tmp_path / "daily" / "state.json").read_text())["as_of"] == done[-1].isoformat()
