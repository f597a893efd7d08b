"""Plotly figures and tables from evaluation artifacts, for the evaluation tab and the error explorer."""

from __future__ import annotations

import math
import re
from numbers import Real
from pathlib import PurePath
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sentiment.config import ID2LABEL
from sentiment.errors import SentimentError

HEIGHT = 380
TEMPLATE = "plotly_white"
TRAIN_COLOR, VALIDATION_COLOR = "#1f77b4", "#ff7f0e"
PREDICTION_COLUMNS = ("key", "labels", "prob_positive", "predicted", "n_tokens", "truncated")
ERROR_COLUMNS = ["key", "true label", "predicted label", "confidence", "P(positive)", "tokens", "truncated", "review"]
TRUE_LABEL_CHOICES = ("all", *ID2LABEL.values())
REVIEW_CHARS = 200
# Path components that name a file layout rather than a model, e.g. the embedded copy's ".../<package>/model".
GENERIC_PATH_PARTS = {"model", "models", "best", "final", "checkpoint"}


def _layout(fig: go.Figure, title: str, **kwargs: Any) -> go.Figure:
    fig.update_layout(template=TEMPLATE, title=title, height=HEIGHT, margin={"l": 60, "r": 20, "t": 60, "b": 50},
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


def per_class_table(metrics: dict) -> pd.DataFrame:
    """Precision, recall, F1 and support per class and their macro average, rounded for display."""
    rows = [{"class": name, **metrics["per_class"][name]} for name in metrics["labels"]]
    rows.append({"class": "macro avg", **metrics["macro"], "support": metrics["n"]})
    table = pd.DataFrame(rows, columns=["class", "precision", "recall", "f1", "support"])
    return table.round({"precision": 4, "recall": 4, "f1": 4}).astype({"support": "int64"})


def training_curves_figure(history: dict) -> go.Figure:
    """Train and validation accuracy and loss per epoch, side by side, with the best epoch marked."""
    epochs = pd.DataFrame(history["epochs"])
    fig = make_subplots(rows=1, cols=2, subplot_titles=("accuracy", "loss"), horizontal_spacing=0.12)
    if epochs.empty:
        fig.add_annotation(text="no epochs recorded", showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
        return _layout(fig, "Training curves")
    for col, metric in ((1, "accuracy"), (2, "loss")):
        for split, key, color in (("train", f"train_{metric}", TRAIN_COLOR),
                                  ("validation", f"eval_{metric}", VALIDATION_COLOR)):
            fig.add_trace(go.Scatter(
                x=epochs["epoch"], y=epochs[key], mode="lines+markers", name=f"{split} {metric}",
                line={"color": color, "dash": "solid" if split == "train" else "dot"}, marker={"size": 8},
                hovertemplate=f"epoch %{{x}}<br>{split} {metric} %{{y:.4f}}<extra></extra>"), row=1, col=col)
        fig.update_yaxes(title=metric, row=1, col=col)
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


def headline(metrics: dict) -> dict[str, float | int]:
    """The headline test numbers."""
    return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro"]["f1"], "roc_auc": metrics["roc_auc"],
            "pr_auc": metrics["pr_auc"], "log_loss": metrics["log_loss"], "ece": metrics["ece"], "n": metrics["n"]}


def _md(value: Any) -> str:
    """A value as an inline code span that cannot break out of it or of a table cell."""
    return "`" + str(value).replace("`", "'").replace("|", "\\|").replace("\n", " ") + "`"


def model_name(base_model: str) -> str:
    """A readable name for a hub id or a local model folder: its last path component that names a model."""
    path = PurePath(base_model)
    if not path.is_absolute() and not base_model.startswith((".", "~")):
        return base_model  # a hub id such as "org/name" is already readable
    named = [part for part in path.parts if part.lower() not in GENERIC_PATH_PARTS and part not in (path.anchor, "")]
    return named[-1] if named else base_model


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def model_card_markdown(evaluation: dict) -> str:
    """Headline numbers and a short model card from a loaded evaluation (see artifacts.load_evaluation)."""
    metrics, history, resolved = evaluation["metrics"], evaluation["history"], evaluation["training_config"]
    config, runtime, sizes = resolved["config"], resolved["runtime"], resolved["sizes"]
    numbers = headline(metrics)
    lines = ["### Test results", "", "| metric | value |", "|---|---|"]
    lines += [f"| {name} | {numbers[key]:.4f} |" for name, key in (
        ("accuracy", "accuracy"), ("macro F1", "macro_f1"), ("ROC-AUC", "roc_auc"), ("PR AUC (average precision)",
         "pr_auc"), ("log loss", "log_loss"), ("ECE", "ece"))]
    lines += [f"| test reviews | {numbers['n']:,} |", "", "### Model card", ""]
    base = model_name(resolved["base_model"])
    source = f" (from {_md(base)})" if base != config["model"] else ""
    lines.append(f"- **Base model:** {_md(config['model'])}{source}")
    data = _md(config["data"]) + (f", test from {_md(config['test_data'])}" if config.get("test_data") else "")
    lines.append(f"- **Data:** {data}; {sizes['train']:,} train / {sizes['validation']:,} validation / "
                 f"{sizes['test']:,} test reviews")
    truncation = _md(config["truncation"]) + (f" (head ratio {config['head_ratio']:g})"
                                              if config["truncation"] == "head+tail" else "")
    epochs = config["epochs"]
    lines.append(f"- **Hyperparameters:** learning rate {config['learning_rate']:g}, {epochs} epoch"
                 f"{'' if epochs == 1 else 's'}, batch size {config['batch_size']}, max length "
                 f"{config['max_length']} tokens, truncation {truncation}")
    device = runtime.get("gpu") or runtime["device"]
    lines.append(f"- **Runtime:** {_md(device)}, precision {_md(runtime['precision'])}, torch {_md(runtime['torch'])}")
    per_epoch = ", ".join(_duration(e["train_seconds"]) for e in history["epochs"])
    lines.append(f"- **Training time:** {_duration(resolved['wall_seconds'])} in all"
                 + (f"; training per epoch: {per_epoch}" if per_epoch else ""))
    best = history.get("best_epoch")
    record = next((e for e in history["epochs"] if e["epoch"] == best), None)
    if record is not None:
        lines.append(f"- **Best epoch:** {best} of {len(history['epochs'])} "
                     f"(validation accuracy {record['eval_accuracy']:.4f}), whose weights were tested")
    return "\n".join(lines) + "\n"


def _check_bound(name: str, value: Any, upper: float = math.inf) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 <= value <= upper:
        limit = f"between 0 and {upper:g}" if upper < math.inf else "a number of 0 or more"
        raise SentimentError(f"{name} must be {limit}, or empty for no limit; got {value!r}")


def _check_filters(min_confidence: Any, true_label: Any, min_tokens: Any, max_tokens: Any) -> None:
    _check_bound("minimum confidence", min_confidence, upper=1.0)
    _check_bound("minimum tokens", min_tokens)
    _check_bound("maximum tokens", max_tokens)
    if true_label not in TRUE_LABEL_CHOICES:
        raise SentimentError(f"true label must be one of {', '.join(TRUE_LABEL_CHOICES)}; got {true_label!r}")
    if min_tokens is not None and max_tokens is not None and max_tokens < min_tokens:
        raise SentimentError(f"maximum tokens ({max_tokens}) is below minimum tokens ({min_tokens}); widen the range")


def _preview(text: str | None) -> str:
    if not text:
        return ""
    # IMDB reviews carry literal <br /> tags; a one-line preview reads better without them.
    flat = " ".join(re.sub(r"<br\s*/?>", " ", text, flags=re.IGNORECASE).split())
    return flat if len(flat) <= REVIEW_CHARS else flat[:REVIEW_CHARS].rstrip() + "…"


def errors_table(predictions: pd.DataFrame, texts: dict[str, str] | None = None, min_confidence: float | None = 0.0,
                 true_label: str = "all", min_tokens: int | None = 0, max_tokens: int | None = None) -> pd.DataFrame:
    """The misclassified test reviews, most confident mistakes first, filtered by the prediction's confidence,
    the true label and the review's length in tokens (bounds inclusive; None means no bound)."""
    _check_filters(min_confidence, true_label, min_tokens, max_tokens)
    missing = [c for c in PREDICTION_COLUMNS if c not in predictions.columns]
    if missing:
        raise SentimentError(f"the test predictions lack the column(s) {', '.join(missing)}; retrain to rewrite them")
    wrong = predictions[predictions["predicted"] != predictions["labels"]]
    prob = wrong["prob_positive"].astype(np.float64)
    table = pd.DataFrame({
        "key": wrong["key"].astype(str), "true label": wrong["labels"].map(ID2LABEL),
        "predicted label": wrong["predicted"].map(ID2LABEL), "confidence": np.maximum(prob, 1.0 - prob),
        "P(positive)": prob, "tokens": wrong["n_tokens"].astype(np.int64),
        "truncated": wrong["truncated"].astype(bool)})
    keep = np.ones(len(table), dtype=bool)
    if min_confidence is not None:
        # Compare with the value the table shows: float32 stores 0.85 as 0.8499999.
        keep &= table["confidence"].round(4) >= min_confidence
    if true_label != "all":
        keep &= table["true label"] == true_label
    if min_tokens is not None:
        keep &= table["tokens"] >= min_tokens
    if max_tokens is not None:
        keep &= table["tokens"] <= max_tokens
    table = table[keep].sort_values(["confidence", "key"], ascending=[False, True], kind="stable")
    table["review"] = [_preview((texts or {}).get(key)) for key in table["key"]]
    return table.round({"confidence": 4, "P(positive)": 4}).reset_index(drop=True)[ERROR_COLUMNS]
