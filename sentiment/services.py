"""What the app serves: the heavy objects loaded once (Services) and the functions its tabs call (Handlers).
User errors become gr.Error messages, never tracebacks."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
import pandas as pd

from sentiment import augment, bulk, cohort_plots, dashboard, fairness_plots, tables
from sentiment.artifacts import TEST_EVALUATION, load_report
from sentiment.cohorts import cohort_features
from sentiment.config import DEFAULT_IG_STEPS, OWN_SPLITS
from sentiment.data import texts_by_key
from sentiment.errors import SentimentError
from sentiment.explain import Explainer, Explanation
from sentiment.input_checks import LanguageGuesser, row_warnings
from sentiment.predict import Predictor, check_text

log = logging.getLogger(__name__)

TOP_COLUMNS = ["pushes toward", "word", "attribution"]
ALL_COHORTS = "all reviews"
DATA_HINT = ("Review texts are not shipped with the app. The app reads them from where each evaluation set's data "
             "was when it was evaluated; for the training run's own test and validation sets, start the app with "
             "`--data PATH` (or set `SENTIMENT_DATA`) pointing at a copy: a folder with test.parquet (train.parquet "
             "for validation and its sentences, which are held out of it), an aclImdb folder or "
             "aclImdb_v1.tar.gz, the one CSV/JSONL/Parquet file it was trained on, or `--data imdb` where the "
             "Hugging Face hub is reachable.")


def _texts(evaluation_set: dict, data: str | None) -> tuple[dict[str, str] | None, str]:
    """The texts of a set's rows found in `data` (or, without it, where the set's data was evaluated from), and a
    note saying how many were found or why none were."""
    info = evaluation_set["info"]
    # The path it was evaluated from, else the path as given (relative to where evaluate.py ran: a clone with the
    # data beside it in the same place finds it too).
    found = [p for p in (info.get("data_path"), info.get("data_argument")) if p and Path(p).expanduser().exists()]
    source = data or (found[0] if found else None)
    if not source:
        recorded = info.get("data_path") or info.get("data_argument")
        where = f"The data this set was evaluated from (`{recorded}`) is not on this machine.\n\n" if recorded else ""
        return None, where + DATA_HINT
    try:
        texts = texts_by_key(source, split=info.get("split") or "test", text_column=info.get("text_column"))
    except SentimentError as err:
        log.warning("evaluation set %s without texts: %s", evaluation_set["name"], err)
        return None, f"Could not read review texts from `{source}`: {err}\n\n{DATA_HINT}"
    keys = evaluation_set["predictions"]["key"]
    joined = keys.isin(list(texts))  # rows: reviews with the same text share one key
    if not joined.any():
        return None, (f"None of the {len(texts):,} texts read from `{source}` is one of the {len(keys):,} of this set "
                      f"(evaluated on `{info['data']}`); give that data.\n\n{DATA_HINT}")
    kept = {key: texts[key] for key in keys[joined]}
    return kept, f"Review texts joined from `{source}` ({int(joined.sum()):,} of {len(keys):,} rows)."


@dataclass
class Services:
    """Everything heavy, loaded once at start and shared by all requests."""

    predictor: Predictor
    explainer: Explainer
    report: dict  # artifacts.load_report: training config, history, calibration, fairness, evaluation sets
    texts: dict[str, dict[str, str] | None]  # per evaluation set: key -> text, where the data could be read
    data_messages: dict[str, str]
    language: LanguageGuesser | None = None
    # Scored files wait here for the browser to fetch them (they hold no review text), pruned after an hour.
    downloads: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="sentiment-scored-")))

    @classmethod
    def load(cls, artifacts: str | Path, data: str | None = None, ig_steps: int = DEFAULT_IG_STEPS) -> Services:
        predictor = Predictor.from_artifacts(artifacts)
        report = load_report(artifacts)
        texts, messages = {}, {}
        for name, evaluation_set in report["evaluations"].items():
            own = name == TEST_EVALUATION or evaluation_set["info"].get("split") in OWN_SPLITS  # the run's data
            texts[name], messages[name] = _texts(evaluation_set, data if own else None)
        return cls(predictor, Explainer(predictor, n_steps=ig_steps), report, texts, messages,
                   LanguageGuesser.load())

    @property
    def set_names(self) -> list[str]:
        return list(self.report["evaluations"])

    def evaluation_set(self, name: str) -> dict:
        if name not in self.report["evaluations"]:
            raise SentimentError(f"no evaluation set {name!r} in this folder; pick one of "
                                 f"{', '.join(self.set_names) or '(none: run evaluate.py)'}")
        return self.report["evaluations"][name]


def explanation_outputs(explanation: Explanation) -> tuple[list, pd.DataFrame, str]:
    """HighlightedText value (scores scaled to [-1, 1]), the top-words table and a note on the explanation."""
    peak = max((abs(s) for _, s in explanation.words), default=0.0) or 1.0
    highlighted = [(text, None if score is None else round(score / peak, 4)) for text, score in explanation.segments]
    for_positive, for_negative = explanation.top_words(8)
    rows = [("positive", w, round(s, 4)) for w, s in for_positive] + [("negative", w, round(s, 4))
                                                                         for w, s in for_negative]
    table = pd.DataFrame(rows, columns=TOP_COLUMNS)
    note = (f"Integrated gradients over the input embeddings; attributions add up to the change of the logit margin "
            f"from an all-[PAD] baseline ({explanation.margin_change:+.3f}). Convergence delta "
            f"{explanation.delta:+.4f} ({explanation.relative_delta:.1%} of that change; under ~5% is a faithful "
            f"approximation, more steps lower it).")
    if explanation.truncated:
        # counted as the note above the explanation counts them: [CLS] and [SEP] included
        note += (f"\n\n**This review is longer than the model's window:** it has {explanation.n_tokens + 2} word "
                 f"pieces and the model saw {explanation.n_seen + 2} of them (the start and the end). Uncoloured "
                 f"words in the middle were not seen.")
    return highlighted, table, note


class Handlers:
    """The functions the UI calls."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def predict(self, text: str) -> dict[str, float]:
        try:
            return self.services.predictor.predict(text)["probabilities"]
        except SentimentError as err:
            raise gr.Error(str(err)) from None

    def input_warnings(self, text: str) -> str:
        """What to know about the typed text before trusting its prediction (not English, very short, longer than
        the window); empty when nothing, and for a text the model cannot take (its prediction says why)."""
        try:
            check_text(text)  # also the API's "warnings" endpoint, called without a prediction first
        except SentimentError:
            return ""
        encoder = self.services.predictor.encoder
        n_tokens = len(encoder.tokenizer(text, verbose=False)["input_ids"])
        found = row_warnings(text, n_tokens, encoder, self.services.language)
        return "\n".join(f"**Note:** {w[0].upper()}{w[1:]}." for w in found)

    def explain(self, text: str, steps: int | None = None) -> tuple[list, pd.DataFrame, str]:
        try:
            return explanation_outputs(self.services.explainer.explain(text, n_steps=int(steps) if steps else None))
        except SentimentError as err:
            raise gr.Error(str(err)) from None

    def fairness(self, text: str) -> tuple[pd.DataFrame, object, str]:
        """Variants of the typed review with its identity terms swapped, and how much each moves P(positive)."""
        try:
            check_text(text)  # before the swaps, which would otherwise run over an oversized text
            found = augment.find_terms(text)
            variants = augment.variants(text)
            probs = self.services.predictor.predict_proba([text] + [v.text for v in variants])[:, 1]
        except SentimentError as err:
            raise gr.Error(str(err)) from None
        rows = [(v.category, v.group, v.text, float(p)) for v, p in zip(variants, probs[1:], strict=True)]
        table = fairness_plots.variants_table(float(probs[0]), rows)
        if not variants:
            return table, None, (f"P(positive) of your review: {probs[0]:.4f}. No identity terms found "
                                 f"(pronouns, gendered nouns, first names, religions, nationalities, orientations, "
                                 f"age or disability words), so there is nothing to swap.")
        terms = "; ".join(f"{name}: {len(words)}" for name, words in found.items())
        note = (f"P(positive) of your review: {probs[0]:.4f}. Identity terms found ({terms}); each variant swaps "
                f"every term of one category to one group. Largest shift: {table['shift'].abs().max():.4f}.")
        return table, fairness_plots.variants_figure(table), note

    def score_file(self, file: str | None, text_column: str | None = None) -> tuple:
        """Bulk scoring: the predictions file (row, label, P(positive), confidence, warnings; no text), a summary,
        and where the file has labels, its confusion matrix, ROC curve and per-class table. The upload is deleted
        once read."""
        if not file:
            raise gr.Error("Upload a file of reviews first (.csv, .jsonl, .parquet, or .txt with one review a line)")
        try:
            upload = bulk.read_upload(file, (text_column or "").strip() or None)
            predictions, metrics = bulk.score(self.services.predictor, upload, progress=True,
                                              language=self.services.language)
        except SentimentError as err:
            raise gr.Error(str(err)) from None
        finally:
            with contextlib.suppress(OSError):
                Path(file).unlink()  # privacy: nothing users upload is kept after the response
        out = self._download_path(Path(file).stem)
        predictions.to_csv(out, index=False)
        counts = predictions["label"].value_counts()
        warned = int((predictions["warnings"] != "").sum())
        summary = (f"Scored {len(predictions):,} rows from column `{upload.text_column}`: "
                   f"{counts.get('positive', 0):,} positive, {counts.get('negative', 0):,} negative; "
                   f"{warned:,} with warnings (see the `warnings` column).")
        if metrics is None:
            why = upload.label_note or "No label column, so no evaluation."
            return str(out), f"{summary} {why}", None, None, None
        results = tables.results_markdown({"name": "this upload", "metrics": metrics,
                                           "info": {"data": Path(file).name, "model": self.services.predictor
                                                    .describe()}})
        return (str(out), summary + f" Labels read from `{upload.label_column}`.\n\n" + results,
                dashboard.confusion_matrix_figure(metrics), dashboard.roc_figure(metrics),
                tables.per_class_table(metrics))

    def _download_path(self, stem: str) -> Path:
        folder = self.services.downloads
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            if time.time() - old.stat().st_mtime > 3600:
                old.unlink(missing_ok=True)
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)[:60] or "reviews"
        fd, name = tempfile.mkstemp(dir=folder, prefix=f"{safe}-", suffix="-predictions.csv")
        os.close(fd)  # to_csv opens it again; an open descriptor per scored file would exhaust the server's
        return Path(name)

    def evaluation_view(self, name: str) -> tuple:
        """Everything the Evaluation tab shows for one set: results, two confusion matrices, ROC, PR, per-class
        table and reliability diagram."""
        try:
            evaluation_set = self.services.evaluation_set(name)
        except SentimentError as err:
            raise gr.Error(str(err)) from None
        metrics = evaluation_set["metrics"]
        return (tables.results_markdown(evaluation_set), dashboard.confusion_matrix_figure(metrics, normalize=False),
                dashboard.confusion_matrix_figure(metrics, normalize=True), dashboard.roc_figure(metrics),
                dashboard.pr_figure(metrics), tables.per_class_table(metrics), dashboard.reliability_figure(metrics))

    def errors(self, name: str, min_confidence: float, true_label: str, min_tokens: float | None,
               max_tokens: float | None, cohort: str = ALL_COHORTS) -> pd.DataFrame:
        try:
            predictions = self.services.evaluation_set(name)["predictions"]
            return tables.errors_table(predictions, self.services.texts.get(name), min_confidence, true_label,
                                       min_tokens, max_tokens, rows=self._cohort_rows(predictions, cohort))
        except SentimentError as err:
            raise gr.Error(str(err)) from None

    @staticmethod
    def _cohort_rows(predictions: pd.DataFrame, cohort: str | None):
        """The rows of one cohort ("feature: value"); None for all."""
        if not cohort or cohort == ALL_COHORTS:
            return None
        feature, _, value = cohort.partition(": ")
        features = cohort_features(predictions)
        if feature not in features:
            raise SentimentError(f"this evaluation set has no {feature!r} cohorts; pick another cohort or 'all'")
        rows = (features[feature] == value).to_numpy()
        if not rows.any():
            raise SentimentError(f"the cohort {cohort!r} is empty in this evaluation set; pick another or 'all'")
        return rows

    def cohort_view(self, name: str) -> tuple:
        """The error explorer's cohort outputs for one set: the table, the rating (or true label) and length charts,
        the rating x length (or confidence x length) heat map, the choices of the cohort filter, and the words that
        mislead (chart and table)."""
        try:
            evaluation_set = self.services.evaluation_set(name)
        except SentimentError as err:
            raise gr.Error(str(err)) from None
        predictions, cohorts = evaluation_set["predictions"], evaluation_set.get("cohorts")
        if cohorts is None:
            cohorts = pd.DataFrame(columns=["feature", "cohort", "n", "errors", "error rate", "ci low", "ci high",
                                            "lift", "small"])
        overall = float((predictions["predicted"] != predictions["labels"]).mean())
        first = "rating" if "rating" in set(cohorts["feature"]) else "true label"
        choices = [ALL_COHORTS] + [tables.cohort_choice(f, c) for f, c in zip(cohorts["feature"], cohorts["cohort"],
                                                                               strict=True)]
        words = evaluation_set.get("misleading_words")
        return (tables.cohort_display(cohorts), cohort_plots.cohort_figure(cohorts, first, overall),
                cohort_plots.cohort_figure(cohorts, "length", overall),
                cohort_plots.heatmap_figure(predictions, "rating" if first == "rating" else "confidence", "length"),
                gr.update(choices=choices, value=ALL_COHORTS), cohort_plots.misleading_words_figure(words),
                tables.misleading_words_table(words))

    def errors_note(self, name: str) -> str:
        return self.services.data_messages.get(name, DATA_HINT)

    def explain_error(self, name: str, table: pd.DataFrame, event: gr.SelectData) -> tuple[list, pd.DataFrame, str]:
        row = event.index[0] if isinstance(event.index, (list, tuple)) else event.index
        key = str(table.iloc[row]["key"])
        text = (self.services.texts.get(name) or {}).get(key)
        if text is None:
            raise gr.Error(f"The text of review {key} is not available. {self.errors_note(name)}")
        return self.explain(text)
