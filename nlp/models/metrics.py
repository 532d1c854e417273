"""Classification metrics on integer labels and probability matrices (numpy only).

Kept free of torch/sklearn so they are cheap to import and easy to check by hand in tests.
Labels are integer class indices ``0..K-1``; probabilities are ``(n, K)`` rows summing to 1.
"""
from __future__ import annotations

import numpy as np


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """``cm[i, j]`` = number of examples of true class ``i`` predicted as ``j``."""
    y_true = np.asarray(y_true, dtype=int)
    y_pred = np.asarray(y_pred, dtype=int)
    cm = np.zeros((n_classes, n_classes), dtype=int)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def precision_recall_f1(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall, F1 from a confusion matrix; 0 where undefined (like sklearn)."""
    tp = np.diag(cm).astype(float)
    pred_pos = cm.sum(axis=0).astype(float)
    true_pos = cm.sum(axis=1).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(pred_pos > 0, tp / pred_pos, 0.0)
        recall = np.where(true_pos > 0, tp / true_pos, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return precision, recall, f1


def accuracy(y_true, y_pred) -> float:
    y_true = np.asarray(y_true)
    return float((y_true == np.asarray(y_pred)).mean()) if len(y_true) else float("nan")


def macro_f1(y_true, y_pred, n_classes: int) -> float:
    """Unweighted mean of per-class F1 over all ``n_classes`` (absent classes count as 0)."""
    return float(precision_recall_f1(confusion_matrix(y_true, y_pred, n_classes))[2].mean())


def reliability_bins(y_true, proba: np.ndarray, n_bins: int = 15) -> dict[str, np.ndarray]:
    """Top-label confidence vs accuracy in ``n_bins`` equal-width bins over (0, 1]."""
    proba = np.asarray(proba, dtype=float)
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == np.asarray(y_true)).astype(float)
    # Right-closed bins: a confidence of exactly 1.0 falls in the last bin.
    idx = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_conf = np.bincount(idx, weights=conf, minlength=n_bins) / count
        acc = np.bincount(idx, weights=correct, minlength=n_bins) / count
    return {"count": count, "confidence": mean_conf, "accuracy": acc, "edges": np.linspace(0, 1, n_bins + 1)}


def expected_calibration_error(y_true, proba: np.ndarray, n_bins: int = 15) -> float:
    """ECE: sum over bins of (bin share) * |accuracy - mean confidence| (top-label, equal width)."""
    b = reliability_bins(y_true, proba, n_bins)
    n = b["count"].sum()
    if n == 0:
        return float("nan")
    used = b["count"] > 0
    gap = np.abs(b["accuracy"][used] - b["confidence"][used])
    return float((b["count"][used] / n * gap).sum())


def bootstrap_ci(
    y_true, y_pred, metric, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``metric(y_true, y_pred)`` over resampled examples."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    n = len(y_true)
    if n == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    stats = np.empty(n_boot)
    for b in range(n_boot):
        i = rng.integers(0, n, n)
        stats[b] = metric(y_true[i], y_pred[i])
    lo, hi = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)
