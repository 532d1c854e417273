"""`nlp.Scorer`: one path from text to probabilities, for evaluation and batch jobs alike."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scoring_support import tiny_model  # noqa: F401  (fixture)

from core.errors import UsageError
from core.paths import SAMPLE_DIR
from core.threads import set_threads
from nlp import Scorer
from nlp.models import SHIPPED_MODELS

# NFKC and whitespace cases (ligature, full-width digits, non-breaking space, runs of spaces) and a
# text longer than the tiny model's 64 tokens, next to the sample's labeled sentences.
ODD = ["Net proﬁt rose １２% .", "Revenue\u00a0fell   sharply\n.", "margin " * 80]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return pd.read_csv(SAMPLE_DIR / "labeled_sentences.csv")["text"].tolist()[:120] + ODD


@pytest.mark.parametrize("numeric", ["fp32", "bf16"])
def test_evaluation_and_batch_scoring_give_identical_probabilities(tiny_model, texts, tmp_path, numeric):
    from nlp.contracts import LABELS
    from nlp.evaluate import model_predictor
    from nlp.readers.documents import ColumnMapping
    from nlp.scoring.config import EngineConfig, JobConfig
    from nlp.scoring.job import JobSpec, read_scores, run_job

    src = tmp_path / "docs.csv"
    pd.DataFrame({"id": [f"d{i:03d}" for i in range(len(texts))], "text": texts,
                  "time": "2016-06-01T12:00:00Z"}).to_csv(src, index=False)
    mapping = ColumnMapping(doc_id="id", text="text", published_at="time")
    config = JobConfig(engine=EngineConfig(numeric=numeric, threads=1), chunk_rows=50, strip_html=False,
                       flag_non_english=False, resolve_entities=False)
    run_job(JobSpec([str(src)], "news", mapping, tiny_model, tmp_path / "out", config), progress=False)
    batch = read_scores(tmp_path / "out").sort_values("doc_id")
    assert len(batch) == len(texts)

    evaluated = model_predictor(tiny_model, numeric=numeric).predict_proba(texts)
    assert list(LABELS) == ["negative", "neutral", "positive"]  # the columns compared below
    assert np.array_equal(evaluated, batch[["p_neg", "p_neu", "p_pos"]].to_numpy())
    frame = Scorer.load(tiny_model, numeric=numeric).score(texts)
    assert np.array_equal(frame[["p_neg", "p_neu", "p_pos"]].to_numpy(), evaluated)


def test_score_returns_one_row_per_text(tiny_model, texts):
    scorer = Scorer.load(tiny_model, numeric="fp32")
    frame = scorer.score(texts)
    assert frame.columns.tolist() == ["text", "label", "p_neg", "p_neu", "p_pos", "score", "n_tokens", "truncated"]
    assert frame["text"].tolist() == texts
    probs = scorer.predict_proba(texts)
    assert probs.shape == (len(texts), 3) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert frame["label"].tolist() == [scorer.labels[i] for i in probs.argmax(axis=1)]
    assert np.array_equal(frame["score"], frame["p_pos"] - frame["p_neg"])
    assert frame["truncated"].tolist() == [False] * (len(texts) - 1) + [True]
    assert len(scorer.score([])) == 0 and scorer.predict_proba([]).shape == (0, 3)


def test_loading_sets_torch_threads_only_when_asked(tiny_model):
    import torch

    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    try:
        Scorer.load(tiny_model, numeric="fp32")
        assert torch.get_num_threads() == before
        Scorer.load(tiny_model, numeric="fp32", threads=other)
        assert torch.get_num_threads() == other
    finally:
        set_threads(before)


def test_a_shipped_model_that_is_not_installed_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.setitem(SHIPPED_MODELS, "fast", tmp_path / "fast_model")  # as when `fast` is not installed
    with pytest.raises(UsageError, match="'fast' model is not in this installation"):
        Scorer.load("fast")


@pytest.mark.slow
def test_auto_is_fp32_until_the_check_runs_and_the_check_is_cached(tiny_model, tmp_path):
    from nlp.scoring.numeric import check_path, choose

    model = tmp_path / "m"
    shutil.copytree(tiny_model, model)
    meta_file = model / "altsignal_model.json"
    meta = json.loads(meta_file.read_text())
    meta["extra"]["validation_set"] = "sample:labeled"
    meta_file.write_text(json.dumps(meta))

    scorer = Scorer.load(model)
    record_file = check_path(scorer.engine.model_hash, scorer.engine.config.batch_tokens)
    assert scorer.numeric == "fp32" and not record_file.exists()  # loading never runs the check
    scorer.predict_proba(ODD)  # fills the dedup cache, which a change of path must empty
    record = scorer.check_numeric()
    assert record_file.exists() and record["validation_set"] == "sample:labeled"
    assert record["paths"]["fp32"]["agreement_with_fp32"] == 1.0
    assert all(0 <= r["agreement_with_fp32"] <= 1 for r in record["paths"].values())
    assert scorer.numeric == choose(record)
    assert np.array_equal(scorer.predict_proba(ODD), Scorer.load(model, numeric=scorer.numeric).predict_proba(ODD))
    again = Scorer.load(model, check=True)  # reads the record instead of checking again
    assert again.numeric == choose(record) and json.loads(record_file.read_text()) == record
    assert Scorer.load(model, numeric="fp32", check=True).numeric == "fp32"


def test_import_nlp_stays_cheap():
    code = ("import sys, nlp; assert 'torch' not in sys.modules and 'nlp.scorer' not in sys.modules; "
            "assert nlp.Scorer.__name__ == 'Scorer' and 'Scorer' in dir(nlp)")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", SHIPPED_MODELS)
def test_shipped_models_check_numeric_paths_on_every_validation_set(name):
    """The numeric check reads every validation set a model was tuned on: one PhraseBank split
    (495 sentences) made 0.5 points a matter of 2.5 sentences."""
    from nlp.models import model_path
    from nlp.models.artifact import read_meta
    from nlp.scoring.numeric import validation_set_of

    meta = read_meta(model_path(name))
    assert validation_set_of(meta).split("+") == meta.extra["config"]["val_sets"]
