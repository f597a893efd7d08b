"""The UI's functions return what their components expect, and turn every bad input into a clear gr.Error;
Services load with and without review texts; app.py reads its flags and environment."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gradio as gr
import pandas as pd
import pytest

import app
from sentiment.artifacts import write_manifest
from sentiment.data import review_key
from sentiment.predict import MAX_TEXT_CHARS
from sentiment.ui import DATA_HINT, Handlers, Services, _test_texts, build_app

REVIEW = "A warm and funny film, though the middle drags. I would watch it again."
BAD_INPUTS = [("", "empty"), ("   \n\t  ", "empty"), ("x" * (MAX_TEXT_CHARS + 1), f"{MAX_TEXT_CHARS:,}")]
BAD_IDS = ["empty", "whitespace", "oversized"]


@pytest.fixture(scope="module")
def services(tiny_artifacts, small_imdb) -> Services:
    return Services.load(tiny_artifacts, str(small_imdb), ig_steps=8)


@pytest.fixture(scope="module")
def handlers(services) -> Handlers:
    return Handlers(services)


@pytest.fixture(scope="module")
def handlers_without_texts(tiny_artifacts) -> Handlers:
    return Handlers(Services.load(tiny_artifacts, None, ig_steps=8))


def select(row: int, column: int = 0) -> gr.SelectData:
    """The event a click on a Dataframe cell sends."""
    return gr.SelectData(None, {"index": [row, column], "value": None})


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
    assert list(table.columns) == ["pushes toward", "word", "attribution"]
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
    assert "saw 126 of them" in note


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


# Error explorer


def test_errors_lists_exactly_the_misclassified_test_reviews(handlers, services):
    predictions = services.evaluation["predictions"]
    table = handlers.errors(0.5, "all", None, None)
    wrong = predictions[predictions["predicted"] != predictions["labels"]]
    assert len(table) > 0, "the tiny model is expected to get some of the 16 test reviews wrong"
    assert sorted(table["key"]) == sorted(wrong["key"])
    assert (table["true label"] != table["predicted label"]).all()
    assert list(table["confidence"]) == sorted(table["confidence"], reverse=True)
    # Each row previews its own review, joined by key from the texts given with --data.
    assert all(review and review.split()[0] in services.texts[key] for key, review in zip(table["key"],
                                                                                          table["review"], strict=True))


def test_errors_filters(handlers):
    everything = handlers.errors(0.5, "all", None, None)
    by_label = {label: handlers.errors(0.5, label, None, None) for label in ("negative", "positive")}
    assert len(by_label["negative"]) + len(by_label["positive"]) == len(everything)
    for label, table in by_label.items():
        assert (table["true label"] == label).all()
    low, high = everything["tokens"].min(), everything["tokens"].max()
    short = handlers.errors(0.5, "all", None, float(low))
    assert len(short) >= 1 and (short["tokens"] <= low).all()
    long = handlers.errors(0.5, "all", float(high), None)
    assert len(long) >= 1 and (long["tokens"] >= high).all()
    assert handlers.errors(1.0, "all", None, None)["confidence"].ge(1.0).all()


@pytest.mark.parametrize(("filters", "message"), [((1.5, "all", None, None), "between 0 and 1"),
                                                  ((0.5, "neutral", None, None), "true label"),
                                                  ((0.5, "all", 300.0, 100.0), "below minimum")])
def test_errors_rejects_bad_filters_with_a_clear_message(handlers, filters, message):
    with pytest.raises(gr.Error, match=message):
        handlers.errors(*filters)


def test_errors_without_texts_still_lists_the_mistakes(handlers_without_texts, handlers):
    table = handlers_without_texts.errors(0.5, "all", None, None)
    assert list(table["key"]) == list(handlers.errors(0.5, "all", None, None)["key"])
    assert (table["review"] == "").all()


def test_selecting_a_mistake_explains_its_review(handlers, services):
    table = handlers.errors(0.5, "all", None, None)
    row = len(table) - 1
    highlighted, top, note = handlers.explain_error(table, select(row, 3))
    text = services.texts[table.iloc[row]["key"]]
    assert "".join(segment for segment, _ in highlighted) == text
    assert list(top.columns) == ["pushes toward", "word", "attribution"]
    assert "Convergence delta" in note


def test_selecting_a_mistake_without_texts_says_how_to_get_them(handlers_without_texts):
    table = handlers_without_texts.errors(0.5, "all", None, None)
    with pytest.raises(gr.Error) as caught:
        handlers_without_texts.explain_error(table, select(0))
    assert DATA_HINT in caught.value.message
    assert str(table.iloc[0]["key"]) in caught.value.message


# Services and the app


def test_services_with_data_join_the_test_texts(services, review_tables):
    assert services.texts is not None and len(services.texts) == len(review_tables[1]) == 16
    assert set(services.texts.values()) == set(review_tables[1]["text"])
    assert "16 test reviews" in services.data_message
    assert set(services.evaluation["predictions"]["key"]) <= set(services.texts)


def test_services_without_data_explain_where_texts_come_from(handlers_without_texts):
    services = handlers_without_texts.services
    assert services.texts is None
    assert services.data_message == DATA_HINT
    assert "--data" in DATA_HINT and "SENTIMENT_DATA" in DATA_HINT


def test_services_take_a_folder_with_only_the_test_file(tiny_artifacts, review_tables, tmp_path):
    """What DATA_HINT and --help promise: the app needs no training data to show the test reviews."""
    review_tables[1].to_parquet(tmp_path / "test.parquet", index=False)
    services = Services.load(tiny_artifacts, str(tmp_path), ig_steps=8)
    assert services.texts is not None and set(services.texts.values()) == set(review_tables[1]["text"])


def test_services_read_texts_with_the_column_the_model_was_trained_with(tiny_artifacts, review_tables, tmp_path):
    artifacts = tmp_path / "artifacts"
    shutil.copytree(tiny_artifacts, artifacts)
    resolved = json.loads((artifacts / "training_config.json").read_text())
    resolved["config"]["text_column"] = "review"
    (artifacts / "training_config.json").write_text(json.dumps(resolved))
    write_manifest(artifacts)  # as a run trained with --text-column review writes it
    # One file holding the test reviews among others, as when train.py carved the test split from it.
    reviews = pd.concat(review_tables).rename(columns={"text": "review"})
    reviews.to_csv(tmp_path / "reviews.csv", index=False)
    services = Services.load(artifacts, str(tmp_path / "reviews.csv"), ig_steps=8)
    assert services.texts is not None and set(services.texts.values()) == set(review_tables[1]["text"])
    assert "(16 of 16 test reviews)" in services.data_message


def test_the_join_counts_test_reviews_that_share_a_text_once_each(review_tables, tmp_path):
    """IMDB's test split repeats some reviews word for word; they share a key, and each row counts as joined."""
    texts = review_tables[1]["text"].tolist()[:2]
    pd.DataFrame({"text": texts, "label": [0, 1]}).to_parquet(tmp_path / "test.parquet", index=False)
    keys = [review_key(texts[0]), review_key(texts[0]), review_key(texts[1]), "not-in-the-data"]
    evaluation = {"training_config": {"config": {"text_column": "text", "data": str(tmp_path)}},
                  "predictions": pd.DataFrame({"key": keys})}
    found, message = _test_texts(str(tmp_path), evaluation)
    assert found == {review_key(t): t for t in texts}
    assert "(3 of 4 test reviews)" in message


def test_services_with_data_holding_none_of_the_test_reviews_say_so(tiny_artifacts, small_imdb, review_tables,
                                                                    tmp_path):
    review_tables[0].to_parquet(tmp_path / "train-only.parquet", index=False)
    services = Services.load(tiny_artifacts, str(tmp_path / "train-only.parquet"), ig_steps=8)
    assert services.texts is None
    assert "none of its 48 reviews is one of the 16 test reviews" in services.data_message
    assert f"test reviews from `{small_imdb}`" in services.data_message


def test_services_with_a_bad_data_path_still_load_and_say_how_to_fix_it(tiny_artifacts, tmp_path):
    missing = tmp_path / "no-such-imdb"
    services = Services.load(tiny_artifacts, str(missing), ig_steps=8)
    assert services.texts is None
    assert f"Could not read review texts from `{missing}`" in services.data_message
    assert "no such file or folder" in services.data_message
    assert "--data PATH" in services.data_message


def test_services_refuse_a_folder_without_a_model(tmp_path):
    from sentiment.errors import SentimentError

    with pytest.raises(SentimentError, match="train.py"):
        Services.load(tmp_path)


@pytest.mark.parametrize("data", [True, False], ids=["with-texts", "without-texts"])
def test_build_app_wires_the_named_endpoints(tiny_artifacts, small_imdb, data):
    services = Services.load(tiny_artifacts, str(small_imdb) if data else None, ig_steps=8)
    blocks = build_app(services, ig_steps=8)
    assert isinstance(blocks, gr.Blocks)
    api_names = {fn.api_name for fn in blocks.fns.values()}
    assert {"predict", "explain"} <= api_names
    tabs = [block.label for block in blocks.blocks.values() if isinstance(block, gr.Tab)]
    assert tabs[:3] == ["Predict", "Evaluation", "Error explorer"]


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
