"""Identity consistency (counterfactual logit pairing): the sentence pairs it trains on and the gap it measures
(what `--identity-consistency` does to a run is in test_training.py)."""

from __future__ import annotations

import pytest
import torch

from sentiment.augment import find_terms, perturb
from sentiment.config import TrainConfig
from sentiment.consistency import MAX_WORDS, MIN_WORDS, identity_pairs, margin_gap
from sentiment.errors import SentimentError
from sentiment.lexicon import BY_NAME
from sentiment.sources import SENTENCE_BREAK

TEXTS = ["She was wonderful as the lead. The film drags in its second hour. A Muslim family moves to Ohio.",
         "It is too short.<br /><br />The priest at the church is played by a young actor with real charm.",
         "My dad loved it, and so did my mom, who rarely watches anything made after 1960 at all.",
         "John and Mary argue for the whole film! Nothing here mentions anyone."]


def test_every_pair_is_a_sentence_of_the_texts_and_its_swap_within_one_category():
    pairs = identity_pairs(TEXTS, seed=1)
    sentences = {s.strip() for text in TEXTS for s in SENTENCE_BREAK.split(text)}
    assert len(pairs) >= 5
    for first, second in pairs:
        assert first in sentences and first != second
        assert MIN_WORDS <= len(first.split()) <= MAX_WORDS
        assert any(second == perturb(first, BY_NAME[name], g)
                   for name in find_terms(first) for g in range(len(BY_NAME[name].groups)))
    assert "It is too short." not in {first for first, _ in pairs}  # under MIN_WORDS, and no identity term


def test_pairs_are_drawn_with_the_seed_and_capped_per_category():
    texts = [f"The {n}th film about a Christian priest in a small town." for n in range(50)]
    assert identity_pairs(texts, seed=3) == identity_pairs(texts, seed=3)
    assert identity_pairs(texts, seed=3) != identity_pairs(texts, seed=4)
    capped = identity_pairs(texts, seed=3, per_category=7)
    assert len(capped) == 7 and {s for s, _ in capped} <= set(texts)


def test_margin_gap_is_the_difference_of_each_pairs_logit_margins():
    logits = torch.tensor([[0.0, 2.0], [1.0, 1.0], [0.5, 1.5], [3.0, 0.0]])  # margins 2, 0 | 1, -3
    assert margin_gap(logits).tolist() == [1.0, 3.0]


def test_a_negative_weight_is_refused():
    with pytest.raises(SentimentError, match="--identity-consistency: must be at least 0, not -0.5"):
        TrainConfig(data="d", identity_consistency=-0.5)
