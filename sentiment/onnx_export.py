"""The trained classifier as an int8 ONNX graph (`sentiment.engine` verifies, keeps and runs it): exported with
torch.onnx's dynamo exporter from the word embeddings on, fused by ONNX Runtime's transformer optimizer (attention,
layer norm, GELU) and quantised dynamically to int8, weights per channel."""

from __future__ import annotations

import copy
import logging
import math
import tempfile
from pathlib import Path

import torch
from transformers import PreTrainedModel

from sentiment.modeling import first_position_logits, takes_first_position_path

log = logging.getLogger(__name__)

OPSET = 18

UNMASKED_ATTENTION = "sentiment_unmasked"  # the attention the graph is exported with (see `_unmasked_attention`)


def _unmasked_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """softmax(QK^T / sqrt(d)) V with no mask: the engine runs one unpadded review at a time, so every position is
    real. Written in the plain form ONNX Runtime's optimizer fuses into one Attention node (quantised as QAttention,
    the three projections one int8 matrix product); transformers' own eager attention scales by a product and adds
    a mask built in a form the optimizer does not match, which left each layer three int8 projections and two float
    matrix products, with their reshapes and transposes, as separate nodes."""
    if attention_mask is not None:
        raise ValueError("the int8 engine's attention takes no mask: it runs one unpadded review at a time")
    if scaling is not None and not math.isclose(scaling, query.size(-1) ** -0.5, rel_tol=1e-6):
        # the fused node scales by 1/sqrt(head size), as BERT does; a model that scales otherwise is not exported
        raise ValueError(f"the int8 engine's attention scales by 1/sqrt(head size), this model by {scaling}")
    scores = torch.matmul(query, key.transpose(2, 3)) / math.sqrt(query.size(-1))
    weights = torch.softmax(scores, dim=-1)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


class _FromEmbeddings(torch.nn.Module):
    """The classifier from word embeddings on: position and type embeddings, encoder, head."""

    def __init__(self, model: PreTrainedModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs_embeds: torch.Tensor) -> torch.Tensor:
        return self.model(inputs_embeds=inputs_embeds).logits


class _BertFromEmbeddings(_FromEmbeddings):
    """The same for BERT, with the last layer at the first position only, the one row the pooler reads
    (`modeling.first_position_logits`)."""

    def forward(self, inputs_embeds: torch.Tensor) -> torch.Tensor:
        return first_position_logits(self.model, inputs_embeds=inputs_embeds)


def _exportable(model: PreTrainedModel) -> _FromEmbeddings:
    """The graph to export: BERT's sequence classifier with its shortcut, any other model whole."""
    return (_BertFromEmbeddings if takes_first_position_path(model) else _FromEmbeddings)(model)


def export_int8(model: PreTrainedModel, path: Path) -> None:
    """Write the int8 ONNX graph of `model` (left as it was) to `path`."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AttentionInterface

    AttentionInterface.register(UNMASKED_ATTENTION, _unmasked_attention)
    fp32 = copy.deepcopy(model).to(device="cpu", dtype=torch.float32).eval()
    fp32.set_attn_implementation(UNMASKED_ATTENTION)
    config = fp32.config
    graph = _exportable(fp32).eval()
    # BERT's last layer is written out at one position, which the optimizer does not fuse (nor need to)
    fusible = config.num_hidden_layers - (1 if isinstance(graph, _BertFromEmbeddings) else 0)
    batch, length = torch.export.Dim("batch"), torch.export.Dim("length", max=config.max_position_embeddings)
    with tempfile.TemporaryDirectory() as tmp:
        exported, fused = Path(tmp) / "fp32.onnx", Path(tmp) / "fused.onnx"
        torch.onnx.export(graph, (torch.randn(2, 16, config.hidden_size),), exported,
                          input_names=["inputs_embeds"], output_names=["logits"], opset_version=OPSET, dynamo=True,
                          external_data=False, dynamic_shapes={"inputs_embeds": {0: batch, 1: length}})
        optimized = optimize_model(str(exported), model_type="bert", num_heads=config.num_attention_heads,
                                   hidden_size=config.hidden_size)
        fusions = optimized.get_fused_operator_statistics()
        if fusions.get("Attention", 0) != fusible:  # a new exporter or optimizer: say so, still valid
            log.warning("int8 engine: ONNX Runtime fused %d of %d attention layers; the engine is slower, not wrong",
                        fusions.get("Attention", 0), fusible)
        optimized.save_model_to_file(str(fused))
        previous = logging.root.manager.disable
        logging.disable(logging.INFO)  # the quantiser logs a line per tensor to the root logger
        try:
            quantize_dynamic(fused, path, weight_type=QuantType.QInt8, per_channel=True)
        finally:
            logging.disable(previous)
