"""Words that mislead: integrated-gradients attributions over the model's most confident mistakes, aggregated
per word, so that a stakeholder sees which words pushed it toward the wrong class again and again. Only words and
numbers are stored, never the reviews."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from sentiment.cohorts import FUNCTION_WORDS, MISLEADING_COLUMNS
from sentiment.explain import Explainer

log = logging.getLogger(__name__)

MIN_REVIEWS = 3  # a word seen in fewer mistakes says more about those reviews than about the model
TOP_WORDS = 40


def aggregate(explained: Sequence[tuple[list[tuple[str, float]], int]], min_reviews: int = MIN_REVIEWS,
              top: int = TOP_WORDS) -> pd.DataFrame:
    """Per word (lower-cased; punctuation and function words left out), over explained mistakes given as (words
    with attributions toward positive, predicted class): in how many mistakes it occurs, in how many it pushed
    toward the predicted (wrong) class, its mean attribution toward that class per mistake, and the total; the words
    that misled most first."""
    totals: dict[str, list[float]] = defaultdict(list)
    for words, predicted in explained:
        toward_wrong = 1.0 if predicted == 1 else -1.0
        per_review: dict[str, float] = defaultdict(float)
        for word, score in words:
            if any(ch.isalnum() for ch in word) and word.lower() not in FUNCTION_WORDS:
                per_review[word.lower()] += score * toward_wrong
        for word, score in per_review.items():
            totals[word].append(score)
    rows = [(word, len(scores), int(sum(s > 0 for s in scores)), float(np.mean(scores)), float(np.sum(scores)))
            for word, scores in totals.items() if len(scores) >= min_reviews]
    table = pd.DataFrame(rows, columns=MISLEADING_COLUMNS)
    table = table[table["total attribution"] > 0]
    return table.sort_values(["total attribution", "word"], ascending=[False, True]).head(top).reset_index(drop=True)


def confident_mistakes(predictions: pd.DataFrame, max_reviews: int) -> pd.DataFrame:
    """The `max_reviews` mistakes with the highest confidence in the wrong class."""
    wrong = predictions[predictions["predicted"] != predictions["labels"]]
    confidence = np.maximum(wrong["prob_positive"], 1 - wrong["prob_positive"])
    return wrong.assign(_confidence=confidence).sort_values(["_confidence", "key"], ascending=[False, True]) \
        .head(max_reviews).drop(columns="_confidence")


def misleading_words(explainer: Explainer, texts: Sequence[str], predictions: pd.DataFrame, max_reviews: int,
                     progress: bool = False) -> dict:
    """Explain the most confident mistakes among `predictions` (rows aligned with `texts`) and aggregate; the
    cost is bounded by `max_reviews` explanations."""
    chosen = confident_mistakes(predictions, max_reviews)
    explained = []
    for index in tqdm(chosen.index, desc="explain mistakes", unit="review", disable=not progress,
                      dynamic_ncols=True):
        explanation = explainer.explain(texts[index])
        explained.append((explanation.words, int(predictions.at[index, "predicted"])))
    words = aggregate(explained)
    log.info("words that mislead: %d mistakes explained, %d words kept", len(explained), len(words))
    return {"mistakes_explained": len(explained), "mistakes": int((predictions["predicted"] != predictions["labels"])
                                                                  .sum()),
            "steps": explainer.n_steps, "min_reviews": MIN_REVIEWS, "function_words_left_out": True,
            "words": words.to_dict("records")}
