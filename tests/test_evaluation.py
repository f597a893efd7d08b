"""Metrics on hand-made arrays whose answers are known, cross-checked against scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from sentiment.errors import SentimentError
from sentiment.evaluation import calibration, compute_metrics

LABELS = np.array([0, 0, 1, 1])
PROBS = np.array([0.1, 0.6, 0.4, 0.9])  # predicted 0, 1, 0, 1: one hit and one miss per class


def test_known_answers_by_hand():
    m = compute_metrics(LABELS, PROBS)
    assert m["n"] == 4
    assert m["accuracy"] == 0.5
    assert m["confusion_matrix"] == [[1, 1], [1, 1]]
    for name in ("negative", "positive"):
        assert m["per_class"][name] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert m["macro"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5}
    assert m["roc_auc"] == pytest.approx(0.75)  # 3 of the 4 positive/negative pairs are ordered right
    assert m["log_loss"] == pytest.approx(-(2 * math.log(0.9) + 2 * math.log(0.4)) / 4)
    assert m["labels"] == ["negative", "positive"]


def test_perfect_ranking():
    m = compute_metrics([0, 0, 0, 1, 1], [0.0, 0.2, 0.3, 0.7, 1.0])
    assert m["accuracy"] == 1.0
    assert m["confusion_matrix"] == [[3, 0], [0, 2]]
    assert m["roc_auc"] == 1.0 and m["pr_auc"] == 1.0
    assert m["roc_curve"]["fpr"][0] == 0.0 and m["roc_curve"]["tpr"][-1] == 1.0


def test_agrees_with_scikit_learn_on_an_unbalanced_noisy_case():
    rng = np.random.default_rng(0)
    labels = (rng.random(500) < 0.3).astype(int)
    probs = np.clip(0.3 * labels + rng.random(500) * 0.7, 0, 1)
    m = compute_metrics(labels, probs)
    predicted = (probs >= 0.5).astype(int)
    precision, recall, f1, support = skm.precision_recall_fscore_support(labels, predicted)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(labels, predicted))
    for c, name in enumerate(("negative", "positive")):
        assert m["per_class"][name]["precision"] == pytest.approx(precision[c])
        assert m["per_class"][name]["recall"] == pytest.approx(recall[c])
        assert m["per_class"][name]["f1"] == pytest.approx(f1[c])
        assert m["per_class"][name]["support"] == support[c]
    assert m["macro"]["f1"] == pytest.approx(skm.f1_score(labels, predicted, average="macro"))
    assert m["confusion_matrix"] == skm.confusion_matrix(labels, predicted).tolist()
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(labels, probs))
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(labels, probs))
    assert m["log_loss"] == pytest.approx(skm.log_loss(labels, probs))
    assert len(m["roc_curve"]["fpr"]) == len(m["roc_curve"]["tpr"]) <= 400


def test_threshold_moves_the_decision():
    assert compute_metrics(LABELS, PROBS, threshold=0.5)["accuracy"] == 0.5
    assert compute_metrics(LABELS, PROBS, threshold=0.35)["confusion_matrix"] == [[1, 1], [0, 2]]


def test_log_loss_is_finite_for_certain_mistakes():
    assert math.isfinite(compute_metrics([0, 1], [1.0, 0.0])["log_loss"])


# --- calibration -----------------------------------------------------------------------------------------------


def test_ece_is_zero_when_confidence_matches_accuracy():
    labels = np.array([1] * 9 + [0])  # confidence 0.9 everywhere, 90% right
    probs = np.full(10, 0.9)
    assert compute_metrics(labels, probs)["ece"] == pytest.approx(0.0, abs=1e-12)


def test_ece_of_a_known_miscalibrated_case():
    # 8 reviews at confidence 0.9, all right (gap 0.1); 2 at confidence 0.7 (P(pos)=0.3), one right (gap 0.2).
    labels = np.array([1] * 8 + [0, 1])
    probs = np.array([0.9] * 8 + [0.3, 0.3])
    result = calibration(labels, probs)
    assert result["ece"] == pytest.approx(0.8 * 0.1 + 0.2 * 0.2)
    bins = result["bins"]
    assert sum(bins["count"]) == 10
    filled = [i for i, n in enumerate(bins["count"]) if n]
    assert [bins["count"][i] for i in filled] == [2, 8]
    assert [bins["accuracy"][i] for i in filled] == pytest.approx([0.5, 1.0])
    assert [bins["confidence"][i] for i in filled] == pytest.approx([0.7, 0.9])
    for i in filled:
        assert bins["bin_lower"][i] < bins["confidence"][i] <= bins["bin_upper"][i]


def test_overconfident_mistakes_give_large_ece():
    assert calibration(np.array([1, 1, 0, 0]), np.array([1.0, 1.0, 1.0, 1.0]))["ece"] == pytest.approx(0.5)


# --- bad inputs ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("labels", "probs", "match"), [
    ([0, 1, 1], [0.2, 0.8], "same length"),
    ([[0, 1]], [[0.2, 0.8]], "1-D"),
    ([0, 1], [[0.8, 0.2], [0.1, 0.9]], "1-D"),
    ([1, 1, 1], [0.2, 0.8, 0.9], "both classes"),
    ([0, 2], [0.2, 0.8], "both classes"),
    ([0, 1], [0.2, 1.5], r"\[0, 1\]"),
    ([0, 1], [0.2, float("nan")], r"\[0, 1\]"),
])
def test_bad_inputs_are_errors(labels, probs, match):
    with pytest.raises(SentimentError, match=match):
        compute_metrics(labels, probs)
