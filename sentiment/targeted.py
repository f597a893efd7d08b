"""Targeted augmentation for the capabilities the behavioural suite finds weak (negation and contrast first):
labelled short sentences for training, from sentences of the training reviews and from templates.

Nothing here is shared with the suite in `sentiment.behaviour`: the templates, the sentiment words and the nouns
are other ones (a test checks that the word pools are disjoint), so the suite grades what training generalised,
not its own training data. Identity terms are the lexicon's (the attribute itself), in other templates.

- mined: sentences of training reviews whose sentiment word (from the pools of `targeted_templates`) agrees with
  the review's label, kept as they are (short texts), negated ("was good" -> "wasn't good", label flipped) and
  embedded in a negating frame with material in between ("I would not say that ..." , label flipped);
- templated: negation (also outside the sentiment word's scope, where it flips nothing, and negations that are the
  verdict or keep their polarity, such as "I won't be watching it again"), contrast, temporal change,
  the author's opinion against others', questions answered, and sentiment sentences mentioning identity terms,
  every group of a category with the same label.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Sequence

from sentiment.errors import SentimentError
from sentiment.lexicon import CATEGORIES
from sentiment.sources import SENTENCE_BREAK
from sentiment.targeted_templates import (
    FAMILIES,
    FRAMES,
    IDENTITY_TEMPLATES,
    NEGATIVE,
    NOUNS,
    POSITIVE,
    TEMPLATES,
    VERDICT_PAIRS,
    VERDICTS,
)

log = logging.getLogger(__name__)

Sentence = tuple[str, int, float]  # text, label (0 negative, 1 positive), the P(positive) training asks of it

_POLARITY = {**{w: 1 for w in POSITIVE}, **{w: 0 for w in NEGATIVE}}
_ADVERB = r"(?:(?:very|really|so|quite|truly|pretty|rather|extremely|genuinely|too)\s+)?"
_COPULA = re.compile(r"\b(was|is|were|are)\s+(" + _ADVERB + r")(" + "|".join(_POLARITY) + r")\b", re.IGNORECASE)
_CONTRACTED = {"was": "wasn't", "is": "isn't", "were": "weren't", "are": "aren't"}
_POOL_WORD = re.compile(r"\b(?:" + "|".join(_POLARITY) + r")\b", re.IGNORECASE)
_CLAUSES = re.compile(r"[,;:()]|--")  # one clause only: negating one of several would mislabel the sentence
_NEGATORS = re.compile(r"\b(not|no|never|n't|nothing|hardly|neither|nor|without|but|though|although)\b|n't",
                       re.IGNORECASE)
_ENDS_AT_WORD = re.compile(r"[.!]+")  # what may follow a mined sentence's sentiment word with `negated_verdicts`


def _values(rng: random.Random, adjective: str | None = None) -> dict[str, str]:
    nouns = rng.sample(NOUNS, 2)
    return {"n": nouns[0], "n2": nouns[1], "p": rng.choice(POSITIVE), "q": rng.choice(NEGATIVE), "a": adjective or "",
            "X": "{X}"}


def _fill(template: str, values: dict[str, str]) -> str:
    text = template.format(**values)
    return text[0].upper() + text[1:]


def templated(rng: random.Random, count: int, negated_negative_target: float = 1.0,
              negated_verdicts: bool = False, families: Sequence[str] | None = None) -> list[Sentence]:
    """`count` sentences: about five in six from the capability templates (each with its minimal pair where it
    has one, filled with the same words), the rest mentioning identity terms (a filled template once for every
    group of a category, all with the same label). Negated negatives train toward `negated_negative_target`; with
    `negated_verdicts`, each also comes with its `VERDICT_PAIRS`. `families` (None: all): only the template
    families named, and the identity sentences only if "identity" is among them (an ablation of what each family
    teaches). Without `negated_verdicts` and `families`, the sentences of a seed are those of earlier versions."""
    out: list[Sentence] = []
    target = {"pos": 1.0, "neg": 0.0, "not neg": negated_negative_target}
    pool = TEMPLATES if families is None else tuple(t for name in FAMILIES if name in families for t in FAMILIES[name])
    identity = families is None or "identity" in families

    def capability_sentences(until: int) -> None:
        while len(out) < until:
            template, label, twin = rng.choice(pool)
            values = _values(rng)
            out.append((_fill(template, values), int(label != "neg"), target[label]))
            if twin is not None:
                out.append((_fill(twin, values), int(label == "neg"), float(label == "neg")))
            if label == "not neg" and negated_verdicts:  # drawn only here: the stream without it stays as it was
                verdict = {**values, "v": rng.choice(VERDICTS)}
                negated, affirmed = VERDICT_PAIRS[template]
                out.extend([(_fill(negated, verdict), 0, 0.0), (_fill(affirmed, verdict), 1, 1.0)])

    if pool:
        capability_sentences(count - count // 6 if identity else count)
    while identity:  # whole groups only: a group cut short would leave some of its category's terms out
        category, label = rng.choice(CATEGORIES), rng.randrange(2)
        adjective = rng.choice(POSITIVE if label else NEGATIVE)
        text = _fill(rng.choice(IDENTITY_TEMPLATES), _values(rng, adjective))
        if len(out) + len(category.phrases) > count:
            break
        out += [(text.replace("{X}", phrase), label, float(label)) for phrase in category.phrases]
    if pool:
        capability_sentences(count)
    return out[:count]


def _negate(match: re.Match, rng: random.Random) -> str:
    verb, adverb, word = match.groups()
    negated = _CONTRACTED[verb.lower()] if rng.random() < 0.5 else f"{verb} not"
    return f"{negated[0].upper() + negated[1:] if verb[0].isupper() else negated} {adverb}{word}"


def mine(texts: Sequence[str], labels: Sequence[int], rng: random.Random, count: int,
         negated_negative_target: float = 1.0, negated_verdicts: bool = False) -> list[Sentence]:
    """At most `count` sentences from training reviews, each as it is and negated (a minimal pair), every other pair
    also inside a negating frame: one clause, one sentiment word of the pools after a copula, agreeing with its
    review's label, no negation or contrast. As many positive as negative sentences are taken (alternately):
    reviews hold more positive sentences of this kind, and a majority would teach that a short text is positive.
    A negative sentence negated or framed is a negated negative: it trains toward `negated_negative_target`. With
    `negated_verdicts`, only sentences that end at their sentiment word are taken (in "was not lousy and the cast
    was worse" the negation does not make the sentence positive), and a negated negative comes with the same
    negation of a verdict ("was not worth the wait", negative) and the verdict affirmed ("was worth the wait")."""
    found = []
    for text, label in zip(texts, labels, strict=True):
        for sentence in SENTENCE_BREAK.split(text):
            sentence = sentence.strip()
            words = len(sentence.split())
            if not 4 <= words <= 18 or sentence[-1:] not in ".!" or _NEGATORS.search(sentence) \
                    or _CLAUSES.search(sentence) or len(_POOL_WORD.findall(sentence)) != 1:
                continue
            match = _COPULA.search(sentence)
            if match is not None and _POLARITY[match.group(3).lower()] == int(label) and not (
                    negated_verdicts and not _ENDS_AT_WORD.fullmatch(sentence[match.end():])):
                found.append((sentence, match, int(label)))
    rng.shuffle(found)
    balanced = [item for pair in zip(*([f for f in found if f[2] == label] for label in (0, 1)), strict=False)
                for item in pair]
    out: list[Sentence] = []
    for i, (sentence, match, label) in enumerate(balanced):
        if len(out) >= count:
            break
        negated = (1 - label, 0.0 if label else negated_negative_target)
        before, words, after = sentence[:match.start()], _negate(match, rng), sentence[match.end():]
        out += [(sentence, label, float(label)), (before + words + after, *negated)]
        if negated_verdicts and not label:  # drawn only here: the stream without it stays as it was
            verdict, copula = rng.choice(VERDICTS), words[:-len(match.group(2) + match.group(3))]
            out += [(before + copula + verdict + after, 0, 0.0), (f"{before}{match.group(1)} {verdict}{after}", 1, 1.0)]
        if i // 2 % 2:  # both sentences of every other pair: the frames keep the labels' balance too
            clause = sentence if sentence.startswith("I ") else sentence[0].lower() + sentence[1:]
            out.append((rng.choice(FRAMES).format(clause[:-1] + "."), *negated))
    return out[:count]


def targeted_sentences(texts: Sequence[str], labels: Sequence[int], count: int, seed: int = 0,
                       negated_negative_target: float = 1.0, negated_verdicts: bool = False,
                       families: Sequence[str] | None = None, smoothing: float = 0.0) -> list[Sentence]:
    """About `count` sentences for training, half mined from (`texts`, `labels`) and half templated, each with its
    label and the P(positive) training asks of it (the label, but `negated_negative_target` for negated
    negatives; `negated_verdicts`: see `templated`); the same for a seed, whatever the target. `families` (None:
    all; see TARGETED_FAMILIES): only those, all `count` from the mined sentences or from the templates where the
    other is left out. `smoothing` moves every target that much toward the other label (0.1: 1 ->
    0.9, 0 -> 0.1, 0.7 -> 0.66): the direction taught, not certainty about short texts. Give only training reviews:
    nothing of validation or test may reach training."""
    if count < 1:
        raise SentimentError(f"targeted augmentation needs a positive number of sentences, not {count}")
    if not 0.5 <= negated_negative_target <= 1.0:
        raise SentimentError(f"the target of negated negatives is a P(positive) in [0.5, 1] (they are not negative), "
                             f"not {negated_negative_target}")
    if not 0.0 <= smoothing < 0.5:
        raise SentimentError(f"the smoothing of the targets is a share in [0, 0.5), not {smoothing}")
    rng = random.Random(seed)
    mining = families is None or "mined" in families
    templating = families is None or any(name != "mined" for name in families)
    wanted = count // 2 if templating else count
    mined = mine(texts, labels, rng, wanted, negated_negative_target, negated_verdicts) if mining else []
    out = mined + (templated(rng, count - len(mined), negated_negative_target, negated_verdicts, families)
                   if templating else [])
    if smoothing:  # after drawing: a seed's sentences are the same whatever the smoothing
        out = [(text, label, smoothing + (1 - 2 * smoothing) * target) for text, label, target in out]
    log.info("targeted augmentation: %d sentences (%d from training reviews, %d from templates)", len(out),
             len(mined), len(out) - len(mined))
    return out
