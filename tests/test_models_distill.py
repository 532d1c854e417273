"""Distillation: the mixed loss by hand, a tiny student learning a teacher, unlabeled text."""
from __future__ import annotations

import math

import pytest
import torch
from _models_tiny import TINY, _one_torch_thread  # noqa: F401 (autouse fixture)

from nlp.models.artifact import load_classifier, predict_proba, read_meta
from nlp.models.config import FinetuneConfig
from nlp.models.finetune import finetune, training_loss
from nlp.models.training import UNLABELED, encode_labels


def test_training_loss_by_hand():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    labels = torch.tensor([0, UNLABELED])
    soft = torch.tensor([[0.5, 0.25, 0.25], [0.0, 1.0, 0.0]])
    ce = torch.nn.CrossEntropyLoss()
    log_p0 = [2 - math.log(math.exp(2) + 2), -math.log(math.exp(2) + 2), -math.log(math.exp(2) + 2)]
    log_p1_mid = 1 - math.log(math.e + 2)
    hard = -log_p0[0]  # the unlabeled row is ignored by the hard part
    soft_ce = (-(0.5 * log_p0[0] + 0.25 * log_p0[1] + 0.25 * log_p0[2]) - log_p1_mid) / 2
    assert training_loss(logits, labels, None, ce, 0.3).item() == pytest.approx(hard, rel=1e-6)
    assert training_loss(logits, labels, soft, ce, 0.3).item() == pytest.approx(0.7 * hard + 0.3 * soft_ce, rel=1e-6)
    # A batch of unlabeled rows only: the soft part alone, no NaN from an empty mean.
    only = training_loss(logits, torch.tensor([UNLABELED, UNLABELED]), soft, ce, 0.3)
    assert only.item() == pytest.approx(0.3 * soft_ce, rel=1e-6)


def test_missing_labels_only_with_soft_targets():
    assert encode_labels(["positive", None, float("nan")], allow_missing=True).tolist() == [2, UNLABELED, UNLABELED]
    with pytest.raises(ValueError, match="missing label"):
        encode_labels(["positive", None])
    with pytest.raises(ValueError, match="needs teachers"):
        FinetuneConfig(unlabeled=["social:100"])
    with pytest.raises(ValueError, match="sampling"):
        FinetuneConfig(teachers=["t"], balance="sampling")


def _cfg(**kw) -> FinetuneConfig:
    base = dict(method="full", epochs=4, batch_size=6, lr=3e-4, warmup_ratio=0.0, patience=10, max_length=32,
                seed=3, train_sets=["tests:tiny"], val_sets=["tests:tiny"])
    return FinetuneConfig(**{**base, **kw})


def test_student_learns_the_teacher(tmp_path):
    teacher = finetune(_cfg(), tmp_path / "teacher", train=TINY, val=TINY, command="t", progress=False, checkpoint=False)
    student = finetune(_cfg(teachers=[str(teacher)], distill_alpha=1.0, seed=4), tmp_path / "student",
                       train=TINY, val=TINY, command="s", progress=False, checkpoint=False)
    record = read_meta(student).extra["distillation"]
    assert record["alpha"] == 1.0 and record["teachers"][0]["path"] == str(teacher)
    assert len(record["teachers"][0]["artifact_sha256"]) == 16
    assert record["text_period"] is None  # labeled rows only: nothing dated was learned
    texts = TINY["text"].tolist()
    agree = (predict_proba(load_classifier(student), texts).argmax(-1)
             == predict_proba(load_classifier(teacher), texts).argmax(-1)).float().mean()
    assert agree >= 0.9


def test_unlabeled_text_is_seeded_deduplicated_and_never_a_labeled_sentence(shared_datasets):
    from nlp.models.distill import labeled_keys, load_unlabeled, parse_unlabeled_spec
    from nlp.splits import normalize_key

    exclude = labeled_keys()
    a = load_unlabeled(["news:300", "transcripts:200"], seed=1, exclude=exclude)
    b = load_unlabeled(["news:300", "transcripts:200"], seed=1, exclude=exclude)
    assert a.equals(b)
    assert a["set"].value_counts().to_dict() == {"news:300": 300, "transcripts:200": 200}
    keys = a["text"].map(normalize_key)
    assert keys.is_unique and not (set(keys) & exclude)
    # Excluding a text removes it (here: one drawn above, as if it were a labeled sentence).
    c = load_unlabeled(["news:300"], seed=1, exclude=exclude | {keys.iloc[0]})
    assert keys.iloc[0] not in set(c["text"].map(normalize_key))
    with pytest.raises(ValueError, match="bad unlabeled spec"):
        parse_unlabeled_spec("tweets:10")


def test_text_period_spans_the_sampled_text_and_the_teachers(shared_datasets, tmp_path):
    import json
    import shutil

    import pandas as pd

    from nlp.models import model_path
    from nlp.models.distill import joined_period, load_unlabeled, text_period

    sample = load_unlabeled(["social:200"], seed=1)
    first, last = sample["published_at"].min(), sample["published_at"].max()
    # StockNet tweets run 2014-01 .. 2016-03
    assert pd.Timestamp("2013-12-31", tz="UTC") <= first < last <= pd.Timestamp("2016-04-01", tz="UTC")
    assert joined_period(sample, []) == [first.isoformat(), last.isoformat()]
    assert joined_period(None, []) is None
    # A teacher that saw 2009..2018 text widens the student's period: it inherits what the teacher saw.
    teacher = tmp_path / "teacher"
    shutil.copytree(model_path("labeled"), teacher)
    meta = json.loads((teacher / "altsignal_model.json").read_text())
    meta["extra"]["distillation"] = {"text_period": ["2009-04-29T00:00:00+00:00", "2018-12-31T00:00:00+00:00"]}
    (teacher / "altsignal_model.json").write_text(json.dumps(meta))
    assert joined_period(sample, [teacher]) == ["2009-04-29T00:00:00+00:00", "2018-12-31T00:00:00+00:00"]
    assert text_period(model_path("labeled")) is None
    assert text_period(model_path("default"))[1] >= pd.Timestamp("2018-01-01", tz="UTC")
