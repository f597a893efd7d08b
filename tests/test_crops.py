"""Sentence crops: cut from training reviews, kept only where the teacher agrees, balanced, seeded, wired into
training with a clear error when there is no teacher; or all kept, with the teacher's probability as target; and
negation crops, single sentences that hold a negation."""

import random

import numpy as np
import pandas as pd
import pytest

from sentiment import crops
from sentiment.config import TrainConfig
from sentiment.errors import SentimentError
from sentiment.mixture import augment
from sentiment.predict import Predictor
from sentiment.sources import sentences

REVIEWS = [f"Sentence one of review {i} is here. Sentence two of it follows now! And a third one ends it."
           for i in range(40)]
LABELS = [i % 2 for i in range(40)]


class Teacher:
    """Agrees with the label of reviews whose number is a multiple of 4, or 5; disagrees elsewhere."""

    def predict_proba(self, texts):
        out = []
        for text in texts:
            number = int(text.split("review ")[1].split()[0]) if "review " in text else -1
            label = number % 2 if number >= 0 else 0
            agrees = number >= 0 and (number % 4 == 0 or number % 5 == 0)
            p_label = 0.95 if agrees else 0.3
            out.append([1 - p_label, p_label] if label == 1 else [p_label, 1 - p_label])
        return np.array(out)


@pytest.fixture
def teacher(monkeypatch):
    monkeypatch.setattr(Predictor, "from_artifacts", classmethod(lambda cls, *a, **k: Teacher()))
    return "teacher-folder"


def test_crops_are_consecutive_sentences_of_one_review_with_its_label():
    out = crops.cut(REVIEWS, LABELS, random.Random(0), 100)
    assert len(out) == len({text for text, _ in out}) <= 100  # distinct; these reviews have 6 crops each
    for text, _ in out:
        assert any(text in review for review in REVIEWS)
        assert crops.MIN_WORDS <= len(text.split()) <= crops.MAX_WORDS
    assert {label for _, label in out} == {0, 1}
    assert crops.cut(REVIEWS, LABELS, random.Random(0), 100) == out


def test_indexed_crops_name_the_review_each_was_cut_from():
    indexed = crops.cut_indexed(REVIEWS, random.Random(5), 50, max_sentences=2)
    assert [(text, LABELS[i]) for text, i in indexed] == crops.cut(REVIEWS, LABELS, random.Random(5), 50, 2)
    assert all(text in REVIEWS[i] for text, i in indexed)


def test_a_sentence_set_holds_a_sentence_of_each_review_with_its_label_and_metadata():
    texts = [f"Review {i} opens with this. Review {i} then says more! Review {i} ends on this one." for i in range(6)]
    frame = pd.DataFrame({"text": texts + ["Too short.", "Far too short!"], "labels": LABELS[:6] + [0, 1],
                          "row": range(10, 18), "movie": [f"m{i}" for i in range(8)]})
    out = crops.sentence_set(frame, seed=3)
    assert out["row"].tolist() == list(range(len(out))) and len(out) == 8  # as many as reviews: two from some
    assert out.columns.tolist() == [*frame.columns, "review_row"]
    assert set(out["movie"]) == {f"m{i}" for i in range(6)}  # each usable review gives one, then some a second
    assert out["movie"].value_counts().max() == 2
    by_row = frame.set_index("row")
    for text, label, movie, row in zip(out["text"], out["labels"], out["movie"], out["review_row"], strict=True):
        assert text in sentences(by_row.loc[row, "text"]) and (label, movie) == tuple(by_row.loc[row, ["labels",
                                                                                                        "movie"]])
    assert out.equals(crops.sentence_set(frame, seed=3))
    with pytest.raises(SentimentError, match="4 to 60 words"):
        crops.sentence_set(frame.iloc[6:], seed=3)


def test_only_crops_the_teacher_agrees_with_are_kept_half_of_each_label(teacher):
    out = crops.sentence_crops([r.replace("Sentence two of it", f"Sentence two of review {i}")
                                for i, r in enumerate(REVIEWS)], LABELS, 100, teacher, seed=0)
    kept = Teacher().predict_proba([text for text, _ in out])
    assert all(p[label] >= 0.9 for p, (_, label) in zip(kept, out, strict=True))
    labels = [label for _, label in out]
    assert labels.count(0) == labels.count(1) > 0


def test_crop_counts_and_confidence_are_checked(teacher):
    with pytest.raises(SentimentError, match="positive number"):
        crops.sentence_crops(REVIEWS, LABELS, 0, teacher)
    with pytest.raises(SentimentError, match="confidence"):
        crops.sentence_crops(REVIEWS, LABELS, 10, teacher, confidence=1.0)


def test_training_without_a_trained_teacher_says_which_flag_to_give(tmp_path):
    train = pd.DataFrame({"text": REVIEWS, "labels": LABELS})
    with pytest.raises(SentimentError, match="--crop-teacher"):
        augment(train, TrainConfig(sentence_crops=10, model=str(tmp_path)))


def test_training_adds_teacher_checked_crops_from_the_model_it_continues(tiny_artifacts):
    train = pd.DataFrame({"text": REVIEWS, "labels": LABELS})
    out = augment(train, TrainConfig(sentence_crops=20, model=str(tiny_artifacts), precision="fp32"))
    assert out.iloc[:40].equals(train)
    predictor = Predictor.from_artifacts(tiny_artifacts, precision="fp32")
    added = out.iloc[40:]
    if len(added):  # the tiny model is barely trained: it may be confident about none of them
        p = predictor.predict_proba(added["text"].tolist())
        assert (p[np.arange(len(added)), added["labels"].to_numpy()] >= 0.9).all()
    assert set(added["text"]) <= {text for text, _ in crops.cut(REVIEWS, LABELS, random.Random(42), 60)}


def test_distilled_crops_keep_every_crop_with_the_teachers_probability(teacher):
    out = crops.distilled_crops(REVIEWS, LABELS, 30, teacher, seed=3)
    cut = crops.cut(REVIEWS, LABELS, random.Random(3), 30)
    assert [text for text, _, _ in out] == [text for text, _ in cut]  # none dropped, the same order
    positive = Teacher().predict_proba([text for text, _ in cut])[:, 1]
    assert np.allclose([target for _, _, target in out], positive)
    assert [label for _, label, _ in out] == [int(p >= 0.5) for p in positive]
    assert {round(p, 2) for p in positive} == {0.05, 0.3, 0.7, 0.95}  # disagreeing crops kept too
    with pytest.raises(SentimentError, match="positive number"):
        crops.distilled_crops(REVIEWS, LABELS, 0, teacher)


def test_training_with_distilled_crops_trains_toward_the_teachers_probability(tiny_artifacts):
    train = pd.DataFrame({"text": REVIEWS, "labels": LABELS})
    out = augment(train, TrainConfig(sentence_crops=20, crop_targets="teacher", model=str(tiny_artifacts),
                                     precision="fp32"))
    assert out.iloc[:40][["text", "labels"]].equals(train)
    assert (out.iloc[:40]["target"] == train["labels"]).all()  # the reviews keep their hard labels
    added = out.iloc[40:]
    assert len(added) == 20
    p = Predictor.from_artifacts(tiny_artifacts, precision="fp32").predict_proba(added["text"].tolist())[:, 1]
    assert np.allclose(added["target"], p, atol=1e-5)
    assert (added["labels"] == (p >= 0.5)).all()


@pytest.mark.parametrize(("settings", "message"), [
    ({"sentence_crops": 10, "crop_targets": "soft"}, "must be one of label, teacher"),
    ({"crop_targets": "teacher"}, "only applies with --sentence-crops"),
])
def test_crop_targets_are_checked(settings, message):
    with pytest.raises(SentimentError, match=message):
        TrainConfig(**settings)


NEGATED = [f"Sentence one of review {i} is here. It did not work for review {i} at all! A third one ends it."
           for i in range(40)]


def test_negation_crops_are_single_teacher_checked_sentences_with_a_negation(teacher):
    out = crops.negation_crops(NEGATED, LABELS, 8, teacher, seed=1)  # the teacher agrees with 4 positive reviews
    labels = sorted(label for _, label in out)
    assert labels == [0] * 4 + [1] * 4  # all 8: ten candidates per crop wanted reach the few the teacher keeps
    for text, label in out:
        number = int(text.split("review ")[1].split()[0])
        assert text == f"It did not work for review {number} at all!"  # the one sentence with a negation
        assert label == LABELS[number] and (number % 4 == 0 or number % 5 == 0)  # the teacher agrees
    assert crops.cut(REVIEWS, LABELS, random.Random(0), 100, keep=lambda crop: crops.NEGATION.search(crop)) == []
    assert all(crops.NEGATION.search(t) for t in ("I couldn't stop laughing.", "Do NOT buy it.", "Never again."))
    assert not any(crops.NEGATION.search(t) for t in ("A nottingham romance.", "The knot held.", "Notable cast."))


def test_training_adds_negation_crops_with_another_seed_than_the_sentence_crops(teacher, tmp_path):
    (tmp_path / "manifest.json").write_text("{}")
    train = pd.DataFrame({"text": NEGATED, "labels": LABELS})
    out = augment(train, TrainConfig(negation_crops=8, model=str(tmp_path)))
    added = out.iloc[40:]
    assert list(added.itertuples(index=False, name=None)) == crops.negation_crops(NEGATED, LABELS, 8, teacher, 43)
    with pytest.raises(SentimentError, match="--negation-crops"):
        TrainConfig(negation_crops=-1)
