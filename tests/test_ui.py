"""The Predict tab's functions return what their components expect and turn every bad input into a clear gr.Error;
the app is laid out with its named endpoints and set selectors; app.py reads its flags and environment. (Services
and the other tabs' handlers: test_services.py, test_error_explorer.py.)"""

from __future__ import annotations

import shutil
from pathlib import Path

import gradio as gr
import pytest

import app
from sentiment.artifacts import write_manifest
from sentiment.predict import MAX_TEXT_CHARS
from sentiment.services import TOP_COLUMNS, Handlers, Services
from sentiment.ui import build_app

REVIEW = "A warm and funny film, though the middle drags. I would watch it again."
BAD_INPUTS = [("", "empty"), ("   \n\t  ", "empty"), ("x" * (MAX_TEXT_CHARS + 1), f"{MAX_TEXT_CHARS:,}")]
BAD_IDS = ["empty", "whitespace", "oversized"]


@pytest.fixture(scope="module")
def services(tiny_artifacts, small_imdb) -> Services:
    return Services.load(tiny_artifacts, str(small_imdb), ig_steps=8)


@pytest.fixture(scope="module")
def handlers(services) -> Handlers:
    return Handlers(services)


# Predict tab


def test_predict_returns_the_probabilities_of_both_labels(handlers):
    probabilities = handlers.predict(REVIEW)
    assert set(probabilities) == {"negative", "positive"}
    assert all(0.0 <= p <= 1.0 for p in probabilities.values())
    assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-4)


def test_explain_returns_highlights_top_words_and_a_note(handlers):
    highlighted, table, note = handlers.explain(REVIEW, 8)
    assert "".join(text for text, _ in highlighted) == REVIEW
    scores = [score for _, score in highlighted if score is not None]
    assert all(isinstance(text, str) for text, _ in highlighted)
    assert scores and all(isinstance(s, float) and -1.0 <= s <= 1.0 for s in scores)
    assert max(abs(s) for s in scores) == pytest.approx(1.0)  # scaled by the strongest word
    assert list(table.columns) == TOP_COLUMNS == ["pushes toward", "word", "attribution"]
    assert set(table["pushes toward"]) <= {"positive", "negative"}
    assert (table.loc[table["pushes toward"] == "positive", "attribution"] >= 0).all()
    assert (table.loc[table["pushes toward"] == "negative", "attribution"] <= 0).all()
    # Top words are the review's words, lower-cased and merged over repeats, punctuation left out.
    assert set(table["word"]) <= {text.lower() for text, score in highlighted if score is not None}
    assert table["word"].is_unique and all(any(c.isalnum() for c in w) for w in table["word"])
    assert isinstance(note, str) and "Convergence delta" in note
    assert "window" not in note


def test_explain_takes_the_sliders_float_steps(handlers):
    highlighted, _, _ = handlers.explain(REVIEW, 12.0)
    assert "".join(text for text, _ in highlighted) == REVIEW


def test_a_truncated_review_says_what_the_model_saw(handlers, reviews):
    text = max(reviews["text"], key=len)
    highlighted, _, note = handlers.explain(text)
    assert "".join(segment for segment, _ in highlighted) == text
    assert "longer than the model's window" in note
    assert "saw 128 of them" in note  # the window, [CLS] and [SEP] included, as the input warning counts
    n_pieces = int(note.split("it has ")[1].split()[0])
    assert f"{n_pieces} word pieces, more than the model's window of 128" in handlers.input_warnings(text)


@pytest.mark.parametrize(("text", "message"), BAD_INPUTS, ids=BAD_IDS)
def test_predict_rejects_bad_input_with_a_clear_message(handlers, text, message):
    with pytest.raises(gr.Error, match=message) as caught:
        handlers.predict(text)
    assert "Traceback" not in caught.value.message


@pytest.mark.parametrize(("text", "message"), BAD_INPUTS, ids=BAD_IDS)
def test_explain_rejects_bad_input_with_a_clear_message(handlers, text, message):
    with pytest.raises(gr.Error, match=message):
        handlers.explain(text, 8)


def test_a_review_of_exactly_the_limit_is_accepted(handlers):
    probabilities = handlers.predict("fine " * (MAX_TEXT_CHARS // 5))
    assert set(probabilities) == {"negative", "positive"}


# The app


def dropdowns(blocks: gr.Blocks) -> list[gr.Dropdown]:
    """The evaluation-set selectors (the error explorer also has a cohort filter)."""
    return [block for block in blocks.blocks.values()
            if isinstance(block, gr.Dropdown) and block.label == "Evaluation set"]


def markdown(blocks: gr.Blocks) -> str:
    return "\n".join(block.value or "" for block in blocks.blocks.values() if isinstance(block, gr.Markdown))


def test_build_app_wires_the_named_endpoints_and_a_set_selector_per_tab(two_set_artifacts, small_imdb):
    blocks = build_app(Services.load(two_set_artifacts, str(small_imdb), ig_steps=8), ig_steps=8)
    assert isinstance(blocks, gr.Blocks)
    api_names = {fn.api_name for fn in blocks.fns.values()}
    assert {"predict", "explain", "fairness", "evaluation"} <= api_names
    tabs = [block.label for block in blocks.blocks.values() if isinstance(block, gr.Tab)]
    assert tabs == ["Predict", "Score a file", "Evaluation", "Error explorer", "Fairness"]
    evaluation, errors = dropdowns(blocks)
    assert evaluation.label == errors.label == "Evaluation set"
    assert [value for _, value in evaluation.choices] == [value for _, value in errors.choices] == ["test", "ours"]
    assert evaluation.value == errors.value == "test"
    labels = [label for label, _ in evaluation.choices]
    assert labels[1].startswith("ours (") and labels[1].endswith("ours.csv)")  # the set and where its data came from
    assert "### Results on `test`" in markdown(blocks)  # the first set, until another is chosen


def test_build_app_serves_a_folder_without_texts(artifacts_without_texts):
    blocks = build_app(Services.load(artifacts_without_texts, None, ig_steps=8), ig_steps=8)
    assert {"predict", "explain", "evaluation"} <= {fn.api_name for fn in blocks.fns.values()}
    assert "is not on this machine" in markdown(blocks)


def test_build_app_serves_a_folder_without_evaluation_sets(tiny_artifacts, tmp_path):
    """A model folder nobody evaluated yet: the app predicts, and says how to add an evaluation set."""
    artifacts = tmp_path / "artifacts"
    shutil.copytree(tiny_artifacts, artifacts)
    shutil.rmtree(artifacts / "evaluations")
    write_manifest(artifacts)
    services = Services.load(artifacts, None, ig_steps=8)
    assert services.set_names == [] and services.texts == {}
    blocks = build_app(services, ig_steps=8)
    assert {"predict", "explain"} <= {fn.api_name for fn in blocks.fns.values()}
    assert "evaluation" not in {fn.api_name for fn in blocks.fns.values()} and dropdowns(blocks) == []
    assert "This folder holds no evaluation set. Add one with `python evaluate.py" in markdown(blocks)


ENV = ("SENTIMENT_ARTIFACTS", "SENTIMENT_DATA", "GRADIO_SERVER_NAME", "GRADIO_SERVER_PORT", "SPACE_ID")


@pytest.fixture
def clean_env(monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_parse_args_defaults_to_a_local_server(clean_env):
    args = app.parse_args([])
    assert (args.artifacts, args.data, args.host, args.port) == ("artifacts", None, "127.0.0.1", 7860)


def test_parse_args_reads_the_environment(clean_env):
    clean_env.setenv("SENTIMENT_ARTIFACTS", "/models/run1")
    clean_env.setenv("SENTIMENT_DATA", "/data/imdb")
    clean_env.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    clean_env.setenv("GRADIO_SERVER_PORT", "8080")
    args = app.parse_args([])
    assert (args.artifacts, args.data, args.host, args.port) == ("/models/run1", "/data/imdb", "0.0.0.0", 8080)


def test_flags_override_the_environment(clean_env):
    clean_env.setenv("SENTIMENT_ARTIFACTS", "/models/run1")
    clean_env.setenv("GRADIO_SERVER_PORT", "8080")
    args = app.parse_args(["--artifacts", "here", "--data", "there", "--host", "0.0.0.0", "--port", "9000",
                           "--ig-steps", "32"])
    assert (args.artifacts, args.data, args.host, args.port, args.ig_steps) == ("here", "there", "0.0.0.0", 9000, 32)


def test_a_bad_port_in_the_environment_is_a_usage_error(clean_env, capsys):
    clean_env.setenv("GRADIO_SERVER_PORT", "http")
    with pytest.raises(SystemExit) as exit_info:
        app.parse_args([])
    assert exit_info.value.code == 2
    assert "--port: invalid int value: 'http'" in capsys.readouterr().err


def test_a_missing_model_folder_is_one_error_line(clean_env, tmp_path, capsys):
    assert app.main(["--artifacts", str(tmp_path / "no-such-folder")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "no-such-folder" in err[-1]


def test_on_a_space_the_texts_default_to_the_hub(clean_env):
    clean_env.setenv("SPACE_ID", "someone/sentiment")
    assert app.parse_args([]).data == "imdb"


def test_importing_app_loads_nothing_heavy():
    import subprocess
    import sys

    code = "import sys, app; print(sorted(m for m in ('torch', 'transformers', 'gradio') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(app.__file__).parent)
    assert result.stdout.strip() == "[]"
