"""Finding the text and label columns of someone else's file: exact names first, then a word of a name."""

from __future__ import annotations

import pandas as pd
import pytest

from sentiment.data import LABEL_COLUMNS, TEXT_COLUMNS, find_column, normalise
from sentiment.errors import SentimentError


@pytest.mark.parametrize(("columns", "text", "label"), [
    (["Review Text", "Sentiment"], "Review Text", "Sentiment"),
    (["reviewText", "sentiment_label"], "reviewText", "sentiment_label"),
    (["review_id", "review_body", "Label"], "review_body", "Label"),  # an id column is no text
    (["text", "review_text", "label"], "text", "label"),  # an exact name wins over a word of a name
])
def test_columns_are_found_by_a_word_of_their_name(columns, text, label):
    frame = pd.DataFrame({c: ([1, 2] if c == "review_id" else ["a", "b"]) for c in columns})
    assert find_column(frame, None, TEXT_COLUMNS, "text", "f.csv") == text
    assert find_column(frame, None, LABEL_COLUMNS, "label", "f.csv") == label


def test_two_columns_with_the_word_are_ambiguous_and_the_error_says_how_to_name_one():
    frame = pd.DataFrame({"review_title": ["a"], "review_text": ["b"]})
    with pytest.raises(SentimentError, match=r"several candidates \(review_title, review_text\).*the box"):
        find_column(frame, None, TEXT_COLUMNS, "text", "f.csv", how="the box")


def test_short_codes_are_kept_as_metadata_but_short_phrases_are_text_and_are_not():
    n = 60
    frame = pd.DataFrame({"text": [f"review {i}" for i in range(n)], "label": [i % 2 for i in range(n)],
                          "stars": [1 + i % 10 for i in range(n)], "movie": [f"tt{i:07d}" for i in range(n)],
                          "category": ["Home & Kitchen", "Toys and Games"] * (n // 2),
                          "title": [f"A fine short title number {i}" for i in range(n)]})
    checked = normalise(frame, "f.csv")
    assert {"stars", "movie", "category"} <= set(checked.columns) and "title" not in checked.columns
