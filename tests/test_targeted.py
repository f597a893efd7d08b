"""Targeted augmentation: kept apart from the behavioural suite, labelled as meant, seeded, wired into training."""

import hashlib
import json
import random
import re

import pandas as pd
import pytest

from sentiment import behaviour, targeted
from sentiment import targeted_templates as words
from sentiment.config import TrainConfig
from sentiment.errors import SentimentError
from sentiment.lexicon import CATEGORIES
from sentiment.mixture import augment

REVIEWS = ["The acting was good. I liked it a lot.", "Honestly the plot is really stupid!",
           "The ending was good, but the rest was a mess.",  # two clauses: not mined
           "The music was not good.",  # negated already: not mined
           "The cast was amazing.",  # positive word in a negative review: disagrees, not mined
           "The score was decent and the lead actor was fine."]  # two sentiment words: not mined
LABELS = [1, 0, 1, 0, 0, 1]


def test_word_pools_and_sentences_are_apart_from_the_suite():
    assert not set(words.POSITIVE) & set(behaviour.POSITIVE)
    assert not set(words.NEGATIVE) & set(behaviour.NEGATIVE)
    assert not set(words.NOUNS) & set(behaviour.NOUNS)
    suite = {case for test in behaviour.build_suite(seed=0, n=50) for item in test.cases
             for case in ((item,) if isinstance(item, str) else item)}
    training = {text for text, _, _ in targeted.templated(random.Random(0), 3000, negated_verdicts=True)}
    assert not suite & training
    assert not any(verdict in case for verdict in words.VERDICTS for case in suite)


def test_mined_sentences_agree_with_their_review_and_flip_when_negated():
    out = targeted.mine(REVIEWS * 3, LABELS * 3, random.Random(0), 30)
    assert {text for text, _, _ in out} <= {
        "The acting was good.", "The acting wasn't good.", "The acting was not good.",
        "Honestly the plot is really stupid!", "Honestly the plot isn't really stupid!",
        "Honestly the plot is not really stupid!",
        *(frame.format(clause) for frame in words.FRAMES
          for clause in ("the acting was good.", "honestly the plot is really stupid."))}
    for text, label, target in out:
        assert target == label  # hard labels by default
        negated = bool(re.search(r"n't|\bnot\b", text)) or not text.startswith(("The", "Honestly"))
        original = 1 if "acting" in text else 0
        assert label == (1 - original if negated else original), text
    assert {label for _, label, _ in out} == {0, 1}
    kinds = {("frame" if not text.startswith(("The", "Honestly")) else "negated" if "not" in text or "n't" in text
              else "as is") for text, _, _ in out}
    assert kinds == {"frame", "negated", "as is"}


def test_mined_sentences_hold_as_many_positive_as_negative_of_each_kind():
    reviews = [f"The {noun} was good." for noun in ("plot", "cast", "music", "ending", "script")] + \
        ["The plot was stupid.", "The cast was stupid."]  # more positive than negative sentences to mine
    out = targeted.mine(reviews, [1] * 5 + [0] * 2, random.Random(0), 100)
    as_is = [label for text, label, _ in out if text in reviews]
    negated = [label for text, label, _ in out if text.startswith("The") and ("n't" in text or " not " in text)]
    assert sorted(as_is) == [0, 0, 1, 1] and sorted(negated) == [0, 0, 1, 1]
    assert sum(label for _, label, _ in out) * 2 == len(out)  # frames included


def test_a_negation_outside_the_sentiment_words_scope_keeps_the_words_label():
    out = targeted.templated(random.Random(1), 3000)
    scoped = [(text, label) for text, label, _ in out if text.startswith(("I didn't expect much", "I won't lie"))]
    assert scoped and {label for _, label in scoped} == {0, 1}
    for text, label in scoped:
        word = text.rstrip(".").split()[-1]
        assert label == (1 if word in words.POSITIVE else 0), text


def test_negations_that_keep_their_polarity_come_in_pairs_of_both_labels_that_both_negate():
    negation = re.compile(r"\b(not|never|nobody|don't)\b|n't", re.IGNORECASE)
    assert {label for _, label, _ in words.KEPT_NEGATIONS} == {"pos", "neg"}
    for template, _, twin in words.KEPT_NEGATIONS:
        assert negation.search(template) and negation.search(twin), template
    out = {text: label for text, label, _ in targeted.templated(random.Random(2), 3000)}
    checked = 0
    for template, label, twin in words.KEPT_NEGATIONS:
        for noun in words.NOUNS:
            sentence, other = (targeted._fill(t, {"n": noun}) for t in (template, twin))
            if sentence in out:  # drawn with this noun: its twin with it, the other label
                assert out[sentence] == int(label == "pos") and out[other] == int(label != "pos"), sentence
                checked += 1
    assert checked >= 100


def test_templated_labels_follow_the_verdict_and_identity_groups_share_one_label():
    out = targeted.templated(random.Random(3), 1200)
    assert len(out) == 1200
    by_text = {text: label for text, label, _ in out}
    assert all(by_text[t] == 0 for t in by_text if t.startswith(("Nothing about", "I would never call"))
               and any(f" {w}." in t for w in words.POSITIVE))
    assert all(by_text[t] == 1 for t in by_text if t.startswith("Is the") and t.endswith("not in the slightest."))
    for category in CATEGORIES:
        first = category.phrases[0]
        for text, label, _ in out:
            if text.startswith(f"As {first},"):
                rest = text[len(f"As {first},"):]
                assert all(by_text.get(f"As {p},{rest}") == label for p in category.phrases), text


def test_the_same_seed_gives_the_same_sentences():
    first = targeted.targeted_sentences(REVIEWS, LABELS, 200, seed=5)
    assert first == targeted.targeted_sentences(REVIEWS, LABELS, 200, seed=5)
    assert first != targeted.targeted_sentences(REVIEWS, LABELS, 200, seed=6)
    assert len(first) == 200


def test_without_negated_verdicts_a_seed_gives_the_sentences_of_earlier_versions():
    """A run started before `negated_verdicts` existed resumes on the same sentences (the digest of the version
    that trained candidates 2a to 2p)."""
    out = targeted.targeted_sentences(REVIEWS * 20, LABELS * 20, 3000, seed=42, negated_negative_target=0.7)
    digest = hashlib.sha256(json.dumps(out).encode()).hexdigest()
    assert digest == "cd23f16c8e83df5834c77c49d3976ac89284ba04fc4e652aa6f9060ad6ea1a8b"


_NEGATION = re.compile(r"\b(?:not|no|never|nothing|nobody)\b|n't", re.IGNORECASE)


def _framed(text: str) -> bool:
    return text.startswith(tuple(frame.split("{")[0] for frame in words.FRAMES))


def test_verdicts_hold_no_pool_word_and_no_negation_and_pair_with_every_negated_negative_template():
    for verdict in words.VERDICTS:
        assert not targeted._POOL_WORD.search(verdict) and not targeted._NEGATORS.search(verdict), verdict
    assert {t for t, label, _ in words.TEMPLATES if label == "not neg"} == set(words.VERDICT_PAIRS)
    for negated, affirmed in words.VERDICT_PAIRS.values():
        assert "{v}" in negated and "{v}" in affirmed and "{q}" not in negated + affirmed
        assert _NEGATION.search(negated) and not _NEGATION.search(affirmed), affirmed


def test_each_negated_negative_comes_with_a_negated_and_an_affirmed_verdict():
    templated = targeted.templated(random.Random(4), 600, 0.7, negated_verdicts=True)
    reviews = ["The plot was stupid.", "The cast was good.", "The music was really lame!", "The ending was fine.",
               "The story was lame and the cast was worse.", "The score was good and so was the cast."]
    mined = targeted.mine(reviews * 2, [0, 1, 0, 1, 0, 1] * 2, random.Random(4), 100, 0.7, negated_verdicts=True)
    # only sentences that end at their sentiment word: "wasn't lame and the cast was worse" is no praise
    assert not any("worse" in t or "so was" in t for t, _, _ in mined)
    assert {t for t, _, _ in mined} >= {"The plot was stupid.", "The music was really lame!", "The cast was good."}
    for out, twin in ((templated, 1), (mined, 0)):  # a template's affirmative twin comes first
        negated_negatives = [j for j, (text, _, target) in enumerate(out) if target == 0.7 and not _framed(text)]
        assert len(negated_negatives) > 3
        for j in negated_negatives[:-1]:  # the last may be cut off
            (negated, *kind_negated), (affirmed, *kind_affirmed) = out[j + 1 + twin], out[j + 2 + twin]
            verdict = next(v for v in words.VERDICTS if v in negated)
            assert verdict in affirmed and kind_negated == [0, 0.0] and kind_affirmed == [1, 1.0]
            assert _NEGATION.search(negated) and not _NEGATION.search(affirmed), affirmed
            if out is mined:  # the same sentence and the same negation, the verdict in the sentiment word's place
                assert out[j][0].startswith(negated[:negated.index(verdict)]) and out[j][0] != negated
    assert sum(label for _, label, _ in mined) * 2 == len(mined)  # as many positive as negative, verdicts included


def test_negated_verdicts_reach_training_and_keep_a_seed_and_the_label_balance():
    reviews, labels = REVIEWS * 20, LABELS * 20
    first = targeted.targeted_sentences(reviews, labels, 3000, seed=42, negated_verdicts=True)
    assert first == targeted.targeted_sentences(reviews, labels, 3000, seed=42, negated_verdicts=True)
    plain = targeted.targeted_sentences(reviews, labels, 3000, seed=42)
    share = [sum(label for _, label, _ in out) / len(out) for out in (first, plain)]
    assert abs(share[0] - share[1]) < 0.02  # verdicts come in pairs of both labels
    out = augment(pd.DataFrame({"text": REVIEWS, "labels": LABELS}),
                  TrainConfig(targeted_augmentation=300, negated_verdicts=True))
    assert any(verdict in text for verdict in words.VERDICTS for text in out["text"])
    with pytest.raises(SentimentError, match="--negated-verdicts: only applies with --targeted-augmentation"):
        TrainConfig(negated_verdicts=True)


def test_the_families_partition_the_templates_in_their_order():
    assert words.TEMPLATES == tuple(t for family in words.FAMILIES.values() for t in family)
    assert set(words.TARGETED_FAMILIES) == {*words.FAMILIES, "identity", "mined"}


def _template_of(text: str) -> set[str]:
    """The families whose templates (or twins) could have made `text`: its fixed words, in order."""
    def fits(template: str) -> bool:
        pieces = [re.escape(p) for p in re.split(r"\{\w+\}", template)]
        return re.fullmatch(".+?".join(pieces), text, re.IGNORECASE) is not None
    return {name for name, family in words.FAMILIES.items()
            for template, _, twin in family for t in (template, twin) if t and fits(t)}


def test_chosen_families_give_only_their_sentences():
    reviews, labels = REVIEWS * 20, LABELS * 20
    contrast = targeted.targeted_sentences(reviews, labels, 300, seed=1, families=("contrast",))
    assert len(contrast) == 300 and all(_template_of(text) == {"contrast"} for text, _, _ in contrast)
    identity = targeted.targeted_sentences(reviews, labels, 300, seed=1, families=("identity",))
    phrases = {phrase for category in CATEGORIES for phrase in category.phrases}
    assert identity and all(any(phrase in text for phrase in phrases) for text, _, _ in identity)
    mined = targeted.targeted_sentences(reviews, labels, 300, seed=1, families=("mined",))
    everything = targeted.targeted_sentences(reviews, labels, 300, seed=1)
    assert mined and set(mined) <= {s for s in targeted.mine(reviews, labels, random.Random(1), 300)}
    assert not any(_template_of(text) for text, _, _ in mined) and len(everything) == 300
    both = targeted.targeted_sentences(reviews, labels, 300, seed=1, families=("mined", "questions answered"))
    assert {frozenset(_template_of(text)) for text, _, _ in both} == {frozenset(), frozenset({"questions answered"})}
    trained = augment(pd.DataFrame({"text": REVIEWS, "labels": LABELS}),
                      TrainConfig(targeted_augmentation=40, targeted_families="temporal"))
    assert all(_template_of(text) == {"temporal"} for text in trained["text"].iloc[len(REVIEWS):])


@pytest.mark.parametrize(("spec", "message"), [("contrast, foo", "unknown families 'foo'"), (" , ", "no family")])
def test_unknown_families_are_refused_with_the_names_there_are(spec, message):
    with pytest.raises(SentimentError, match=f"--targeted-families: {message}; name one or more of negation"):
        TrainConfig(targeted_augmentation=10, targeted_families=spec)
    with pytest.raises(SentimentError, match="--targeted-families: only applies with --targeted-augmentation"):
        TrainConfig(targeted_families="contrast")


def test_no_sentences_is_an_error():
    with pytest.raises(SentimentError, match="positive number"):
        targeted.targeted_sentences(REVIEWS, LABELS, 0)
    with pytest.raises(SentimentError, match="--targeted-augmentation"):
        TrainConfig(targeted_augmentation=-1)


def test_training_adds_the_sentences_after_the_reviews():
    train = pd.DataFrame({"text": REVIEWS, "labels": LABELS})
    assert augment(train, TrainConfig()) is train
    out = augment(train, TrainConfig(targeted_augmentation=40))
    assert len(out) == len(train) + 40
    pd.testing.assert_frame_equal(out.iloc[:len(train)], train)


def test_negated_negatives_train_toward_the_softer_target_and_nothing_else_does():
    reviews = ["The plot was stupid.", "The cast was good.", "The music was lame.", "The ending was fine."]
    hard = targeted.targeted_sentences(reviews, [0, 1, 0, 1], 600, seed=4)
    soft = targeted.targeted_sentences(reviews, [0, 1, 0, 1], 600, seed=4, negated_negative_target=0.7)
    assert [(t, label) for t, label, _ in soft] == [(t, label) for t, label, _ in hard]  # the same sentences
    assert all(target == label for _, label, target in hard)
    softened = {text for text, label, target in soft if target != label}
    assert all(target == 0.7 and label == 1 for _, label, target in soft if target != label)
    negated_mined = {"The plot wasn't stupid.", "The plot was not stupid.", "The music wasn't lame.",
                     "The music was not lame."}
    assert negated_mined & {t for t, _, _ in soft} and negated_mined & {t for t, _, _ in soft} <= softened
    assert not {"The cast wasn't good.", "The cast was not good."} & softened  # a negated positive stays hard
    assert any(t.startswith("Nothing about the") and any(f" {w}." in t for w in words.NEGATIVE) for t in softened)
    assert not any(t.startswith("Everything about the") for t in softened)  # its twin: a hard negative
    assert all(any(f" {w}" in t for w in words.NEGATIVE) for t in softened)  # every one negates a negative word
    for bad in (0.4, 1.1):
        with pytest.raises(SentimentError, match=r"\[0.5, 1\]"):
            targeted.targeted_sentences(reviews, [0, 1, 0, 1], 10, negated_negative_target=bad)
    with pytest.raises(SentimentError, match="--negated-negative-target"):
        TrainConfig(negated_negative_target=0.3)


def test_training_keeps_soft_targets_in_a_column_of_their_own():
    train = pd.DataFrame({"text": REVIEWS, "labels": LABELS})
    assert "target" not in augment(train, TrainConfig(targeted_augmentation=40))  # hard labels: the usual loss
    out = augment(train, TrainConfig(targeted_augmentation=200, negated_negative_target=0.7))
    assert (out["target"].iloc[:len(train)] == train["labels"]).all()
    assert set(out["target"]) == {0.0, 0.7, 1.0} and (out["labels"][out["target"] == 0.7] == 1).all()


def test_smoothing_moves_every_target_toward_the_middle_and_keeps_the_sentences():
    reviews = ["The plot was stupid.", "The cast was good.", "The music was lame.", "The ending was fine."]
    plain = targeted.targeted_sentences(reviews, [0, 1, 0, 1], 600, seed=4, negated_negative_target=0.7)
    smooth = targeted.targeted_sentences(reviews, [0, 1, 0, 1], 600, seed=4, negated_negative_target=0.7,
                                         smoothing=0.1)
    assert [(t, label) for t, label, _ in smooth] == [(t, label) for t, label, _ in plain]  # the same sentences
    assert {round(target, 6) for _, _, target in smooth} == {0.1, 0.66, 0.9}
    for (_, _, before), (_, _, after) in zip(plain, smooth, strict=True):
        assert after == pytest.approx(0.1 + 0.8 * before)
    for bad in (-0.1, 0.5):
        with pytest.raises(SentimentError, match=r"smoothing of the targets is a share in \[0, 0.5\)"):
            targeted.targeted_sentences(reviews, [0, 1, 0, 1], 10, smoothing=bad)
    with pytest.raises(SentimentError, match="^--targeted-smoothing: only applies with --targeted-augmentation"):
        TrainConfig(targeted_smoothing=0.1)
    with pytest.raises(SentimentError, match="^--targeted-smoothing: must be in"):
        TrainConfig(targeted_augmentation=10, targeted_smoothing=0.5)
    train = pd.DataFrame({"text": REVIEWS, "labels": LABELS})  # reaches training, the reviews' targets untouched
    out = augment(train, TrainConfig(targeted_augmentation=40, targeted_smoothing=0.1))
    assert (out["target"].iloc[:len(train)] == train["labels"]).all()
    assert set(out["target"].iloc[len(train):].round(6)) <= {0.1, 0.9}
