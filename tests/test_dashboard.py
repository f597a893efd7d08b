"""Dashboard figures on hand-made metrics, history, calibration and evaluation sets with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from sentiment import dashboard, tables
from sentiment.evaluation import compute_metrics


def test_confusion_matrix_counts(handmade_metrics):
    fig = dashboard.confusion_matrix_figure(handmade_metrics, normalize=False)
    (heatmap,) = fig.data
    assert np.asarray(heatmap.z).tolist() == [[3, 1], [2, 4]]
    assert list(heatmap.x) == list(heatmap.y) == ["negative", "positive"]
    assert fig.layout.xaxis.title.text == "predicted label" and fig.layout.yaxis.title.text == "true label"
    assert heatmap.text[1][1].startswith("4")


def test_confusion_matrix_rates_sum_to_one_per_true_label(handmade_metrics):
    z = np.asarray(dashboard.confusion_matrix_figure(handmade_metrics, normalize=True).data[0].z)
    np.testing.assert_allclose(z.sum(axis=1), [1.0, 1.0])
    np.testing.assert_allclose(z, [[0.75, 0.25], [1 / 3, 2 / 3]])


def test_roc_figure_draws_the_metrics_curve_and_auc(handmade_metrics):
    fig = dashboard.roc_figure(handmade_metrics)
    model, chance = fig.data
    curve = handmade_metrics["roc_curve"]
    assert list(model.x) == curve["fpr"] and list(model.y) == curve["tpr"]
    assert list(chance.x) == [0, 1] and list(chance.y) == [0, 1]
    auc = f"{handmade_metrics['roc_auc']:.3f}"
    assert auc in model.name and auc in fig.layout.title.text


def test_pr_figure_draws_the_metrics_curve_and_baseline(handmade_metrics):
    fig = dashboard.pr_figure(handmade_metrics)
    model, baseline = fig.data
    curve = handmade_metrics["pr_curve"]
    assert list(model.x) == curve["recall"] and list(model.y) == curve["precision"]
    assert list(baseline.y) == [0.6, 0.6]  # 6 of the 10 reviews are positive
    assert f"{handmade_metrics['pr_auc']:.3f}" in fig.layout.title.text


def test_training_curves_have_train_and_validation_for_both_metrics(handmade_history):
    fig = dashboard.training_curves_figure(handmade_history)
    series = {trace.name: trace for trace in fig.data}
    for name, key in [("train accuracy", "train_accuracy"), ("validation accuracy", "eval_accuracy"),
                      ("train loss", "train_loss"), ("validation loss", "eval_loss")]:
        assert list(series[name].x) == [1, 2, 3]
        assert list(series[name].y) == [e[key] for e in handmade_history["epochs"]]
    best = series["best epoch (2)"]
    assert list(best.x) == [2] and list(best.y) == [0.88]
    assert "best epoch 2" in fig.layout.title.text


def test_training_curves_with_one_epoch_show_markers(handmade_history):
    one = {"epochs": handmade_history["epochs"][:1], "best_epoch": 1}
    fig = dashboard.training_curves_figure(one)
    assert all("markers" in trace.mode for trace in fig.data)
    assert len(fig.data) == 5
    fig.to_json()


def test_training_curves_without_epochs_or_best_epoch(handmade_history):
    assert "no epochs" in dashboard.training_curves_figure({"epochs": [], "best_epoch": 0}).layout.annotations[-1].text
    averaged = {"epochs": [], "best_epoch": None, "average": {"eval_accuracy": 0.924, "eval_loss": 0.22}}
    fig = dashboard.training_curves_figure(averaged)
    assert "weight average of two trained models" in fig.layout.annotations[-1].text
    assert "validation accuracy 0.9240" in fig.layout.title.text
    fig = dashboard.training_curves_figure({"epochs": handmade_history["epochs"], "best_epoch": 0})
    assert not any(trace.name.startswith("best epoch") for trace in fig.data)


def test_training_curves_of_an_average_show_the_models_averaged_and_the_average(handmade_history):
    tuned = [{**handmade_history["epochs"][0], "epoch": 1, "eval_accuracy": 0.91}]
    history = {"epochs": [], "best_epoch": None, "average": {"eval_accuracy": 0.924, "eval_loss": 0.22},
               "averaged": [{"folder": "artifacts", "weight": 0.75, "epochs": handmade_history["epochs"],
                             "after_epoch": 0},
                            {"folder": "runs/tuned", "weight": 0.25, "epochs": tuned, "after_epoch": 3}]}
    fig = dashboard.training_curves_figure(history)
    names = [trace.name for trace in fig.data]
    assert "artifacts (× 0.75): validation accuracy" in names and "tuned (× 0.25): train loss" in names
    continued = next(t for t in fig.data if t.name == "tuned (× 0.25): validation accuracy")
    assert list(continued.x) == [4] and list(continued.y) == [0.91]  # its epoch comes after the three it continues
    assert [shape.y0 for shape in fig.layout.shapes] == [0.924, 0.22]
    assert "the average: 0.9240" in [a.text for a in fig.layout.annotations]
    assert tuple(fig.layout.xaxis.range) == (0.5, 4.5)
    fig.to_json()


def test_reliability_figure_skips_empty_bins(handmade_metrics):
    fig = dashboard.reliability_figure(handmade_metrics)
    diagonal, model = fig.data
    calib = handmade_metrics["calibration"]
    filled = [i for i, n in enumerate(calib["count"]) if n]
    assert len(filled) < len(calib["count"])  # the hand-made data leaves some bins empty
    assert list(model.x) == [calib["confidence"][i] for i in filled]
    assert list(model.y) == [calib["accuracy"][i] for i in filled]
    counts, sizes = [calib["count"][i] for i in filled], list(model.marker.size)
    assert sizes[int(np.argmax(counts))] == max(sizes)
    assert list(diagonal.x) == [0.5, 1] and list(diagonal.y) == [0.5, 1]
    assert f"{handmade_metrics['ece']:.4f}" in fig.layout.title.text


def test_figures_serialise(handmade_metrics, handmade_history):
    for fig in (dashboard.confusion_matrix_figure(handmade_metrics), dashboard.roc_figure(handmade_metrics),
                dashboard.pr_figure(handmade_metrics), dashboard.training_curves_figure(handmade_history),
                dashboard.reliability_figure(handmade_metrics)):
        assert fig.layout.height == dashboard.HEIGHT and fig.layout.title.text
        fig.to_json()


def test_calibration_figure_draws_validation_before_and_after_temperature_scaling():
    labels = np.array([0, 0, 0, 1, 1, 1])
    calibration = {"temperature": 1.5, "n": 6,
                   "before": {"ece": 0.25, "bins": compute_metrics(labels, np.array([0.05, 0.1, 0.6, 0.3, 0.97, 0.99]))
                              ["calibration"]},
                   "after": {"ece": 0.1, "bins": compute_metrics(labels, np.array([0.2, 0.25, 0.55, 0.4, 0.8, 0.85]))
                             ["calibration"]}}
    fig = dashboard.calibration_figure(calibration)
    diagonal, before, after = fig.data
    assert list(diagonal.x) == [0.5, 1] and list(diagonal.y) == [0.5, 1]
    assert before.name == "before (ECE 0.2500)" and after.name == "after (ECE 0.1000)"
    for trace, stage in ((before, "before"), (after, "after")):
        bins = calibration[stage]["bins"]
        filled = [i for i, n in enumerate(bins["count"]) if n]  # empty bins are left out
        assert list(trace.x) == [bins["confidence"][i] for i in filled]
        assert list(trace.y) == [bins["accuracy"][i] for i in filled]
        assert list(trace.customdata) == [bins["count"][i] for i in filled]
    assert "T = 1.500" in fig.layout.title.text
    fig.to_json()


def test_comparison_figure_draws_accuracy_with_its_interval_and_ece_per_set(handmade_metrics):
    perfect = compute_metrics(np.array([0, 0, 1, 1]), np.array([0.2, 0.3, 0.8, 0.9]))
    table = tables.comparison_table({
        "test": {"name": "test", "info": {"data": "imdb [test]"}, "metrics": handmade_metrics},
        "ours": {"name": "ours", "info": {"data": "ours.csv"}, "metrics": perfect}})
    fig = dashboard.comparison_figure(table)
    bars, ece = fig.data
    assert list(bars.x) == list(ece.x) == ["test (n=10)", "ours (n=4)"]
    assert list(bars.y) == [0.7, 1.0]
    # Asymmetric error bars from the Wilson interval: 7/10 -> 0.3968-0.8922, 4/4 -> 0.5101-1.0000.
    np.testing.assert_allclose(bars.error_y.array, [0.8922 - 0.7, 0.0], atol=1e-9)
    np.testing.assert_allclose(bars.error_y.arrayminus, [0.7 - 0.3968, 1.0 - 0.5101], atol=1e-9)
    assert list(ece.y) == [round(handmade_metrics["ece"], 4), round(perfect["ece"], 4)]
    assert ece.yaxis == "y2"  # ECE on its own axis
    assert fig.layout.yaxis.range[0] == pytest.approx(0.3968 - 0.05)  # low enough to show every interval
    fig.to_json()

