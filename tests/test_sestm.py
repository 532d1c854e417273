"""SESTM (Ke, Kelly & Xiu): planted positive and negative words are recovered from (text, return) pairs."""
from __future__ import annotations

import numpy as np
import pytest

from core.errors import UsageError
from nlp.registry import scorers
from nlp.sestm import Sestm, SestmConfig, fit_sestm

POSITIVE = ["surge", "beat", "upgrade", "record", "boost"]
NEGATIVE = ["plunge", "miss", "downgrade", "lawsuit", "recall"]
NEUTRAL = [f"filler{chr(97 + i)}{chr(97 + j)}" for i in range(20) for j in range(10)]


def _corpus(n: int, seed: int):
    """Each document has a latent tone p; its return loads on p, and its charged words are positive
    with probability p."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(size=n)
    texts = []
    for pi in p:
        words = list(rng.choice(NEUTRAL, 25))
        words += [rng.choice(POSITIVE) if rng.uniform() < pi else rng.choice(NEGATIVE) for _ in range(4)]
        rng.shuffle(words)
        texts.append(" ".join(words))
    returns = (p - 0.5) * 0.04 + rng.normal(0, 0.01, n)
    return texts, returns, p


def test_sestm_recovers_planted_words_and_scores_new_text(tmp_path):
    texts, returns, _ = _corpus(3000, seed=0)
    model = fit_sestm(texts, returns, SestmConfig(min_docs=30, alpha_plus=0.1, alpha_minus=0.1), text_period=["2010-01-01", "2012-12-31"])
    assert set(POSITIVE) | set(NEGATIVE) <= set(model.words)
    assert len(set(model.words) & set(NEUTRAL)) <= 2  # screening keeps few uncharged words
    tone = {w: a - b for w, a, b in zip(model.words, model.o_pos, model.o_neg)}
    assert all(tone[w] > 0 for w in POSITIVE) and all(tone[w] < 0 for w in NEGATIVE)

    new, new_returns, new_p = _corpus(500, seed=1)
    scorer = scorers.get("sestm").load(model.save(tmp_path / "sestm"))
    frame = scorer.score(new)
    assert np.corrcoef(frame["score"], new_p)[0, 1] > 0.6
    assert np.corrcoef(frame["score"], new_returns)[0, 1] > 0.3
    assert scorer.score(["filleraa fillerab"])["score"].iloc[0] == pytest.approx(0.0)  # no charged word: p = 1/2
    assert Sestm.load(tmp_path / "sestm").text_period == ["2010-01-01", "2012-12-31"]


def test_sestm_refuses_too_little_data():
    with pytest.raises(UsageError, match="at least"):
        fit_sestm(["a b"] * 10, np.ones(10))
