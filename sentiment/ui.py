"""Gradio Blocks: the predict, evaluation and error-explorer tabs, wired to the library's functions."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from sentiment import dashboard, fairness, fairness_plots
from sentiment.artifacts import load_evaluation
from sentiment.config import DEFAULT_IG_STEPS
from sentiment.data import texts_by_key
from sentiment.errors import SentimentError
from sentiment.explain import Explainer, Explanation
from sentiment.predict import MAX_TEXT_CHARS, Predictor, check_text

log = logging.getLogger(__name__)

# Written for this app; not taken from IMDB.
EXAMPLES = [
    "A warm, funny and beautifully acted film. The script never talks down to its audience and the last twenty "
    "minutes had the whole theatre cheering.",
    "Two hours I will never get back. The plot makes no sense, the dialogue is wooden and even the usually "
    "reliable lead looks bored.",
    "The first half is slow and the effects look cheap, but the ending is so moving that I forgave it everything.",
    "I wanted to love this. Great cast, great premise, gorgeous score... and a story that goes absolutely nowhere.",
]
TOP_COLUMNS = ["pushes toward", "word", "attribution"]
DATA_HINT = ("Review texts are not shipped with the app. To read them here, start it with `--data PATH` "
             "(or set `SENTIMENT_DATA`) pointing at the data the model was evaluated on: a local IMDB copy, such as "
             "a folder with test.parquet, an aclImdb folder or aclImdb_v1.tar.gz, the one CSV/JSONL/Parquet file "
             "it was trained on (or its --test-data file), or `--data imdb` where the Hugging Face hub is "
             "reachable.")


@dataclass
class Services:
    """Everything heavy, loaded once at start and shared by all requests."""

    predictor: Predictor
    explainer: Explainer
    evaluation: dict
    texts: dict[str, str] | None
    data_message: str

    @classmethod
    def load(cls, artifacts: str | Path, data: str | None = None, ig_steps: int = DEFAULT_IG_STEPS) -> Services:
        predictor = Predictor.from_artifacts(artifacts)
        evaluation = load_evaluation(artifacts)
        texts, message = None, DATA_HINT
        if data:
            try:
                texts, message = _test_texts(data, evaluation)
            except SentimentError as err:
                log.warning("error explorer without texts: %s", err)
                message = f"Could not read review texts from `{data}`: {err}\n\n{DATA_HINT}"
        return cls(predictor, Explainer(predictor, n_steps=ig_steps), evaluation, texts, message)


def _test_texts(data: str, evaluation: dict) -> tuple[dict[str, str], str]:
    """The texts of the artifacts' test reviews found in `data`, read with the training run's text column."""
    config = evaluation["training_config"]["config"]
    texts = texts_by_key(data, text_column=config.get("text_column", "text"))
    keys = evaluation["predictions"]["key"]
    joined = keys.isin(list(texts))  # rows: reviews with the same text share one key
    if not joined.any():
        trained_on = config.get("test_data") or config.get("data")
        raise SentimentError(f"none of its {len(texts):,} reviews is one of the {len(keys):,} test reviews these "
                             f"artifacts were evaluated on (their training run took its test reviews from "
                             f"`{trained_on}`); give that data")
    found = {key: texts[key] for key in keys[joined]}
    return found, f"Review texts joined from `{data}` ({int(joined.sum()):,} of {len(keys):,} test reviews)."


def _explanation_outputs(explanation: Explanation) -> tuple[list, pd.DataFrame, str]:
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
        note += (f"\n\n**This review is longer than the model's window:** it has {explanation.n_tokens} word pieces "
                 f"and the model saw {explanation.n_seen} of them (the start and the end). Uncoloured words in the "
                 f"middle were not seen.")
    return highlighted, table, note


class Handlers:
    """The functions the UI calls; user errors become gr.Error messages, never tracebacks."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def predict(self, text: str) -> dict[str, float]:
        try:
            return self.services.predictor.predict(text)["probabilities"]
        except SentimentError as err:
            raise gr.Error(str(err)) from None

    def explain(self, text: str, steps: int | None = None) -> tuple[list, pd.DataFrame, str]:
        try:
            return _explanation_outputs(self.services.explainer.explain(text, n_steps=int(steps) if steps else None))
        except SentimentError as err:
            raise gr.Error(str(err)) from None

    def fairness(self, text: str) -> tuple[pd.DataFrame, object, str]:
        """Variants of the typed review with its identity terms swapped, and how much each moves P(positive)."""
        try:
            check_text(text)  # before the swaps, which would otherwise run over an oversized text
            found = fairness.find_terms(text)
            variants = fairness.variants(text)
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

    def errors(self, min_confidence: float, true_label: str, min_tokens: float | None,
               max_tokens: float | None) -> pd.DataFrame:
        try:
            return dashboard.errors_table(self.services.evaluation["predictions"], self.services.texts,
                                          min_confidence, true_label, min_tokens, max_tokens)
        except SentimentError as err:
            raise gr.Error(str(err)) from None

    def explain_error(self, table: pd.DataFrame, event: gr.SelectData) -> tuple[list, pd.DataFrame, str]:
        row = event.index[0] if isinstance(event.index, (list, tuple)) else event.index
        key = str(table.iloc[row]["key"])
        text = (self.services.texts or {}).get(key)
        if text is None:
            raise gr.Error(f"The text of review {key} is not available. {DATA_HINT}")
        return self.explain(text)


def _predict_tab(handlers: Handlers, ig_steps: int) -> None:
    with gr.Row():
        with gr.Column(scale=3):
            text = gr.Textbox(label="Movie review", lines=6, max_length=MAX_TEXT_CHARS,
                              placeholder="Type or paste a review in English...")
            with gr.Row():
                analyze = gr.Button("Analyze", variant="primary")
                steps = gr.Slider(4, 64, value=ig_steps, step=4, label="Integrated-gradients steps")
            gr.Examples(EXAMPLES, inputs=text)
        with gr.Column(scale=2):
            label = gr.Label(label="Sentiment", num_top_classes=2)
    # Gradio colours scores below zero purple and above zero red, with a -1..+1 bar; the label must say so.
    highlighted = gr.HighlightedText(label="Words that drove the prediction (red: toward positive, purple: toward "
                                           "negative)", show_legend=True, combine_adjacent=False)
    with gr.Row():
        top = gr.Dataframe(pd.DataFrame(columns=TOP_COLUMNS), label="Top words", interactive=False)
        note = gr.Markdown()
    event = analyze.click(handlers.predict, text, label, concurrency_limit=1, concurrency_id="model",
                          api_name="predict")
    event.success(handlers.explain, [text, steps], [highlighted, top, note], concurrency_limit=1,
                  concurrency_id="model", api_name="explain")


def _evaluation_tab(evaluation: dict) -> None:
    metrics, history = evaluation["metrics"], evaluation["history"]
    gr.Markdown(dashboard.model_card_markdown(evaluation))
    with gr.Row():
        gr.Plot(dashboard.confusion_matrix_figure(metrics, normalize=False), label="Confusion matrix (counts)")
        gr.Plot(dashboard.confusion_matrix_figure(metrics, normalize=True), label="Confusion matrix (rates)")
    with gr.Row():
        gr.Plot(dashboard.roc_figure(metrics), label="ROC curve")
        gr.Plot(dashboard.pr_figure(metrics), label="Precision-recall curve")
    gr.Dataframe(dashboard.per_class_table(metrics), label="Per-class metrics", interactive=False)
    with gr.Row():
        gr.Plot(dashboard.training_curves_figure(history), label="Training curves")
        gr.Plot(dashboard.reliability_figure(metrics), label="Reliability diagram")


def _errors_tab(handlers: Handlers) -> None:
    gr.Markdown("The test reviews the model got wrong, most confident mistakes first. Select a row to see which "
                "words drove the prediction.\n\n" + handlers.services.data_message)
    with gr.Row():
        min_confidence = gr.Slider(0.5, 1.0, value=0.5, step=0.01, label="Minimum confidence of the mistake")
        true_label = gr.Radio(list(dashboard.TRUE_LABEL_CHOICES), value="all", label="True label")
        # Explicit bounds: an empty gr.Number shows 0, which would read as "at most 0 tokens".
        longest = int(handlers.services.evaluation["predictions"]["n_tokens"].max())
        min_tokens = gr.Number(value=0, label="Minimum length (tokens)", precision=0, minimum=0)
        max_tokens = gr.Number(value=longest, label="Maximum length (tokens)", precision=0, minimum=0)
    filters = [min_confidence, true_label, min_tokens, max_tokens]
    table = gr.Dataframe(handlers.errors(0.5, "all", 0, longest), label="Misclassified test reviews",
                         interactive=False, max_height=420, show_search="search")
    for control in filters:
        control.change(handlers.errors, filters, table, concurrency_limit=2, concurrency_id="table")
    highlighted = gr.HighlightedText(label="Selected review", show_legend=True)
    with gr.Row():
        top = gr.Dataframe(pd.DataFrame(columns=TOP_COLUMNS), label="Top words", interactive=False)
        note = gr.Markdown()
    table.select(handlers.explain_error, table, [highlighted, top, note], concurrency_limit=1,
                 concurrency_id="model")


FAIRNESS_EXAMPLE = ("He is a brilliant actor and his wife steals every scene; John and his Muslim friends in the "
                    "film feel like real people.")


def _fairness_tab(handlers: Handlers) -> None:
    gr.Markdown("Does the prediction change when only a person's identity changes? Type a review: each identity "
                "term is swapped within its category (gender, first names, religion, nationality, sexual "
                "orientation, age, disability) and every variant is scored. See `docs/fairness.md` for the method "
                "and what such a probe can and cannot show.")
    text = gr.Textbox(label="Review", lines=4, value=FAIRNESS_EXAMPLE, max_length=MAX_TEXT_CHARS)
    probe = gr.Button("Probe", variant="primary")
    note = gr.Markdown()
    plot = gr.Plot(label="Shift per variant")
    table = gr.Dataframe(label="Variants", interactive=False, wrap=True)
    probe.click(handlers.fairness, text, [table, plot, note], concurrency_limit=1, concurrency_id="model",
                api_name="fairness")
    report = handlers.services.evaluation.get("fairness")
    if report is None:
        gr.Markdown("The shipped artifacts hold no fairness report; add one with "
                    "`python train.py --fairness-only --data PATH`.")
        return
    suite = report["suite"]
    gr.Markdown(f"### Template suite of the shipped model\n{suite['templates']} sentence templates written for "
                f"this project (neutral, positive and negative), crossed with each group's terms. A gap is flagged "
                f"when it is significant (paired Wilcoxon test across templates, Bonferroni-corrected, p < "
                f"{suite['alpha']}) and at least {suite['threshold']:.2f} in P(positive): a shift a reader would "
                f"notice for the same sentence.")
    gr.Plot(fairness_plots.suite_figure(suite), label="Template suite")
    gr.Dataframe(fairness_plots.gaps_table(suite), label="Largest gap per category", interactive=False)
    gr.Markdown("### Test-set probe of the shipped model\nTest reviews that mention identity terms, swapped within "
                "their category; 95% bootstrap intervals over reviews.")
    gr.Dataframe(fairness_plots.probe_table(report["probe"]), label="Test-set probe", interactive=False)


def build_app(services: Services, ig_steps: int = DEFAULT_IG_STEPS) -> gr.Blocks:
    handlers = Handlers(services)
    with gr.Blocks(title="Movie review sentiment", analytics_enabled=False) as app:
        gr.Markdown("# Movie review sentiment\nA BERT-family model fine-tuned on the IMDB movie reviews: what it "
                    "predicts, why, and where it goes wrong.")
        with gr.Tab("Predict"):
            _predict_tab(handlers, ig_steps)
        with gr.Tab("Evaluation"):
            _evaluation_tab(services.evaluation)
        with gr.Tab("Error explorer"):
            _errors_tab(handlers)
        with gr.Tab("Fairness"):
            _fairness_tab(handlers)
    # One model request at a time ("model" group): torch already uses both of a free Space's 2 vCPUs per
    # request, so running two only adds latency, and Captum's hooks must not see a concurrent prediction.
    # Table filtering touches no model and gets its own group. The queue bounds waiting work.
    app.queue(max_size=64, default_concurrency_limit=1)
    return app
