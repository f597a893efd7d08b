"""Sentence crops: short passages cut from training reviews, for training on short texts.

A review's label is the label of its whole text; one of its sentences may be plot summary, or the one complaint in
a positive review. So a crop keeps its review's label only where a trained teacher model (the folder training
continues from, or another one) reads the crop alone as that label with high confidence. The crops then teach
plain short statements of both polarities, which a continued fine-tune on long reviews and templated sentences
would otherwise let the model forget (the second-stage candidate 2b lost 6-9 points on short review sentences).
`distilled_crops` keeps every crop instead, with the teacher's own probability as its target (distillation);
`negation_crops` are teacher-checked single sentences that hold a negation. `sentence_set` cuts an evaluation set
of short texts from held-out reviews (evaluate.py --split validation-sentences), with no teacher.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from sentiment.artifacts import MANIFEST
from sentiment.errors import SentimentError
from sentiment.lexicon import NEGATION  # negation crops hold one: "it did not work", "I couldn't stop laughing"
from sentiment.modeling import resolve_model
from sentiment.sources import sentences

log = logging.getLogger(__name__)

MIN_WORDS, MAX_WORDS, MAX_SENTENCES, MAX_ROUNDS = 4, 60, 3, 8
CANDIDATES_PER_CROP = 3  # crops cut per crop wanted: the teacher keeps about half, and each label gets count / 2
# Few single sentences with a negation pass the teacher: in run 2n, 2l kept 320 negative and 153 positive ones of
# 3,000 cut (--negation-crops 1000 at 3 per crop gave 306, not 1,000), so negation crops cut ten per crop wanted.
NEGATION_CANDIDATES_PER_CROP = 10


def cut(texts: Sequence[str], labels: Sequence[int], rng: random.Random, count: int,
        max_sentences: int = MAX_SENTENCES, keep: Callable[[str], bool] | None = None) -> list[tuple[str, int]]:
    """At most `count` distinct crops, each 1 to `max_sentences` consecutive sentences of one review (4 to 60 words)
    with the review's label, and only those `keep` accepts where it is given: one per review in random order, then
    another round while more are wanted (at most `MAX_ROUNDS`); the same for a seed."""
    return [(crop, int(labels[i])) for crop, i in cut_indexed(texts, rng, count, max_sentences, keep)]


def cut_indexed(texts: Sequence[str], rng: random.Random, count: int, max_sentences: int = MAX_SENTENCES,
                keep: Callable[[str], bool] | None = None) -> list[tuple[str, int]]:
    """`cut`'s crops, each with the index of the review it was cut from (the same crops for the same seed)."""
    split = [sentences(text) for text in texts]
    order = [i for i in range(len(texts)) if split[i]]
    seen: set[str] = set()
    out: list[tuple[str, int]] = []
    for _ in range(MAX_ROUNDS):
        rng.shuffle(order)
        for i in order:
            if len(out) >= count:
                return out
            start = rng.randrange(len(split[i]))
            crop = " ".join(split[i][start:start + rng.randint(1, max_sentences)])
            if MIN_WORDS <= len(crop.split()) <= MAX_WORDS and crop not in seen and (keep is None or keep(crop)):
                seen.add(crop)
                out.append((crop, i))
    return out


def sentence_set(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """A short-text set cut from a labelled set of reviews (`text`, `labels`, `row`, metadata): as many sentences
    of 4 to 60 words as there are reviews, one drawn from each review in random order and then more in further
    rounds (`cut`'s: a review whose drawn sentence is too short or too long gives none that round, so some give
    none and others two). Each keeps its review's label and metadata and its review's `row` as `review_row`, and is
    numbered in cut order. The labels are noisy: a sentence of a positive review may be plot summary, or its one
    complaint."""
    picked = cut_indexed(frame["text"].tolist(), random.Random(seed), len(frame), max_sentences=1)
    if not picked:
        raise SentimentError("none of these reviews has a sentence of 4 to 60 words to cut")
    rows = frame.iloc[[i for _, i in picked]].reset_index(drop=True)
    return rows.assign(text=[crop for crop, _ in picked], row=np.arange(len(picked)), review_row=rows["row"])


def teacher_folder(teacher: str | None, model: str) -> Path:
    """The folder whose model labels the crops: `teacher`, else `model` when it is a folder this project trained."""
    folder = Path(resolve_model(teacher or model)).expanduser()
    if not (folder / MANIFEST).is_file():
        raise SentimentError(f"sentence crops need a trained model to check their labels, and {folder} is not a "
                             f"folder this project trained (no {MANIFEST}); give one with --crop-teacher, for "
                             f"example --crop-teacher artifacts")
    return folder


def sentence_crops(texts: Sequence[str], labels: Sequence[int], count: int, teacher: str | Path, seed: int = 0,
                   confidence: float = 0.9, device: str = "auto", precision: str = "auto",
                   max_sentences: int = MAX_SENTENCES, keep: Callable[[str], bool] | None = None,
                   candidates_per_crop: int = CANDIDATES_PER_CROP) -> list[tuple[str, int]]:
    """About `count` crops of (`texts`, `labels`) (of at most `max_sentences` sentences, and only those `keep`
    accepts where it is given), half of each label, each one the teacher gives its review's label with probability
    at least `confidence`. Give only training reviews: nothing of validation or test may reach training."""
    from sentiment.predict import Predictor

    if count < 1:
        raise SentimentError(f"sentence crops need a positive number of crops, not {count}")
    if not 0.5 <= confidence < 1.0:
        raise SentimentError(f"the teacher's confidence for sentence crops must be in [0.5, 1), not {confidence}")
    candidates = cut(texts, labels, random.Random(seed), candidates_per_crop * count, max_sentences, keep)
    predictor = Predictor.from_artifacts(teacher, device=device, precision=precision)
    probabilities = predictor.predict_proba([text for text, _ in candidates])
    kept: dict[int, list[tuple[str, int]]] = {0: [], 1: []}
    for (text, label), p in zip(candidates, probabilities, strict=True):
        if p[label] >= confidence:
            kept[label].append((text, label))
    per_label = min(count // 2, len(kept[0]), len(kept[1]))
    out = kept[0][:per_label] + kept[1][:per_label]
    random.Random(seed + 1).shuffle(out)
    log.info("sentence crops: %d kept of %d cut (%d negative and %d positive agreed with the teacher %s at p >= %.2f)",
             len(out), len(candidates), len(kept[0]), len(kept[1]), teacher, confidence)
    if per_label < count // 2:
        log.warning("sentence crops: %d wanted, only %d balanced ones found; give more training reviews or a lower "
                    "count", count, len(out))
    return out


def distilled_crops(texts: Sequence[str], labels: Sequence[int], count: int, teacher: str | Path, seed: int = 0,
                    device: str = "auto", precision: str = "auto") -> list[tuple[str, int, float]]:
    """`count` crops of (`texts`, `labels`) as they are cut, none dropped, each with the teacher's own P(positive) as
    its training target and the teacher's label: distillation on short texts, which holds a continued model to its
    teacher on the real sentences of reviews (mixed, neutral and off-topic ones included) while the other added data
    pulls it elsewhere. Give only training reviews."""
    from sentiment.predict import Predictor

    if count < 1:
        raise SentimentError(f"sentence crops need a positive number of crops, not {count}")
    candidates = cut(texts, labels, random.Random(seed), count)
    predictor = Predictor.from_artifacts(teacher, device=device, precision=precision)
    positive = predictor.predict_proba([text for text, _ in candidates])[:, 1]
    out = [(text, int(p >= 0.5), float(p)) for (text, _), p in zip(candidates, positive, strict=True)]
    agree = sum(label == review for (_, label, _), (_, review) in zip(out, candidates, strict=True))
    log.info("sentence crops: %d cut, each trained toward the teacher %s's P(positive) (mean %.3f; the teacher gives "
             "%d of them their review's label)", len(out), teacher, float(positive.mean()), agree)
    if len(out) < count:
        log.warning("sentence crops: %d wanted, only %d distinct ones cut; give more training reviews or a lower "
                    "count", count, len(out))
    return out


def negation_crops(texts: Sequence[str], labels: Sequence[int], count: int, teacher: str | Path, seed: int = 0,
                   device: str = "auto", precision: str = "auto") -> list[tuple[str, int]]:
    """About `count` single sentences of (`texts`, `labels`) that hold a negation word, half of each label, each
    one the teacher reads as its review's label (`sentence_crops` with P >= 0.9). Real negations of both
    polarities, so that a run that teaches negated negatives ("never lousy") does not also learn that a negation
    makes a sentence positive: candidate 2m read short negative verdicts such as "does not work" as positive."""
    return sentence_crops(texts, labels, count, teacher, seed, device=device, precision=precision, max_sentences=1,
                          keep=lambda crop: NEGATION.search(crop) is not None,
                          candidates_per_crop=NEGATION_CANDIDATES_PER_CROP)
