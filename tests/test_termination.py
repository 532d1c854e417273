"""SIGTERM and SIGINT stop every long command, its pools and workers; a re-run finishes the job.

Each test runs the command once uninterrupted (the reference), then in a fresh output folder:
interrupted by SIGTERM mid-way, re-run and interrupted by SIGINT mid-way, re-run to completion.
After each signal the command must exit 143 / 130 and, within 10 s of the signal, no process of
its process group may be left (the signal goes to the main process only, as from a scheduler).
The final output must equal the reference. CI-sized: a tiny model, the sample corpus, a tiny
timing config.
"""
from __future__ import annotations

import json
import signal
from pathlib import Path

import pandas as pd
import pytest
from safetensors.numpy import load_file
from scoring_support import tiny_model  # noqa: F401  (fixture)
from subprocess_jobs import Job, duckdb_table, frame, run_ok

from core.paths import SAMPLE_DIR

pytestmark = pytest.mark.slow

NEWS = SAMPLE_DIR / "news.csv"
TINY_TIMING = """
factors = ["Mkt-RF", "SMB"]
baselines = ["historical_mean", "elastic_net"]
[data]
start = "2009-01-31"
end = "2017-03-31"
[network]
epochs = 5
seeds = [0]
grid = { weight_decay = [1e-3] }
[walkforward]
min_train = 48
refit_every = 12
n_jobs = 2
[explain]
permutation_repeats = 1
ig_steps = 4
ablate_groups = []
"""


def _interrupt_twice_then_finish(args: list[str], ready, on_interrupted=None) -> str:
    """SIGTERM, then SIGINT, each mid-way through ``args``; then a run to the end. Returns its output."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        job = Job(args)
        job.wait_until(ready)
        rc, left = job.signal(signum)
        assert rc == 128 + signum, f"exit {rc} after {signum.name}:\n{job.output[-3000:]}"
        assert left == [], f"processes left after {signum.name}: {left}"
        assert f"interrupted by {signum.name}" in job.output
        if on_interrupted is not None:
            on_interrupted(signum)
    return run_ok(args)


def _line(text: str):
    return lambda job: text in job.output


def _workers(n: int):
    """Ready once the job runs ``n`` loky worker processes (the pool the issue saw survive)."""
    return lambda job: sum("loky" in " ".join(p.cmdline()) for p in job.children() if p.is_running()) >= n


def test_score(tiny_model, tmp_path):
    def args(out):
        return ["score", "--input", str(NEWS), "--source", "news", "--model", str(tiny_model), "--out", str(out),
                "--numeric", "fp32", "--batch-tokens", "512", "--chunk-rows", "10", "--threads", "1", "--quiet"]

    run_ok(args(tmp_path / "ref"))
    out = tmp_path / "out"
    parts = out / "parts.jsonl"

    def chunks() -> int:
        return parts.read_text().count("\n") if parts.exists() else 0

    before = {"n": 0}

    def ready(job) -> bool:  # one more chunk than the previous attempt finished
        return chunks() > before["n"]

    def interrupted(signum):
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["status"] == "interrupted" and manifest["signal"] == signum.name
        before["n"] = chunks()
        assert before["n"] < 31  # 306 rows in chunks of 10: really mid-job

    _interrupt_twice_then_finish(args(out), ready, interrupted)
    assert json.loads((out / "manifest.json").read_text())["status"] == "complete"
    # ingested_at is fixed per job when it is created: the two jobs differ there only
    pd.testing.assert_frame_equal(frame(out / "scores", drop=("ingested_at",)),
                                  frame(tmp_path / "ref" / "scores", drop=("ingested_at",)))


def test_features_build(tmp_path):
    import pyarrow.parquet as pq

    from signals.synthetic import synthetic_scores

    scores = tmp_path / "scores.parquet"
    pq.write_table(synthetic_scores(n_rows=150_000, n_entities=200, years=4.0, seed=0), scores)

    def args(db):
        return ["features", "build", "--scores", str(scores), "--db", str(db), "--as-of", "2030-01-01T00:00:00+00:00"]

    def store_open(job) -> bool:
        return any(f.path.endswith(".duckdb") for p in [job.proc.pid] for f in _open_files(p))

    run_ok(args(tmp_path / "ref.duckdb"))
    db = tmp_path / "out.duckdb"
    _interrupt_twice_then_finish(args(db), store_open)
    for table in ("scores", "daily_features"):
        pd.testing.assert_frame_equal(duckdb_table(db, table, drop=("ingested_at",)),
                                      duckdb_table(tmp_path / "ref.duckdb", table, drop=("ingested_at",)))


def _open_files(pid: int):
    import psutil

    try:
        return psutil.Process(pid).open_files()
    except psutil.Error:
        return []


def test_timing_backtest(tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY_TIMING)

    def args(out):
        return ["timing", "backtest", "--config", str(cfg), "--out", str(out), "--explain", "none"]

    run_ok(args(tmp_path / "ref"))
    out = tmp_path / "out"
    _interrupt_twice_then_finish(args(out), _workers(2))
    for name in ("forecasts.parquet", "returns.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(out / name), pd.read_parquet(tmp_path / "ref" / name))


def test_finetune(tiny_model, tmp_path):
    from _models_tiny import TINY

    train = tmp_path / "train.csv"
    pd.concat([TINY] * 4).to_csv(train, index=False)

    def args(out):
        return ["models", "finetune", "-o", str(out), "--base", str(tiny_model), "--train", str(train), "--val", str(train),
                "--epochs", "12", "--batch-size", "8", "--threads", "1", "--seed", "0", "--no-calibrate",
                "--max-train-examples", "64"]

    run_ok(args(tmp_path / "ref"))
    out = tmp_path / "out"
    _interrupt_twice_then_finish(args(out), _line("epoch 1.00"))
    ref, got = (load_file(str(p / "adapter" / "adapter_model.safetensors")) for p in (tmp_path / "ref", out))
    assert ref.keys() == got.keys()
    for k in ref:
        assert (ref[k] == got[k]).all(), k


def test_eval(tiny_model, tmp_path):
    from _models_tiny import TINY

    data = tmp_path / "set.csv"
    pd.concat([TINY] * 4).to_csv(data, index=False)

    def args(out):
        return ["models", "eval", str(data), "-m", str(tiny_model), "-o", str(out), "--n-boot", "20000", "--seed", "0"]

    def content(value):  # results without the command line and the measured speeds
        if isinstance(value, dict):
            return {k: content(v) for k, v in value.items()
                    if k != "command" and not k.endswith(("seconds", "_per_s"))}
        return value

    def results(folder: Path) -> dict:
        return content(json.loads((folder / "results.json").read_text()))

    run_ok(args(tmp_path / "ref"))
    out = tmp_path / "out"
    _interrupt_twice_then_finish(args(out), _line("engine: model"))
    assert results(out) == results(tmp_path / "ref")


def _run_config(tmp_path: Path, tiny_model: Path, out: Path) -> Path:
    """The default run, CI-sized: sample news only, the tiny model, a tiny timing config."""
    from timing import CONFIG_DIR

    timing = tmp_path / "timing.toml"
    timing.write_text(TINY_TIMING)
    cfg = tmp_path / f"{out.name}.toml"
    cfg.write_text(f"""
extends = "{CONFIG_DIR / 'run_default.toml'}"
name = "tiny"
output_dir = "{out}"
[documents]
inputs = [{{ preset = "sample:news" }}]
[scoring]
model = "{tiny_model}"
job = {{ engine = {{ numeric = "fp32" }} }}
[timing]
extends = "{timing}"
""")
    return cfg


def assert_same_run(out: Path, ref: Path) -> None:
    """The outputs of two runs are equal in content (not in timestamps)."""
    pd.testing.assert_frame_equal(frame(out / "documents" / "sample_news.parquet", drop=("ingested_at",)),
                                  frame(ref / "documents" / "sample_news.parquet", drop=("ingested_at",)))
    pd.testing.assert_frame_equal(frame(out / "scores" / "sample_news" / "scores", drop=("ingested_at",)),
                                  frame(ref / "scores" / "sample_news" / "scores", drop=("ingested_at",)))
    db, ref_db = out / "features" / "features.duckdb", ref / "features" / "features.duckdb"
    for table in ("documents", "scores", "daily_features"):
        pd.testing.assert_frame_equal(duckdb_table(db, table, drop=("ingested_at",)),
                                      duckdb_table(ref_db, table, drop=("ingested_at",)))
    for name in ("forecasts.parquet", "returns.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(out / "timing" / name), pd.read_parquet(ref / "timing" / name))
    assert not list(out.glob("*.partial"))


def test_run(tiny_model, tmp_path):
    run_ok(["run", "--config", str(_run_config(tmp_path, tiny_model, tmp_path / "ref"))])
    out = tmp_path / "out"
    args = ["run", "--config", str(_run_config(tmp_path, tiny_model, out))]
    state = {"stage": "scores"}

    def ready(job) -> bool:  # SIGTERM while scoring, SIGINT while the timing stage's workers run
        if state["stage"] == "scores":
            return (out / "scores.partial" / "sample_news" / "manifest.json").exists()
        return (out / "timing.partial").exists() and _workers(2)(job)

    def interrupted(signum):
        stage = json.loads((out / f"{state['stage']}.partial" / "stage.json").read_text())
        assert stage["status"] == "interrupted" and stage["signal"] == signum.name
        state["stage"] = "timing"

    _interrupt_twice_then_finish(args, ready, interrupted)
    assert_same_run(out, tmp_path / "ref")
