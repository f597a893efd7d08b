"""evaluate.py compare: two folders' stored predictions of one set, review by review, on hand-made numbers."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import HANDMADE_LABELS, HANDMADE_PROBS
from sklearn.metrics import roc_auc_score

import evaluate
from sentiment.artifacts import update_atomically, write_evaluation
from sentiment.compare import compare, paired_predictions, weighted_median, weighted_roc_auc
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


def test_the_weighted_roc_auc_and_median_are_those_of_the_sample_they_count():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    scores = np.round(rng.random(300), 1)  # many ties
    counts = rng.multinomial(300, np.full(300, 1 / 300))
    sample = np.repeat(np.arange(300), counts)
    assert weighted_roc_auc(labels, scores, counts.astype(float)) == pytest.approx(
        roc_auc_score(labels[sample], scores[sample]))
    order = np.argsort(scores)
    for n in (300, 301):  # an even and an odd expanded sample
        counts = rng.multinomial(n, np.full(300, 1 / 300))
        assert weighted_median(scores[order], counts[order]) == np.median(np.repeat(scores, counts))


def test_one_label_is_refused():
    with pytest.raises(SentimentError, match="both labels"):
        compare(pd.DataFrame({"labels": [1, 1], "p_new": [0.6, 0.7], "p_old": [0.5, 0.4]}))


def _with_set(source, folder, name, predictions, sha256="a" * 64, model=None):
    shutil.copytree(source, folder)
    info = {"name": name, "sha256": sha256, "n": len(predictions),
            "model": model or {"engine": "torch", "precision": "fp32"}}
    update_atomically(folder, lambda tmp: write_evaluation(tmp, name, info, {}, predictions, []))
    return folder


@pytest.fixture
def old_and_new(tiny_artifacts, handmade_predictions, tmp_path):
    old = _with_set(tiny_artifacts, tmp_path / "old", "ours", handmade_predictions.assign(row=range(10)))
    shuffled = handmade_predictions.assign(row=range(10), prob_positive=np.float32(NEW_PROBS)).iloc[::-1]
    return old, _with_set(tiny_artifacts, tmp_path / "new", "ours", shuffled)


def test_two_folders_are_paired_row_by_row(old_and_new):
    old, new = old_and_new
    pairs, scored_by = paired_predictions(new, old, "ours")
    assert pairs["p_new"].tolist() == pytest.approx(NEW_PROBS) and pairs["p_old"].tolist() == pytest.approx(
        HANDMADE_PROBS)
    assert scored_by == {"new": "torch fp32", "old": "torch fp32"}


@pytest.mark.parametrize(("change", "message"), [
    ({"sha256": "b" * 64}, "scored different data"),
    ({"rows": slice(0, 8)}, r"different rows \(8 rows against 10\)"),
    ({"key": [f"s{i}" for i in range(10)], "sha256": None}, r"different rows \(other reviews\)"),
    ({"labels": np.int8([1] * 10)}, r"different rows \(other labels\)"),
    ({"prob_positive": np.float32([np.nan] + HANDMADE_PROBS[1:])}, "1 probabilities that are not in"),
])
def test_sets_that_are_not_the_same_reviews_are_refused(old_and_new, handmade_predictions, tmp_path, change,
                                                       message):
    old, _ = old_and_new
    sha256 = change.pop("sha256", "a" * 64)
    rows = change.pop("rows", slice(None))
    other = _with_set(old, tmp_path / "other", "ours",
                      handmade_predictions.assign(row=range(10), **change)[rows], sha256=sha256)
    with pytest.raises(SentimentError, match=message):
        paired_predictions(other, old, "ours")


def test_a_missing_set_says_how_to_add_it(old_and_new):
    old, new = old_and_new
    with pytest.raises(SentimentError, match="has no evaluation set 'theirs'.*--name theirs"):
        paired_predictions(new, old, "theirs")


def test_the_command_says_when_the_engines_differ(old_and_new, handmade_predictions, tmp_path, capsys):
    old, _ = old_and_new
    int8 = _with_set(old, tmp_path / "int8", "ours", handmade_predictions.assign(row=range(10)),
                     model={"engine": "onnxruntime int8"})
    assert evaluate.main(["compare", "--artifacts", str(int8), "--against", str(old), "--name", "ours"]) == 0
    out = capsys.readouterr().out
    assert "(new, onnxruntime int8)" in out and "(old, torch fp32)" in out and "different engines" in out
    assert "0 fixed, 0 broken" in out and "median +0.0000" in out


def test_the_command_needs_a_second_folder_and_a_set(tiny_artifacts, capsys):
    assert evaluate.main(["compare", "--artifacts", str(tiny_artifacts), "--name", "test"]) == 2
    assert "give --against" in capsys.readouterr().err
    assert evaluate.main(["compare", "--artifacts", str(tiny_artifacts), "--against", str(tiny_artifacts)]) == 2
    assert "and --name" in capsys.readouterr().err
