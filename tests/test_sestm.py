"""SESTM (Ke, Kelly & Xiu): planted positive and negative words are recovered from (text, return) pairs."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from core.errors import UsageError
from nlp.registry import scorers
from nlp.sestm import Sestm, SestmConfig, SestmGrid, fit_sestm, validate_sestm

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


@pytest.mark.slow  # imports the model stack (torch) through altsignal.stages
def test_run_refuses_a_sestm_model_trained_on_its_period(tmp_path):
    import pandas as pd

    from altsignal.stages import check_text_period

    texts, returns, _ = _corpus(600, seed=2)
    folder = fit_sestm(texts, returns, SestmConfig(min_docs=30), text_period=["2014-01-01T00:00:00+00:00", "2015-06-30T20:00:00+00:00"]).save(tmp_path / "m")
    docs = tmp_path / "docs"
    docs.mkdir()
    pd.DataFrame({"published_at": pd.to_datetime(["2015-06-01", "2015-09-01"], utc=True)}).to_parquet(docs / "a.parquet")
    with pytest.raises(UsageError, match="overlaps"):
        check_text_period(folder, docs, allow=False)
    pd.DataFrame({"published_at": pd.to_datetime(["2015-08-01", "2015-09-01"], utc=True)}).to_parquet(docs / "a.parquet")
    assert check_text_period(folder, docs, allow=False)["model_text"] == ["2014-01-01", "2015-06-30"]


def test_validation_picks_a_grid_point_that_screens_and_scores_best():
    texts, returns, _ = _corpus(1500, seed=3)
    valid, valid_returns, _ = _corpus(400, seed=4)
    grid = SestmGrid(alpha=[0.1, 0.45], min_docs=[30], penalty=[0.0, 1.0])  # alpha 0.45 screens out every word
    cfg, table = validate_sestm(texts, returns, valid, valid_returns, grid)
    assert len(table) == 4 and table.loc[table["alpha"] == 0.45, "rank_ic"].isna().all()
    assert cfg.alpha_plus == cfg.alpha_minus == 0.1 and cfg.min_docs == 30
    assert cfg.penalty == table.loc[table["rank_ic"].idxmax(), "penalty"]
    assert table["rank_ic"].max() > 0.3
    with pytest.raises(UsageError, match="no SESTM setting"):
        validate_sestm(texts, returns, valid, valid_returns, SestmGrid(alpha=[0.45], min_docs=[30], penalty=[1.0]))


def test_train_sestm_refuses_settings_beside_validate_from(tmp_path):
    from typer.testing import CliRunner

    from altsignal.cli import app

    res = CliRunner().invoke(app, ["models", "train-sestm", "--until", "2013-12-31", "--validate-from", "2013-01-01",
                                   "--alpha", "0.1", "--out", str(tmp_path / "m")])
    assert res.exit_code == 2 and "give either it or them" in res.output


def _dated_corpus():
    """Synthetic prices and one document per ticker and session (published 12:00 New York), whose
    charged word follows the sign of its own announcement return."""
    import pandas as pd

    from signals.research.sestm import announcement_returns
    from signals.research.synthetic import synthetic_study

    prices, _ = synthetic_study(n_tickers=20, n_sessions=80, seed=5)
    rng = np.random.default_rng(6)
    grid = prices.sessions
    docs = pd.DataFrame({
        "published_at": (grid + pd.Timedelta(hours=12)).tz_localize("America/New_York").tz_convert("UTC").repeat(20),
        "ticker": np.tile(prices.close.columns, len(grid))})
    y = announcement_returns(docs, prices).fillna(0.0).to_numpy()
    docs["text"] = [" ".join([*rng.choice(NEUTRAL, 10), rng.choice(POSITIVE if r > 0 else NEGATIVE)]) for r in y]
    docs["entities"] = docs["ticker"].map(lambda t: [t])
    return prices, docs


def test_training_purges_windows_that_cross_the_boundary_and_ignores_later_returns():
    from signals.research.sestm import choose_sestm, train_sestm

    prices, docs = _dated_corpus()
    grid = prices.sessions
    until = grid[59]  # a document of session e has the window e-1..e+1: session 59's ends on 60, past until
    cfg = SestmConfig(min_docs=20, alpha_plus=0.1, alpha_minus=0.1)
    model, counts = train_sestm(docs, prices, until.date(), cfg)
    assert counts["purged"] == 20 and counts["with_return"] == 20 * 57  # sessions 0 and 1 lack the e-1 return
    assert model.text_period[1].startswith(str(grid[58].date()))

    later = prices.returns.copy()
    later.loc[later.index > until] *= -3  # returns after the boundary: every label they reach would flip
    again, _ = train_sestm(docs, replace(prices, returns=later), until.date(), cfg)
    assert again.words == model.words
    np.testing.assert_array_equal(again.o_pos, model.o_pos)
    np.testing.assert_array_equal(again.o_neg, model.o_neg)

    _, _, split = choose_sestm(docs, prices, grid[40].date(), until.date(),
                               SestmGrid(alpha=[0.1], min_docs=[20], penalty=[1.0]))
    assert split["purged_from_training_block"] == 20  # session 39's windows end on 40, in the validation block
    assert split["training_block"] == 20 * 37 and split["validation_block"] == 20 * 19
