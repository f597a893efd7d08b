"""Tokenisation with head/tail truncation, length-grouped batches with little padding, and a split's encoded
reviews."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from transformers import PreTrainedTokenizerBase

from sentiment.errors import SentimentError


def truncate(ids: Sequence[int], budget: int, strategy: str = "head+tail", head_ratio: float = 0.25) -> list[int]:
    """Keep at most `budget` ids: the first ones (head), the last ones (tail), or both (Sun et al. 2019)."""
    ids = list(ids)
    if len(ids) <= budget:
        return ids
    if strategy == "head":
        return ids[:budget]
    if strategy == "tail":
        return ids[len(ids) - budget:]
    if strategy != "head+tail":
        raise SentimentError(f"truncation must be head, tail or head+tail, not {strategy!r}")
    head = round(budget * head_ratio)
    return ids[:head] + ids[len(ids) - (budget - head):]


class Encoder:
    """Turns review text into model inputs exactly as training saw them."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, max_length: int = 512, truncation: str = "head+tail",
                 head_ratio: float = 0.25) -> None:
        if tokenizer.cls_token_id is None or tokenizer.sep_token_id is None:
            raise SentimentError("the tokenizer has no [CLS]/[SEP] tokens; use a BERT-family model")
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.truncation = truncation
        self.head_ratio = head_ratio

    @property
    def pad_token_id(self) -> int:
        return int(self.tokenizer.pad_token_id or 0)

    def encode(self, texts: Sequence[str], batch_size: int = 1000) -> list[list[int]]:
        """[CLS] + truncated word pieces + [SEP] per text; batched through the fast tokenizer."""
        return self.encode_with_lengths(texts, batch_size)[0]

    def encode_with_lengths(self, texts: Sequence[str], batch_size: int = 1000) -> tuple[list[list[int]], np.ndarray]:
        """`encode`, and each text's length in word pieces before truncation ([CLS] and [SEP] included)."""
        budget = self.max_length - 2
        cls_id, sep_id = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
        encoded, lengths = [], []
        for start in range(0, len(texts), batch_size):
            chunk = list(texts[start:start + batch_size])
            pieces = self.tokenizer(chunk, add_special_tokens=False, truncation=False, return_attention_mask=False,
                                    verbose=False)["input_ids"]
            encoded.extend([cls_id, *truncate(p, budget, self.truncation, self.head_ratio), sep_id] for p in pieces)
            lengths.extend(len(p) + 2 for p in pieces)
        return encoded, np.asarray(lengths, dtype=np.int64)


def pad_batch(sequences: Sequence[Sequence[int]], pad_token_id: int, multiple_of: int = 1) -> dict[str, torch.Tensor]:
    """Right-pad to the longest sequence, rounded up to `multiple_of`; returns input_ids and attention_mask."""
    longest = max(len(s) for s in sequences)
    width = -(-longest // multiple_of) * multiple_of
    input_ids = torch.full((len(sequences), width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        input_ids[row, :len(seq)] = torch.as_tensor(seq, dtype=torch.long)
        attention_mask[row, :len(seq)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def length_grouped_batches(lengths: Sequence[int], batch_size: int, seed: int,
                           mega_factor: int = 50) -> list[list[int]]:
    """Shuffled batches of similar-length examples (like HF's LengthGroupedSampler), reproducible from `seed`.

    Examples are shuffled, cut into megabatches of `mega_factor` batches, sorted by length within each, then
    cut into batches whose order is shuffled again: random enough for SGD, with almost no padding.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    lengths = np.asarray(lengths)
    mega = batch_size * mega_factor
    batches = []
    for start in range(0, len(order), mega):
        chunk = order[start:start + mega]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches.extend(chunk[i:i + batch_size].tolist() for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def token_budget_batches(lengths: Sequence[int], tokens_per_batch: int, multiple_of: int = 1) -> Iterator[list[int]]:
    """Inference batches in descending length, each filling `tokens_per_batch` padded tokens at most."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    batch: list[int] = []
    width = 0
    for index in order.tolist():
        if not batch:
            width = -(-lengths[index] // multiple_of) * multiple_of
        if batch and (len(batch) + 1) * width > tokens_per_batch:
            yield batch
            batch, width = [], -(-lengths[index] // multiple_of) * multiple_of
        batch.append(index)
    if batch:
        yield batch


@dataclass
class EncodedSplit:
    """Token ids of one training-time split (already truncated, with [CLS]/[SEP]), their labels, and the
    P(positive) each trains toward where some differ from the label (soft targets; None: the labels)."""

    input_ids: list[list[int]]
    labels: np.ndarray
    targets: np.ndarray | None = None

    @classmethod
    def build(cls, frame: pd.DataFrame, encoder: Encoder) -> EncodedSplit:
        targets = frame["target"].to_numpy(dtype=np.float32) if "target" in frame else None
        return cls(encoder.encode(frame["text"].tolist()), frame["labels"].to_numpy(), targets)
