"""Markdown and tables of the dashboard: the model card, per-class metrics, the comparison of evaluation sets and
the error explorer's table; pure functions of the stored evaluation."""

from __future__ import annotations

import math
import re
from numbers import Real
from pathlib import PurePath
from typing import Any

import numpy as np
import pandas as pd

from sentiment.cohorts import stored_misleading_words
from sentiment.config import ID2LABEL
from sentiment.errors import SentimentError

EXPLORER_NEEDS = ("key", "labels", "prob_positive", "predicted", "n_tokens", "truncated")  # of stored predictions
ERROR_COLUMNS = ["key", "true label", "predicted label", "confidence", "P(positive)", "tokens", "truncated", "review"]
COMPARISON_COLUMNS = ["set", "data", "n", "accuracy", "95% CI", "ROC-AUC", "macro F1", "ECE", "log loss"]
COHORT_COLUMNS = ["feature", "cohort", "n", "errors", "error rate", "95% CI", "lift", "n < 30"]
TRUE_LABEL_CHOICES = ("all", *ID2LABEL.values())
REVIEW_CHARS = 200
# Path components that name a file layout rather than a model, e.g. the embedded copy's ".../<package>/model".
GENERIC_PATH_PARTS = {"model", "models", "best", "final", "checkpoint"}


def per_class_table(metrics: dict) -> pd.DataFrame:
    """Precision, recall, F1 and support per class and their macro average, rounded for display."""
    rows = [{"class": name, **metrics["per_class"][name]} for name in metrics["labels"]]
    rows.append({"class": "macro avg", **metrics["macro"], "support": metrics["n"]})
    table = pd.DataFrame(rows, columns=["class", "precision", "recall", "f1", "support"])
    return table.round({"precision": 4, "recall": 4, "f1": 4}).astype({"support": "int64"})


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


def set_label(evaluation_set: dict) -> str:
    """How a set is named in selectors and tables: its name and the data it came from."""
    return f"{evaluation_set['name']} ({evaluation_set['info']['data']})"


def results_markdown(evaluation_set: dict) -> str:
    """The headline numbers of one evaluation set, with where its data came from and how it was evaluated."""
    metrics, info = evaluation_set["metrics"], evaluation_set["info"]
    numbers = headline(metrics)
    low, high = metrics["accuracy_ci"]
    lines = [f"### Results on {_md(evaluation_set['name'])}", "", "| metric | value |", "|---|---|",
             f"| accuracy | {numbers['accuracy']:.4f} (95% CI {low:.4f}-{high:.4f}) |"]
    lines += [f"| {name} | {numbers[key]:.4f} |" for name, key in (
        ("macro F1", "macro_f1"), ("ROC-AUC", "roc_auc"), ("PR AUC (average precision)", "pr_auc"),
        ("log loss", "log_loss"), ("ECE (10 bins)", "ece"))]
    lines += [f"| reviews | {numbers['n']:,} |", ""]
    sha = f", sha256 {_md(info['sha256'][:16])}…" if info.get("sha256") else ""
    day = f" {info['created'][:10]}" if info.get("created") else " just now"  # an upload records no date
    took = f" in {_duration(info['wall_seconds'])}" if info.get("wall_seconds") is not None else ""
    lines.append(f"Data: {_md(info['data'])}{sha}. {served_by(info.get('model'))}; evaluated{day}{took}.")
    return "\n".join(lines) + "\n"


def served_by(model: dict | None) -> str:
    """'Served by torch in fp32 on AMD EPYC' from a report's record of what scored it (Predictor.describe)."""
    if model is None:  # reports from before they recorded it
        return "Which engine and precision scored it is not recorded"
    engine = model.get("engine", "torch")
    # the precision is the torch model's; the int8 engine has its own
    precision = f" in {_md(model.get('precision', '?'))}" if engine == "torch" else ""
    chip = model.get("cpu") if model.get("device") == "cpu" else model.get("gpu")
    return f"Served by {_md(engine)}{precision}" + (f" on {_md(chip)}" if chip else "")


def _lineage(origin: dict | None) -> str:
    """', a folder trained from X (3 epochs at 2e-05 on 22,500 reviews), ...' for a run that continued one."""
    text = ""
    while origin is not None:
        config, sizes = origin["config"], origin.get("sizes", {})
        if config.get("stage") == "average":
            text += (f"; that folder was the weight average of {_md(model_name(config['model']))} and "
                     f"{_md(model_name(config['average_with']))} (weight {config['average_weight']:g} on the second)")
        else:
            stage = "pre-trained as a masked LM" if config.get("stage") == "mlm" else "fine-tuned"
            text += (f"; that folder was {stage} from {_md(model_name(config['model']))} ({config['epochs']} epoch"
                     f"{'' if config['epochs'] == 1 else 's'} at {config['learning_rate']:g} on "
                     f"{sizes.get('train', 0):,} texts)")
        origin = origin.get("continued_from")
    return text


def model_card_markdown(report: dict) -> str:
    """A short model card from a folder's report (see artifacts.load_report): base model, data, recipe, runtime."""
    resolved, history = report["training_config"], report["history"]
    if resolved is None:
        return "### Model card\n\nThis folder holds no training_config.json: how it was trained is unknown.\n"
    config, runtime, sizes = resolved["config"], resolved["runtime"], resolved["sizes"]
    lines = ["### Model card", ""]
    base = model_name(resolved["base_model"])
    source = f" (from {_md(base)})" if base != config["model"] else ""
    averaged = config.get("stage") == "average"
    if averaged:
        weight = config["average_weight"]
        first, second = (_md(model_name(config[key])) for key in ("model", "average_with"))
        lines += ["- **Weight average of two models (no training):**",
                  f"  - {1 - weight:g} × {first}{_lineage(resolved.get('continued_from'))}",
                  f"  - {weight:g} × {second}{_lineage(resolved.get('averaged_with'))}"]
    else:
        lines.append(f"- **Base model:** {_md(config['model'])}{source}{_lineage(resolved.get('continued_from'))}")
    data = _md(config["data"]) + (f", test from {_md(config['test_data'])}" if config.get("test_data") else "")
    grouping = config.get("validation_grouping", "random")
    trained = "" if averaged else f"{sizes['train']:,} train / "
    lines.append(f"- **Data:** {data}; {trained}{sizes['validation']:,} validation "
                 f"({'grouped by movie' if grouping == 'movie' else 'random'}) / {sizes['test']:,} test reviews"
                 + (" (the averaged models' split)" if averaged else "")
                 + ("" if config.get("test", True) else ", none of them scored (--no-test)"))
    truncation = _md(config["truncation"]) + (f" (head ratio {config['head_ratio']:g})"
                                              if config["truncation"] == "head+tail" else "")
    epochs = config["epochs"]
    if averaged:
        validation = (history or {}).get("average")
        accuracy = f"validation accuracy {validation['eval_accuracy']:.4f}, " if validation else ""
        lines.append(f"- **The average:** {accuracy}max length {config['max_length']} tokens, truncation "
                     f"{truncation}")
    else:
        lines.append(f"- **Hyperparameters:** learning rate {config['learning_rate']:g}, {epochs} epoch"
                     f"{'' if epochs == 1 else 's'}, batch size {config['batch_size']}, max length "
                     f"{config['max_length']} tokens, truncation {truncation}")
    device = runtime.get("gpu") or runtime.get("cpu") or runtime["device"]
    lines.append(f"- **Runtime:** {_md(device)}, precision {_md(runtime['precision'])}, torch {_md(runtime['torch'])}")
    per_epoch = ", ".join(_duration(e["train_seconds"]) for e in history["epochs"]) if history else ""
    lines.append(f"- **{'Time' if averaged else 'Training time'}:** {_duration(resolved['wall_seconds'])} "
                 f"{'to the average and its validation' if averaged else 'in all'}"
                 + (f"; training per epoch: {per_epoch}" if per_epoch else ""))
    best = history.get("best_epoch") if history else None
    record = next((e for e in history["epochs"] if e["epoch"] == best), None) if history else None
    if record is not None:
        lines.append(f"- **Best epoch:** {best} of {len(history['epochs'])} "
                     f"(validation accuracy {record['eval_accuracy']:.4f}), whose weights were "
                     f"{'tested' if config.get('test', True) else 'kept'}")
    calibration = report.get("calibration")
    if calibration is not None:
        lines.append(f"- **Calibration:** temperature {calibration['temperature']:.3f} fitted on the validation split "
                     f"and folded into the classifier (validation ECE {calibration['before']['ece']:.4f} → "
                     f"{calibration['after']['ece']:.4f})")
    engine = report.get("engine")
    if engine is not None:
        lines.append(f"- **Int8 engine (ONNX Runtime):** {_engine_verdict(engine)}")
    return "\n".join(lines) + "\n"


def _engine_verdict(engine: dict) -> str:
    """Whether the int8 engine was kept, and the check that decided it (engine.json)."""
    check = (f"accuracy {engine['accuracy']:.4f} on {engine['n']:,} test reviews against the torch model's "
             f"{engine['torch_accuracy']:.4f}")
    agree = engine.get("agreement")  # engine.json from before the agreement was recorded has none
    if agree is not None:
        check += (f"; the same label on {100 * agree['labels_agree']:.1f} % of them, P(positive) "
                  f"{agree['mean_abs_difference']:.3f} from torch's on average (99th percentile "
                  f"{agree['p99_abs_difference']:.3f}), ECE {agree['ece']:.4f} against {agree['torch_ece']:.4f}")
    machine = engine.get("verified_on")  # engine.json from before the machine was recorded has none
    if machine is not None:
        flags = ", ".join(machine["cpu_flags"]) or "no VNNI, AMX or native bf16 flag"
        check += f"; checked on {machine['threads']} threads of \"{machine['cpu']}\" ({flags})"
    return f"kept, {check}; it serves predictions where it is measured faster" if engine["kept"] else \
        f"not kept, {check}"


def comparison_table(evaluations: dict[str, dict]) -> pd.DataFrame:
    """One row per evaluation set: n, accuracy with its 95 % interval, ROC-AUC, macro F1, ECE and log loss."""
    rows = []
    for evaluation_set in evaluations.values():
        m = evaluation_set["metrics"]
        rows.append([evaluation_set["name"], evaluation_set["info"]["data"], m["n"], round(m["accuracy"], 4),
                     f"{m['accuracy_ci'][0]:.4f}-{m['accuracy_ci'][1]:.4f}", round(m["roc_auc"], 4),
                     round(m["macro"]["f1"], 4), round(m["ece"], 4), round(m["log_loss"], 4)])
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


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
                 true_label: str = "all", min_tokens: int | None = 0, max_tokens: int | None = None,
                 rows: np.ndarray | None = None) -> pd.DataFrame:
    """The misclassified reviews, most confident mistakes first, filtered by the prediction's confidence, the true
    label, the review's length in tokens (bounds inclusive; None means no bound) and `rows`, a boolean mask over
    `predictions` (a cohort)."""
    _check_filters(min_confidence, true_label, min_tokens, max_tokens)
    missing = [c for c in EXPLORER_NEEDS if c not in predictions.columns]
    if missing:
        raise SentimentError(f"these predictions lack the column(s) {', '.join(missing)} (an earlier version wrote "
                             f"them): run evaluate.py --name NAME again for the set, or train.py for its test set")
    is_wrong = (predictions["predicted"] != predictions["labels"]).to_numpy()
    wrong = predictions[is_wrong & (True if rows is None else np.asarray(rows, dtype=bool))]
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


def cohort_display(cohorts: pd.DataFrame) -> pd.DataFrame:
    """The stored cohort table as the error explorer shows it: rates rounded, the interval as one column."""
    if cohorts is None or cohorts.empty:
        return pd.DataFrame(columns=COHORT_COLUMNS)
    shown = cohorts.assign(**{"95% CI": [f"{lo:.3f}-{hi:.3f}" for lo, hi in zip(cohorts["ci low"], cohorts["ci high"],
                                                                                 strict=True)],
                              "n < 30": cohorts["small"].map({True: "small", False: ""})})
    return shown.round({"error rate": 4, "lift": 2})[COHORT_COLUMNS]


def cohort_choice(feature: str, cohort: str) -> str:
    return f"{feature}: {cohort}"


def misleading_words_table(report: dict | None) -> pd.DataFrame:
    """The stored words that mislead, rounded for display."""
    return stored_misleading_words(report).round({"mean attribution": 4, "total attribution": 4})


def behaviour_table(report: dict) -> pd.DataFrame:
    """One row per behavioural test: capability, type, n, failure rate with its interval and an example failure."""
    rows = []
    for test in report["tests"]:
        example = test["example"] or {}
        shown = example.get("text", "")
        if "changed" in example:
            shown = (f"{shown} ({example['p_positive']:.2f}) → {example['changed']} "
                     f"({example['changed_p_positive']:.2f})")
        elif example:
            shown = f"{shown} ({example['p_positive']:.2f})"
        rows.append([test["capability"], test["kind"], test["name"], test["n"], round(test["failure_rate"], 3),
                     f"{test['ci'][0]:.3f}-{test['ci'][1]:.3f}", shown])
    return pd.DataFrame(rows, columns=["capability", "type", "test", "n", "failure rate", "95% CI",
                                       "example failure (P(positive))"])
