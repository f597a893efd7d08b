"""Gradio Blocks: the predict, score-a-file, evaluation, error-explorer and fairness tabs, wired to
services.Handlers."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from sentiment import bulk, dashboard, fairness_plots, tables
from sentiment.config import DEFAULT_IG_STEPS
from sentiment.data import LABEL_COLUMNS, TEXT_COLUMNS
from sentiment.predict import MAX_TEXT_CHARS
from sentiment.services import TOP_COLUMNS, Handlers, Services

# Written for this app; not taken from IMDB.
EXAMPLES = [
    "A warm, funny and beautifully acted film. The script never talks down to its audience and the last twenty "
    "minutes had the whole theatre cheering.",
    "Two hours I will never get back. The plot makes no sense, the dialogue is wooden and even the usually "
    "reliable lead looks bored.",
    "The first half is slow and the effects look cheap, but the ending is so moving that I forgave it everything.",
    "I wanted to love this. Great cast, great premise, gorgeous score... and a story that goes absolutely nowhere.",
]


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
            warnings = gr.Markdown()
    # Gradio colours scores below zero purple and above zero red, with a -1..+1 bar; the label must say so.
    highlighted = gr.HighlightedText(label="Words that drove the prediction (red: toward positive, purple: toward "
                                           "negative)", show_legend=True, combine_adjacent=False)
    with gr.Row():
        top = gr.Dataframe(pd.DataFrame(columns=TOP_COLUMNS), label="Top words", interactive=False)
        note = gr.Markdown()
    event = analyze.click(handlers.predict, text, label, concurrency_limit=1, concurrency_id="model",
                          api_name="predict")
    event.success(handlers.input_warnings, text, warnings, concurrency_limit=2, concurrency_id="table",
                  api_name="warnings")
    event.success(handlers.explain, [text, steps], [highlighted, top, note], concurrency_limit=1,
                  concurrency_id="model", api_name="explain")


def _no_sets() -> None:
    gr.Markdown("This folder holds no evaluation set. Add one with `python evaluate.py --artifacts DIR --data "
                "FILE --name NAME`.")


def _evaluation_tab(handlers: Handlers) -> None:
    services = handlers.services
    report, names = services.report, services.set_names
    if names:
        comparison = tables.comparison_table(report["evaluations"])
        gr.Markdown("### Evaluation sets\nEvery labelled set this model folder was evaluated on "
                    "(`evaluate.py` adds more); accuracy with its 95% Wilson interval.")
        with gr.Row():
            gr.Dataframe(comparison, label="Comparison", interactive=False, wrap=True)
            gr.Plot(dashboard.comparison_figure(comparison), label="Evaluation sets compared")
        choice = gr.Dropdown([(tables.set_label(services.evaluation_set(n)), n) for n in names], value=names[0],
                             label="Evaluation set", interactive=True)
        first = handlers.evaluation_view(names[0])
        results = gr.Markdown(first[0])
        with gr.Row():
            counts = gr.Plot(first[1], label="Confusion matrix (counts)")
            rates = gr.Plot(first[2], label="Confusion matrix (rates)")
        with gr.Row():
            roc = gr.Plot(first[3], label="ROC curve")
            pr = gr.Plot(first[4], label="Precision-recall curve")
        with gr.Row():
            per_class = gr.Dataframe(first[5], label="Per-class metrics", interactive=False)
            reliability = gr.Plot(first[6], label="Reliability diagram")
        choice.change(handlers.evaluation_view, choice, [results, counts, rates, roc, pr, per_class, reliability],
                      concurrency_limit=2, concurrency_id="table", api_name="evaluation")
    else:
        _no_sets()
    behaviour = report.get("behaviour")
    if behaviour is not None:
        gr.Markdown("### Behavioural tests\nShort sentences generated from this project's templates, after "
                    "CheckList: MFT (an expected label), INV (a change that must not change the label; identity "
                    "terms: P(positive) within 0.1) and DIR (a change that must not move P(positive) the wrong "
                    f"way by more than 0.05). {behaviour['neutral_rule']} "
                    f"{tables.served_by(behaviour.get('model'))}.")
        gr.Plot(dashboard.behaviour_figure(behaviour), label="Failure rate by test")
        gr.Dataframe(tables.behaviour_table(behaviour), label="Behavioural tests", interactive=False, wrap=True,
                     max_height=420)
    gr.Markdown(tables.model_card_markdown(report))
    with gr.Row():
        if report["history"] is not None:
            gr.Plot(dashboard.training_curves_figure(report["history"]), label="Training curves")
        if report["calibration"] is not None:
            gr.Plot(dashboard.calibration_figure(report["calibration"]), label="Temperature scaling")


def _errors_tab(handlers: Handlers) -> None:
    names = handlers.services.set_names
    if not names:
        _no_sets()
        return
    gr.Markdown("Where the errors concentrate: every cohort (star rating, length, truncation, negation and contrast "
                "markers, confidence, true label, movie) with its error rate, 95% Wilson interval and lift over the "
                "whole set; pale bars have fewer than 30 reviews. Pick a cohort to list its mistakes, most confident "
                "first, and select a row to see which words drove the prediction.")
    choice = gr.Dropdown(names, value=names[0], label="Evaluation set", interactive=True, elem_id="error-set")
    first = handlers.cohort_view(names[0])
    with gr.Row():
        by_first = gr.Plot(first[1], label="Error rate by cohort")
        by_length = gr.Plot(first[2], label="Error rate by length")
    with gr.Row():
        heatmap = gr.Plot(first[3], label="Two features")
        cohorts = gr.Dataframe(first[0], label="Cohorts, highest lift first", interactive=False, max_height=380)
    with gr.Row():
        words_plot = gr.Plot(first[5], label="Words that mislead")
        words_table = gr.Dataframe(first[6], label="Words that mislead: integrated gradients over the most confident "
                                   "mistakes, toward the wrong class", interactive=False, max_height=380)
    note = gr.Markdown(handlers.errors_note(names[0]))
    with gr.Row():
        cohort = gr.Dropdown(first[4]["choices"], value=first[4]["value"], label="Cohort", interactive=True,
                             elem_id="cohort")
        min_confidence = gr.Slider(0.5, 1.0, value=0.5, step=0.01, label="Minimum confidence of the mistake")
        true_label = gr.Radio(list(tables.TRUE_LABEL_CHOICES), value="all", label="True label")
        # Explicit bounds: an empty gr.Number shows 0, which would read as "at most 0 tokens".
        longest = max(int(s["predictions"]["n_tokens"].max()) for s in handlers.services.report["evaluations"].values())
        min_tokens = gr.Number(value=0, label="Minimum length (tokens)", precision=0, minimum=0)
        max_tokens = gr.Number(value=longest, label="Maximum length (tokens)", precision=0, minimum=0)
    filters = [choice, min_confidence, true_label, min_tokens, max_tokens, cohort]
    table = gr.Dataframe(handlers.errors(names[0], 0.5, "all", 0, longest), label="Misclassified reviews",
                         interactive=False, max_height=420, show_search="search", elem_id="misclassified")
    for control in filters[1:]:
        control.change(handlers.errors, filters, table, concurrency_limit=2, concurrency_id="table")
    # A new set resets the cohort filter, whose change then refreshes the table.
    cohort_outputs = [cohorts, by_first, by_length, heatmap, cohort, words_plot, words_table]
    choice.change(handlers.cohort_view, choice, cohort_outputs,
                  concurrency_limit=2, concurrency_id="table").then(
        handlers.errors, filters, table, concurrency_limit=2, concurrency_id="table")
    choice.change(handlers.errors_note, choice, note, concurrency_limit=2, concurrency_id="table")
    highlighted = gr.HighlightedText(label="Selected review", show_legend=True)
    with gr.Row():
        top = gr.Dataframe(pd.DataFrame(columns=TOP_COLUMNS), label="Top words", interactive=False)
        explanation = gr.Markdown()
    table.select(handlers.explain_error, [choice, table], [highlighted, top, explanation], concurrency_limit=1,
                 concurrency_id="model")


def _bulk_tab(handlers: Handlers) -> None:
    gr.Markdown(f"Upload a file of reviews: CSV, JSONL or Parquet with a text column (found among "
                f"{', '.join(TEXT_COLUMNS)} unless you name it), or plain text with one review a line; at "
                f"most {bulk.MAX_ROWS:,} rows and {bulk.MAX_UPLOAD_BYTES // 2**20} MB. You get a CSV of predictions "
                f"(row, label, P(positive), confidence, warnings; no review text). If the file has a label column "
                f"({', '.join(LABEL_COLUMNS)}; 0/1, neg/pos, negative/positive or true/false), you also get its "
                f"evaluation. The upload is deleted as soon as it has been read.")
    with gr.Row():
        upload = gr.File(label="Reviews file", file_types=list(bulk.SUFFIXES), type="filepath")
        with gr.Column():
            text_column = gr.Textbox(label="Text column (optional)", placeholder="detected when left empty")
            run = gr.Button("Score", variant="primary")
            download = gr.File(label="Predictions (CSV)")
    summary = gr.Markdown()
    with gr.Row():
        matrix = gr.Plot(label="Confusion matrix")
        roc = gr.Plot(label="ROC curve")
    per_class = gr.Dataframe(label="Per-class metrics", interactive=False)
    run.click(handlers.score_file, [upload, text_column], [download, summary, matrix, roc, per_class],
              concurrency_limit=1, concurrency_id="model", api_name="score_file", show_progress="full")


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
    report = handlers.services.report["fairness"]
    if report is None:
        gr.Markdown("The shipped artifacts hold no fairness report; add one with "
                    "`python evaluate.py fairness --artifacts DIR`.")
        return
    suite = report["suite"]
    gr.Markdown(f"### Template suite of the shipped model\n{suite['templates']} sentence templates written for "
                f"this project (neutral, positive and negative), crossed with each group's terms. A gap is flagged "
                f"when it is significant (paired Wilcoxon test across templates, Bonferroni-corrected, p < "
                f"{suite['alpha']}) and at least {suite['threshold']:.2f} in P(positive): a shift a reader would "
                f"notice for the same sentence. {tables.served_by(report.get('model'))}.")
    gr.Plot(fairness_plots.suite_figure(suite), label="Template suite")
    gr.Dataframe(fairness_plots.gaps_table(suite), label="Largest gap per category", interactive=False)
    gr.Markdown("### Test-set probe of the shipped model\nTest reviews that mention identity terms, swapped within "
                "their category; 95% bootstrap intervals over reviews.")
    gr.Dataframe(fairness_plots.probe_table(report["probe"]), label="Test-set probe", interactive=False)


def build_app(services: Services, ig_steps: int = DEFAULT_IG_STEPS) -> gr.Blocks:
    handlers = Handlers(services)
    # delete_cache: Gradio's copies of uploads and of scored files go after an hour (checked every hour).
    with gr.Blocks(title="Movie review sentiment", analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        gr.Markdown("# Movie review sentiment\nA BERT-family model fine-tuned on the IMDB movie reviews: what it "
                    "predicts, why, and where it goes wrong.")
        with gr.Tab("Predict"):
            _predict_tab(handlers, ig_steps)
        with gr.Tab("Score a file"):
            _bulk_tab(handlers)
        with gr.Tab("Evaluation"):
            _evaluation_tab(handlers)
        with gr.Tab("Error explorer"):
            _errors_tab(handlers)
        with gr.Tab("Fairness"):
            _fairness_tab(handlers)
    # One model request at a time ("model" group): torch already uses both of a free Space's 2 vCPUs per
    # request, so running two only adds latency, and Captum's hooks must not see a concurrent prediction.
    # Table filtering touches no model and gets its own group. The queue bounds waiting work.
    app.queue(max_size=64, default_concurrency_limit=1)
    return app
