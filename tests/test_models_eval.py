"""Metrics against hand-computed values, baselines, the eval harness and CLI, explain, bad input."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from _models_tiny import TINY, _one_torch_thread  # noqa: F401 (autouse fixture)
from sklearn.metrics import confusion_matrix as sk_cm
from sklearn.metrics import f1_score
from typer.testing import CliRunner

from nlp.evaluate import EvalInputError, evaluate, load_eval_set, model_predictor
from nlp.models import metrics
from nlp.models.baselines import LoughranMcDonald, MajorityClass, Vader, make_baseline
from nlp.registry import baselines

# ---------------------------------------------------------------- metrics by hand
Y_TRUE = np.array([0, 0, 1, 1, 2, 2])
Y_PRED = np.array([0, 1, 1, 1, 2, 0])
CONF = np.array([0.9, 0.65, 0.85, 0.7, 0.95, 0.5])


def _proba(pred, conf):
    p = np.repeat(((1 - conf) / 2)[:, None], 3, axis=1)
    p[np.arange(len(pred)), pred] = conf
    return p


def test_metrics_match_hand_computation():
    cm = metrics.confusion_matrix(Y_TRUE, Y_PRED, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    p, r, f = metrics.precision_recall_f1(cm)
    np.testing.assert_allclose(p, [1 / 2, 2 / 3, 1.0])
    np.testing.assert_allclose(r, [1 / 2, 1.0, 1 / 2])
    np.testing.assert_allclose(f, [0.5, 0.8, 2 / 3])
    assert metrics.accuracy(Y_TRUE, Y_PRED) == pytest.approx(4 / 6)
    assert metrics.macro_f1(Y_TRUE, Y_PRED, 3) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    # ECE with 5 bins: {0.9,0.85,0.95} all right -> |1-0.9|*3/6; {0.65 wrong, 0.7 right} ->
    # |0.5-0.675|*2/6; {0.5 wrong} -> 0.5*1/6.
    ece = metrics.expected_calibration_error(Y_TRUE, _proba(Y_PRED, CONF), n_bins=5)
    assert ece == pytest.approx(0.1 * 3 / 6 + 0.175 * 2 / 6 + 0.5 / 6)


def test_metrics_agree_with_sklearn_on_random_labels():
    rng = np.random.default_rng(0)
    y, yp = rng.integers(0, 3, 500), rng.integers(0, 3, 500)
    assert metrics.confusion_matrix(y, yp, 3).tolist() == sk_cm(y, yp, labels=[0, 1, 2]).tolist()
    assert metrics.macro_f1(y, yp, 3) == pytest.approx(f1_score(y, yp, average="macro"))
    # A class never predicted and never present scores F1 = 0 and still counts in the mean.
    assert metrics.macro_f1([0, 0], [0, 0], 3) == pytest.approx(1 / 3)


def test_bootstrap_interval_brackets_the_estimate_and_is_seeded():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 300)
    yp = np.where(rng.random(300) < 0.8, y, (y + 1) % 3)
    lo, hi = metrics.bootstrap_ci(y, yp, metrics.accuracy, n_boot=300, seed=5)
    assert lo < metrics.accuracy(y, yp) < hi and hi - lo < 0.15
    assert (lo, hi) == metrics.bootstrap_ci(y, yp, metrics.accuracy, n_boot=300, seed=5)


def test_perfectly_calibrated_bins_have_zero_ece():
    proba = _proba(np.zeros(4, dtype=int), np.full(4, 0.75))
    assert metrics.expected_calibration_error([0, 0, 0, 1], proba) == pytest.approx(0.0)


# ---------------------------------------------------------------- baselines
def test_baselines_fit_predict_and_refuse_unknown_labels():
    texts, labels = TINY["text"].tolist(), TINY["label"].tolist()
    maj = MajorityClass().fit(texts, ["neutral"] * 10 + ["positive"] * 8)
    assert (maj.predict(["anything", "else"]) == "neutral").all()
    lm = LoughranMcDonald().fit(texts, labels)
    assert lm.predict(["The company reported a loss and a default ."])[0] == "negative"
    assert lm.predict(["The company achieved strong gains ."])[0] == "positive"
    vd = Vader().fit(texts, labels)
    p = vd.predict_proba(["great excellent results", "The meeting is on Tuesday ."])
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert vd.predict(["great excellent results"])[0] == "positive"
    with pytest.raises(ValueError, match="unknown label"):
        MajorityClass().fit(["a"], ["bullish"])
    with pytest.raises(KeyError, match="unknown baseline"):
        make_baseline("nope")
    assert baselines.names() == ["majority", "loughran_mcdonald", "vader", "minilm_embeddings_logreg"]


def test_frozen_embedding_baseline_learns_the_training_slice():
    est = make_baseline("minilm_embeddings_logreg").fit(TINY["text"].tolist(), TINY["label"].tolist())
    acc = (est.predict(TINY["text"].tolist()) == TINY["label"].to_numpy()).mean()
    assert acc >= 0.8


# ---------------------------------------------------------------- harness, bad input, CLI
@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from nlp.models.config import FinetuneConfig
    from nlp.models.finetune import finetune

    cfg = FinetuneConfig(method="lora", epochs=3, batch_size=6, lr=3e-3, warmup_ratio=0.0, max_length=32, seed=1,
                         train_sets=["tests:tiny"], val_sets=["tests:tiny"])
    return finetune(cfg, tmp_path_factory.mktemp("m") / "tiny", train=TINY, val=TINY, command="test", progress=False)


@pytest.fixture()
def eval_files(tmp_path):
    good = tmp_path / "good.csv"
    TINY.assign(label=TINY["label"].map({"negative": "0", "positive": "1", "neutral": "2"})).rename(
        columns={"text": "sentence", "label": "y"}).to_csv(good, index=False)
    bad = tmp_path / "bad.csv"
    TINY.assign(label=["bullish"] + TINY["label"].tolist()[1:]).to_csv(bad, index=False)
    empty = tmp_path / "empty_text.jsonl"
    pd.DataFrame({"text": ["", "Profit rose ."], "label": ["neutral", "positive"]}).to_json(empty, orient="records", lines=True)
    train = tmp_path / "train.csv"
    TINY.to_csv(train, index=False)
    return {"good": good, "bad": bad, "empty": empty, "train": train}


def test_eval_file_with_unknown_label_is_a_clear_error(eval_files, tmp_path):
    with pytest.raises(EvalInputError, match=r"unknown label.*bullish"):
        load_eval_set(str(eval_files["bad"]))
    with pytest.raises(EvalInputError, match="missing text"):
        load_eval_set(str(eval_files["empty"]))
    df = load_eval_set(str(eval_files["bad"]), skip_bad_rows=True)
    assert len(df) == len(TINY) - 1
    with pytest.raises(EvalInputError, match=r"unknown label"):
        load_eval_set(str(eval_files["good"]), text_col="sentence", label_col="y")  # labels 0/1/2 unmapped
    mapped = load_eval_set(str(eval_files["good"]), text_col="sentence", label_col="y",
                           label_map={"0": "negative", "1": "positive", "2": "neutral"})
    assert mapped["label"].tolist() == TINY["label"].tolist()


def test_model_handles_very_long_and_odd_text(tiny_model):
    pred = model_predictor(tiny_model)
    p = pred.predict_proba(["profit rose " * 5000, "", "€ ñ 漢字 $NWE 🚀"])
    assert p.shape == (3, 3) and np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)


def test_evaluate_writes_json_leaderboard_and_png(tiny_model, eval_files, tmp_path):
    out = tmp_path / "ev"
    report = evaluate([str(tiny_model)], [str(eval_files["good"])], out, baselines=["majority", "vader"],
                      baseline_train=[str(eval_files["train"])], text_col="sentence", label_col="y",
                      label_map={"0": "negative", "1": "positive", "2": "neutral"}, n_boot=50, progress=False)
    data = json.loads((out / "results.json").read_text())
    block = data["sets"][str(eval_files["good"])]
    assert set(block["results"]) == {"altsignal-minilm-sentiment", "majority", "vader"}
    for r in block["results"].values():
        assert 0 <= r["accuracy"] <= 1 and 0 <= r["macro_f1"] <= 1
        lo, hi = r["accuracy_ci95"]
        assert lo <= r["accuracy"] <= hi
        assert sum(map(sum, r["confusion_matrix"]["rows_true_cols_pred"])) == len(TINY)
    assert block["results"]["majority"]["accuracy"] == pytest.approx(6 / 18)
    assert (out / block["reliability_png"]).stat().st_size > 1000
    md = (out / "leaderboard.md").read_text()
    assert "majority" in md and "vader" in md and "altsignal-minilm-sentiment" in md
    assert report["baseline_train"] == [str(eval_files["train"])]
    with pytest.raises(EvalInputError, match="refusing to fit baselines"):
        evaluate([str(tiny_model)], [str(eval_files["train"])], tmp_path / "x", baselines=["majority"],
                 baseline_train=[str(eval_files["train"])], progress=False)


@pytest.mark.parametrize("numeric", [None, "bf16"])
def test_cli_eval_scores_on_the_numeric_path_asked(tiny_model, eval_files, tmp_path, numeric):
    """fp32 (the model cards' path) unless --numeric names another; results.json records the path used."""
    from altsignal.cli import app

    args = ["models", "eval", str(eval_files["train"]), "-m", str(tiny_model), "-o", str(tmp_path), "--n-boot", "10"]
    res = CliRunner().invoke(app, args + (["--numeric", numeric] if numeric else []))
    assert res.exit_code == 0, res.output
    predictors = json.loads((tmp_path / "results.json").read_text())["predictors"]
    assert [p["numeric"] for p in predictors.values()] == [numeric or "fp32"]


def test_cli_eval_and_explain(tiny_model, eval_files, tmp_path):
    from altsignal.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["models", "eval", str(eval_files["train"]), "-m", str(tiny_model), "-b", "majority",
                              "--baseline-train", str(eval_files["train"]), "-o", str(tmp_path / "cli"), "--n-boot", "20"])
    assert res.exit_code == 2 and "refusing to fit baselines" in res.output
    res = runner.invoke(app, ["models", "eval", str(eval_files["good"]), "-m", str(tiny_model), "--text-col", "sentence",
                              "--label-col", "y", "--label-map", "0=negative,1=positive,2=neutral",
                              "-o", str(tmp_path / "cli"), "--n-boot", "20"])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "cli" / "results.json").read_text())["sets"]
    res = runner.invoke(app, ["models", "eval", str(eval_files["bad"]), "-m", str(tiny_model), "-o", str(tmp_path / "bad")])
    # A clean exit with one error line, not an exception escaping the command.
    assert res.exit_code == 2 and isinstance(res.exception, SystemExit)
    assert "error:" in res.output and "unknown label" in res.output
    png = tmp_path / "ex.png"
    res = runner.invoke(app, ["models", "explain", "Profit rose sharply .", "-m", str(tiny_model), "-o", str(png), "--steps", "8"])
    assert res.exit_code == 0, res.output
    assert "profit" in res.output and png.stat().st_size > 1000
    res = runner.invoke(app, ["models", "explain", "   ", "-m", str(tiny_model)])
    assert res.exit_code == 2 and "non-empty" in res.output
    res = runner.invoke(app, ["models", "finetune", "-o", str(tmp_path / "never"), "--train", "fpb:50agree:test"])
    assert res.exit_code == 2 and "refusing to train on a test split" in res.output
    assert not (tmp_path / "never").exists()


def test_explain_attributions_cover_the_words(tiny_model):
    from nlp.models.artifact import load_classifier
    from nlp.models.explain import explain

    sm = load_classifier(tiny_model)
    ex = explain(sm, "Operating margin improved significantly .", n_steps=16)
    assert ex.words == ["operating", "margin", "improved", "significantly", "."]
    assert len(ex.attributions) == 5 and np.isfinite(ex.attributions).all()
    assert sum(ex.proba.values()) == pytest.approx(1.0, abs=1e-5)
    neg = explain(sm, "Operating margin improved significantly .", target="negative", n_steps=16)
    assert neg.label == "negative"
    with pytest.raises(ValueError, match="unknown target"):
        explain(sm, "text", target="bullish")
