"""The engine: exact batch invariance, dedup, truncation, token-sorted fixed-shape batches, numeric check."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scoring_support import minilm_model, tiny_model  # noqa: F401  (fixtures)

from core.paths import SAMPLE_DIR
from nlp.scoring.config import EngineConfig
from nlp.scoring.engine import ScoringEngine


@pytest.fixture(scope="module")
def sentences() -> list[str]:
    return pd.read_csv(SAMPLE_DIR / "labeled_sentences.csv")["text"].tolist()


def _engine(model, numeric, batch_tokens=512, **kw) -> ScoringEngine:
    return ScoringEngine(model, EngineConfig(numeric=numeric, cache_entries=0, batch_tokens=batch_tokens, threads=1, **kw))


@pytest.mark.parametrize("numeric", ["fp32", "bf16"])
def test_minilm_score_is_independent_of_batch_neighbours(minilm_model, sentences, numeric):
    """The real MiniLM shapes: same texts, other neighbours, other order, other call -> identical bits."""
    texts = sentences[:16]
    eng = _engine(minilm_model, numeric, batch_tokens=256)
    alone = eng.score(texts).probs
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(texts))
    mixed = [texts[i] for i in perm] + sentences[40:47]  # shuffled and with new neighbours
    again = eng.score(mixed).probs[np.argsort(perm)]
    assert np.array_equal(alone, again)
    single = np.vstack([eng.score([t]).probs for t in texts[:2]])  # batch of one (filled to full shape)
    assert np.array_equal(single, alone[:2])


def test_int8_static_path_is_batch_invariant_and_close_to_fp32(tiny_model, sentences):
    fp32 = _engine(tiny_model, "fp32").score(sentences).probs
    eng = _engine(tiny_model, "int8")
    assert eng.backend.name == "int8"
    a = eng.score(sentences).probs
    b = eng.score(sentences[::-1] + sentences[:7]).probs[: len(sentences)][::-1]
    assert np.array_equal(a, b)
    assert np.abs(a - fp32).max() < 0.05  # quantized, not broken


def test_identical_texts_are_scored_once(tiny_model):
    eng = ScoringEngine(tiny_model, EngineConfig(numeric="fp32", threads=1))
    out = eng.score(["Shares rose 5%.", "Shares  rose 5%. ", "Profit fell.", "Shares rose 5%."])
    assert eng.n_texts == 4 and eng.n_computed == 2 and out.deduplicated == 2
    assert np.array_equal(out.probs[0], out.probs[1]) and np.array_equal(out.probs[0], out.probs[3])
    later = eng.score(["Profit fell."])  # across calls too (job-wide)
    assert later.deduplicated == 1 and np.array_equal(later.probs[0], out.probs[2])


def test_long_texts_are_truncated_and_reported(tiny_model):
    eng = _engine(tiny_model, "fp32")
    out = eng.score(["word " * 500, "short text"])
    assert out.truncated.tolist() == [True, False]
    assert out.n_tokens[0] == eng.max_tokens == 64


def test_batches_are_token_sorted_fixed_shapes(tiny_model, sentences):
    eng = _engine(tiny_model, "fp32", bucket_tokens=8)
    ids, _ = eng.tokenize(sentences)
    seen, widths = [], []
    for rows, input_ids, mask in eng.batches(ids):
        width = input_ids.shape[1]
        assert width % 8 == 0 and input_ids.shape[0] == eng.rows(width)  # shape fixed by the length alone
        assert eng.rows(width) * width <= max(512, 8 * width)  # the token budget
        assert mask[: len(rows)].sum(axis=1).tolist() == [len(ids[i]) for i in rows]
        assert all(width - 8 < len(ids[i]) <= width for i in rows)
        seen += rows.tolist()
        widths.append(width)
    assert sorted(seen) == list(range(len(sentences)))  # every text exactly once
    assert widths == sorted(widths)  # shortest bucket first


def test_numeric_check_records_accuracy_and_auto_picks_a_passing_path(tiny_model, sentences, private_cache):
    from nlp.scoring.numeric import candidate_paths, check_numeric_paths, choose, read_check

    df = pd.read_csv(SAMPLE_DIR / "labeled_sentences.csv")
    eng = _engine(tiny_model, "fp32")
    record = check_numeric_paths(eng.probe, df["text"].tolist(), df["label"].tolist(), label_order=eng.labels,
                                 paths=candidate_paths(), model_hash=eng.model_hash, batch_tokens=512)
    assert read_check(eng.model_hash, 512) == record and eng.numeric == "fp32"
    paths = record["paths"]
    assert "fp32" in paths and "int8" in paths and paths["fp32"]["delta_points"] == 0.0
    for r in paths.values():
        assert r["passed"] == (r["delta_points"] >= -0.5 and r["batch_invariant"])
        assert 0 <= r["accuracy"] <= 1 and r["sentences_per_s"] > 0
    assert paths[choose(record)]["passed"] or choose(record) == "fp32"
    auto = ScoringEngine(tiny_model, EngineConfig(numeric="auto", batch_tokens=512, threads=1))
    assert auto.numeric == choose(record)  # auto reads the recorded check


def test_a_full_dedup_cache_is_cleared_without_changing_scores(tiny_model):
    texts = ["Shares rose.", "Profit fell.", "Guidance cut.", "Shares rose."]
    ref = _engine(tiny_model, "fp32").score(texts).probs
    small = ScoringEngine(tiny_model, EngineConfig(numeric="fp32", threads=1, batch_tokens=512, cache_entries=2))
    small.score(texts[:2])
    out = small.score(texts)  # two hits from the cache, then the cache overflows and is cleared
    assert np.array_equal(out.probs, ref) and len(small._cache) <= 2
