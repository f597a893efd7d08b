"""Integrated-gradients explanations (Captum) of a prediction, merged from word pieces back into words."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from captum.attr import LayerIntegratedGradients

from sentiment import runtime
from sentiment.config import DEFAULT_IG_STEPS, ID2LABEL
from sentiment.modeling import attention as attention_kernel
from sentiment.modeling import first_position_logits, takes_first_position_path
from sentiment.predict import Predictor, check_text
from sentiment.text import truncate


@dataclass
class Explanation:
    """A prediction with per-word attributions toward the positive class (negative values: toward negative)."""

    label: str
    probabilities: dict[str, float]
    segments: list[tuple[str, float | None]]  # the whole text in order; None where no word was seen
    words: list[tuple[str, float]]  # the words the model saw, with their summed attribution
    delta: float  # IG's convergence delta: completeness error in logit-margin units
    margin_change: float  # margin(input) - margin(baseline), what the attributions should sum to
    n_tokens: int  # word pieces in the whole text
    n_seen: int  # word pieces the model saw (after head+tail truncation)
    truncated: bool = field(default=False)

    @property
    def relative_delta(self) -> float:
        return abs(self.delta) / max(abs(self.margin_change), 1e-6)

    def top_words(self, k: int = 8) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
        """The k words pushing most toward positive and toward negative: attributions summed over every
        occurrence of a word (case-insensitive); punctuation left out."""
        totals: dict[str, float] = {}
        for word, score in self.words:
            if any(ch.isalnum() for ch in word):
                totals[word.lower()] = totals.get(word.lower(), 0.0) + score
        ranked = sorted(totals.items(), key=lambda w: w[1])
        return [w for w in reversed(ranked) if w[1] > 0][:k], [w for w in ranked if w[1] < 0][:k]


APOSTROPHES = ("'", "\u2019")


def join_contractions(text: str, offsets: list[tuple[int, int]], word_ids: list[int | None]) -> list[int | None]:
    """Word ids with contractions made one word: BERT's pre-tokenizer cuts "didn't" into didn ' t, and a lone "t"
    tells a reader (or the error analysis, which adds attributions up per word) nothing. An apostrophe that touches
    a letter on both sides joins its neighbours into the word on its left."""
    spans: dict[int, list[int]] = {}
    for word, (start, end) in zip(word_ids, offsets, strict=True):
        if word is not None and end > start:
            span = spans.setdefault(word, [start, end])
            span[0], span[1] = min(span[0], start), max(span[1], end)
    order = sorted(spans, key=lambda w: spans[w][0])
    parent = {word: word for word in order}
    for left, mark, right in zip(order, order[1:], order[2:], strict=False):
        (_, left_end), (mark_start, mark_end), (right_start, _) = spans[left], spans[mark], spans[right]
        if (text[mark_start:mark_end] in APOSTROPHES and left_end == mark_start and mark_end == right_start
                and text[left_end - 1].isalpha() and text[right_start].isalpha()):
            parent[mark] = parent[right] = parent[left]
    return [None if word is None else parent.get(word, word) for word in word_ids]


def merge_words(text: str, offsets: list[tuple[int, int]], word_ids: list[int | None], kept: set[int],
                scores: dict[int, float]) -> tuple[list[tuple[str, float | None]], list[tuple[str, float]]]:
    """Sum word-piece scores per word and cut the text into segments covering all of it.

    `offsets`/`word_ids` describe every word piece of `text`; `kept` are the indices the model saw and `scores`
    their attributions. Words the model did not see, and the gaps between words, get None. Contractions are one
    word (`join_contractions`).
    """
    word_ids = join_contractions(text, offsets, word_ids)
    spans: dict[int, list] = {}
    for index, (word, (start, end)) in enumerate(zip(word_ids, offsets, strict=True)):
        if word is None or end <= start:
            continue
        span = spans.setdefault(word, [start, end, 0.0, False])
        span[0], span[1] = min(span[0], start), max(span[1], end)
        if index in kept:
            span[2] += scores.get(index, 0.0)
            span[3] = True
    segments: list[tuple[str, float | None]] = []
    words: list[tuple[str, float]] = []
    cursor = 0
    for start, end, score, seen in sorted(spans.values()):
        if start > cursor:
            segments.append((text[cursor:start], None))
        segments.append((text[start:end], score if seen else None))
        if seen:
            words.append((text[start:end], score))
        cursor = end
    if cursor < len(text):
        segments.append((text[cursor:], None))
    return segments, words


class Explainer:
    """Layer integrated gradients on the input embeddings of a Predictor's model, made once and reused.

    The baseline keeps [CLS] and [SEP] and replaces every other token by [PAD]; the attributed output is the
    logit margin (positive minus negative), so attributions add up to the change of that margin.
    """

    def __init__(self, predictor: Predictor, n_steps: int = DEFAULT_IG_STEPS, tokens_per_batch: int = 8192,
                 attention: str | None = None) -> None:
        self.predictor = predictor
        self.model = predictor.model
        # The attention implementation IG runs on (prediction keeps its own): by default the faster one here.
        self.attention = attention or runtime.explain_attention(predictor.device, predictor.precision,
                                                                self.model.config._attn_implementation)
        self.n_steps = n_steps
        self.tokens_per_batch = tokens_per_batch
        self._ig = LayerIntegratedGradients(self._margin, self.model.get_input_embeddings())

    def _logits(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Logits (batch, labels) of unpadded ids: BERT skips the last layer's rows its pooler does not read."""
        if takes_first_position_path(self.model):
            return first_position_logits(self.model, input_ids=input_ids).float()
        return self.model(input_ids=input_ids).logits.float()

    def _margin(self, input_ids: torch.Tensor) -> torch.Tensor:
        logits = self._logits(input_ids)
        return logits[:, 1] - logits[:, 0]

    def _pieces(self, text: str):
        tokenizer = self.predictor.encoder.tokenizer
        encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        encoder = self.predictor.encoder
        kept = truncate(range(len(encoding["input_ids"])), encoder.max_length - 2, encoder.truncation,
                        encoder.head_ratio)
        return encoding, kept

    def explain(self, text: str, n_steps: int | None = None) -> Explanation:
        check_text(text)
        encoding, kept = self._pieces(text)
        tokenizer = self.predictor.encoder.tokenizer
        ids = [tokenizer.cls_token_id, *(encoding["input_ids"][i] for i in kept), tokenizer.sep_token_id]
        device = self.predictor.device
        input_ids = torch.tensor([ids], device=device)
        baseline = torch.full_like(input_ids, self.predictor.encoder.pad_token_id)
        baseline[0, 0], baseline[0, -1] = ids[0], ids[-1]
        steps = n_steps or self.n_steps
        with self.predictor.lock, attention_kernel(self.model, self.attention):
            # The convergence delta is computed below from the forward pass the prediction needs anyway: Captum's
            # return_convergence_delta would run the same input and baseline through the model a second time.
            attributions = self._ig.attribute(
                input_ids, baselines=baseline, n_steps=steps,
                internal_batch_size=max(1, self.tokens_per_batch // len(ids)))
            with torch.inference_mode():  # input and baseline in one batch: (2, num_labels)
                both = self._logits(torch.cat([input_ids, baseline]))
                logits, base_logits = both[:1], both[1:]
        per_token = attributions.float().sum(-1)[0, 1:-1].tolist()  # (seen pieces,) without [CLS]/[SEP]
        segments, words = merge_words(text, encoding["offset_mapping"], encoding.word_ids(), set(kept),
                                      dict(zip(kept, per_token, strict=True)))
        probs = torch.softmax(logits[0], -1).tolist()
        margin = float(logits[0, 1] - logits[0, 0])
        base_margin = float(base_logits[0, 1] - base_logits[0, 0])
        # Captum's definition: the attributions' total (every position) minus the margin change they explain
        delta = float(attributions.double().sum()) - (margin - base_margin)
        return Explanation(label=ID2LABEL[int(probs[1] >= 0.5)], probabilities={ID2LABEL[0]: probs[0],
                           ID2LABEL[1]: probs[1]}, segments=segments, words=words, delta=delta,
                           margin_change=margin - base_margin, n_tokens=len(encoding["input_ids"]),
                           n_seen=len(kept), truncated=len(kept) < len(encoding["input_ids"]))
