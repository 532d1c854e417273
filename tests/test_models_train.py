"""Fine-tuning end to end on a tiny in-memory slice, calibration, artifact round trips."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from _models_tiny import TINY, _one_torch_thread  # noqa: F401 (autouse fixture)

from nlp.models.artifact import load_classifier, predict_proba, read_meta
from nlp.models.calibration import fit_temperature, nll
from nlp.models.config import FinetuneConfig
from nlp.models.finetune import balanced_order, class_weights, finetune, train_classifier
from nlp.models.training import TokenizedSet, encode_labels, predict_logits


def _cfg(method: str, **kw) -> FinetuneConfig:
    base = dict(method=method, epochs=4, batch_size=6, lr=3e-4 if method == "full" else 3e-3,
                warmup_ratio=0.0, patience=10, max_length=32, seed=3, calibrate=True,
                train_sets=["tests:tiny"], val_sets=["tests:tiny"])
    base.update(kw)
    return FinetuneConfig(**base)


def _train_loss(model, tok, df: pd.DataFrame) -> float:
    ts = TokenizedSet.build(tok, df["text"].tolist(), encode_labels(df["label"]), 32)
    return nll(predict_logits(model, tok, ts), torch.from_numpy(ts.labels))


@pytest.mark.parametrize("method", ["full", "lora"])
def test_finetune_end_to_end_roundtrip(tmp_path, method):
    cfg = _cfg(method)
    from nlp.models.finetune import _prepare_model

    tok0, model0 = _prepare_model(cfg)
    before = _train_loss(model0, tok0, TINY)
    out = finetune(cfg, tmp_path / method, train=TINY, val=TINY, command="test", progress=False)
    sm = load_classifier(out)
    meta = read_meta(out)
    assert meta.kind == method and meta.extra["command"] == "test"
    assert meta.extra["data"]["train_rows"] == len(TINY)
    assert meta.extra["validation_set"] == "+".join(cfg.val_sets)  # every set, for the numeric check
    assert len(meta.extra["data"]["train_sha256"]) == 64
    # Loss went down on the data it was trained on.
    after = _train_loss(sm.model, sm.tokenizer, TINY)
    assert after < before
    # Reloading gives the same predictions (LoRA: merged vs a second merged load).
    p1 = predict_proba(sm, TINY["text"].tolist()).numpy()
    p2 = predict_proba(load_classifier(out), TINY["text"].tolist()).numpy()
    np.testing.assert_allclose(p1, p2, atol=1e-6)
    if method == "lora":
        from safetensors import safe_open

        with safe_open(out / "adapter" / "adapter_model.safetensors", "pt") as f:
            assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F16"}  # half the bytes in git
        assert not (out / "model.safetensors").exists()
        unmerged = load_classifier(out, merge_lora=False)
        np.testing.assert_allclose(p1, predict_proba(unmerged, TINY["text"].tolist()).numpy(), atol=1e-4)


def test_shallow_student_keeps_the_chosen_base_layers(tmp_path):
    from nlp.models.artifact import PACKAGED_MINILM, load_base_for_classification

    _, full = load_base_for_classification(PACKAGED_MINILM)
    out = finetune(_cfg("lora", base_layers=[0, 2, 4], epochs=1), tmp_path / "fast", train=TINY, val=TINY,
                   command="test", progress=False)
    sm = load_classifier(out)
    assert read_meta(out).base_layers == [0, 2, 4]
    assert sm.model.config.num_hidden_layers == len(sm.model.base_model.encoder.layer) == 3
    # Initialised from the base's layers 0, 2, 4: with the LoRA deltas merged in, only the
    # adapted weights moved; the LayerNorms (not adapted) are the base's own.
    for mine, theirs in zip(sm.model.base_model.encoder.layer, [full.base_model.encoder.layer[i] for i in (0, 2, 4)]):
        torch.testing.assert_close(mine.output.LayerNorm.weight, theirs.output.LayerNorm.weight)
    np.testing.assert_allclose(predict_proba(sm, TINY["text"].tolist()).numpy(),
                               predict_proba(load_classifier(out), TINY["text"].tolist()).numpy(), atol=1e-6)
    for bad in ([], [0, 0], [-1]):
        with pytest.raises(ValueError, match="base_layers"):
            FinetuneConfig(base_layers=bad)
    with pytest.raises(ValueError, match="cannot keep"):
        load_base_for_classification(PACKAGED_MINILM, [0, 6])


def test_training_is_seeded():
    cfg = _cfg("full", epochs=1)
    a = train_classifier(TINY, TINY, cfg, progress=False).val_logits
    b = train_classifier(TINY, TINY, cfg, progress=False).val_logits
    torch.testing.assert_close(a, b)


def test_refuses_test_splits_and_bad_labels():
    with pytest.raises(ValueError, match="test split"):
        FinetuneConfig(train_sets=["fpb:50agree:test"])
    with pytest.raises(ValueError, match="test split"):
        FinetuneConfig(train_sets=["tfns:valid"])
    bad = TINY.assign(label=["bullish"] + TINY["label"].tolist()[1:])
    with pytest.raises(ValueError, match="unknown label"):
        train_classifier(bad, TINY, _cfg("full"), progress=False)
    with pytest.raises(ValueError, match="empty training set"):
        train_classifier(TINY.iloc[:0], TINY, _cfg("full"), progress=False)


def test_batches_are_length_sorted_and_cover_every_row():
    ids = [[0] * n for n in [5, 1, 9, 3, 7, 2, 8]]
    ts = TokenizedSet(ids, np.zeros(7, dtype=np.int64))
    batches = ts.batches(3, rng=None)
    assert sorted(np.concatenate(batches).tolist()) == list(range(7))
    lens = [[len(ids[i]) for i in b] for b in batches]
    assert lens == [[1, 2, 3], [5, 7, 8], [9]]
    shuffled = ts.batches(3, rng=np.random.default_rng(0))
    assert sorted(np.concatenate(shuffled).tolist()) == list(range(7))


def test_class_balance_helpers():
    y = np.array([0, 1, 1, 1, 1, 1, 1, 1, 2, 2])
    w = class_weights(y).numpy()
    np.testing.assert_allclose(w, [10 / 3, 10 / 21, 10 / 6], rtol=1e-6)
    order = balanced_order(y, np.random.default_rng(0))
    assert len(order) == len(y)
    big = balanced_order(np.repeat(y, 300), np.random.default_rng(1))
    share = np.bincount(np.repeat(y, 300)[big], minlength=3) / len(big)
    assert np.all(np.abs(share - 1 / 3) < 0.05)


def test_temperature_scaling_lowers_nll_on_overconfident_logits():
    gen = torch.Generator().manual_seed(0)
    n = 600
    labels = torch.randint(0, 3, (n,), generator=gen)
    clean = torch.randn(n, 3, generator=gen)
    clean[torch.arange(n), labels] += 1.0  # ~60 % accurate, honest scale
    overconfident = clean * 8.0
    t = fit_temperature(overconfident, labels)
    assert t > 3.0
    assert nll(overconfident, labels, t) < nll(overconfident, labels) - 0.5
    # Argmax (hence accuracy) is unchanged by a temperature.
    assert torch.equal((overconfident / t).argmax(-1), overconfident.argmax(-1))
    assert fit_temperature(torch.empty(0, 3), torch.empty(0, dtype=torch.long)) == 1.0
