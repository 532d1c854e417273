"""Jobs: streaming chunks == whole, resume after SIGKILL == uninterrupted, fingerprint guard."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from scoring_support import tiny_model  # noqa: F401  (fixture)

from core.paths import SAMPLE_DIR
from nlp.readers.documents import get_preset
from nlp.scoring.config import EngineConfig, JobConfig
from nlp.scoring.job import JobMismatch, JobSpec, read_scores, run_job

NEWS = SAMPLE_DIR / "news.csv"
COMPARE = ["doc_id", "unit", "model_id", "p_neg", "p_neu", "p_pos", "score", "n_tokens", "source",
           "published_at", "entities", "section", "speaker_role"]


def _spec(model, out, chunk_rows, batch_tokens=512, inputs=(NEWS,)) -> JobSpec:
    cfg = JobConfig(engine=EngineConfig(numeric="fp32", batch_tokens=batch_tokens, threads=1), chunk_rows=chunk_rows)
    return JobSpec([str(p) for p in inputs], "news", get_preset("sample:news").mapping, model, out, cfg)


def _rows(out) -> pd.DataFrame:
    df = read_scores(out)
    assert not df.duplicated(["doc_id", "unit"]).any()
    return df.sort_values(["doc_id", "unit"]).reset_index(drop=True)[COMPARE]


@pytest.fixture(scope="module")
def whole(tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("whole")
    manifest = run_job(_spec(tiny_model, out, chunk_rows=10_000), progress=False)
    return out, manifest


def test_streaming_chunks_give_the_rows_of_one_pass(tiny_model, whole, tmp_path):
    out, manifest = whole
    assert manifest["counts"]["chunks_done"] == 1 and manifest["status"] == "complete"
    manifest_chunks = run_job(_spec(tiny_model, tmp_path, chunk_rows=37), progress=False)
    assert manifest_chunks["counts"]["chunks_done"] == 9  # 306 rows / 37
    assert len(list((tmp_path / "scores").glob("part-*.parquet"))) == 9
    pd.testing.assert_frame_equal(_rows(tmp_path), _rows(out))  # bit-identical probabilities
    assert len(_rows(out)) == 306


@pytest.mark.slow
def test_resume_after_sigkill_gives_exactly_the_uninterrupted_rows(tiny_model, whole, tmp_path):
    uninterrupted, _ = whole  # one chunk; chunking does not change rows (test above)
    out = tmp_path / "b"
    cmd = [sys.executable, "-c", "from altsignal.cli import app; app()", "score", "--input", str(NEWS),
           "--source", "news", "--model", str(tiny_model), "--out", str(out), "--numeric", "fp32",
           "--batch-tokens", "512", "--chunk-rows", "25", "--threads", "1", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
    parts = out / "parts.jsonl"
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        if parts.exists() and parts.read_text().count("\n") >= 2:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "job ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)  # kill -9: no cleanup, no flush
    proc.wait()
    killed_at = parts.read_text().count("\n")
    assert json.loads((out / "manifest.json").read_text())["status"] == "running"
    assert killed_at < 13  # 306 rows / 25 per chunk: it was really mid-job

    manifest = run_job(_spec(tiny_model, out, chunk_rows=25), progress=False)  # same arguments
    assert manifest["counts"]["chunks_skipped"] >= killed_at
    assert manifest["counts"]["chunks_skipped"] + manifest["counts"]["chunks_done"] == 13
    assert manifest["counts"]["docs_scored"] == 306
    resumed = read_scores(out)
    assert resumed["ingested_at"].nunique() == 1  # one job, one ingestion time, even across runs
    pd.testing.assert_frame_equal(_rows(out), _rows(uninterrupted))
    assert not list(out.rglob(".*.tmp"))  # no temp files left visible as parts


def test_resuming_into_a_folder_of_another_job_is_refused(tiny_model, whole):
    out, _ = whole
    with pytest.raises(JobMismatch):
        run_job(_spec(tiny_model, out, chunk_rows=10_000, batch_tokens=256), progress=False)


def test_cli_source_auto_writes_parquet_parts_and_manifest(tiny_model, tmp_path):
    from typer.testing import CliRunner

    from altsignal.cli import app

    res = CliRunner().invoke(app, ["score", "--input", str(SAMPLE_DIR / "social.jsonl"), "--model", str(tiny_model),
                                   "--out", str(tmp_path), "--numeric", "fp32", "--threads", "1", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "scored 410 documents" in res.output and "rejected 7" in res.output
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["job"]["source"] == "social" and manifest["counts"]["units_deduplicated"] > 0
    assert set(pd.read_parquet(tmp_path / "scores")["source"]) == {"social"} and (tmp_path / "rejects.jsonl").exists()
