"""Counterfactual logit pairing (Garg et al. 2019, "Counterfactual Fairness in Text Classification through
Robustness"): short sentences of the training reviews that mention identity terms, each paired with a copy whose
terms of one category are swapped to another group, and a loss that holds the classifier's logit margin equal
across each pair.

Why a loss and not more labelled copies: a copy with its review's label only asks both texts for a confident
answer, and once both get it the cross-entropy no longer cares how far apart their logits are; on a neutral
sentence the same gap moves P(positive) the most. The pairing asks for the same logits directly, labels or not.
Sentences come from the training reviews only; the swaps are the lexicon's (as in counterfactual augmentation),
in the reviews' own sentences, not in the behavioural suite's or the fairness report's templates.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence

import torch

from sentiment.augment import find_terms, perturb
from sentiment.errors import SentimentError
from sentiment.lexicon import BY_NAME, CATEGORIES
from sentiment.sources import SENTENCE_BREAK
from sentiment.text import Encoder

log = logging.getLogger(__name__)

PAIRS_PER_CATEGORY = 600  # sentences per identity category in the pool, fewer where the reviews have fewer
PAIRS_PER_STEP = 8  # pairs whose gap each training step adds to its loss (16 short texts beside the batch)
MIN_WORDS, MAX_WORDS = 4, 40


def identity_pairs(texts: Sequence[str], seed: int = 0,
                   per_category: int = PAIRS_PER_CATEGORY) -> list[tuple[str, str]]:
    """(sentence, counterfactual) pairs: up to `per_category` sentences of `texts` (MIN_WORDS to MAX_WORDS words)
    per identity category they mention, drawn with `seed`, each with its terms of that category swapped to
    another group drawn with `seed`."""
    rng = random.Random(seed)
    found: dict[str, list[str]] = {c.name: [] for c in CATEGORIES}
    seen: set[str] = set()
    for text in texts:
        for sentence in SENTENCE_BREAK.split(text):
            sentence = sentence.strip()
            if sentence in seen or not MIN_WORDS <= len(sentence.split()) <= MAX_WORDS:
                continue
            seen.add(sentence)
            for name in find_terms(sentence):
                found[name].append(sentence)
    pairs = []
    for name, sentences in found.items():
        category = BY_NAME[name]
        for sentence in rng.sample(sentences, min(per_category, len(sentences))):
            options = [v for v in (perturb(sentence, category, g) for g in range(len(category.groups)))
                       if v != sentence]
            if options:
                pairs.append((sentence, rng.choice(options)))
    log.info("identity consistency: %d sentence pairs (%s)", len(pairs),
             ", ".join(f"{name} {min(per_category, len(s))}" for name, s in found.items()))
    return pairs


def encoded_identity_pairs(texts: Sequence[str], encoder: Encoder, seed: int = 0) -> list[tuple[list[int], list[int]]]:
    """`identity_pairs` of the training reviews, both sides encoded; an error where the data has none."""
    pairs = identity_pairs(texts, seed)
    if not pairs:
        raise SentimentError("--identity-consistency: no sentence of the training reviews mentions an identity term "
                             "of the lexicon, so there is nothing to pair; leave the flag out for this data")
    return list(zip(encoder.encode([a for a, _ in pairs]), encoder.encode([b for _, b in pairs]), strict=True))


def margin_gap(logits: torch.Tensor) -> torch.Tensor:
    """Per pair, the difference of the logit margins (positive minus negative) of its two texts; `logits` (2k, 2)
    holds the k first texts, then their k counterparts."""
    margin = logits[:, 1].float() - logits[:, 0].float()
    half = len(margin) // 2
    return margin[:half] - margin[half:]
