"""Scorers by name: a new scorer is one registered class, and the batch job, the research lexicon
and the evaluation baselines reach every scorer through the protocol (nlp.protocol)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.errors import UnknownNameError
from core.paths import SAMPLE_DIR
from core.rejects import Rejects
from nlp.contracts import LABELS, validate_scores
from nlp.protocol import ScorerBase, TextScorer
from nlp.readers.documents import get_preset, load_preset
from nlp.registry import Registry, baselines, scorers
from nlp.scoring.config import JobConfig
from nlp.scoring.job import JobSpec, read_scores, run_job


@scorers.register("test_exclamations")
class Exclamations(ScorerBase):
    """Positive in proportion to exclamation marks; defined here, known to the job by its name only."""

    name = "exclamations-v0"
    labels = ["positive", "neutral", "negative"]  # not the contract's order, on purpose

    def predict_proba(self, texts) -> np.ndarray:
        pos = np.array([min(t.count("!"), 3) / 4 for t in texts])
        return np.column_stack([pos, 1 - pos - 0.1, np.full(len(texts), 0.1)])


def _job(tmp_path, scorer: str) -> tuple[dict, pd.DataFrame]:
    spec = JobSpec([str(SAMPLE_DIR / "news.csv")], "news", get_preset("sample:news").mapping, None,
                   tmp_path / scorer, JobConfig(resolve_entities=False), scorer=scorer)
    manifest = run_job(spec, progress=False)
    return manifest, read_scores(tmp_path / scorer)


def test_a_registered_scorer_scores_documents_through_the_job_by_name(tmp_path):
    manifest, rows = _job(tmp_path, "test_exclamations")
    validate_scores(rows)
    texts = pd.read_csv(SAMPLE_DIR / "news.csv")["headline"]
    assert len(rows) == manifest["counts"]["units_scored"] > 0 and manifest["model_id"] == "exclamations-v0"
    assert (rows["model_id"] == "exclamations-v0").all() and manifest["numeric"] is None
    expected = Exclamations().predict_proba(texts.tolist())
    by_doc = rows.set_index("doc_id").loc[pd.read_csv(SAMPLE_DIR / "news.csv")["doc_id"]]
    np.testing.assert_allclose(by_doc["p_pos"], expected[:, 0], rtol=1e-6)
    np.testing.assert_allclose(by_doc["p_neg"], expected[:, 2], rtol=1e-6)
    assert manifest["score_cache"] is None  # no cache key: a model-free scorer is not cached
    again, _ = _job(tmp_path, "test_exclamations")  # resumes: the fingerprint is stable
    assert again["counts"]["chunks_skipped"] == manifest["counts"]["chunks_done"]


def test_the_lexicon_job_rows_equal_the_research_lexicon_rows(tmp_path):
    from signals.research.lexicon import lexicon_scores

    _, rows = _job(tmp_path, "lm_lexicon")
    docs = load_preset("sample:news", Rejects())
    research = lexicon_scores(docs, "lm").set_index("doc_id").loc[rows["doc_id"]]
    np.testing.assert_array_equal(rows["score"].to_numpy(), research["score"].to_numpy(np.float32))
    assert (rows["n_tokens"].to_numpy() == research["n_tokens"].to_numpy()).all()


def test_every_scorer_baseline_and_teacher_is_a_text_scorer():
    train = pd.read_csv(SAMPLE_DIR / "labeled_sentences.csv")
    for name in ("lm_lexicon", "vader_lexicon"):
        assert isinstance(scorers.get(name)(), TextScorer)
    fitted = baselines.get("loughran_mcdonald")().fit(train["text"].tolist(), train["label"].tolist())
    assert isinstance(fitted, TextScorer) and list(fitted.labels) == list(LABELS)


def test_unknown_and_clashing_names_are_refused():
    with pytest.raises(UnknownNameError, match="known: .*lm_lexicon"):
        scorers.get("no_such_scorer")
    reg = Registry("thing", ())
    reg.register("a")(int)
    reg.register("a")(int)  # the same entry again (a re-import) is fine
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a")(str)
