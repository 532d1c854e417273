"""The cross-job score cache: rows with it equal rows without it, bit for bit; a warm cache
scores nothing; writers never collide; anything that changes a score changes the key."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scoring_support import tiny_model  # noqa: F401  (fixture)

from core.paths import SAMPLE_DIR
from nlp.protocol import Scored
from nlp.readers.documents import get_preset
from nlp.scoring.config import EngineConfig, JobConfig
from nlp.scoring.engine import normalize_text
from nlp.scoring.job import JobSpec, read_scores, run_job
from nlp.scoring.score_cache import ScoreCache, output_fingerprint, text_key

COMPARE = ["doc_id", "unit", "model_id", "p_neg", "p_neu", "p_pos", "score", "n_tokens", "source",
           "published_at", "entities"]


def _job(model, out, use_cache: bool, chunk_rows: int = 10_000) -> dict:
    cfg = JobConfig(engine=EngineConfig(numeric="fp32", batch_tokens=512, threads=1), chunk_rows=chunk_rows,
                    use_cache=use_cache)
    spec = JobSpec([str(SAMPLE_DIR / "news.csv")], "news", get_preset("sample:news").mapping, model, out, cfg)
    return run_job(spec, progress=False)


def _rows(out) -> pd.DataFrame:
    return read_scores(out).sort_values(["doc_id", "unit"]).reset_index(drop=True)[COMPARE]


def test_cached_rows_equal_computed_rows_bit_for_bit(tiny_model, tmp_path):
    plain = _job(tiny_model, tmp_path / "plain", use_cache=False)
    assert plain["score_cache"] is None
    cold = _job(tiny_model, tmp_path / "cold", use_cache=True)
    assert cold["score_cache"]["hits"] == 0 and cold["score_cache"]["misses"] > 0
    # Other chunking, other folder: a later job. Every text is answered by the cache.
    warm = _job(tiny_model, tmp_path / "warm", use_cache=True, chunk_rows=17)
    assert warm["score_cache"]["misses"] == 0
    assert warm["score_cache"]["hits"] == cold["score_cache"]["misses"]
    expected = _rows(tmp_path / "plain")
    for folder in ("cold", "warm"):
        pd.testing.assert_frame_equal(_rows(tmp_path / folder), expected, check_exact=True)


def _scored(n: int, seed: int) -> Scored:
    probs = np.random.default_rng(seed).dirichlet(np.ones(3), size=n).astype(np.float32)
    return Scored(probs, np.arange(n, dtype=np.int32) + 5, np.zeros(n, bool))


def test_two_writers_of_the_same_texts_leave_one_row_each(tmp_path):
    keys = [text_key(t) for t in ("a", "b", "c")]
    first, second = ScoreCache(tmp_path, "fp", 3), ScoreCache(tmp_path, "fp", 3)
    rows = _scored(3, seed=0)
    first.add(keys, rows)
    second.add(keys, rows)  # e.g. two jobs that scored the same new texts at the same time
    assert len(list((tmp_path / "fp").glob("part-*.parquet"))) == 2
    found = ScoreCache(tmp_path, "fp", 3).lookup(keys + [text_key("unseen")])
    assert sorted(found) == sorted(keys)
    for i, k in enumerate(keys):
        np.testing.assert_array_equal(found[k][0], rows.probs[i])
        assert found[k][1] == rows.n_tokens[i]


def test_wrapped_scorer_asks_only_for_unseen_texts(tmp_path):
    asked: list[list[str]] = []

    def score(texts):
        asked.append(list(texts))
        return _scored(len(texts), seed=len(asked))

    cached = ScoreCache(tmp_path, "fp", 3).wrap(score, normalize_text)
    a = cached(["Profit rose", "Profit  rose", "Sales fell"])  # the second normalizes to the first
    assert asked == [["Profit rose", "Sales fell"]]
    np.testing.assert_array_equal(a.probs[0], a.probs[1])
    b = cached(["Sales fell", "New text"])
    assert asked[-1] == ["New text"]
    np.testing.assert_array_equal(b.probs[0], a.probs[2])


def test_everything_that_changes_a_score_changes_the_fingerprint():
    base = dict(model_hash="m", numeric="fp32", device="cpu", bucket_tokens=8, batch_tokens=4096, max_tokens=64)
    keys = {output_fingerprint(**base)}
    for field, other in [("model_hash", "m2"), ("numeric", "bf16"), ("device", "cuda"), ("bucket_tokens", 16),
                         ("batch_tokens", 2048), ("max_tokens", 128)]:
        keys.add(output_fingerprint(**(base | {field: other})))
    assert len(keys) == 7


def test_cli_reuses_scores_across_jobs_and_no_cache_turns_it_off(tiny_model, tmp_path):
    from typer.testing import CliRunner

    from altsignal.cli import app

    def score(out, *extra):
        res = CliRunner().invoke(app, ["score", "--input", str(SAMPLE_DIR / "social.jsonl"), "--model", str(tiny_model),
                                       "--out", str(tmp_path / out), "--numeric", "fp32", "--threads", "1", "--quiet",
                                       *extra])
        assert res.exit_code == 0, res.output
        return res.output

    assert "0 texts reused" in score("first")
    assert ", 0 computed" in score("second")
    assert "score cache" not in score("third", "--no-cache")
    pd.testing.assert_frame_equal(_rows(tmp_path / "third"), _rows(tmp_path / "second"), check_exact=True)


def test_compaction_keeps_every_row_and_leaves_parts_added_meanwhile(tmp_path, monkeypatch):
    cache = ScoreCache(tmp_path, "fp", 3)
    # Overlapping batches; a text gets the same row in every part, as a deterministic model gives it
    # (lookups take any one row per text, so rows that differed would make the comparison a coin toss).
    rows = _scored(8, seed=0)
    for j in (0, 2, 4):
        ids = list(range(j, j + 4))
        cache.add([text_key(f"t{i}") for i in ids], Scored(rows.probs[ids], rows.n_tokens[ids], rows.truncated[ids]))
    everything = sorted(text_key(f"t{i}") for i in range(8))
    before = cache.lookup(everything)
    snapshot = cache.parts()
    late = [text_key("added while compacting")]
    real_parts = ScoreCache.parts

    def parts_then_a_late_writer(self):  # another job adds a part right after the compaction listed them
        listed = real_parts(self)
        ScoreCache(tmp_path, "fp", 3).add(late, _scored(1, seed=1))
        return listed

    monkeypatch.setattr(ScoreCache, "parts", parts_then_a_late_writer)
    assert cache.compact() == 3
    monkeypatch.setattr(ScoreCache, "parts", real_parts)
    left = cache.parts()
    assert len(left) == 2 and not set(snapshot) & set(left)  # the merged part and the late one
    after = cache.lookup(everything + late)
    assert sorted(after) == sorted(everything + late)
    for k in everything:
        np.testing.assert_array_equal(after[k][0], before[k][0])
        assert after[k][1:] == before[k][1:]
    assert cache.compact(min_parts=3) == 0  # below the threshold: nothing happens


def test_a_compaction_that_loses_a_race_changes_nothing(tmp_path, monkeypatch):
    cache = ScoreCache(tmp_path, "fp", 3)
    for seed in (0, 1):
        cache.add([text_key(f"s{seed}")], _scored(1, seed=seed))
    present = cache.parts()
    monkeypatch.setattr(ScoreCache, "parts", lambda self: present + [self.folder / "part-gone.parquet"])
    assert cache.compact() == 0
    assert all(p.exists() for p in present)


def test_a_job_compacts_a_cache_of_many_parts(tiny_model, tmp_path, monkeypatch):
    import nlp.scoring.score_cache as score_cache

    monkeypatch.setenv("ALTSIGNAL_SCORE_CACHE", str(tmp_path / "cache"))
    first = _job(tiny_model, tmp_path / "a", use_cache=True, chunk_rows=7)  # one part per chunk
    folder = Path(first["score_cache"]["folder"])
    assert folder.parent == tmp_path / "cache"
    n_parts = len(list(folder.glob("part-*.parquet")))
    assert n_parts > 2 and first["score_cache"]["parts_compacted"] == 0
    monkeypatch.setattr(score_cache, "COMPACT_AT", 2)
    second = _job(tiny_model, tmp_path / "b", use_cache=True, chunk_rows=5)
    assert second["score_cache"]["misses"] == 0 and second["score_cache"]["parts_compacted"] == n_parts
    assert len(list(folder.glob("part-*.parquet"))) == 1
    pd.testing.assert_frame_equal(_rows(tmp_path / "b"), _rows(tmp_path / "a"), check_exact=True)
