"""Truncation keeps head and tail; the encoder frames every review with [CLS]/[SEP]; batches cover and pad little."""

from __future__ import annotations

import numpy as np
import pytest

from sentiment.errors import SentimentError
from sentiment.text import Encoder, length_grouped_batches, pad_batch, token_budget_batches, truncate

# --- truncate --------------------------------------------------------------------------------------------------


def test_head_tail_at_510_keeps_first_128_and_last_382():
    ids = list(range(1000))
    kept = truncate(ids, 510, "head+tail", head_ratio=0.25)
    assert len(kept) == 510
    assert kept[:128] == list(range(128))
    assert kept[128:] == list(range(1000 - 382, 1000))


@pytest.mark.parametrize(("strategy", "expected"), [
    ("head", list(range(10))),
    ("tail", list(range(90, 100))),
    ("head+tail", [0, 1] + list(range(92, 100))),
])
def test_strategies(strategy, expected):
    assert truncate(range(100), 10, strategy, head_ratio=0.25) == expected


@pytest.mark.parametrize("head_ratio", [0.0, 1.0])
def test_head_ratio_extremes_are_pure_tail_or_head(head_ratio):
    kept = truncate(range(100), 10, "head+tail", head_ratio=head_ratio)
    assert kept == (list(range(90, 100)) if head_ratio == 0.0 else list(range(10)))


@pytest.mark.parametrize("strategy", ["head", "tail", "head+tail"])
@pytest.mark.parametrize("n", [0, 1, 9, 10])
def test_short_inputs_are_untouched(strategy, n):
    assert truncate(list(range(n)), 10, strategy) == list(range(n))


def test_unknown_strategy_is_an_error():
    with pytest.raises(SentimentError, match="middle"):
        truncate(range(20), 10, "middle")


# --- Encoder ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["head", "tail", "head+tail"])
def test_encoder_frames_and_truncates_the_fixture_reviews(tokenizer, reviews, strategy):
    encoder = Encoder(tokenizer, max_length=64, truncation=strategy, head_ratio=0.25)
    texts = reviews["text"].tolist()
    encoded = encoder.encode(texts, batch_size=7)  # several tokenizer chunks
    assert len(encoded) == len(texts)
    lengths = []
    for text, ids in zip(texts, encoded, strict=True):
        assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
        assert len(ids) <= 64
        pieces = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert ids[1:-1] == truncate(pieces, 62, strategy, 0.25)
        lengths.append(len(pieces))
    assert min(lengths) <= 62 < max(lengths)  # the fixture has reviews that fit and reviews that are cut


def test_encoder_keeps_both_ends_of_a_long_review(tokenizer):
    text = "opening words. " + "filler " * 600 + "closing verdict: wonderful"
    ids = Encoder(tokenizer, max_length=128, truncation="head+tail").encode([text])[0]
    decoded = tokenizer.decode(ids)
    assert decoded.startswith("[CLS] opening words.")
    assert decoded.endswith("closing verdict : wonderful [SEP]")
    assert len(ids) == 128


def test_encoder_leaves_a_short_review_as_the_tokenizer_has_it(tokenizer):
    text = "A short, sweet film."
    assert Encoder(tokenizer, max_length=512).encode([text])[0] == tokenizer(text)["input_ids"]


# --- batching --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lengths() -> list[int]:
    return np.random.default_rng(0).integers(20, 512, size=1000).tolist()


def padding(batches: list[list[int]], lengths: list[int]) -> int:
    return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)


def test_length_grouped_batches_cover_every_index_once(lengths):
    batches = length_grouped_batches(lengths, batch_size=16, seed=1)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(1 <= len(b) <= 16 for b in batches)
    assert sum(len(b) == 16 for b in batches) >= len(batches) - 2  # one short batch per megabatch at most


def test_length_grouped_batches_are_reproducible_per_seed(lengths):
    assert length_grouped_batches(lengths, 16, seed=1) == length_grouped_batches(lengths, 16, seed=1)
    assert length_grouped_batches(lengths, 16, seed=1) != length_grouped_batches(lengths, 16, seed=2)


def test_length_grouped_batches_pad_far_less_than_random_ones(lengths):
    grouped = length_grouped_batches(lengths, batch_size=16, seed=1)
    order = np.random.default_rng(1).permutation(len(lengths)).tolist()
    random = [order[i:i + 16] for i in range(0, len(order), 16)]
    assert padding(grouped, lengths) < padding(random, lengths) / 10


def test_length_grouped_batches_are_not_sorted_by_length(lengths):
    """Batch order is shuffled, so SGD does not see all long reviews first."""
    longest = [max(lengths[i] for i in b) for b in length_grouped_batches(lengths, 16, seed=1)]
    assert longest != sorted(longest, reverse=True) and longest != sorted(longest)


@pytest.mark.parametrize(("budget", "multiple"), [(4096, 1), (4096, 64), (1000, 16)])
def test_token_budget_batches_respect_the_budget(lengths, budget, multiple):
    batches = list(token_budget_batches(lengths, budget, multiple))
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        width = -(-max(lengths[i] for i in batch) // multiple) * multiple
        assert len(batch) * width <= budget


def test_token_budget_batches_put_an_oversized_example_alone():
    batches = list(token_budget_batches([10, 500, 20], tokens_per_batch=100))
    assert batches[0] == [1]
    assert sorted(i for b in batches for i in b) == [0, 1, 2]


def test_pad_batch_shapes_mask_and_padding():
    sequences = [[101, 5, 6, 102], [101, 7, 102], [101, 102]]
    batch = pad_batch(sequences, pad_token_id=0, multiple_of=8)
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (3, 8)
    assert batch["attention_mask"].sum(dim=1).tolist() == [4, 3, 2]
    for row, seq in enumerate(sequences):
        assert batch["input_ids"][row, :len(seq)].tolist() == seq
        assert batch["input_ids"][row, len(seq):].tolist() == [0] * (8 - len(seq))
        assert batch["attention_mask"][row, len(seq):].sum() == 0


@pytest.mark.parametrize(("longest", "multiple", "width"), [(4, 1, 4), (4, 4, 4), (5, 4, 8), (65, 64, 128)])
def test_pad_batch_rounds_width_up_to_the_multiple(longest, multiple, width):
    assert pad_batch([[1] * longest, [1]], pad_token_id=0, multiple_of=multiple)["input_ids"].shape[1] == width
