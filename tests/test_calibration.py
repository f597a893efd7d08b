"""Temperature scaling: fitting recovers a known T, folding divides the logits by T, and a plain transformers
pipeline on the saved folded model reads the calibrated probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.special import softmax
from torch import nn
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    BertTokenizerFast,
    RobertaConfig,
    RobertaForSequenceClassification,
    pipeline,
)

from sentiment.calibration import calibration_summary, fit_temperature, fold_temperature
from sentiment.errors import SentimentError

ID2LABEL = {0: "negative", 1: "positive"}
LABEL2ID = {"negative": 0, "positive": 1}
WORDS = ("the a an this that film movie story plot actor acting was is were very really not great good fine "
         "bad awful boring funny dull loved hated it and but i").split()
SENTENCES = ["the film was great", "this movie is awful and boring", "i loved it", "not good but not bad"]


def _tiny_bert() -> BertForSequenceClassification:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, num_labels=2, id2label=ID2LABEL, label2id=LABEL2ID)
    return BertForSequenceClassification(config).eval()


def _sampled(n: int, scale: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits z (n, 2) and labels drawn from softmax(z): z is calibrated by construction."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=scale, size=(n, 2))
    labels = (rng.random(n) < softmax(z, axis=1)[:, 1]).astype(np.int64)
    return z, labels


def test_fit_recovers_a_known_temperature() -> None:
    z, labels = _sampled(20_000, scale=1.5)
    assert fit_temperature(z * 3.0, labels) == pytest.approx(3.0, rel=0.10)
    assert fit_temperature(z * 3.0, labels) == fit_temperature(z * 3.0, labels)  # deterministic


@pytest.mark.parametrize("factor, overconfident", [(3.0, True), (1 / 3, False)])
def test_temperature_direction_and_nll_improves(factor: float, overconfident: bool) -> None:
    z, labels = _sampled(5_000, scale=1.5, seed=1)
    temperature = fit_temperature(z * factor, labels)
    assert (temperature > 1.0) == overconfident
    summary = calibration_summary(z * factor, labels, temperature)
    assert summary["n"] == 5_000 and summary["temperature"] == temperature
    assert summary["after"]["log_loss"] <= summary["before"]["log_loss"]
    assert summary["after"]["ece"] < summary["before"]["ece"]
    assert set(summary["before"]) == set(summary["after"]) == {"log_loss", "ece", "bins"}
    assert sum(summary["after"]["bins"]["count"]) == 5_000


def test_fold_divides_logits_by_temperature() -> None:
    model = _tiny_bert()
    inputs = {"input_ids": torch.randint(5, 100, (3, 7)), "attention_mask": torch.ones(3, 7, dtype=torch.long)}
    with torch.no_grad():
        before = model(**inputs).logits
        fold_temperature(model, 2.5)
        after = model(**inputs).logits
    assert model.classifier.weight.dtype == torch.float32
    assert torch.allclose(after, before / 2.5, atol=1e-6)


def test_fold_reaches_a_roberta_head() -> None:
    torch.manual_seed(0)
    config = RobertaConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=64, num_labels=2, id2label=ID2LABEL, label2id=LABEL2ID)
    model = RobertaForSequenceClassification(config).eval()
    inputs = {"input_ids": torch.randint(5, 100, (2, 6))}
    with torch.no_grad():
        before = model(**inputs).logits
        fold_temperature(model, 0.5)
        after = model(**inputs).logits
    assert torch.allclose(after, before / 0.5, atol=1e-5)


def test_pipeline_on_saved_folded_model_gives_calibrated_scores(tmp_path: Path) -> None:
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    tokenizer = BertTokenizerFast.from_pretrained(tmp_path)
    model, temperature = _tiny_bert(), 1.7
    with torch.no_grad():
        # One sentence at a time, as the pipeline runs them, so padding plays no part.
        original = np.stack([model(**tokenizer(s, return_tensors="pt")).logits[0].numpy() for s in SENTENCES])
    fold_temperature(model, temperature)
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)

    classify = pipeline("text-classification", model=str(folder), tokenizer=str(folder), top_k=None, device="cpu")
    served = [{row["label"]: row["score"] for row in rows}["positive"] for rows in classify(SENTENCES)]
    expected = softmax(original.astype(np.float64) / temperature, axis=1)[:, 1]
    np.testing.assert_allclose(served, expected, atol=1e-5)


GOOD_LOGITS, GOOD_LABELS = np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([1, 0])


@pytest.mark.parametrize("logits, labels", [
    (np.zeros((0, 2)), np.zeros(0, dtype=int)),           # empty
    (GOOD_LOGITS, np.array([1, 0, 1])),                    # one label too many
    (np.zeros((2, 3)), GOOD_LABELS),                       # three classes
    (np.zeros(2), GOOD_LABELS),                            # 1-D logits
    (GOOD_LOGITS, np.array([1, 1])),                       # a single class
    (GOOD_LOGITS, np.array([1, 2])),                       # not a 0/1 label
    (np.array([[0.0, np.nan], [1.0, 0.0]]), GOOD_LABELS),  # non-finite
    (np.array([[0.0, np.inf], [1.0, 0.0]]), GOOD_LABELS),
])
def test_bad_input_to_fit_and_summary(logits: np.ndarray, labels: np.ndarray) -> None:
    with pytest.raises(SentimentError):
        fit_temperature(logits, labels)
    with pytest.raises(SentimentError):
        calibration_summary(logits, labels, 1.0)


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_temperature(temperature: float) -> None:
    with pytest.raises(SentimentError):
        fold_temperature(_tiny_bert(), temperature)
    with pytest.raises(SentimentError):
        calibration_summary(GOOD_LOGITS, GOOD_LABELS, temperature)


class _MlpHead(nn.Module):
    """A head whose last layer is not a Linear: folding T into it would not scale the logits."""

    def __init__(self) -> None:
        super().__init__()
        self.classifier = nn.Sequential(nn.Linear(4, 2), nn.Tanh())


def test_fold_refuses_an_unknown_head() -> None:
    with pytest.raises(SentimentError, match="single Linear"):
        fold_temperature(_MlpHead(), 2.0)
    with pytest.raises(SentimentError, match="single Linear"):
        fold_temperature(nn.Linear(4, 2), 2.0)
