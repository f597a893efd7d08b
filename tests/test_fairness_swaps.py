"""Identity-term swaps of the fairness probe: whole-word, case-kept, grammatical and reversible; the
variants a text gets."""

from __future__ import annotations

import pytest

from sentiment.augment import INDEX, find_terms, perturb, variants
from sentiment.lexicon import BY_NAME, CATEGORIES, TARGET_ONLY

CATEGORY_NAMES = [c.name for c in CATEGORIES]
# "her"/"his"/"hers" depend on the next word; "Chinese" and "bisexual" fill two slots of their group.
AMBIGUOUS = {key for name in CATEGORY_NAMES for key, entries in INDEX[name].items()
             if len({slot for _, slot in entries}) > 1} | {"hers"}


def group_of(category: str, group: str) -> int:
    return BY_NAME[category].groups.index(group)


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
