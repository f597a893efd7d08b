"""Classification metrics from labels and probabilities: pure functions on arrays."""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

from sentiment.config import ID2LABEL
from sentiment.errors import SentimentError


def _check(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    if labels.ndim != 1 or probs.shape != labels.shape:
        raise SentimentError(f"labels {labels.shape} and positive-class probabilities {probs.shape} must be 1-D and "
                             f"of the same length")
    if set(np.unique(labels).tolist()) != {0, 1}:
        raise SentimentError("metrics need both classes (0 and 1) among the labels")
    if np.any((probs < 0) | (probs > 1)) or np.isnan(probs).any():
        raise SentimentError("probabilities must lie in [0, 1]")
    return labels, probs


def validation_metrics(labels: np.ndarray, probs: np.ndarray) -> dict:
    """Accuracy and mean negative log-likelihood of class probabilities (n, 2), as a training epoch records them
    (eval_accuracy, eval_loss; probabilities clipped at 1e-7)."""
    labels, probs = np.asarray(labels, dtype=np.int64), np.asarray(probs, dtype=np.float64)
    picked = np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1.0)
    return {"eval_accuracy": float((probs.argmax(-1) == labels).mean()), "eval_loss": float(-np.log(picked).mean())}


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion: well-behaved near 0 and 1 and for small n, unlike the normal
    approximation (Wilson 1927; Brown, Cai and DasGupta 2001)."""
    if n <= 0:
        raise SentimentError("an interval needs at least one observation")
    if not 0 <= successes <= n:
        raise SentimentError(f"successes ({successes}) must lie between 0 and n ({n})")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def calibration(labels: np.ndarray, probs: np.ndarray, bins: int = 10) -> dict:
    """Reliability diagram data and expected calibration error of the predicted class's confidence."""
    labels, probs = np.asarray(labels), np.asarray(probs, dtype=np.float64)
    predicted = (probs >= 0.5).astype(np.int64)
    confidence = np.where(predicted == 1, probs, 1.0 - probs)
    correct = (predicted == labels).astype(np.float64)
    edges = np.linspace(0.5, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    rows = {"bin_lower": edges[:-1].tolist(), "bin_upper": edges[1:].tolist(), "count": [], "confidence": [],
            "accuracy": []}
    ece = 0.0
    for b in range(bins):
        mask = which == b
        n = int(mask.sum())
        rows["count"].append(n)
        rows["confidence"].append(float(confidence[mask].mean()) if n else None)
        rows["accuracy"].append(float(correct[mask].mean()) if n else None)
        if n:
            ece += n / len(labels) * abs(correct[mask].mean() - confidence[mask].mean())
    return {"ece": float(ece), "bins": rows}


def _curve(x: np.ndarray, y: np.ndarray, max_points: int = 400) -> tuple[list[float], list[float]]:
    """Thin a curve to at most `max_points` points, keeping both ends; enough to draw it."""
    if len(x) > max_points:
        keep = np.unique(np.linspace(0, len(x) - 1, max_points).round().astype(int))
        x, y = x[keep], y[keep]
    return [round(float(v), 6) for v in x], [round(float(v), 6) for v in y]


def compute_metrics(labels: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> dict:
    """Accuracy with its 95 % Wilson interval, per-class and macro precision/recall/F1, confusion matrix, ROC and
    PR curves with AUCs, log loss and calibration, for binary labels and P(positive)."""
    labels, probs = _check(labels, probs)
    predicted = (probs >= threshold).astype(np.int64)
    precision, recall, f1, support = skm.precision_recall_fscore_support(labels, predicted, labels=[0, 1],
                                                                         zero_division=0)
    per_class = {ID2LABEL[c]: {"precision": float(precision[c]), "recall": float(recall[c]), "f1": float(f1[c]),
                               "support": int(support[c])} for c in (0, 1)}
    fpr, tpr, _ = skm.roc_curve(labels, probs)
    pr_precision, pr_recall, _ = skm.precision_recall_curve(labels, probs)
    roc_x, roc_y = _curve(fpr, tpr)
    pr_x, pr_y = _curve(pr_recall[::-1], pr_precision[::-1])
    calib = calibration(labels, probs)
    correct = int((predicted == labels).sum())
    return {
        "n": int(len(labels)),
        "accuracy": correct / len(labels),
        "accuracy_ci": list(wilson_interval(correct, len(labels))),
        "macro": {"precision": float(precision.mean()), "recall": float(recall.mean()), "f1": float(f1.mean())},
        "per_class": per_class,
        "confusion_matrix": skm.confusion_matrix(labels, predicted, labels=[0, 1]).tolist(),
        "roc_auc": float(skm.roc_auc_score(labels, probs)),
        "pr_auc": float(skm.average_precision_score(labels, probs)),
        "log_loss": float(skm.log_loss(labels, np.clip(probs, 1e-7, 1 - 1e-7), labels=[0, 1])),
        "ece": calib["ece"],
        "calibration": calib["bins"],
        "roc_curve": {"fpr": roc_x, "tpr": roc_y},
        "pr_curve": {"recall": pr_x, "precision": pr_y},
        "threshold": threshold,
        "labels": [ID2LABEL[0], ID2LABEL[1]],
    }
