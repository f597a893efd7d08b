"""evaluate.py compare: two folders' stored predictions of one set, review by review, on hand-made numbers."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import HANDMADE_LABELS, HANDMADE_PROBS

import evaluate
from sentiment.artifacts import update_atomically, write_evaluation
from sentiment.compare import compare, paired_predictions
from sentiment.errors import SentimentError

# Against HANDMADE_PROBS (mistakes r2, r6, r9): r2 0.7 -> 0.3 and r9 0.45 -> 0.55 are fixed, r7 0.6 -> 0.4 broken.
NEW_PROBS = [0.1, 0.2, 0.3, 0.4, 0.9, 0.8, 0.15, 0.4, 0.95, 0.55]


def frame(new: list[float], old: list[float] = HANDMADE_PROBS) -> pd.DataFrame:
    return pd.DataFrame({"labels": HANDMADE_LABELS, "p_new": new, "p_old": old})


def test_fixed_and_broken_reviews_flips_and_shift_are_counted():
    r = compare(frame(NEW_PROBS), seed=0, resamples=200)
    assert (r["accuracy"]["new"], r["accuracy"]["old"]) == (0.8, 0.7)
    assert (r["accuracy"]["fixed"], r["accuracy"]["broken"]) == (2, 1)
    assert r["accuracy"]["mcnemar_p"] == pytest.approx(1.0)  # 2 against 1 is no evidence
    assert r["flipped"] == {"to_positive": 1, "to_negative": 2}
    assert r["shift"]["median"] == 0.0 and r["shift"]["mean"] == pytest.approx(-0.05)
    for key in ("accuracy", "roc_auc"):
        low, high = r[key]["difference_ci"]
        assert low <= r[key]["difference"] <= high


def test_a_threshold_shift_moves_every_review_and_no_ranking():
    """What the ablations look for: P(positive) moved as a whole, the order of the reviews unchanged."""
    old = np.array(HANDMADE_PROBS)
    r = compare(frame((old + 0.06).tolist()), seed=0, resamples=200)
    assert r["shift"]["median"] == pytest.approx(0.06) and r["shift"]["median_ci"] == pytest.approx([0.06, 0.06])
    assert r["roc_auc"]["difference"] == 0.0 and r["roc_auc"]["difference_ci"] == [0.0, 0.0]
    assert r["flipped"] == {"to_positive": 1, "to_negative": 0}  # r9: 0.45 -> 0.51
    assert r["share_positive"]["new"] == 0.6 and r["share_positive"]["old"] == 0.5


def test_many_one_sided_changes_are_significant():
    labels = np.array([0, 1] * 50)
    old, new = np.where(labels == 1, 0.4, 0.6), np.where(labels == 1, 0.9, 0.1)  # all wrong, then all right
    r = compare(pd.DataFrame({"labels": labels, "p_new": new, "p_old": old}), seed=0, resamples=200)
    assert r["accuracy"]["fixed"] == 100 and r["accuracy"]["mcnemar_p"] < 1e-20
    assert r["accuracy"]["difference_ci"][0] == 1.0


def test_the_bootstrap_is_seeded():
    assert compare(frame(NEW_PROBS), seed=3, resamples=100) == compare(frame(NEW_PROBS), seed=3, resamples=100)


def test_one_label_is_refused():
    with pytest.raises(SentimentError, match="both labels"):
        compare(pd.DataFrame({"labels": [1, 1], "p_new": [0.6, 0.7], "p_old": [0.5, 0.4]}))


def _with_set(source, folder, name, predictions, sha256="a" * 64):
    shutil.copytree(source, folder)

    def write(tmp):
        write_evaluation(tmp, name, {"name": name, "sha256": sha256, "n": len(predictions)}, {}, predictions, [])

    update_atomically(folder, write)
    return folder


def test_two_folders_are_paired_row_by_row_and_other_data_is_refused(tiny_artifacts, handmade_predictions,
                                                                     tmp_path):
    old = _with_set(tiny_artifacts, tmp_path / "old", "ours", handmade_predictions.assign(row=range(10)))
    shuffled = handmade_predictions.assign(row=range(10), prob_positive=np.float32(NEW_PROBS)).iloc[::-1]
    new = _with_set(tiny_artifacts, tmp_path / "new", "ours", shuffled)
    pairs, info = paired_predictions(new, old, "ours")
    assert pairs["p_new"].tolist() == pytest.approx(NEW_PROBS) and pairs["p_old"].tolist() == pytest.approx(
        HANDMADE_PROBS)
    other = _with_set(tiny_artifacts, tmp_path / "other", "ours", handmade_predictions.assign(row=range(10)),
                      sha256="b" * 64)
    with pytest.raises(SentimentError, match="scored different data"):
        paired_predictions(other, old, "ours")
    fewer = _with_set(tiny_artifacts, tmp_path / "fewer", "ours", handmade_predictions.assign(row=range(10))[:8])
    with pytest.raises(SentimentError, match="hold different rows"):
        paired_predictions(fewer, old, "ours")
    with pytest.raises(SentimentError, match="has no evaluation set 'theirs'.*--name theirs"):
        paired_predictions(new, old, "theirs")


def test_the_command_prints_the_comparison_and_needs_a_second_folder(tiny_artifacts, capsys):
    assert evaluate.main(["compare", "--artifacts", str(tiny_artifacts), "--against", str(tiny_artifacts)]) == 0
    out = capsys.readouterr().out
    assert "0 fixed, 0 broken" in out and "median +0.0000" in out
    assert evaluate.main(["compare", "--artifacts", str(tiny_artifacts)]) == 2
    assert "give --against" in capsys.readouterr().err
