"""Evaluate a saved model folder, through the Predictor the app serves, on labelled data or on the fairness probe;
the results are stored in the folder. train.py's test evaluation and evaluate.py take this same path."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from sentiment.artifacts import (
    BEHAVIOUR,
    CALIBRATION,
    EVALUATION_INFO,
    EVALUATIONS,
    FAIRNESS,
    PREDICTIONS,
    TEST_EVALUATION,
    TRAINING_CONFIG,
    read_json,
    update_atomically,
    write_evaluation,
    write_json,
)
from sentiment.behaviour_report import behaviour_report
from sentiment.calibration import calibration_summary, fit_temperature, fold_temperature
from sentiment.cohorts import cohort_table, marker_flags
from sentiment.data import Labelled, config_splits
from sentiment.engine import build_engine
from sentiment.errors import SentimentError
from sentiment.evaluation import compute_metrics
from sentiment.explain import Explainer
from sentiment.fairness import fairness_report
from sentiment.mislead import misleading_words
from sentiment.modeling import load_for_update, save_model
from sentiment.predict import TORCH_TOKENS_PER_BATCH, Predictor
from sentiment.runtime import DTYPES
from sentiment.sources import review_key

log = logging.getLogger(__name__)

def predict_set(predictor: Predictor, frame: pd.DataFrame, progress: bool = False) -> pd.DataFrame:
    """Per row of a checked frame (text, labels, row, metadata): its key (a hash, not the text), label,
    P(positive), prediction, length in word pieces and whether truncation cut it, the negation/contrast marker
    flags of its text, and the metadata columns."""
    texts = frame["text"].tolist()
    input_ids, lengths = predictor.encoder.encode_with_lengths(texts)
    probs = predictor.predict_encoded(input_ids, progress=progress)[:, 1]
    predictions = pd.DataFrame({
        "row": frame["row"].to_numpy(np.int64), "key": [review_key(t) for t in texts],
        "labels": frame["labels"].to_numpy(np.int8), "prob_positive": probs.astype(np.float32),
        "predicted": (probs >= 0.5).astype(np.int8), "n_tokens": lengths.astype(np.int32),
        "truncated": lengths > predictor.encoder.max_length})
    metadata = frame.drop(columns=["text", "labels", "row"]).reset_index(drop=True)
    return pd.concat([predictions, marker_flags(texts), metadata], axis=1)


def evaluate_into(folder: Path, name: str, predictor: Predictor, data: Labelled, data_argument: str,
                  split: str | None, progress: bool = False, text_column: str | None = None,
                  explain_mistakes: int = 0) -> dict:
    """Predict `data` with `predictor`, compute the metrics and the error cohorts, explain up to
    `explain_mistakes` of the most confident mistakes (the words that mislead), and write evaluations/<name>/
    into `folder` (a folder being built); returns the metrics."""
    started = time.monotonic()
    predictions = predict_set(predictor, data.frame, progress=progress)
    metrics = compute_metrics(predictions["labels"].to_numpy(), predictions["prob_positive"].to_numpy())
    local = Path(data_argument).expanduser()
    encoder = predictor.encoder
    info = {"name": name, "data": data.source, "data_argument": data_argument,
            "data_path": str(local.resolve()) if local.exists() else None, "split": split, "text_column": text_column,
            "sha256": data.sha256,
            "n": metrics["n"], "model": predictor.describe(),
            "truncation": {"max_length": encoder.max_length, "truncation": encoder.truncation,
                           "head_ratio": encoder.head_ratio},
            "wall_seconds": round(time.monotonic() - started, 2),
            "created": datetime.now(UTC).isoformat(timespec="seconds")}
    cohorts = cohort_table(predictions)
    words = misleading_words(Explainer(predictor), data.frame["text"].tolist(), predictions, explain_mistakes,
                             progress=progress) if explain_mistakes else None
    info["wall_seconds"] = round(time.monotonic() - started, 2)
    write_evaluation(folder, name, info, metrics, predictions,
                     cohorts.astype(object).where(cohorts.notna(), None).to_dict("records"),  # NaN is not JSON
                     words)
    log.info("evaluation %r on %s: accuracy %.4f [%.4f, %.4f], ROC-AUC %.4f, ECE %.4f, n %d", name, data.source,
             metrics["accuracy"], *metrics["accuracy_ci"], metrics["roc_auc"], metrics["ece"], metrics["n"])
    return metrics


def calibrate_into(folder: Path, validation: pd.DataFrame, save_dtype: str, precision: str = "auto",
                   progress: bool = False, device: str = "auto") -> dict:
    """Temperature scaling on the validation split, through the saved folder as it will be served: fit T on its
    validation logits, fold T into the classifier's weights and bias, and save them again, so that the app and a
    plain transformers pipeline read calibrated probabilities. Writes calibration.json (before/after)."""
    predictor = Predictor.from_artifacts(folder, device=device, precision=precision, verify=False)
    logits = predictor.logits_encoded(predictor.encoder.encode(validation["text"].tolist()), progress=progress)
    labels = validation["labels"].to_numpy()
    temperature = fit_temperature(logits, labels)
    summary = {**calibration_summary(logits, labels, temperature), "fitted_on": "validation",
               "precision": predictor.precision}
    model = load_for_update(folder)
    fold_temperature(model, temperature)
    save_model(model, predictor.encoder.tokenizer, folder, DTYPES[save_dtype])
    write_json(folder / CALIBRATION, summary)
    log.info("temperature %.3f folded into the classifier: validation ECE %.4f -> %.4f, log loss %.4f -> %.4f",
             temperature, summary["before"]["ece"], summary["after"]["ece"], summary["before"]["log_loss"],
             summary["after"]["log_loss"])
    return summary


def store_evaluation(artifacts: str | Path, name: str, data: Labelled, data_argument: str, split: str | None,
                     device: str = "auto", precision: str = "auto", tokens_per_batch: int = TORCH_TOKENS_PER_BATCH,
                     progress: bool = False, text_column: str | None = None, explain_mistakes: int = 0) -> dict:
    """evaluate.py: evaluate a complete folder (manifest checked) and add the set to it atomically; the same name
    again replaces it, and a failed run leaves the folder as it was."""
    predictor = Predictor.from_artifacts(artifacts, device=device, precision=precision)
    predictor.tokens_per_batch = tokens_per_batch
    result: dict = {}

    def write(copy: Path) -> None:
        result.update(evaluate_into(copy, name, predictor, data, data_argument, split, progress=progress,
                                    text_column=text_column, explain_mistakes=explain_mistakes))

    update_atomically(artifacts, write)
    return result


def fairness_into(folder: Path, predictor: Predictor, texts: list[str], max_reviews: int, seed: int,
                  progress: bool = False) -> dict:
    """The identity-term fairness report (template suite and a probe of `texts`) written to folder/fairness.json,
    with what scored it."""
    log.info("fairness probe: template suite and up to %d reviews per category", max_reviews)
    report = {**fairness_report(lambda batch: predictor.predict_proba(batch, progress=progress)[:, 1], texts,
                                [review_key(t) for t in texts], max_reviews, seed=seed),
              "model": predictor.describe()}
    write_json(folder / FAIRNESS, report)
    return report


def store_fairness(artifacts: str | Path, data: str | None = None, max_reviews: int = 300, seed: int = 42,
                   device: str = "auto", precision: str = "auto", progress: bool = False) -> dict:
    """evaluate.py fairness: the report on the test reviews the folder's own training run used (its stored
    config says which, and how it split them), or on the test split of `data` where given."""
    folder = Path(artifacts)
    if (folder / TRAINING_CONFIG).is_file():
        stored = read_json(folder / TRAINING_CONFIG)["config"]
    elif data is None:
        raise SentimentError(f"{folder}: no {TRAINING_CONFIG}, so the data it was tested on is unknown; pass --data")
    else:  # a folder trained elsewhere: the test split of --data, its columns detected
        stored = {"text_column": None, "label_column": None}
    if data is not None:
        stored = {**stored, "data": data, "test_data": None}
    texts = config_splits(stored).test["text"].tolist()
    predictor = Predictor.from_artifacts(folder, device=device, precision=precision)
    result: dict = {}
    update_atomically(folder, lambda copy: result.update(
        fairness_into(copy, predictor, texts, max_reviews, seed, progress)))
    return result


def behaviour_into(folder: Path, predictor: Predictor, seed: int = 0, progress: bool = False) -> dict:
    """The behavioural suite's report written to folder/behaviour.json, with what scored it."""
    report = {**behaviour_report(lambda texts: predictor.predict_proba(texts, progress=progress)[:, 1], seed=seed),
              "model": predictor.describe()}
    write_json(folder / BEHAVIOUR, report)
    return report


def store_behaviour(artifacts: str | Path, seed: int = 0, device: str = "auto", precision: str = "auto",
                    progress: bool = False) -> dict:
    """evaluate.py behaviour: the behavioural report of a complete folder, added atomically."""
    predictor = Predictor.from_artifacts(artifacts, device=device, precision=precision)
    result: dict = {}
    update_atomically(artifacts, lambda copy: result.update(behaviour_into(copy, predictor, seed, progress)))
    return result


def engine_into(folder: Path, predictor: Predictor, test: pd.DataFrame, torch_probs: np.ndarray,
                progress: bool = False) -> dict:
    """Build the int8 engine of the saved model in `folder` and verify it on `test` against `torch_probs` (the torch
    model's P(positive) on those same reviews, in their order); engine.json says whether it was kept."""
    sequences = predictor.encoder.encode(test["text"].tolist())
    return build_engine(folder, predictor.model, sequences, test["labels"].to_numpy(), torch_probs, progress=progress)


def stored_torch_probabilities(folder: Path, n: int) -> np.ndarray | None:
    """P(positive) of the folder's stored test evaluation, in the split's order, where torch made it on all `n`
    reviews; else None."""
    stored = folder / EVALUATIONS / TEST_EVALUATION
    info = read_json(stored / EVALUATION_INFO) if (stored / EVALUATION_INFO).is_file() else {}
    if info.get("model", {}).get("engine") != "torch" or info.get("n") != n or not (stored / PREDICTIONS).is_file():
        return None
    predictions = pd.read_parquet(stored / PREDICTIONS, columns=["row", "prob_positive"]).sort_values("row")
    if predictions["row"].tolist() != list(range(n)):
        return None
    return predictions["prob_positive"].to_numpy(np.float64)


def store_engine(artifacts: str | Path, device: str = "auto", precision: str = "auto", progress: bool = False) -> dict:
    """evaluate.py int8: build and verify the int8 engine of a complete folder on the test split its training run
    used, against the torch model's probabilities there (its stored test evaluation if torch made it, else
    measured)."""
    folder = Path(artifacts)
    if not (folder / TRAINING_CONFIG).is_file():
        raise SentimentError(f"{folder}: no {TRAINING_CONFIG}, so the test split to verify the engine on is unknown")
    test = config_splits(read_json(folder / TRAINING_CONFIG)["config"]).test
    predictor = Predictor.from_artifacts(folder, device=device, precision="fp32" if precision == "auto" else precision)
    torch_probs = stored_torch_probabilities(folder, len(test))
    if torch_probs is None:
        log.info("no torch evaluation of the test split stored; measuring the torch model's probabilities first")
        torch_probs = predictor.predict_proba(test["text"].tolist(), progress=progress)[:, 1]
    result: dict = {}
    update_atomically(folder, lambda copy: result.update(engine_into(copy, predictor, test, torch_probs,
                                                                      progress=progress)))
    return result
