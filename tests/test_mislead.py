"""Words that mislead: the aggregation of attributions over mistakes, on hand-made explanations."""

from __future__ import annotations

import pandas as pd
import pytest

from sentiment.cohort_plots import misleading_words_figure
from sentiment.mislead import aggregate, confident_mistakes
from sentiment.tables import misleading_words_table


def test_aggregate_counts_words_that_push_toward_the_wrong_class():
    # Predicted positive (wrong): positive attributions misled. Predicted negative (wrong): negative ones did.
    explained = [([("Great", 0.5), ("plot", -0.1), ("great", 0.25)], 1),
                 ([("great", 0.4), ("plot", 0.2)], 1),
                 ([("great", 0.1), ("plot", -0.3), ("...", -5.0)], 0),
                 ([("plot", -0.2), ("boring", 0.3)], 0)]
    table = aggregate(explained, min_reviews=2).set_index("word")
    great, plot = table.loc["great"], table.loc["plot"]
    assert (great["mistakes"], great["misled"]) == (3, 2)  # case merged and summed within a review (0.75)
    assert great["total attribution"] == pytest.approx(0.75 + 0.4 - 0.1)
    assert great["mean attribution"] == pytest.approx((0.75 + 0.4 - 0.1) / 3)
    assert (plot["mistakes"], plot["misled"]) == (4, 3)
    assert plot["total attribution"] == pytest.approx(-0.1 + 0.2 + 0.3 + 0.2)
    assert "..." not in table.index and "boring" not in table.index  # punctuation; seen in one mistake only
    assert list(table.index) == ["great", "plot"]  # most misleading first


def test_words_that_never_mislead_on_balance_are_left_out():
    assert aggregate([([("fine", -0.2)], 1), ([("fine", -0.1)], 1)], min_reviews=2).empty


def test_confident_mistakes_are_the_most_confident_wrong_rows():
    predictions = pd.DataFrame({"key": list("abcde"), "labels": [0, 0, 1, 1, 0], "predicted": [1, 1, 0, 1, 0],
                                "prob_positive": [0.6, 0.99, 0.05, 0.9, 0.1]})
    assert confident_mistakes(predictions, 2)["key"].tolist() == ["b", "c"]  # 0.99, then 0.95


def test_the_figure_shows_the_top_words_or_says_none_are_stored():
    report = {"mistakes_explained": 2, "mistakes": 5, "words": [
        {"word": "great", "mistakes": 3, "misled": 2, "mean attribution": 0.3, "total attribution": 0.9},
        {"word": "plot", "mistakes": 4, "misled": 3, "mean attribution": 0.1, "total attribution": 0.4}]}
    figure = misleading_words_figure(report)
    assert list(figure.data[0].y) == ["plot", "great"] and "2 most confident of 5" in figure.layout.title.text
    assert "no explained mistakes" in misleading_words_figure(None).layout.annotations[0].text


def test_function_words_are_left_out_but_negation_and_contrast_are_kept():
    explained = [([("the", 0.5), ("not", 0.4), ("but", 0.2), ("and", 0.3)], 1),
                 ([("The", 0.6), ("not", 0.1), ("but", 0.3), ("and", 0.2)], 1)]
    assert set(aggregate(explained, min_reviews=2)["word"]) == {"not", "but"}


def test_markup_is_left_out_and_contractions_count_as_words():
    explained = [([("br", 0.5), ("didn't", 0.4)], 1), ([("BR", 0.6), ("didn't", 0.1)], 1)]
    assert list(aggregate(explained, min_reviews=2)["word"]) == ["didn't"]


def test_reports_stored_with_function_words_show_without_them():
    # Reports written before function words were left out still hold "the": the chart and the table drop it.
    report = {"mistakes_explained": 2, "mistakes": 5, "words": [
        {"word": "the", "mistakes": 2, "misled": 2, "mean attribution": 0.5, "total attribution": 1.0},
        {"word": "not", "mistakes": 2, "misled": 2, "mean attribution": 0.2, "total attribution": 0.4}]}
    assert list(misleading_words_figure(report).data[0].y) == ["not"]
    assert misleading_words_table(report)["word"].tolist() == ["not"]
