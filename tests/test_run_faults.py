"""Fault injection: ``kill -9`` of ``altsignal run`` at several points in each stage.

One output folder, killed again and again at successive points (the documents stage, before and
after a scoring job finished, while the DuckDB store is built, before and while the timing
workers run), then run to the end: its documents, scores, store tables and timing outputs equal
an uninterrupted run's, in content. After every kill no process of the run's group survives
(pool workers die with their parent).
"""
from __future__ import annotations

import signal

import pytest
from scoring_support import tiny_model  # noqa: F401  (fixture)
from subprocess_jobs import Job, run_ok
from test_termination import _run_config, _workers, assert_same_run

pytestmark = pytest.mark.slow


def test_sigkill_at_every_stage_then_rerun_equals_an_uninterrupted_run(tiny_model, tmp_path):
    run_ok(["run", "--config", str(_run_config(tmp_path, tiny_model, tmp_path / "ref"))])
    out = tmp_path / "out"
    args = ["run", "--config", str(_run_config(tmp_path, tiny_model, out))]

    def exists(name: str, stage: str):  # the point, or (missed) any time after its stage finished
        return lambda job: (out / name).exists() or (out / stage).exists()

    points = [
        exists("documents.partial", "documents"),
        exists("scores.partial/sample_news/manifest.json", "scores"),
        exists("scores.partial/sample_news/parts.jsonl", "scores"),  # job done, stage not yet
        exists("features.partial/features.duckdb", "features"),
        exists("timing.partial", "timing"),
        lambda job: (out / "timing").exists() or ((out / "timing.partial").exists() and _workers(2)(job)),
    ]
    killed_in = []
    for ready in points:
        job = Job(args)
        if not job.wait_for(ready, timeout=900):
            assert job.finish() == 0, job.output[-3000:]
            break
        killed_in.append(sorted(p.name for p in out.glob("*.partial")))
        rc, left = job.signal(signal.SIGKILL)
        assert rc == -signal.SIGKILL
        assert left == [], f"processes left after kill -9: {left}"
    # every stage with real work was killed mid-way at least once (documents may finish too fast)
    hit = {name.removesuffix(".partial") for names in killed_in for name in names}
    assert {"scores", "features", "timing"} <= hit, killed_in
    run_ok(args)
    assert_same_run(out, tmp_path / "ref")
