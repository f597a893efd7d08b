"""The fairness probe: whole-word, case-kept, reversible swaps; statistics with known answers on constructed
scores; the tables and figures; the UI's fairness handler; fairness.json from train.py and --fairness-only."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

import train
from sentiment import fairness, fairness_plots
from sentiment.artifacts import FAIRNESS, MANIFEST, read_json, sha256_file, verify_manifest, write_manifest
from sentiment.data import review_key
from sentiment.fairness import (
    INDEX,
    TEMPLATES,
    bootstrap_ci,
    find_terms,
    paired_p_value,
    perturb,
    probe_reviews,
    template_suite,
    variants,
)
from sentiment.lexicon import BY_NAME, CATEGORIES, TARGET_ONLY
from sentiment.predict import MAX_TEXT_CHARS
from sentiment.ui import FAIRNESS_EXAMPLE, Handlers, Services

CATEGORY_NAMES = [c.name for c in CATEGORIES]
# "her"/"his"/"hers" depend on the next word; "Chinese" and "bisexual" fill two slots of their group.
AMBIGUOUS = {key for name in CATEGORY_NAMES for key, entries in INDEX[name].items()
             if len({slot for _, slot in entries}) > 1} | {"hers"}


def group_of(category: str, group: str) -> int:
    return BY_NAME[category].groups.index(group)


def scores_by(rule):
    """A score function (texts -> P(positive)) from a rule on one sentence."""
    return lambda texts: np.array([rule(t) for t in texts], dtype=np.float64)


# --- swaps -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("He left.", "She left."), ("HE left.", "SHE left."), ("then he left", "then she left"),
    ("He said HE was his own man.", "She said SHE was her own woman."),
    ("Mr. Smith and his son", "Mrs. Smith and her daughter"),
])
def test_gender_swaps_are_whole_word_and_keep_case(text, expected):
    assert perturb(text, "gender", group_of("gender", "female")) == expected


@pytest.mark.parametrize("category", CATEGORY_NAMES)
def test_terms_inside_other_words_are_never_touched(category):
    text = ("the there hemisphere shell Chester mankind manager Jamaica Tomorrow Hector Johnny Tomás Weiß "
            "Mary-Hélène Jose\u0301 woman-made atheistic Christianson unmanned")
    for target in range(len(BY_NAME[category].groups)):
        assert perturb(text, category, target) == text
    assert find_terms(text) == {}


def test_apostrophes_hyphens_and_punctuation_are_kept():
    names = "gender (first names)"
    assert perturb("John's film; Tom’s too.", names, 1) == "Mary's film; Kate’s too."
    assert perturb("A non-disabled, able-bodied hero!", "disability", 1) == "A disabled, wheelchair-using hero!"
    assert perturb("A disabled, wheelchair-using hero!", "disability", 0) == "A non-disabled, able-bodied hero!"
    assert perturb("(He) [he] {he} \"he\" he... he?! --he--", "gender", 1) == \
        "(She) [she] {she} \"she\" she... she?! --she--"


def test_text_outside_identity_words_is_byte_identical():
    text = "Well...  he said:\t'I'm fine' — 😀 and then, at 3:10 p.m., he left.\r\nشكرا  ✓\u200b"
    swapped = perturb(text, "gender", 1)
    assert swapped == text.replace("he said", "she said").replace("he left", "she left")
    assert swapped.encode("utf-8") == text.encode("utf-8").replace(b"he said", b"she said").replace(
        b"he left", b"she left")


def test_proper_nouns_keep_their_own_spelling_mid_sentence_and_capitals_at_the_start():
    assert perturb("I met Christians there.", "religion", group_of("religion", "atheist")) == \
        "I met atheists there."
    assert perturb("I met atheists there.", "religion", group_of("religion", "Christian")) == \
        "I met Christians there."
    assert perturb("Christians were there. \"Christians too.", "religion", group_of("religion", "atheist")) == \
        "Atheists were there. \"Atheists too."
    assert perturb("john and JOHN and John", "gender (first names)", 1) == "mary and MARY and Mary"


@pytest.mark.parametrize(("text", "target", "expected"), [
    ("I loved her film.", "male", "I loved his film."),
    ("I saw her.", "male", "I saw him."),
    ("I gave her a book.", "male", "I gave him a book."),
    ("Her film, her way", "male", "His film, his way"),
    ("the choice was his.", "female", "the choice was hers."),
    ("his film", "female", "her film"),
    ("The choice was hers.", "male", "The choice was his."),
    ("He shaved himself.", "female", "She shaved herself."),
])
def test_pronouns_follow_their_grammatical_role(text, target, expected):
    assert perturb(text, "gender", group_of("gender", target)) == expected


def round_trip_cases(category):
    """(term, its group, other group's term, other group) for every swap that a reverse swap must undo."""
    cases = []
    for slot, terms in enumerate(category.slots):
        for a, term in enumerate(terms):
            if term is None or term.lower() in TARGET_ONLY | AMBIGUOUS:
                continue
            if INDEX[category.name][term.lower()][0][1] != slot:  # a term listed twice is read from its first slot
                continue
            for b, other in enumerate(terms):
                if b == a or other is None or other.lower() in TARGET_ONLY | AMBIGUOUS or other == term:
                    continue
                cases.append((term, a, other, b))
    return cases


@pytest.mark.parametrize("category", CATEGORIES, ids=CATEGORY_NAMES)
def test_every_swap_round_trips(category):
    cases = round_trip_cases(category)
    assert cases, "no swap of this category was checked"
    failures = []
    for term, a, other, b in cases:
        for written, expected in [
            (f"I think {term} was fine.", f"I think {other} was fine."),
            (f"{term[0].upper() + term[1:]} was fine.", f"{other[0].upper() + other[1:]} was fine."),
            (f"I THINK {term.upper()} WAS FINE.", f"I THINK {other.upper()} WAS FINE."),
        ]:
            forward = perturb(written, category, b)
            back = perturb(forward, category, a)
            if (forward, back) != (expected, written):
                failures.append(f"{written!r} -> {forward!r} -> {back!r}")
    assert not failures, f"{len(failures)} of {3 * len(cases)} swaps do not round-trip: {failures[:5]}"


def test_the_round_trip_leaves_out_only_the_ambiguous_terms():
    assert AMBIGUOUS == {"her", "his", "hers", "chinese", "bisexual"}
    assert sum(len(round_trip_cases(c)) for c in CATEGORIES) > 250


@pytest.mark.parametrize(("text", "category"), [
    ("Straight to video, and straight from the heart.", "sexual orientation"),
    ("An old film; older fans and seniors.", "age"),
    ("An Indian summer in fine China", "nationality"),
    ("The temple scenes", "religion"),
])
def test_target_only_words_are_never_swapped_away_from(text, category):
    for target in range(len(BY_NAME[category].groups)):
        assert perturb(text, category, target) == text
    assert find_terms(text) == {}


def test_target_only_words_are_still_swap_targets():
    assert perturb("A gay romance.", "sexual orientation", 0) == "A straight romance."
    assert perturb("The elderly couple.", "age", 0) == "The youthful couple."
    assert perturb("Made in India.", "nationality", group_of("nationality", "Chinese")) == "Made in China."


def test_find_terms_lists_each_term_with_its_group_per_category():
    text = "He met Jamal, a Muslim from America, and his gay friend Mary at the mosque; an old story."
    assert find_terms(text) == {
        "gender": [("He", "male"), ("his", "male")],
        "gender (first names)": [("Mary", "female names")],
        "race/ethnicity (first names)": [("Jamal", "African-American")],
        "religion": [("Muslim", "Muslim"), ("mosque", "Muslim")],
        "nationality": [("America", "American")],
        "sexual orientation": [("gay", "gay")],
    }
    assert find_terms("A slow, beautiful film; the score is great.") == {}


def test_variants_give_one_variant_per_other_group_of_each_category_mentioned():
    text = "He met Jamal, a Muslim."
    found = variants(text)
    assert [(v.category, v.group) for v in found] == \
        [("gender", "female")] + \
        [("race/ethnicity (first names)", g) for g in BY_NAME["race/ethnicity (first names)"].groups if
         g != "African-American"] + \
        [("religion", g) for g in BY_NAME["religion"].groups if g != "Muslim"]
    by_group = {(v.category, v.group): v.text for v in found}
    assert by_group["gender", "female"] == "She met Jamal, a Muslim."
    assert by_group["race/ethnicity (first names)", "East Asian"] == "He met Wei, a Muslim."
    assert by_group["religion", "Buddhist"] == "He met Jamal, a Buddhist."
    assert [(v.category, v.group) for v in variants(text, ["religion"])] == [(v.category, v.group) for v in found
                                                                            if v.category == "religion"]
    assert variants(text) == found  # deterministic
    assert variants("A slow, beautiful film; the score is great.") == []


def test_a_slot_without_a_term_for_the_target_stays_as_written():
    atheist = group_of("religion", "atheist")
    assert perturb("The mosque and the imam.", "religion", atheist) == "The mosque and the imam."
    assert [v.group for v in variants("The mosque scenes.")] == ["Christian", "Jewish", "Hindu", "Buddhist"]


def test_a_text_mixing_groups_gets_one_variant_per_group():
    found = variants("He and she")
    assert [(v.group, v.text) for v in found] == [("male", "He and he"), ("female", "She and she")]


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


# --- the app's fairness tab ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def handlers(tiny_artifacts) -> Handlers:
    return Handlers(Services.load(tiny_artifacts, None, ig_steps=8))


def test_fairness_handler_scores_every_variant(handlers):
    table, figure, note = handlers.fairness(FAIRNESS_EXAMPLE)
    expected = variants(FAIRNESS_EXAMPLE)
    assert isinstance(table, pd.DataFrame) and isinstance(figure, go.Figure) and isinstance(note, str)
    assert list(zip(table["category"], table["swapped to"], table["variant"], strict=True)) == \
        [(v.category, v.group, v.text) for v in expected]
    predictor = handlers.services.predictor
    probs = predictor.predict_proba([FAIRNESS_EXAMPLE] + [v.text for v in expected])[:, 1]
    assert table["P(positive)"].tolist() == pytest.approx(probs[1:], abs=1e-4)
    assert table["shift"].tolist() == pytest.approx(probs[1:] - probs[0], abs=2e-4)
    assert (table["label flips"] == ((probs[1:] >= 0.5) != (probs[0] >= 0.5))).all()
    assert len(figure.data) == 1 and len(figure.data[0].y) == len(expected)
    assert f"{probs[0]:.4f}" in note and "gender: 5; gender (first names): 1; religion: 1" in note


def test_fairness_handler_says_when_there_is_nothing_to_swap(handlers):
    table, figure, note = handlers.fairness("A slow, beautiful film; the score is great.")
    assert table.empty and list(table.columns) == ["category", "swapped to", "P(positive)", "shift",
                                                   "label flips", "variant"]
    assert figure is None and "No identity terms found" in note


@pytest.mark.parametrize("text", ["", "  \n\t ", "he " + "x" * MAX_TEXT_CHARS, "she \ud800"],
                         ids=["empty", "whitespace", "oversized", "surrogate"])
def test_fairness_handler_turns_bad_input_into_a_clear_error(handlers, text):
    with pytest.raises(gr.Error):
        handlers.fairness(text)


# --- fairness.json in the artifacts ----------------------------------------------------------------------------


def test_train_py_writes_the_fairness_report_into_the_artifacts(tiny_artifacts, review_tables):
    report = read_json(tiny_artifacts / FAIRNESS)
    assert set(report) == {"suite", "probe"}
    assert list(report["suite"]["categories"]) == CATEGORY_NAMES
    assert FAIRNESS in verify_manifest(tiny_artifacts)["files"]
    test_keys = {review_key(t) for t in review_tables[1]["text"]}
    probed = [r["key"] for c in report["probe"]["categories"].values() for r in c.get("largest_shifts", [])]
    assert probed and set(probed) <= test_keys


FAIRNESS_ONLY = ["--fairness-only", "--device", "cpu", "--precision", "fp32", "--num-threads", "1", "--no-progress"]


@pytest.fixture()
def artifacts_copy(tiny_artifacts, tmp_path) -> Path:
    folder = tmp_path / "artifacts"
    shutil.copytree(tiny_artifacts, folder)
    return folder


def file_hashes(folder: Path) -> dict[str, str]:
    return {p.name: sha256_file(p) for p in folder.iterdir() if p.name not in (FAIRNESS, MANIFEST)}


def test_fairness_only_adds_the_report_to_a_folder_without_one(artifacts_copy, small_imdb, tiny_artifacts):
    (artifacts_copy / FAIRNESS).unlink()
    write_manifest(artifacts_copy)
    before = file_hashes(artifacts_copy)
    assert train.main([*FAIRNESS_ONLY, "--output-dir", str(artifacts_copy), "--data", str(small_imdb)]) == 0
    manifest = verify_manifest(artifacts_copy)
    assert set(manifest["files"]) == set(before) | {FAIRNESS}
    assert file_hashes(artifacts_copy) == before  # the model and the evaluation are left as they were
    assert [p.name for p in artifacts_copy.parent.iterdir()] == ["artifacts"]  # no temporary or old folder
    added, original = read_json(artifacts_copy / FAIRNESS), read_json(tiny_artifacts / FAIRNESS)
    # the same model, test split and seed as the training run: the same report, but for batching noise
    for name, category in original["suite"]["categories"].items():
        for group, stats in category["groups"].items():
            assert added["suite"]["categories"][name]["groups"][group]["mean"] == pytest.approx(stats["mean"],
                                                                                               abs=1e-4)
        assert added["probe"]["categories"][name]["variants"] == original["probe"]["categories"][name]["variants"]


def test_fairness_only_replaces_an_existing_report(artifacts_copy, small_imdb):
    before = file_hashes(artifacts_copy)
    argv = [*FAIRNESS_ONLY, "--output-dir", str(artifacts_copy), "--data", str(small_imdb),
            "--fairness-max-reviews", "1"]
    assert train.main(argv) == 0
    verify_manifest(artifacts_copy)
    assert file_hashes(artifacts_copy) == before
    probe = read_json(artifacts_copy / FAIRNESS)["probe"]
    assert probe["max_reviews"] == 1
    assert all(c["reviews"] <= 1 for c in probe["categories"].values())
    assert any(c["reviews"] == 1 for c in probe["categories"].values())


def test_a_failed_fairness_only_run_leaves_the_artifacts_as_they_were(artifacts_copy, small_imdb, monkeypatch):
    from sentiment import training

    report_before = (artifacts_copy / FAIRNESS).read_bytes()

    def write_half_then_crash(path, payload):
        Path(path).write_text('{"suite": ', encoding="utf-8")
        raise RuntimeError("disk full")

    monkeypatch.setattr(training, "write_json", write_half_then_crash)
    with pytest.raises(RuntimeError, match="disk full"):
        train.main([*FAIRNESS_ONLY, "--output-dir", str(artifacts_copy), "--data", str(small_imdb)])
    verify_manifest(artifacts_copy)
    assert (artifacts_copy / FAIRNESS).read_bytes() == report_before
    assert [p.name for p in artifacts_copy.parent.iterdir()] == ["artifacts"]


def test_fairness_only_without_trained_artifacts_exits_2(tmp_path, small_imdb, capsys):
    argv = [*FAIRNESS_ONLY, "--output-dir", str(tmp_path / "nothing"), "--data", str(small_imdb)]
    assert train.main(argv) == 2
    assert "no manifest.json" in capsys.readouterr().err


# Mitigation: counterfactual data augmentation

AUGMENT_TEXTS = ["He was wonderful and his wife was too.", "A film with no people in it at all.",
                 "The Muslim family at the centre of it is drawn with care.", "Mary hated every minute."]


def test_counterfactual_copies_swap_identity_words_and_keep_labels():
    copies = fairness.counterfactual_copies(AUGMENT_TEXTS, [1, 0, 1, 0], share=1.0, seed=0)
    assert len(copies) == 3  # every text that mentions identity terms, and none other
    for (copy, label), (text, original_label) in zip(copies, [(AUGMENT_TEXTS[i], [1, 0, 1, 0][i]) for i in (0, 2, 3)],
                                                      strict=True):
        assert label == original_label and copy != text
        assert fairness.WORD.sub("", copy) == fairness.WORD.sub("", text)  # only whole words changed
    assert fairness.counterfactual_copies(AUGMENT_TEXTS, [1, 0, 1, 0], share=1.0, seed=0) == copies
    assert fairness.counterfactual_copies(AUGMENT_TEXTS, [1, 0, 1, 0], share=0.0, seed=0) == []


def test_train_with_counterfactual_augmentation_trains_on_the_copies(tiny_model_dir, small_imdb, tmp_path):
    out = tmp_path / "artifacts"
    argv = ["--data", str(small_imdb), "--model", str(tiny_model_dir), "--output-dir", str(out),
            "--checkpoint-dir", str(tmp_path / "ck"), "--max-steps", "2", "--epochs", "1", "--precision", "fp32",
            "--no-progress", "--no-fairness", "--max-length", "64"]
    assert train.main([*argv, "--counterfactual-augmentation", "1.0"]) == 0
    augmented = read_json(out / "training_config.json")
    assert augmented["config"]["counterfactual_augmentation"] == 1.0
    assert train.main([*argv, "--checkpoint-dir", str(tmp_path / "ck2")]) == 0
    plain = read_json(out / "training_config.json")
    assert augmented["sizes"]["train"] > plain["sizes"]["train"]
    assert augmented["sizes"]["test"] == plain["sizes"]["test"]
