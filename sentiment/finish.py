"""After training: the best epoch's weights evaluated on the test split exactly as the app serves them, the
fairness probe, and the artifacts; also --fairness-only, which probes a model already trained."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from sentiment import checkpoint, distributed, runtime
from sentiment.artifacts import (
    FAIRNESS,
    HISTORY,
    METRICS,
    PREDICTIONS,
    TRAINING_CONFIG,
    save_atomically,
    update_atomically,
    write_json,
)
from sentiment.checkpoint import TrainState
from sentiment.config import TrainConfig
from sentiment.data import config_splits, review_key
from sentiment.errors import SentimentError
from sentiment.evaluation import compute_metrics
from sentiment.fairness import fairness_report
from sentiment.predict import Predictor
from sentiment.text import EncodedSplit

if TYPE_CHECKING:
    from sentiment.training import Run

log = logging.getLogger(__name__)


def evaluate_test(run: Run, test: EncodedSplit) -> tuple[dict, pd.DataFrame, Predictor]:
    """Metrics and per-review predictions on the test split, computed exactly as the app will serve them."""
    predictor = Predictor(run.model, run.encoder, device=run.device, precision=run.config.precision,
                          tokens_per_batch=run.config.eval_tokens_per_batch)
    context = run.context
    probs = predictor.predict_encoded(test.input_ids[context.rank::context.world],
                                      progress=run.config.progress and context.is_main)
    probs = distributed.gather_rows(probs, len(test.input_ids), context)[:, 1]
    predictions = pd.DataFrame({
        "key": test.keys, "labels": test.labels.astype(np.int8), "prob_positive": probs.astype(np.float32),
        "predicted": (probs >= 0.5).astype(np.int8), "n_tokens": test.full_lengths.astype(np.int32),
        "truncated": test.full_lengths > run.config.max_length})
    return compute_metrics(test.labels, probs), predictions, predictor


def probe_fairness(predictor: Predictor, test: EncodedSplit, config: TrainConfig) -> dict:
    log.info("fairness probe: template suite and up to %d test reviews per category", config.fairness_max_reviews)
    return fairness_report(lambda texts: predictor.predict_proba(texts)[:, 1], test.texts, test.keys,
                           config.fairness_max_reviews, seed=config.seed)


def add_fairness(config: TrainConfig) -> Path:
    """--fairness-only: probe the model already in --output-dir and add fairness.json to its artifacts."""
    if distributed.launched().enabled:
        raise SentimentError("--fairness-only runs in one process: start it with python train.py, not torchrun")
    runtime.set_threads(config.num_threads)
    predictor = Predictor.from_artifacts(config.output_dir, device=config.device, precision=config.precision)
    splits = config_splits(config)
    texts = splits.test["text"].tolist()
    test = EncodedSplit([], splits.test["labels"].to_numpy(), [review_key(t) for t in texts], np.zeros(0), texts)
    report = probe_fairness(predictor, test, config)
    return update_atomically(config.output_dir, lambda folder: write_json(folder / FAIRNESS, report))


def write_artifacts(run: Run, state: TrainState, weights: dict[str, torch.Tensor], metrics: dict,
                    predictions: pd.DataFrame, fairness: dict | None, seconds: float) -> Path:
    """The model as rounded to --save-dtype before the test evaluation (which casts the live model for
    inference), its tokenizer, and the evaluation."""
    config = run.config
    resolved = {"config": config.to_dict(), "base_model": config.model,
                "runtime": runtime.describe(run.device, run.precision), "wall_seconds": seconds,
                "sizes": {"train": len(run.train.labels), "validation": len(run.validation.labels),
                          "test": len(predictions)}}

    def write(folder: Path) -> None:
        run.model.to(runtime.DTYPES[config.save_dtype]).load_state_dict(weights)
        run.model.save_pretrained(folder, safe_serialization=True)
        run.encoder.tokenizer.save_pretrained(folder)
        write_json(folder / TRAINING_CONFIG, resolved)
        write_json(folder / HISTORY, {"epochs": state.history, "best_epoch": state.best_epoch})
        write_json(folder / METRICS, metrics)
        predictions.to_parquet(folder / PREDICTIONS, index=False)
        if fairness is not None:
            write_json(folder / FAIRNESS, fairness)

    return save_atomically(config.output_dir, write)


def finish(run: Run, test: EncodedSplit, state: TrainState, started: float) -> Path:
    """Best epoch's weights, test evaluation, fairness probe and artifacts, after training."""
    config, context = run.config, run.context
    if context.is_main:
        checkpoint.load_best(run.checkpoint_dir, run.model)
    distributed.broadcast_weights(run.model, context)
    # Round to the dtype the artifacts store, so the test metrics are those of the shipped weights.
    run.model.to(runtime.DTYPES[config.save_dtype])
    weights = {name: tensor.detach().clone() for name, tensor in run.model.state_dict().items()} \
        if context.is_main else {}
    metrics, predictions, predictor = evaluate_test(run, test)
    log.info("test: accuracy %.4f, ROC-AUC %.4f, macro F1 %.4f", metrics["accuracy"], metrics["roc_auc"],
             metrics["macro"]["f1"])
    if not context.is_main:
        return Path(config.output_dir)
    fairness = probe_fairness(predictor, test, config) if config.fairness else None
    return write_artifacts(run, state, weights, metrics, predictions, fairness, time.monotonic() - started)
