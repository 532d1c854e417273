"""The evaluation harness: models and baselines on labeled sets, side by side.

Every predictor (a model artifact or a baseline) yields a probability matrix over
``nlp.contracts.LABELS``; one function turns (labels, probabilities) into the metrics. Outputs:
``results.json`` (per set, per predictor: ``accuracy``, ``macro_f1`` with bootstrap 95%
intervals, per-class P/R/F1, confusion matrix, ECE), ``leaderboard.md`` and one
reliability-diagram PNG per set.

Decisions the issue left open:
- A file with rows that cannot be evaluated (unknown label, empty text) is an error by default,
  because a silently filtered test set would report a misleading number; ``skip_bad_rows``
  evaluates the good rows, and the rejects are written beside the results and counted.
- Bootstrap intervals resample examples (1000 draws, seeded); the same draws serve every
  predictor of a set, so intervals are comparable.
- Baselines are fitted on ``baseline_train`` (default: the training sets recorded in the first
  model's metadata, i.e. what that model saw), never on an evaluated set.
- Entity-level sets (``finentity:test``, ``sentfin:test``): a row is one (text, entity). A model
  trained with entity markers reads the text with that entity marked; a sentence model and the
  baselines read the plain text, which is today's behaviour (every entity of a text gets the
  text's score). The rows of texts naming entities of different labels are also reported as
  ``<set>:mixed`` (same predictions, subset of rows).
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from core.atomic import atomic_write_text
from core.errors import UsageError
from core.progress import Progress
from core.rejects import Rejects
from nlp.contracts import LABELS
from nlp.entity_input import is_entity_frame, marked_texts
from nlp.models.metrics import (
    accuracy,
    bootstrap_ci,
    confusion_matrix,
    expected_calibration_error,
    macro_f1,
    precision_recall_f1,
    reliability_bins,
)
from nlp.scoring.config import REFERENCE_NUMERIC, EngineConfig, Numeric

log = logging.getLogger(__name__)
K = len(LABELS)


class EvalInputError(UsageError):
    """An evaluation set cannot be evaluated as given (bad rows, unknown labels...)."""


@dataclass
class Predictor:
    name: str
    kind: str  # "model" or "baseline"
    predict_proba: Callable[[list[str]], np.ndarray]
    info: dict


def load_eval_set(
    spec: str,
    text_col: str = "text",
    label_col: str = "label",
    label_map: dict[str, str] | None = None,
    skip_bad_rows: bool = False,
    rejects: Rejects | None = None,
) -> pd.DataFrame:
    """A named labeled set (``fpb:50agree:test``, ``tfns:valid``...) or a CSV/JSONL/Parquet file."""
    from nlp.labeled_sets import load_labeled_set

    rejects = rejects if rejects is not None else Rejects()
    before = len(rejects)
    df = load_labeled_set(spec, text_col=text_col, label_col=label_col, label_map=label_map, rejects=rejects)
    bad = len(rejects) - before
    if bad and not skip_bad_rows:
        first = rejects.to_frame().iloc[before : before + 3]
        examples = "; ".join(f"line {r.line}: {r.reason} (got {str(r.raw)[:40]!r})" for r in first.itertuples())
        raise EvalInputError(
            f"{spec}: {bad} row(s) cannot be evaluated, e.g. {examples}. Fix the file, pass a label "
            f"mapping onto {list(LABELS)}, or skip bad rows explicitly (they are then written to a rejects file)."
        )
    if len(df) == 0:
        raise EvalInputError(f"{spec}: no rows to evaluate")
    entity_cols = ["start", "end", "mixed"] if is_entity_frame(df) else []
    return df[["text", *entity_cols, "label"]].reset_index(drop=True)


def model_predictor(path: str | Path, numeric: Numeric = REFERENCE_NUMERIC) -> Predictor:
    """A model artifact through :class:`nlp.scorer.Scorer`, the path batch jobs score with.

    fp32 by default: the model card's numbers are the reference path's, not a fast path's.
    ``numeric`` means what it means for a batch job: ``auto`` runs the accuracy check first when
    none is recorded, so evaluation reports the path a job would take.
    """
    from nlp.scorer import Scorer

    # No dedup cache across calls: a set's texts already met in another set would make its
    # recorded speed meaningless (within one call identical texts are still scored once).
    scorer = Scorer.load(path, numeric=numeric, check=True, config=EngineConfig(cache_entries=0))
    order = [scorer.labels.index(label) for label in LABELS]  # the harness's columns are LABELS

    def proba(texts: list[str]) -> np.ndarray:
        return scorer.predict_proba(texts)[:, order]

    meta = scorer.engine.sm.meta
    info = {"path": str(path), "base": meta.base, "artifact_kind": meta.kind, "temperature": meta.temperature,
            "numeric": scorer.numeric, "entity_markers": meta.entity_markers}
    return Predictor(scorer.model_id, "model", proba, info)


def baseline_predictor(name: str, train: pd.DataFrame) -> Predictor:
    from nlp.models.baselines import make_baseline

    t0 = time.perf_counter()
    est = make_baseline(name).fit(train["text"].tolist(), train["label"].tolist())
    info = {"fitted_on_rows": len(train), "fit_seconds": round(time.perf_counter() - t0, 1), "entity_markers": False}
    return Predictor(name, "baseline", est.predict_proba, info)


def score_predictions(y_true: np.ndarray, proba: np.ndarray, n_boot: int = 1000, seed: int = 0) -> dict:
    """All metrics for one predictor on one set (labels are class indices)."""
    y_true = np.asarray(y_true, dtype=int)
    y_pred = proba.argmax(axis=1)
    cm = confusion_matrix(y_true, y_pred, K)
    p, r, f = precision_recall_f1(cm)
    support = cm.sum(axis=1)
    bins = reliability_bins(y_true, proba)
    f1_fn = lambda a, b: macro_f1(a, b, K)  # noqa: E731
    return {
        "n": int(len(y_true)),
        "accuracy": accuracy(y_true, y_pred),
        "accuracy_ci95": list(bootstrap_ci(y_true, y_pred, accuracy, n_boot, seed=seed)),
        "macro_f1": macro_f1(y_true, y_pred, K),
        "macro_f1_ci95": list(bootstrap_ci(y_true, y_pred, f1_fn, n_boot, seed=seed)),
        "per_class": {
            lab: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(support[i])}
            for i, lab in enumerate(LABELS)
        },
        "confusion_matrix": {"labels": list(LABELS), "rows_true_cols_pred": cm.tolist()},
        "ece": expected_calibration_error(y_true, proba),
        "reliability": {
            "count": bins["count"].tolist(),
            "confidence": np.nan_to_num(bins["confidence"]).tolist(),
            "accuracy": np.nan_to_num(bins["accuracy"]).tolist(),
        },
    }


def reliability_png(set_name: str, results: dict[str, dict], path: Path) -> Path:
    """One reliability diagram per set: accuracy vs confidence, one line per predictor."""
    from core.plots import subplots

    fig, ax = subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="perfect calibration")
    for name, res in results.items():
        rel = res["reliability"]
        used = np.array(rel["count"]) > 0
        ax.plot(np.array(rel["confidence"])[used], np.array(rel["accuracy"])[used], marker="o", ms=3,
                label=f"{name} (ECE {res['ece']:.3f})")
    ax.set(xlabel="confidence (top class)", ylabel="accuracy", title=f"Reliability: {set_name}", xlim=(0, 1), ylim=(0, 1))
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    tmp.replace(path)
    return path


def _slug(s: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in s).strip("_")


def leaderboard_markdown(report: dict) -> str:
    """Every predictor side by side per set: accuracy and macro-F1 with 95% intervals, ECE."""
    lines = ["# Leaderboard", ""]
    for set_name, block in report["sets"].items():
        lines += [f"## {set_name} (n = {block['n']})", "",
                  "| predictor | kind | accuracy [95% CI] | macro-F1 [95% CI] | ECE |", "|---|---|---|---|---|"]
        rows = sorted(block["results"].items(), key=lambda kv: -kv[1]["accuracy"])
        for name, r in rows:
            kind = report["predictors"][name]["kind"]
            lo, hi = r["accuracy_ci95"]
            flo, fhi = r["macro_f1_ci95"]
            lines.append(f"| {name} | {kind} | {r['accuracy']:.3f} [{lo:.3f}, {hi:.3f}] | "
                         f"{r['macro_f1']:.3f} [{flo:.3f}, {fhi:.3f}] | {r['ece']:.3f} |")
        lines += ["", f"![reliability]({block['reliability_png']})", ""]
    return "\n".join(lines) + "\n"


def _set_block(set_name: str, n: int, results: dict[str, dict], out: Path) -> dict:
    png = reliability_png(set_name, results, out / f"reliability_{_slug(set_name)}.png")
    return {"n": n, "results": results, "reliability_png": png.name}


def evaluate(
    models: list[str],
    sets: list[str],
    out_dir: str | Path,
    baselines: list[str] | None = None,
    baseline_train: list[str] | None = None,
    text_col: str = "text",
    label_col: str = "label",
    label_map: dict[str, str] | None = None,
    skip_bad_rows: bool = False,
    n_boot: int = 1000,
    seed: int = 0,
    progress: bool = True,
    command: str | None = None,
    numeric: Numeric = REFERENCE_NUMERIC,
) -> dict:
    """Evaluate models (``default``, ``fast`` or artifact folders; the default model if none) and baselines on sets.

    Models score on the path ``numeric`` (see :func:`model_predictor`); each records the path it used.
    """
    from nlp.models import model_path
    from nlp.models.artifact import read_meta
    from nlp.models.finetune import load_sets

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    models = [str(model_path(m)) for m in models] or [str(model_path())]
    rejects = Rejects()
    data = {
        s: load_eval_set(s, text_col, label_col, label_map, skip_bad_rows, rejects) for s in sets
    }
    predictors = [model_predictor(m, numeric) for m in models]
    names = [p.name for p in predictors]
    for p, m in zip(predictors, models):
        if names.count(p.name) > 1:  # two artifacts with one model_id: tell them apart by folder
            p.name = f"{p.name}@{Path(m).name}"
    if baselines:
        train_names = baseline_train or read_meta(models[0]).extra.get("data", {}).get("train_sets")
        if not train_names:
            raise EvalInputError("baselines need training data: pass baseline_train (e.g. fpb:50agree:train)")
        overlap = set(train_names) & set(sets)
        if overlap:
            raise EvalInputError(f"refusing to fit baselines on an evaluated set: {sorted(overlap)}")
        train = load_sets(list(train_names), mark_entities=False)
        predictors += [baseline_predictor(b, train) for b in Progress(baselines, desc="fit baselines", enabled=progress)]
    else:
        train_names = []

    report: dict = {
        "command": command,
        "predictors": {p.name: {"kind": p.kind, **p.info} for p in predictors},
        "baseline_train": list(train_names),
        "n_boot": n_boot,
        "seed": seed,
        "sets": {},
    }
    label_index = {l: i for i, l in enumerate(LABELS)}
    for set_name, df in data.items():
        y = df["label"].map(label_index).to_numpy()
        entity = is_entity_frame(df)
        inputs = {False: df["text"].tolist(), True: marked_texts(df) if entity else df["text"].tolist()}
        mixed = df["mixed"].to_numpy(dtype=bool) if entity else None
        results, mixed_results = {}, {}
        for p in Progress(predictors, desc=set_name, enabled=progress):
            texts = inputs[p.info["entity_markers"]]
            t0 = time.perf_counter()
            proba = np.asarray(p.predict_proba(texts), dtype=float)
            seconds = time.perf_counter() - t0
            res = score_predictions(y, proba, n_boot=n_boot, seed=seed)
            # Prediction time only (whatever else runs on the machine).
            res["predict_seconds"] = round(seconds, 2)
            res["sentences_per_s"] = round(len(texts) / seconds, 1) if seconds > 0 else None
            results[p.name] = res
            if mixed is not None and mixed.any():
                mixed_results[p.name] = score_predictions(y[mixed], proba[mixed], n_boot=n_boot, seed=seed)
        report["sets"][set_name] = _set_block(set_name, len(df), results, out)
        if mixed_results:
            report["sets"][f"{set_name}:mixed"] = _set_block(f"{set_name}:mixed", int(mixed.sum()), mixed_results, out)
    if len(rejects):
        rejects.write(out / "rejects.jsonl")
        report["rejected_rows"] = len(rejects)
    atomic_write_text(out / "results.json", json.dumps(report, indent=2) + "\n")
    atomic_write_text(out / "leaderboard.md", leaderboard_markdown(report))
    return report
