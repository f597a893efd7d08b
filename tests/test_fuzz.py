"""Property-based tests over arbitrary Unicode (emoji, control characters, right-to-left scripts, combining marks):
truncation and encoding budgets, word merging of attributions, identity swaps, and input checks."""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sentiment.augment import INDEX, WORD, find_terms, perturb
from sentiment.errors import SentimentError
from sentiment.explain import join_contractions, merge_words
from sentiment.lexicon import BY_NAME, CATEGORIES, TARGET_ONLY
from sentiment.predict import MAX_TEXT_CHARS, Predictor, check_text
from sentiment.text import Encoder, truncate

# Session fixtures (the tokenizer) are shared between examples on purpose; no example database in the repo.
FUZZ = settings(max_examples=80, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

SPECIAL = st.sampled_from([
    "👍🏽", "🎬🍿", "👨‍👩‍👧", "שלום", "مرحبا بالعالم", "\u202eevil\u202c", "e\u0301", "\u0301\u0302", "\u200b",
    "\ufeff", "\x00", "\x07", "\x1f", "\x85", "\u2028", "\r\n", "\t", " ", "  ", "ß", "İ", "ﬁ", "Ⅻ", "’", "-", "--",
    "'", "...", "日本語", "한국어", "Ωμέγα", "Tomás", "Weiß", "[CLS]", "[SEP]", "[PAD]", "##ing", "<br />",
])
TERMS = sorted({t for c in CATEGORIES for slot in c.slots for t in slot if t})
WORDS = st.sampled_from(TERMS + ["the", "film", "there", "shell", "hemisphere", "mankind", "Chester", "straight",
                                 "old", "king", "a", "to", "was", "great"])
CASED_WORDS = st.tuples(WORDS, st.sampled_from([str, str.upper, str.lower, str.capitalize])).map(
    lambda pair: pair[1](pair[0]))
# Fragments of three kinds, joined: anything st.text() gives, hand-picked oddities, and (cased) identity words.
TEXT = st.lists(st.one_of(st.text(max_size=12), SPECIAL, CASED_WORDS, st.just(" ")), max_size=24).map("".join)
NO_IDENTITY_TEXT = st.lists(st.one_of(st.text(max_size=12), SPECIAL, st.sampled_from(
    ["the", "there", "shell", "hemisphere", "mankind", "Chester", "Jamaica", "straight", "old", " "])),
    max_size=24).map("".join).filter(lambda text: not find_terms(text))
CATEGORY = st.sampled_from(CATEGORIES)
# Words as a reader sees them, in any script: independent of the ASCII pattern the probe matches with.
UNICODE_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")


# --- truncation and encoding -----------------------------------------------------------------------------------


@FUZZ
@given(n=st.integers(0, 200), budget=st.integers(0, 120), strategy=st.sampled_from(["head", "tail", "head+tail"]),
       head_ratio=st.floats(0.0, 1.0))
def test_truncate_keeps_the_budget_the_head_and_the_tail(n, budget, strategy, head_ratio):
    ids = list(range(n))  # distinct, increasing: where the kept head ends is visible
    kept = truncate(ids, budget, strategy, head_ratio)
    if n <= budget:
        assert kept == ids
        return
    assert len(kept) == budget
    head = next((i for i, value in enumerate(kept) if value != i), len(kept))
    assert kept == ids[:head] + ids[n - (budget - head):]
    expected_head = {"head": budget, "tail": 0, "head+tail": budget * head_ratio}[strategy]
    assert abs(head - expected_head) <= 0.5


@FUZZ
@given(text=TEXT, max_length=st.integers(8, 64), strategy=st.sampled_from(["head", "tail", "head+tail"]),
       head_ratio=st.floats(0.0, 1.0))
def test_encode_never_exceeds_max_length_and_frames_every_text(tokenizer, text, max_length, strategy, head_ratio):
    encoder = Encoder(tokenizer, max_length, strategy, head_ratio)
    [ids] = encoder.encode([text])
    assert len(ids) <= max_length
    assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
    pieces = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert ids[1:-1] == truncate(pieces, max_length - 2, strategy, head_ratio)


@FUZZ
@given(texts=st.lists(TEXT, min_size=1, max_size=5), max_length=st.integers(8, 64))
def test_encoding_a_batch_equals_encoding_each_text(tokenizer, texts, max_length):
    encoder = Encoder(tokenizer, max_length)
    assert encoder.encode(texts, batch_size=2) == [encoder.encode([t])[0] for t in texts]


# --- word merging of attributions ------------------------------------------------------------------------------


@FUZZ
@given(text=TEXT, budget=st.integers(0, 40), strategy=st.sampled_from(["head", "tail", "head+tail"]))
def test_merged_words_cover_the_text_and_every_seen_word(tokenizer, text, budget, strategy):
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    word_ids = encoding.word_ids()
    kept = truncate(range(len(encoding["input_ids"])), budget, strategy, 0.25)
    scores = {index: float(index + 1) for index in kept}  # integers: sums are exact
    segments, words = merge_words(text, encoding["offset_mapping"], word_ids, set(kept), scores)
    assert "".join(segment for segment, _ in segments) == text
    assert all(segment for segment, _ in segments)
    assert words == [(segment, score) for segment, score in segments if score is not None]
    joined = join_contractions(text, encoding["offset_mapping"], word_ids)
    assert len(words) == len({joined[i] for i in kept})  # every word with a seen piece, once
    assert sum(score for _, score in words) == sum(scores.values())  # no attribution lost


# --- identity swaps --------------------------------------------------------------------------------------------


@FUZZ
@given(text=TEXT, category=CATEGORY, target=st.integers(0, 7))
@example(text="Tomás, Weiß, Johnß, Mary-Hélène, Jose\u0301", category=BY_NAME["gender (first names)"], target=1)
@example(text="Weiß and Tomás", category=BY_NAME["race/ethnicity (first names)"], target=0)
@example(text="日本語-bisexual", category=BY_NAME["sexual orientation"], target=0)  # found by this test in stop 31
@example(text="Hélène-Mary and bisexual-日本語", category=BY_NAME["gender (first names)"], target=1)
def test_perturb_changes_only_identity_words(text, category, target):
    target %= len(category.groups)
    swapped = perturb(text, category, target)
    assert WORD.split(swapped) == WORD.split(text)  # the text between words, byte for byte
    assert UNICODE_WORD.split(swapped) == UNICODE_WORD.split(text)
    changed = [(old, new) for old, new in zip(UNICODE_WORD.findall(text), UNICODE_WORD.findall(swapped), strict=True)
               if old != new]
    assert all(old.lower() in INDEX[category.name] for old, _ in changed)  # whole words only: never "Tomás"
    before, after = WORD.findall(text), WORD.findall(swapped)
    assert len(before) == len(after)
    index = INDEX[category.name]
    for old, new in zip(before, after, strict=True):
        if old != new:
            assert old.lower() in index and old.lower() not in TARGET_ONLY
            assert target not in {group for group, _ in index[old.lower()]}
            assert any(group == target for group, _ in index[new.lower()])
            if len(old) > 1 and old.isupper():
                assert new.isupper()
            if old.islower():  # lower case kept, unless the target is a proper noun written as in the lexicon
                assert new.islower() or new in TERMS
    assert perturb(swapped, category, target) == swapped  # everything is already in the target group
    if swapped != text:
        assert category.name in find_terms(text)


@FUZZ
@given(text=NO_IDENTITY_TEXT)
def test_text_without_identity_words_is_never_changed(text):
    for category in CATEGORIES:
        for target in range(len(category.groups)):
            assert perturb(text, category, target) == text


@FUZZ
@given(text=st.text(max_size=200), category=CATEGORY, target=st.integers(0, 7))
def test_perturb_never_raises_on_any_text(text, category, target):
    assert isinstance(perturb(text, category, target % len(category.groups)), str)


# --- input checks ----------------------------------------------------------------------------------------------

WHITESPACE = st.text(alphabet=st.sampled_from(" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2009\u200a"
                                              "\u2028\u2029\u202f\u205f\u3000"), max_size=50)


def readable(text: str) -> bool:
    """Whether `text` holds a letter, digit, punctuation mark or symbol."""
    return any(unicodedata.category(ch)[0] in "LNPS" for ch in text)


INVISIBLE = st.text(alphabet=st.sampled_from("\x00\x07\x1b\x7f\u200b\u200d\u200e\u202e\u2060\ufeff \t\n\u3000"),
                    max_size=20)


@FUZZ
@given(text=st.one_of(WHITESPACE, INVISIBLE, TEXT, st.text(max_size=300)))
def test_check_text_accepts_every_text_with_something_to_read(text):
    if not text.strip():
        with pytest.raises(SentimentError, match="empty"):
            check_text(text)
    elif readable(text):
        assert check_text(text) is text
    else:  # only control, format or combining characters: accepted or called empty, and nothing else
        try:
            assert check_text(text) is text
        except SentimentError as err:
            assert "empty" in str(err)


@FUZZ
@given(prefix=st.text(max_size=20), surrogate=st.integers(0xD800, 0xDFFF).map(chr), suffix=st.text(max_size=20))
def test_check_text_rejects_unpaired_surrogates(prefix, surrogate, suffix):
    with pytest.raises(SentimentError, match="surrogate"):
        check_text(f"ok {prefix}{surrogate}{suffix}")


def test_check_text_limits_the_size():
    assert check_text("x" * MAX_TEXT_CHARS) == "x" * MAX_TEXT_CHARS
    with pytest.raises(SentimentError, match="limit"):
        check_text("x" * (MAX_TEXT_CHARS + 1))


@pytest.fixture(scope="module")
def tiny_predictor(tiny_model_dir, tokenizer) -> Predictor:
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir)
    return Predictor(model, Encoder(tokenizer, max_length=32), device="cpu", precision="fp32")


@settings(FUZZ, max_examples=30)
@given(texts=st.lists(TEXT.filter(readable), min_size=1, max_size=4))
def test_any_accepted_text_gets_probabilities(tiny_predictor, texts):
    probs = tiny_predictor.predict_proba(texts)
    assert probs.shape == (len(texts), 2)
    assert np.allclose(probs.sum(1), 1.0, atol=1e-5) and np.isfinite(probs).all()
