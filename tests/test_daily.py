"""Daily operation (``altsignal run --as-of``, ``altsignal replay``): replay equals one batch run,
a re-run changes nothing, time only moves forward, and kill -9 at any step finishes when re-run.

CI-sized: the sample corpus, a tiny scoring model, a small timing network.
"""
from __future__ import annotations

import json
import signal
from pathlib import Path

import pandas as pd
import pytest
from scoring_support import tiny_model  # noqa: F401  (fixture)
from subprocess_jobs import Job, duckdb_table, run_ok

from altsignal.daily import read_state, replay, run_day, session_instants
from altsignal.run_config import DEFAULT_RUN_CONFIG, load_run_config
from core.errors import UsageError

pytestmark = pytest.mark.slow

SMALL = [
    "timing.baselines=[]",
    "timing.network.seeds=[0]",
    "timing.network.epochs=5",
    "timing.network.grid={ weight_decay = [1e-3] }",
    "timing.network.windows=[]",
    "scoring.job.engine.numeric=fp32",
]
FIRST_DAY, REPLAY = "2017-02-17", ("2017-02-21", "2017-02-24")  # 2017-02-20 was a holiday: 4 sessions


def _cfg(model: Path, out: Path):
    cfg = load_run_config(DEFAULT_RUN_CONFIG, [*SMALL, f"scoring.model={model}"])
    return cfg.model_copy(update={"output_dir": out})


def _cutoff(cfg, day: str) -> pd.Timestamp:
    return session_instants(cfg, day, day)[0].tz_localize("UTC")


def _store(out: Path) -> dict[str, pd.DataFrame]:
    db = out / "daily" / "features.duckdb"
    # a score row's `batch` is the scoring job's batch it was computed in: a property of the job
    tables = {"documents": duckdb_table(db, "documents"), "scores": duckdb_table(db, "scores", drop=("batch",))}
    import duckdb

    # the latest version of each row (replay: many builds; batch: one)
    with duckdb.connect(str(db), read_only=True) as con:
        latest = con.execute("""SELECT * EXCLUDE (ingested_at) FROM daily_features
                                QUALIFY row_number() OVER (PARTITION BY date, entity, source ORDER BY ingested_at DESC) = 1""").df()
    tables["daily_features"] = latest[~latest["deleted"]].sort_values(["date", "entity", "source"]).reset_index(drop=True)
    return tables


def test_replay_equals_one_batch_run_and_reruns_change_nothing(tiny_model, tmp_path):
    daily = _cfg(tiny_model, tmp_path / "daily")
    run_day(daily, _cutoff(daily, FIRST_DAY))
    records = replay(daily, *REPLAY)
    assert len(records) == 4 and all(r["health"] in ("ok", "info", "warn", "breach") for r in records)
    assert sum(r["documents"]["sample_news"]["documents"] for r in records) > 0  # the replay released news

    last = _cutoff(daily, REPLAY[1])
    batch = _cfg(tiny_model, tmp_path / "batch")
    run_day(batch, last, decide_from=pd.Timestamp(FIRST_DAY))

    got, want = _store(tmp_path / "daily"), _store(tmp_path / "batch")
    for table in ("documents", "scores"):
        pd.testing.assert_frame_equal(got[table], want[table])
    pd.testing.assert_frame_equal(got["daily_features"], want["daily_features"], rtol=1e-12)
    allocations = [pd.read_parquet(p / "daily" / "timing" / "allocations.parquet") for p in (tmp_path / "daily", tmp_path / "batch")]
    assert allocations[0]["as_of"].nunique() == 5
    pd.testing.assert_frame_equal(allocations[0], allocations[1], rtol=1e-9)

    # a re-run for the same as_of reuses the day's fixed batch, adds nothing and changes nothing
    before = _store(tmp_path / "daily") | {"builds": duckdb_table(tmp_path / "daily" / "daily" / "features.duckdb", "builds")}
    again = run_day(daily, last)
    assert again["store"]["rows_added"] == 0 and again["store"]["built"] is False
    after = _store(tmp_path / "daily") | {"builds": duckdb_table(tmp_path / "daily" / "daily" / "features.duckdb", "builds")}
    for table, frame in before.items():
        pd.testing.assert_frame_equal(after[table], frame)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "daily" / "daily" / "timing" / "allocations.parquet"), allocations[0])
    with pytest.raises(UsageError, match="precedes the last completed run"):
        run_day(daily, _cutoff(daily, FIRST_DAY))


def _daily_config(tmp_path: Path, model: Path, out: Path) -> Path:
    from timing import CONFIG_DIR

    cfg = tmp_path / f"{out.name}.toml"
    cfg.write_text(f'extends = "{CONFIG_DIR / "run_default.toml"}"\nname = "daily"\noutput_dir = "{out}"\n'
                   f'[scoring]\nmodel = "{model}"\n')
    return cfg


def test_kill_9_at_every_step_then_rerun_equals_an_uninterrupted_day(tiny_model, tmp_path):
    def args(out: Path) -> list[str]:
        sets = [a for s in SMALL for a in ("--set", s)]
        return ["run", "--config", str(_daily_config(tmp_path, tiny_model, out)), "--as-of",
                "2017-02-17T21:30:00+00:00", *sets]

    run_ok(args(tmp_path / "ref"))
    out = tmp_path / "out"
    day = out / "daily"
    batch = day / "batches" / "20170217T213000Z"
    points = [  # each: the step reached, or (missed) any later one
        lambda job: (batch / "sample_news.parquet").exists(),
        lambda job: (batch / "scores" / "sample_news" / "manifest.json").exists(),
        lambda job: (batch / "scores" / "sample_transcripts" / "manifest.json").exists(),
        lambda job: (day / "features.duckdb").exists(),
        lambda job: (day / "timing").exists(),
        lambda job: (day / "health").exists(),
    ]
    for ready in points:
        job = Job(args(out))
        if not job.wait_for(ready, timeout=900):
            assert job.finish() in (0, 4), job.output[-3000:]
            break
        rc, left = job.signal(signal.SIGKILL)
        assert rc == -signal.SIGKILL and left == []
    rc = Job(args(out)).finish()
    assert rc in (0, 4)  # 4: a health breach, reported after every output is written
    got, want = _store(out), _store(tmp_path / "ref")
    for table in ("documents", "scores"):
        pd.testing.assert_frame_equal(got[table], want[table])
    pd.testing.assert_frame_equal(got["daily_features"], want["daily_features"], rtol=1e-12)
    pd.testing.assert_frame_equal(pd.read_parquet(day / "timing" / "allocations.parquet"),
                                  pd.read_parquet(tmp_path / "ref" / "daily" / "timing" / "allocations.parquet"))
    state = json.loads((day / "state.json").read_text())
    assert state["as_of"] == "2017-02-17T21:30:00+00:00" and len(state["runs"]) == 1
    assert read_state(day)["runs"][0]["health"] == read_state(tmp_path / "ref" / "daily")["runs"][0]["health"]


def test_text_group_in_daily_runs_equals_one_batch_run(tiny_model, tmp_path):
    """With [annotations] on, the text store of a replay equals one run's (novelty looks back only
    its window, so annotating each day's documents with their window gives the whole history's)."""
    import duckdb

    def cfg(out):
        return _cfg(tiny_model, out).model_copy(update={"annotations": _cfg(tiny_model, out).annotations.model_copy(
            update={"enabled": True})})

    daily = cfg(tmp_path / "daily")
    run_day(daily, _cutoff(daily, FIRST_DAY))
    replay(daily, REPLAY[0], "2017-02-22")
    batch = cfg(tmp_path / "batch")
    run_day(batch, _cutoff(batch, "2017-02-22"))

    def text(out):
        with duckdb.connect(str(out / "daily" / "text.duckdb"), read_only=True) as con:
            return con.execute("SELECT * EXCLUDE (batch) FROM scores ORDER BY ALL").df()

    got, want = text(tmp_path / "daily"), text(tmp_path / "batch")
    assert len(got) > 0 and set(got["source"]) >= {"news.novel", "social.novel"}
    pd.testing.assert_frame_equal(got, want)
