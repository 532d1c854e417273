"""Scale-out: the Ray Data path gives the in-process rows, row for row, bit for bit."""
from __future__ import annotations

import pandas as pd
import pytest
from scoring_support import tiny_model  # noqa: F401  (fixture)

from core.paths import SAMPLE_DIR
from nlp.readers.documents import get_preset
from nlp.scoring.config import EngineConfig, JobConfig
from nlp.scoring.job import JobSpec, read_scores, run_job

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.slow
def test_ray_engine_matches_in_process_row_for_row(tiny_model, tmp_path, local_ray):
    src = tmp_path / "social.jsonl"
    src.write_text("".join((SAMPLE_DIR / "social.jsonl").read_text().splitlines(keepends=True)[:80]))
    mapping = get_preset("sample:social").mapping
    engine = EngineConfig(numeric="fp32", batch_tokens=256, threads=1)
    outs = {}
    for kind in ("local", "ray"):
        cfg = JobConfig(engine=engine, engine_kind=kind, ray_concurrency=2, chunk_rows=50)
        manifest = run_job(JobSpec([str(src)], "social", mapping, tiny_model, tmp_path / kind, cfg), progress=False)
        assert manifest["counts"]["chunks_done"] == 2
        outs[kind] = read_scores(tmp_path / kind).drop(columns="ingested_at")
    assert len(outs["local"]) > 70
    pd.testing.assert_frame_equal(outs["ray"], outs["local"])  # same order, same bits
