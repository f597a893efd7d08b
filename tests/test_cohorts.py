"""Error cohorts on hand-made predictions with known answers: Wilson intervals, markers, the cohort table, its
figures, and the error explorer's cohort filter."""

from __future__ import annotations

import gradio as gr
import numpy as np
import pandas as pd
import pytest

from sentiment.cohort_plots import cohort_figure, heatmap_figure
from sentiment.cohorts import SMALL, cohort_table, marker_flags
from sentiment.errors import SentimentError
from sentiment.evaluation import wilson_interval
from sentiment.services import ALL_COHORTS, Handlers, Services


@pytest.mark.parametrize(("successes", "n", "expected"), [
    (5, 10, (0.2366, 0.7634)),  # Brown, Cai and DasGupta (2001), and statsmodels' proportion_confint(method="wilson")
    (0, 10, (0.0, 0.2775)),
    (10, 10, (0.7225, 1.0)),
    (81, 263, (0.2553, 0.3662)),
])
def test_wilson_interval_matches_known_values(successes, n, expected):
    assert wilson_interval(successes, n) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize(("successes", "n"), [(1, 0), (-1, 5), (6, 5)])
def test_wilson_interval_rejects_impossible_counts(successes, n):
    with pytest.raises(SentimentError):
        wilson_interval(successes, n)


def test_markers_find_negation_contrast_and_sarcasm_cues():
    flags = marker_flags(["It is not good.", "I don't know.", "Great, but slow.", "It could have been great.",
                          'The "acting" was something.', "Nothing to see.", "A fine knot of a film."])
    assert flags["marker: negation"].tolist() == [True, True, False, False, False, True, False]  # "knot" is no "not"
    assert flags["marker: contrast"].tolist() == [False, False, True, False, False, False, False]
    assert flags["marker: could have been"].tolist() == [False, False, False, True, False, False, False]
    assert flags["marker: scare quotes"].tolist() == [False, False, False, False, True, False, False]


@pytest.fixture()
def predictions() -> pd.DataFrame:
    """100 reviews: ratings 1 and 10 (50 each); 20 errors, 15 of them among the rating-1 reviews; 10 cut reviews."""
    labels = np.array([0] * 50 + [1] * 50)
    predicted = labels.copy()
    predicted[:15] = 1
    predicted[50:55] = 0
    return pd.DataFrame({"labels": labels, "predicted": predicted,
                         "prob_positive": np.where(predicted == 1, 0.8, 0.2), "n_tokens": [100] * 90 + [600] * 10,
                         "truncated": [False] * 90 + [True] * 10, "rating": [1] * 50 + [10] * 50,
                         "marker: negation": [True] * 10 + [False] * 90})


def test_cohort_table_counts_rates_intervals_and_lift(predictions):
    table = cohort_table(predictions).set_index(["feature", "cohort"])
    one, ten = table.loc[("rating", "1 stars")], table.loc[("rating", "10 stars")]
    assert (one["n"], one["errors"], ten["n"], ten["errors"]) == (50, 15, 50, 5)
    assert one["error rate"] == pytest.approx(0.3) and one["lift"] == pytest.approx(0.3 / 0.2)
    assert (one["ci low"], one["ci high"]) == pytest.approx(wilson_interval(15, 50))
    negation = table.loc[("negation", "present")]
    assert (negation["n"], negation["errors"], negation["lift"]) == (10, 10, pytest.approx(5.0))
    assert bool(negation["small"]) and not bool(one["small"])  # n < SMALL marks a small cohort
    assert table.loc[("truncated", "cut"), "n"] == 10 and SMALL == 30
    lifts = cohort_table(predictions)["lift"]
    assert lifts.is_monotonic_decreasing  # sorted by lift


def test_cohort_figure_draws_intervals_and_the_overall_rate(predictions):
    figure = cohort_figure(cohort_table(predictions), "rating", overall=0.2)
    bar = figure.data[0]
    assert list(bar.x) == ["1 stars", "10 stars"]
    assert list(bar.y) == pytest.approx([0.3, 0.1])
    low, high = wilson_interval(15, 50)
    assert bar.error_y.array[0] == pytest.approx(high - 0.3) and bar.error_y.arrayminus[0] == pytest.approx(0.3 - low)
    assert figure.layout.shapes[0].y0 == 0.2
    assert "no movie" in cohort_figure(cohort_table(predictions), "movie", 0.2).layout.annotations[0].text


def test_heatmap_gives_the_error_rate_of_each_cell(predictions):
    figure = heatmap_figure(predictions, "rating", "length")
    z = pd.DataFrame(figure.data[0].z, index=figure.data[0].y, columns=figure.data[0].x)
    assert z.loc["1 stars", "0-128 pieces"] == pytest.approx(0.3)
    assert z.loc["10 stars", "512-1024 pieces"] == pytest.approx(0.0)
    assert "no movie" in heatmap_figure(predictions, "movie", "length").layout.annotations[0].text


def test_ratings_of_a_users_file_may_be_halves_or_words(predictions):
    ratings = pd.Series([3.5, "A", None, "4/10"] * 25, dtype=object)
    table = cohort_table(predictions.assign(rating=ratings))
    cohorts = table[table["feature"] == "rating"]
    assert set(cohorts["cohort"]) == {"3.5 stars", "A", "none", "4/10"}
    assert set(cohorts["n"]) == {25}
    figure = heatmap_figure(predictions.assign(rating=ratings), "rating", "length")
    assert list(figure.data[0].y) == ["3.5 stars", "4/10", "A", "none"]


# --- in the app ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def handlers(tiny_artifacts, small_imdb) -> Handlers:
    return Handlers(Services.load(tiny_artifacts, str(small_imdb), ig_steps=8))


def test_cohort_view_gives_table_figures_and_filter_choices(handlers):
    table, first, length, heatmap, choices, words_plot, words_table = handlers.cohort_view("test")
    assert {"feature", "cohort", "n", "error rate", "95% CI", "lift"} <= set(table.columns)
    assert first.layout.title.text == "Error rate by true label"  # the fixture has no rating column
    assert length.layout.title.text == "Error rate by length"
    assert heatmap.layout.title.text == "Error rate by confidence and length"
    assert choices["choices"][0] == ALL_COHORTS and len(choices["choices"]) == len(table) + 1
    # train.py explained the test set's most confident mistakes (--explain-mistakes, 200 by default)
    stored = handlers.services.evaluation_set("test")["misleading_words"]
    assert stored["mistakes_explained"] == min(200, stored["mistakes"]) > 0
    assert words_table["word"].tolist() == [w["word"] for w in stored["words"]]
    assert list(words_plot.data[0].y)[::-1] == words_table["word"].head(20).tolist()


def test_choosing_a_cohort_filters_the_errors(handlers):
    everything = handlers.errors("test", 0.5, "all", None, None)
    negatives = handlers.errors("test", 0.5, "all", None, None, "true label: negative")
    assert set(negatives["key"]) == set(everything.loc[everything["true label"] == "negative", "key"])
    assert len(handlers.errors("test", 0.5, "all", None, None, ALL_COHORTS)) == len(everything)


@pytest.mark.parametrize(("cohort", "message"), [("rating: 3 stars", "no 'rating' cohorts"),
                                                 ("true label: neutral", "is empty")])
def test_an_unknown_or_empty_cohort_gets_a_clear_message(handlers, cohort, message):
    with pytest.raises(gr.Error, match=message):
        handlers.errors("test", 0.5, "all", None, None, cohort)
