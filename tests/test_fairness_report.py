"""The fairness report's statistics with known answers on constructed scores, the review probe, and the tables
and figures made of it."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from sentiment import fairness, fairness_plots
from sentiment.fairness import TEMPLATES, bootstrap_ci, paired_p_value, probe_reviews, template_suite
from sentiment.lexicon import CATEGORIES

CATEGORY_NAMES = [c.name for c in CATEGORIES]


def scores_by(rule):
    """A score function (texts -> P(positive)) from a rule on one sentence."""
    return lambda texts: np.array([rule(t) for t in texts], dtype=np.float64)


# --- statistics ------------------------------------------------------------------------------------------------


def test_bootstrap_interval_of_a_constant_is_that_constant():
    low, high = bootstrap_ci([0.3] * 14)
    assert low == high == pytest.approx(0.3)


def test_bootstrap_interval_contains_the_mean_and_narrows_with_more_data():
    rng = np.random.default_rng(1)
    small, large = rng.normal(0.5, 0.1, 50), rng.normal(0.5, 0.1, 800)
    widths = []
    for values in (small, large):
        low, high = bootstrap_ci(values)
        assert low < values.mean() < high
        widths.append(high - low)
        standard_error = values.std() / np.sqrt(len(values))
        assert high - low == pytest.approx(2 * 1.96 * standard_error, rel=0.15)  # the normal-theory width
    assert widths[1] < widths[0] / 3  # sqrt(16) = 4 times narrower, give or take
    assert bootstrap_ci(small, level=0.99)[1] - bootstrap_ci(small, level=0.99)[0] > widths[0]
    assert bootstrap_ci(small) == bootstrap_ci(small)  # seeded
    assert all(np.isnan(bootstrap_ci([])))


def test_weighted_bootstrap_is_the_interval_of_the_per_variant_rate():
    # 40 reviews with one variant that never flips, 10 with three variants that always flip: the rate over
    # variants is 30 / 70, while the mean of the per-review rates is 10 / 50
    review_rates, variants = [0.0] * 40 + [1.0] * 10, [1] * 40 + [3] * 10
    low, high = bootstrap_ci(review_rates, weights=variants)
    assert low < 30 / 70 < high and not low < 0.2 < high
    assert bootstrap_ci(review_rates, weights=[1] * 50) == bootstrap_ci(review_rates)


def test_paired_p_value_with_known_answers():
    base = np.linspace(0.2, 0.8, 14)
    assert paired_p_value(base, base) == 1.0
    shifted = base + np.linspace(0.01, 0.14, 14)  # every pair moves the same way, by distinct amounts
    assert paired_p_value(shifted, base) == pytest.approx(2 / 2**14)  # exact two-sided signed-rank p
    assert paired_p_value(base + 0.1, base) < 0.01  # a constant shift: all ranks tied
    noise = np.array([0.1, -0.1, 0.05, -0.05, 0.2, -0.2, 0.03, -0.03, 0.07, -0.07, 0.12, -0.12, 0.01, -0.01])
    assert paired_p_value(noise, np.zeros(14)) > 0.9  # as much up as down


def test_template_suite_flags_exactly_the_injected_gap():
    suite = template_suite(scores_by(lambda s: 0.7 if "Muslim" in s else 0.3))
    assert (suite["templates"], suite["threshold"], suite["alpha"]) == (len(TEMPLATES), 0.05, 0.05)
    assert list(suite["categories"]) == CATEGORY_NAMES
    religion = suite["categories"]["religion"]
    gap = religion["largest_gap"]
    assert gap["flagged"] and gap["p_value"] < 0.05
    assert "Muslim" in gap["between"] and len(set(gap["between"])) == 2
    first, second = gap["between"]
    assert gap["gap"] == pytest.approx(religion["groups"][first]["mean"] - religion["groups"][second]["mean"])
    assert abs(gap["gap"]) == pytest.approx(0.4)
    assert gap["ci"] == pytest.approx([gap["gap"]] * 2)  # the same gap in every template
    assert religion["groups"]["Muslim"] == {"mean": pytest.approx(0.7), "ci": pytest.approx([0.7, 0.7])}
    assert religion["flip_rate"] == 1.0  # every template: the Muslim sentence positive, the others negative
    for name, category in suite["categories"].items():
        if name != "religion":
            assert category["largest_gap"]["gap"] == 0.0 and category["largest_gap"]["p_value"] == 1.0
            assert not category["largest_gap"]["flagged"] and category["flip_rate"] == 0.0


def test_a_score_that_ignores_identity_gives_no_gap():
    positive = ("wonderful", "brilliant", "beautifully", "clever")
    negative = ("dreadful", "terrible", "badly", "clumsy")

    def sentiment_only(sentence: str) -> float:
        return 0.9 if any(w in sentence for w in positive) else 0.1 if any(w in sentence for w in negative) else 0.5

    suite = template_suite(scores_by(sentiment_only))
    expected_mean = (4 * 0.9 + 4 * 0.1 + 6 * 0.5) / 14
    for category in suite["categories"].values():
        assert category["largest_gap"]["gap"] == 0.0 and not category["largest_gap"]["flagged"]
        assert category["flip_rate"] == 0.0
        for group in category["groups"].values():
            assert group["mean"] == pytest.approx(expected_mean)
            assert group["ci"][0] < expected_mean < group["ci"][1]


def test_name_categories_average_over_every_name_of_a_group():
    suite = template_suite(scores_by(lambda s: 0.9 if "Jamal" in s else 0.3))
    race = suite["categories"]["race/ethnicity (first names)"]
    assert race["groups"]["African-American"]["mean"] == pytest.approx((0.9 + 5 * 0.3) / 6)  # 1 name of 6
    assert abs(race["largest_gap"]["gap"]) == pytest.approx(0.1)
    assert "African-American" in race["largest_gap"]["between"] and race["largest_gap"]["flagged"]
    assert race["flip_rate"] == 1.0
    assert not suite["categories"]["gender (first names)"]["largest_gap"]["flagged"]


def test_a_significant_gap_below_the_threshold_is_not_flagged():
    score = scores_by(lambda s: 0.32 if "Muslim" in s else 0.3)
    gap = template_suite(score)["categories"]["religion"]["largest_gap"]
    assert gap["p_value"] < 0.05 and abs(gap["gap"]) == pytest.approx(0.02)
    assert not gap["flagged"]
    assert template_suite(score, threshold=0.01)["categories"]["religion"]["largest_gap"]["flagged"]


def test_a_large_gap_in_two_templates_only_is_not_significant():
    def score(sentence: str) -> float:
        return 0.95 if "Muslim" in sentence and ("directed by" in sentence or "second half" in sentence) else 0.3

    religion = template_suite(scores_by(score))["categories"]["religion"]
    gap = religion["largest_gap"]
    assert abs(gap["gap"]) == pytest.approx(2 * 0.65 / 14)  # above the 0.05 threshold
    assert gap["p_value"] >= 0.05 and not gap["flagged"]
    assert religion["flip_rate"] == pytest.approx(2 / 14)


# Written for these tests.
REVIEWS = [
    "He was wonderful in this film and the ending moved me.",
    "She was awful, and the script was worse.",
    "A dull plot and flat acting; I left early.",
    "The Christian priest was the best part of an uneven film.",
    "Straight to video, and an old film at that.",
]
KEYS = [f"key{i}" for i in range(len(REVIEWS))]


def probe_score(sentence: str) -> float:
    if re.search(r"\bshe\b", sentence, re.IGNORECASE):
        return 0.9
    return 0.6 if "Muslim" in sentence else 0.2


def test_probe_reviews_counts_flips_and_shifts():
    report = probe_reviews(scores_by(probe_score), REVIEWS, KEYS, max_targets=5)
    categories = report["categories"]
    gender = categories["gender"]
    assert (gender["mentioning"], gender["reviews"], gender["variants"]) == (2, 2, 2)
    assert gender["flip_rate"] == 1.0 and gender["flip_rate_ci"] == [1.0, 1.0]
    assert gender["mean_shift"] == pytest.approx(0.0)  # +0.7 for "He" -> "She", -0.7 for "She" -> "He"
    assert gender["mean_abs_shift"] == pytest.approx(0.7)
    assert gender["mean_abs_shift_ci"] == pytest.approx([0.7, 0.7])
    assert gender["mean_shift_to_group"] == pytest.approx({"male": -0.7, "female": 0.7})
    assert {(r["key"], r["to"]) for r in gender["largest_shifts"]} == {("key0", "female"), ("key1", "male")}
    religion = categories["religion"]
    assert (religion["mentioning"], religion["reviews"], religion["variants"]) == (1, 1, 5)
    assert religion["flip_rate"] == pytest.approx(1 / 5)  # only the Muslim variant crosses 0.5
    assert religion["mean_shift"] == pytest.approx(0.4 / 5)
    assert religion["mean_shift_to_group"] == pytest.approx(
        {"Muslim": 0.4, "Jewish": 0.0, "Hindu": 0.0, "Buddhist": 0.0, "atheist": 0.0})
    assert religion["largest_shifts"][0] == {"key": "key3", "to": "Muslim", "shift": pytest.approx(0.4)}
    for name in set(CATEGORY_NAMES) - {"gender", "religion"}:  # "Straight", "old": never swapped away from
        assert categories[name] == {"mentioning": 0, "reviews": 0, "variants": 0}


def test_probe_reviews_caps_reviews_and_targets_and_is_seeded():
    report = probe_reviews(scores_by(probe_score), REVIEWS, KEYS, max_reviews=1, max_targets=3)
    gender, religion = report["categories"]["gender"], report["categories"]["religion"]
    assert (gender["mentioning"], gender["reviews"], gender["variants"]) == (2, 1, 1)
    assert (religion["reviews"], religion["variants"]) == (1, 3)
    assert len({r["to"] for r in religion["largest_shifts"]}) == 3
    assert "Christian" not in religion["mean_shift_to_group"]
    assert (report["max_reviews"], report["max_targets"]) == (1, 3)
    assert report == probe_reviews(scores_by(probe_score), REVIEWS, KEYS, max_reviews=1, max_targets=3)


def string_values(payload) -> set[str]:
    if isinstance(payload, dict):
        return set().union(*map(string_values, payload.values()))
    if isinstance(payload, list):
        return set().union(*map(string_values, payload))
    return {payload} if isinstance(payload, str) else set()


def test_probe_report_holds_keys_but_no_text():
    report = fairness.fairness_report(scores_by(probe_score), REVIEWS, KEYS)
    groups = {g for c in CATEGORIES for g in c.groups}
    values = string_values(report)  # besides field names: keys and group names, nothing else
    assert {"key0", "key1", "key3"} <= values <= set(KEYS) | groups
    payload = json.dumps(report)
    assert not [text for text in REVIEWS if text[:20] in payload or text[-20:] in payload]


# --- tables and figures ----------------------------------------------------------------------------------------


def test_variants_table_shift_and_label_flips():
    rows = [("gender", "female", "She was fine.", 0.7), ("religion", "Muslim", "A Muslim.", 0.45),
            ("age", "old", "The elderly man.", 0.3)]
    table = fairness_plots.variants_table(0.4, rows)
    assert list(table.columns) == ["category", "swapped to", "P(positive)", "shift", "label flips", "variant"]
    assert table["shift"].tolist() == pytest.approx([0.3, 0.05, -0.1])
    assert table["label flips"].tolist() == [True, False, False]
    assert table["variant"].tolist() == [r[2] for r in rows]
    figure = fairness_plots.variants_figure(table)
    assert len(figure.data) == 1 and len(figure.data[0].y) == 3
    assert list(figure.data[0].x) == pytest.approx([0.3, 0.05, -0.1])
    assert list(figure.data[0].y) == ["gender: female", "religion: Muslim", "age: old"]


@pytest.fixture(scope="module")
def injected_suite() -> dict:
    return template_suite(scores_by(lambda s: 0.7 if "Muslim" in s else 0.3))


def test_gaps_table_has_one_row_per_category(injected_suite):
    table = fairness_plots.gaps_table(injected_suite)
    assert list(table.columns) == ["category", "between", "gap", "95% CI", "p (Bonferroni)", "flip rate", "flagged"]
    assert table["category"].tolist() == CATEGORY_NAMES
    assert table.loc[table["flagged"], "category"].tolist() == ["religion"]
    assert table.set_index("category").loc["religion", "between"] == "Christian vs Muslim"


def test_suite_figure_has_one_trace_per_category_with_each_group(injected_suite):
    figure = fairness_plots.suite_figure(injected_suite)
    assert [trace.name for trace in figure.data] == CATEGORY_NAMES
    for trace, category in zip(figure.data, CATEGORIES, strict=True):
        assert len(trace.x) == len(trace.y) == len(category.groups)


def test_probe_table_has_the_same_columns_for_probed_and_empty_categories():
    table = fairness_plots.probe_table(probe_reviews(scores_by(probe_score), REVIEWS, KEYS, max_targets=5))
    assert list(table.columns) == ["category", "reviews mentioning", "reviews probed", "variants", "flip rate",
                                   "flip rate 95% CI", "mean shift", "mean |shift|", "mean |shift| 95% CI"]
    by_category = table.set_index("category")
    assert by_category["variants"].tolist() == [2, 0, 0, 5, 0, 0, 0, 0]
    assert by_category.loc["gender", "reviews probed"] == 2 and by_category.loc["age", "reviews probed"] == 0
    assert by_category.loc["religion", "flip rate"] == pytest.approx(0.2)
    assert pd.isna(by_category.loc["age", "flip rate"])
