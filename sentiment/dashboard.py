"""Plotly figures and tables from evaluation artifacts, for the evaluation tab and the error explorer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

HEIGHT = 380
TEMPLATE = "plotly_white"
TRAIN_COLOR, VALIDATION_COLOR = "#1f77b4", "#ff7f0e"


def _layout(fig: go.Figure, title: str, height: int = HEIGHT, **kwargs: Any) -> go.Figure:
    fig.update_layout(template=TEMPLATE, title=title, height=height, margin={"l": 60, "r": 20, "t": 60, "b": 50},
                      legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0}, **kwargs)
    return fig


def confusion_matrix_figure(metrics: dict, normalize: bool = False) -> go.Figure:
    """Heatmap of the confusion matrix: counts, or rates that sum to 1 along each true label."""
    labels = metrics["labels"]
    counts = np.asarray(metrics["confusion_matrix"], dtype=np.int64)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    text = [[f"{rates[i, j]:.1%}<br>({counts[i, j]:,})" if normalize else f"{counts[i, j]:,}<br>({rates[i, j]:.1%})"
             for j in range(len(labels))] for i in range(len(labels))]
    fig = go.Figure(go.Heatmap(
        z=rates if normalize else counts, x=labels, y=labels, text=text, texttemplate="%{text}",
        colorscale="Blues", zmin=0, zmax=1 if normalize else None, customdata=np.dstack([counts, rates]),
        hovertemplate="true %{y}, predicted %{x}<br>%{customdata[0]:,} reviews, %{customdata[1]:.1%} of true %{y}"
                      "<extra></extra>"))
    fig.update_xaxes(title="predicted label", side="bottom")
    fig.update_yaxes(title="true label", autorange="reversed")
    return _layout(fig, "Confusion matrix" + (" (share of each true label)" if normalize else " (reviews)"))


def roc_figure(metrics: dict) -> go.Figure:
    """ROC curve with its AUC, against the chance diagonal."""
    auc = metrics["roc_auc"]
    fig = go.Figure([
        go.Scatter(x=metrics["roc_curve"]["fpr"], y=metrics["roc_curve"]["tpr"], mode="lines",
                   name=f"model (AUC = {auc:.3f})",
                   hovertemplate="false positive rate %{x:.3f}<br>true positive rate %{y:.3f}<extra></extra>"),
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance (AUC = 0.5)", line={"dash": "dash", "color": "grey"},
                   hoverinfo="skip"),
    ])
    fig.update_xaxes(title="false positive rate", range=[0, 1])
    fig.update_yaxes(title="true positive rate", range=[0, 1.02])
    return _layout(fig, f"ROC curve, AUC = {auc:.3f}")


def pr_figure(metrics: dict) -> go.Figure:
    """Precision-recall curve with its average precision, against the positive-rate baseline."""
    ap = metrics["pr_auc"]
    base = metrics["per_class"][metrics["labels"][1]]["support"] / metrics["n"]
    fig = go.Figure([
        go.Scatter(x=metrics["pr_curve"]["recall"], y=metrics["pr_curve"]["precision"], mode="lines",
                   name=f"model (average precision = {ap:.3f})",
                   hovertemplate="recall %{x:.3f}<br>precision %{y:.3f}<extra></extra>"),
        go.Scatter(x=[0, 1], y=[base, base], mode="lines", name=f"baseline (positive rate = {base:.3f})",
                   line={"dash": "dash", "color": "grey"}, hoverinfo="skip"),
    ])
    fig.update_xaxes(title="recall (positive class)", range=[0, 1])
    fig.update_yaxes(title="precision (positive class)", range=[0, 1.02])
    return _layout(fig, f"Precision-recall curve, PR AUC = {ap:.3f}")


def _epoch_traces(fig: go.Figure, epochs: pd.DataFrame, prefix: str = "", after: int = 0, symbol: str = "circle"
                  ) -> None:
    """Train and validation accuracy (left) and loss (right) per epoch, the epochs numbered from `after` + 1."""
    for col, metric in ((1, "accuracy"), (2, "loss")):
        for split, key, color in (("train", f"train_{metric}", TRAIN_COLOR),
                                  ("validation", f"eval_{metric}", VALIDATION_COLOR)):
            fig.add_trace(go.Scatter(
                x=epochs["epoch"] + after, y=epochs[key], mode="lines+markers", name=f"{prefix}{split} {metric}",
                line={"color": color, "dash": "solid" if split == "train" else "dot"},
                marker={"size": 8, "symbol": symbol},
                hovertemplate=f"{prefix}epoch %{{x}}<br>{split} {metric} %{{y:.4f}}<extra></extra>"), row=1, col=col)
        fig.update_yaxes(title=metric, row=1, col=col)


def _averaged_figure(fig: go.Figure, history: dict) -> go.Figure:
    """A weight average has no epochs of its own: the curves of the models it averages, a continuation's epochs
    numbered after those of the model it continues, and the average's validation figures as lines."""
    average, parts = history["average"], history.get("averaged", [])
    last, drawn = 1, False
    for part, symbol in zip(parts, ("circle", "diamond", "square"), strict=False):
        epochs = pd.DataFrame(part["epochs"])
        if not epochs.empty:
            drawn = True
            name = Path(part["folder"]).name  # the full path is in the model card
            _epoch_traces(fig, epochs, f"{name} (× {part['weight']:g}): ", part["after_epoch"], symbol)
            last = max(last, part["after_epoch"] + int(epochs["epoch"].max()))
    for col, key in ((1, "eval_accuracy"), (2, "eval_loss")):
        fig.add_hline(y=average[key], line_dash="dash", line_color="black", row=1, col=col,
                      annotation_text=f"the average: {average[key]:.4f}", annotation_position="bottom right")
    if not drawn:  # no part recorded epochs (folders trained elsewhere)
        fig.add_annotation(text="a weight average of two trained models: no epochs of its own", showarrow=False,
                           xref="paper", yref="paper", x=0.5, y=0.5)
    fig.update_xaxes(title="epoch", dtick=1, range=[0.5, last + 0.5])
    return _layout(fig, f"Training curves of the averaged models (the average: validation accuracy "
                        f"{average['eval_accuracy']:.4f})")


def training_curves_figure(history: dict) -> go.Figure:
    """Train and validation accuracy and loss per epoch, side by side, with the best epoch marked."""
    epochs = pd.DataFrame(history["epochs"])
    fig = make_subplots(rows=1, cols=2, subplot_titles=("accuracy", "loss"), horizontal_spacing=0.12)
    if epochs.empty and history.get("average"):
        return _averaged_figure(fig, history)
    if epochs.empty:
        fig.add_annotation(text="no epochs recorded", showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
        return _layout(fig, "Training curves")
    _epoch_traces(fig, epochs)
    best = history.get("best_epoch")
    title = "Training curves"
    if best in set(epochs["epoch"]):
        row = epochs.loc[epochs["epoch"] == best].iloc[0]
        fig.add_trace(go.Scatter(
            x=[best], y=[row["eval_accuracy"]], mode="markers", name=f"best epoch ({best})",
            marker={"symbol": "star", "size": 16, "color": VALIDATION_COLOR, "line": {"width": 1, "color": "black"}},
            hovertemplate="best epoch %{x}<br>validation accuracy %{y:.4f}<extra></extra>"), row=1, col=1)
        fig.add_vline(x=best, line_dash="dot", line_color="grey", row="all", col="all")
        title += f" (best epoch {best})"
    # dtick=1 keeps epochs whole numbers; the padding keeps a single epoch from sitting on the axis edge.
    fig.update_xaxes(title="epoch", dtick=1, range=[epochs["epoch"].min() - 0.5, epochs["epoch"].max() + 0.5])
    return _layout(fig, title)


def reliability_figure(metrics: dict) -> go.Figure:
    """Reliability diagram: accuracy against mean confidence per bin, marker area showing the bin's reviews."""
    bins = pd.DataFrame(metrics["calibration"])
    bins = bins[bins["count"] > 0]
    sizes = 8 + 27 * np.sqrt(bins["count"] / bins["count"].max()) if len(bins) else []
    custom = np.column_stack([bins["bin_lower"], bins["bin_upper"], bins["count"]]) if len(bins) else None
    fig = go.Figure([
        go.Scatter(x=[0.5, 1], y=[0.5, 1], mode="lines", name="perfectly calibrated",
                   line={"dash": "dash", "color": "grey"}, hoverinfo="skip"),
        go.Scatter(x=bins["confidence"], y=bins["accuracy"], mode="lines+markers", name="model (marker area ~ reviews)",
                   marker={"size": sizes, "opacity": 0.8}, customdata=custom,
                   hovertemplate="confidence %{customdata[0]:.2f}-%{customdata[1]:.2f}: %{customdata[2]:,} reviews"
                                 "<br>mean confidence %{x:.3f}<br>accuracy %{y:.3f}<extra></extra>"),
    ])
    fig.update_xaxes(title="confidence of the predicted class", range=[0.48, 1.02])
    fig.update_yaxes(title="accuracy", range=[0, 1.02])
    return _layout(fig, f"Reliability diagram, ECE = {metrics['ece']:.4f}")


def calibration_figure(calibration: dict) -> go.Figure:
    """Reliability on the validation split before and after temperature scaling (calibration.json)."""
    fig = go.Figure(go.Scatter(x=[0.5, 1], y=[0.5, 1], mode="lines", name="perfectly calibrated",
                               line={"dash": "dash", "color": "grey"}, hoverinfo="skip"))
    for stage, color in (("before", "#d62728"), ("after", "#2ca02c")):
        bins = pd.DataFrame(calibration[stage]["bins"])
        bins = bins[bins["count"] > 0]
        fig.add_trace(go.Scatter(
            x=bins["confidence"], y=bins["accuracy"], mode="lines+markers", line={"color": color},
            name=f"{stage} (ECE {calibration[stage]['ece']:.4f})", customdata=bins["count"],
            hovertemplate=f"{stage}<br>mean confidence %{{x:.3f}}<br>accuracy %{{y:.3f}}<br>%{{customdata:,}} reviews"
                          "<extra></extra>"))
    fig.update_xaxes(title="confidence of the predicted class", range=[0.48, 1.02])
    fig.update_yaxes(title="accuracy", range=[0, 1.02])
    return _layout(fig, f"Temperature scaling on validation (T = {calibration['temperature']:.3f})")


def comparison_figure(table: pd.DataFrame) -> go.Figure:
    """Accuracy of every evaluation set with its 95 % interval, and its ECE on a second axis."""
    low = table["95% CI"].str.split("-").str[0].astype(float)
    high = table["95% CI"].str.split("-").str[1].astype(float)
    names = [f"{s} (n={n:,})" for s, n in zip(table["set"], table["n"], strict=True)]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Bar(x=names, y=table["accuracy"], name="accuracy (95% CI)", marker_color=TRAIN_COLOR,
                         error_y={"type": "data", "symmetric": False, "array": high - table["accuracy"],
                                  "arrayminus": table["accuracy"] - low},
                         hovertemplate="%{x}<br>accuracy %{y:.4f}<extra></extra>"), secondary_y=False)
    fig.add_trace(go.Scatter(x=names, y=table["ECE"], name="ECE", mode="markers", marker={"size": 12, "symbol":
                             "diamond", "color": VALIDATION_COLOR},
                             hovertemplate="%{x}<br>ECE %{y:.4f}<extra></extra>"), secondary_y=True)
    floor = max(0.0, float(low.min()) - 0.05) if len(low) else 0.0
    fig.update_yaxes(title="accuracy", range=[floor, 1.0], secondary_y=False)
    fig.update_yaxes(title="expected calibration error", rangemode="tozero", secondary_y=True)
    return _layout(fig, "Evaluation sets compared")


def behaviour_figure(report: dict) -> go.Figure:
    """Failure rate of every behavioural test with its 95 % interval, grouped and coloured by capability."""
    tests = pd.DataFrame(report["tests"])
    fig = go.Figure()
    palette = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
    for i, (capability, rows) in enumerate(tests.groupby("capability", sort=False)):
        low, high = rows["ci"].str[0], rows["ci"].str[1]
        fig.add_trace(go.Bar(
            y=[f"{k} · {n}" for k, n in zip(rows["kind"], rows["name"], strict=True)], x=rows["failure_rate"],
            orientation="h", name=f"{capability} (mean {report['capabilities'][capability]:.2f})",
            marker_color=palette[i % len(palette)],
            error_x={"type": "data", "symmetric": False, "array": high - rows["failure_rate"],
                     "arrayminus": rows["failure_rate"] - low},
            customdata=np.column_stack([rows["failures"], rows["n"]]),
            hovertemplate="%{y}<br>%{customdata[0]} of %{customdata[1]} cases fail: %{x:.3f}<extra></extra>"))
    fig.update_xaxes(title="failure rate (95% Wilson CI)", range=[0, 1.02])
    fig.update_yaxes(autorange="reversed", type="category")
    return _layout(fig, f"Behavioural tests: mean failure rate {report['mean_failure_rate']:.3f}",
                   height=max(HEIGHT, 20 * len(tests) + 160))
