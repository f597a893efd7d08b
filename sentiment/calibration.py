"""Temperature scaling: fit one T on validation logits, then fold it into the classifier so every consumer of the
saved folder (our Predictor, a plain `transformers.pipeline`) reads calibrated probabilities without knowing T."""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from torch import nn

from sentiment.errors import SentimentError
from sentiment.evaluation import calibration

log = logging.getLogger(__name__)

# Bounds on T: beyond them the validation set is telling us the model is broken, not miscalibrated.
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.05, 20.0


def _check(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels)
    if logits.ndim != 2 or logits.shape[1] != 2 or logits.shape[0] == 0:
        raise SentimentError(f"temperature scaling needs logits of shape (n, 2) with n > 0, got {logits.shape}")
    if labels.shape != (logits.shape[0],):
        raise SentimentError(f"labels {labels.shape} must be 1-D with one label per row of logits {logits.shape}")
    if not np.isfinite(logits).all():
        raise SentimentError("logits contain NaN or infinity; check the model's outputs before calibrating")
    if not np.isin(labels, (0, 1)).all() or len(np.unique(labels)) < 2:
        raise SentimentError("temperature scaling needs labels 0 and 1, both present in the validation set")
    return logits, labels.astype(np.int64)


def _nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of softmax(logits / T), computed in log space so it never overflows."""
    log_probs = log_softmax(logits / temperature, axis=1)
    return float(-log_probs[np.arange(len(labels)), labels].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 that minimises the validation NLL of softmax(logits / T); logits (n, 2), labels (n,) in {0, 1}."""
    logits, labels = _check(logits, labels)
    # log T makes the search scale-free (T = 0.5 and T = 2 are equally far from 1) and keeps T positive.
    result = minimize_scalar(lambda log_t: _nll(logits, labels, math.exp(log_t)), method="bounded",
                             bounds=(math.log(MIN_TEMPERATURE), math.log(MAX_TEMPERATURE)),
                             options={"xatol": 1e-6})
    temperature = float(math.exp(result.x))
    log.info("temperature %.4f: validation NLL %.4f -> %.4f on %d examples", temperature,
             _nll(logits, labels, 1.0), _nll(logits, labels, temperature), len(labels))
    return temperature


def _final_linear(model: nn.Module) -> nn.Linear:
    """The layer whose outputs are the logits: BERT-style `classifier`, RoBERTa-style `classifier.out_proj`,
    or decoder-style `score`. Anything else is refused rather than guessed at, since dividing the wrong layer
    by T would silently miscalibrate the model."""
    head = getattr(model, "classifier", None)
    if head is None:
        head = getattr(model, "score", None)
    if isinstance(head, nn.Module) and not isinstance(head, nn.Linear):
        head = getattr(head, "out_proj", None)
    if not isinstance(head, nn.Linear):
        raise SentimentError(f"cannot fold a temperature into {type(model).__name__}: its classification head does "
                             f"not end in a single Linear layer (classifier, classifier.out_proj or score)")
    num_labels = getattr(getattr(model, "config", None), "num_labels", head.out_features)
    if head.out_features != num_labels:
        raise SentimentError(f"the final layer of {type(model).__name__} has {head.out_features} outputs but the "
                             f"model has {num_labels} labels; it is not the logits layer")
    return head


def fold_temperature(model: nn.Module, temperature: float) -> None:
    """Divide the final classification layer's weight and bias by T in place, so the model's logits become
    logits / T. The caller records T (e.g. in the saved folder's metadata); nothing is stored here."""
    if not (math.isfinite(temperature) and temperature > 0):
        raise SentimentError(f"temperature must be a finite number > 0, got {temperature}")
    layer = _final_linear(model)
    with torch.no_grad():
        for param in (layer.weight, layer.bias):
            if param is not None:
                # Divide in float32 then cast back, so a bf16/fp16 layer loses no more than one rounding.
                param.copy_((param.float() / temperature).to(param.dtype))


def calibration_summary(logits: np.ndarray, labels: np.ndarray, temperature: float) -> dict:
    """NLL, ECE and reliability-diagram bins before (T = 1) and after temperature scaling, for the dashboard."""
    logits, labels = _check(logits, labels)
    if not (math.isfinite(temperature) and temperature > 0):
        raise SentimentError(f"temperature must be a finite number > 0, got {temperature}")

    def stats(t: float) -> dict:
        positive = softmax(logits / t, axis=1)[:, 1]
        reliability = calibration(labels, positive)
        return {"log_loss": _nll(logits, labels, t), "ece": reliability["ece"], "bins": reliability["bins"]}

    return {"temperature": float(temperature), "before": stats(1.0), "after": stats(temperature), "n": len(labels)}
