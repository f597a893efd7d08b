"""Error cohorts: slices of an evaluation set (rating, length, truncation, negation and contrast markers,
confidence, true label, movie) with their error rate, its 95 % Wilson interval and the lift over the whole set.

The markers are computed from the text at evaluation time and stored as flags beside the keyed predictions, so
the cohorts need no review text afterwards."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from sentiment.evaluation import wilson_interval
from sentiment.lexicon import CONTRAST, CONTRAST_WORDS, NEGATION, NEGATION_WORDS

# Whole-word, case-insensitive; <br /> tags are IMDB markup, not words.
MARKERS = {
    "negation": NEGATION,
    "contrast": CONTRAST,
    "could have been": re.compile(r"\b(?:could|should|would|might) have been\b", re.I),
    # Scare quotes: a short quoted phrase ("acting", 'masterpiece') is a common sarcasm cue in reviews.
    "scare quotes": re.compile(r"[\"“'‘]\s?[A-Za-z][\w\s-]{0,25}?[\"”'’](?!\w)"),
}
# Function words add up large totals only because they are everywhere; scikit-learn's English stop words are left
# out, except those that carry negation, contrast or degree, which do mislead ("didn't" is one word of the
# explanations, and no stop word). So is the "br" left of IMDB's <br /> markup.
KEPT_STOP_WORDS = frozenset({*NEGATION_WORDS, *CONTRAST_WORDS, "only", "too", "very", "least", "less", "enough",
                             "well"})
FUNCTION_WORDS = (frozenset(ENGLISH_STOP_WORDS) - KEPT_STOP_WORDS) | {"br"}
MISLEADING_COLUMNS = ["word", "mistakes", "misled", "mean attribution", "total attribution"]
LENGTH_EDGES = (0, 128, 256, 512, 1024, np.inf)  # word pieces, [CLS] and [SEP] included
CONFIDENCE_EDGES = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
SMALL = 30  # cohorts with fewer rows are marked: their interval is wide and their rank unreliable
TOP_MOVIES = 15


def marker_flags(texts: Sequence[str]) -> pd.DataFrame:
    """One boolean column per marker (`marker: negation`, ...), one row per text."""
    return pd.DataFrame({f"marker: {name}": [bool(pattern.search(t)) for t in texts]
                         for name, pattern in MARKERS.items()})


def _band(values: pd.Series, edges: Sequence[float], unit: str) -> pd.Series:
    labels = [f"{lo:g}-{hi:g} {unit}" if np.isfinite(hi) else f"{lo:g}+ {unit}" for lo, hi in zip(edges[:-1], edges[1:],
                                                                                               strict=True)]
    return pd.cut(values, bins=list(edges), labels=labels, right=False, include_lowest=True).astype(str)


def _ratings(ratings: pd.Series) -> pd.Series:
    """IMDB's whole stars as "7 stars"; a user's file may hold halves ("3.5 stars") or words ("A", "4/10"), each
    its own cohort; a missing one is "none"."""
    numbers = pd.to_numeric(ratings, errors="coerce")
    return pd.Series([f"{n:g} stars" if pd.notna(n) else "none" if pd.isna(r) else str(r)
                      for r, n in zip(ratings, numbers, strict=True)], index=ratings.index)


def cohort_features(predictions: pd.DataFrame) -> pd.DataFrame:
    """The features cohorts are cut by, one column per feature, from stored predictions."""
    prob = predictions["prob_positive"].astype(np.float64)
    confidence = np.maximum(prob, 1 - prob)
    features = {"true label": predictions["labels"].map({0: "negative", 1: "positive"}),
                "length": _band(predictions["n_tokens"], LENGTH_EDGES, "pieces"),
                "truncated": predictions["truncated"].map({True: "cut", False: "whole"}),
                "confidence": _band(pd.Series(np.minimum(confidence, 1 - 1e-9)), CONFIDENCE_EDGES, "")}
    if "rating" in predictions:
        features["rating"] = _ratings(predictions["rating"])
    for column in predictions.columns:
        if column.startswith("marker: "):
            features[column.removeprefix("marker: ")] = predictions[column].map({True: "present", False: "absent"})
    movie = next((c for c in ("movie", "movie_id") if c in predictions), None)
    if movie is not None:
        features["movie"] = predictions[movie].astype(str)
    return pd.DataFrame(features, index=predictions.index)


def cohort_table(predictions: pd.DataFrame) -> pd.DataFrame:
    """Every cohort (feature = value) with n, errors, error rate, its Wilson interval, the lift over the overall
    error rate and whether it is small; sorted by lift. Only the movies with the most errors are listed."""
    wrong = (predictions["predicted"] != predictions["labels"]).to_numpy()
    overall = wrong.mean()
    rows = []
    for feature, values in cohort_features(predictions).items():
        groups = pd.DataFrame({"value": values.to_numpy(), "wrong": wrong}).groupby("value")["wrong"]
        counts = groups.agg(["size", "sum"])
        if feature == "movie":
            counts = counts.sort_values(["sum", "size"], ascending=False).head(TOP_MOVIES)
        for value, (n, errors) in counts.iterrows():
            low, high = wilson_interval(int(errors), int(n))
            rate = errors / n
            rows.append({"feature": feature, "cohort": str(value), "n": int(n), "errors": int(errors),
                         "error rate": rate, "ci low": low, "ci high": high,
                         "lift": rate / overall if overall > 0 else np.nan, "small": bool(n < SMALL)})
    table = pd.DataFrame(rows, columns=["feature", "cohort", "n", "errors", "error rate", "ci low", "ci high", "lift",
                                        "small"])
    return table.sort_values(["lift", "n"], ascending=[False, False], kind="stable").reset_index(drop=True)


def stored_misleading_words(report: dict | None) -> pd.DataFrame:
    """A stored misleading_words.json's words as a table, most misleading first, without function words and markup
    (reports written before those were left out still hold them)."""
    words = pd.DataFrame(report["words"] if report else [], columns=MISLEADING_COLUMNS)
    return words[~words["word"].isin(FUNCTION_WORDS)].reset_index(drop=True)
