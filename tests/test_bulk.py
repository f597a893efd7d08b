"""Scoring a whole file in the app: every format, the predictions file, the dashboard of a labelled upload, the
upload deleted after reading, and a clear message for every bad upload."""

from __future__ import annotations

import shutil
from pathlib import Path

import gradio as gr
import pandas as pd
import pytest

from sentiment import bulk
from sentiment.services import Handlers, Services


@pytest.fixture(scope="module")
def handlers(tiny_artifacts) -> Handlers:
    return Handlers(Services.load(tiny_artifacts, None, ig_steps=8))


@pytest.fixture()
def labelled(reviews) -> pd.DataFrame:
    """60 of the fixture's reviews under odd column names and true/false labels."""
    frame = pd.concat([reviews.head(30), reviews.tail(30)], ignore_index=True)
    return pd.DataFrame({"Review": frame["text"], "Sentiment": frame["label"].map({0: "false", 1: "true"})})


def upload(frame: pd.DataFrame, path: Path) -> str:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif path.suffix == ".json":  # one array of records
        frame.to_json(path, orient="records")
    elif path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        path.write_text("\n".join(frame.iloc[:, 0]), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".json", ".parquet"])
def test_a_labelled_file_gets_predictions_and_its_evaluation(handlers, labelled, tmp_path, suffix):
    path = upload(labelled, tmp_path / f"mine{suffix}")
    download, summary, matrix, roc, per_class = handlers.score_file(path, "")
    predictions = pd.read_csv(download)
    assert list(predictions.columns) == bulk.PREDICTION_COLUMNS
    assert predictions["row"].tolist() == list(range(60))
    assert set(predictions["label"]) <= {"negative", "positive"}
    assert ((predictions["prob_positive"] >= 0.5) == (predictions["label"] == "positive")).all()
    assert "Scored 60 rows from column `Review`" in summary and "Labels read from `Sentiment`" in summary
    assert "Results on `this upload`" in summary
    assert sum(map(sum, matrix.data[0].z)) == 60 and roc.data and per_class["support"].iloc[-1] == 60
    assert not Path(path).exists()  # the upload is not kept
    text = Path(download).read_text()
    assert not any(review[:40] in text for review in labelled["Review"])  # no review text in the download


def test_plain_text_one_review_a_line_without_labels(handlers, labelled, tmp_path):
    path = upload(labelled[["Review"]].head(5), tmp_path / "mine.txt")
    download, summary, matrix, roc, per_class = handlers.score_file(path)
    assert len(pd.read_csv(download)) == 5
    assert "No label column" in summary and matrix is None and roc is None and per_class is None


@pytest.mark.parametrize("suffix", [".csv", ".txt"])
def test_a_byte_order_mark_is_not_read_as_text(handlers, labelled, tmp_path, suffix):
    """Excel's "CSV UTF-8" and Notepad start a file with one: the header is still found, the first line still clean."""
    path = tmp_path / f"excel{suffix}"
    Path(upload(labelled.head(6), path)).write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    upload_rows = bulk.read_upload(path)
    assert upload_rows.text_column == ("Review" if suffix == ".csv" else "text")
    assert upload_rows.frame["text"].tolist()[0] == labelled["Review"][0]

def test_rows_get_warnings_for_short_empty_and_long_texts(handlers, reviews, tmp_path):
    long = max(reviews["text"], key=len)
    path = upload(pd.DataFrame({"text": ["Great.", "", long, "A fine, warm and funny film overall."]}),
                  tmp_path / "mixed.csv")
    predictions = pd.read_csv(handlers.score_file(path)[0], keep_default_na=False)
    warnings = predictions["warnings"].tolist()
    assert "very short (1 word)" in warnings[0]
    assert warnings[1] == "empty text: no prediction" and predictions["label"][1] == ""
    assert "it read the first 32 and the last 94" in warnings[2]  # the tiny run's 128-piece window
    assert warnings[3] == ""


def test_the_text_column_can_be_named(handlers, labelled, tmp_path):
    frame = labelled.rename(columns={"Review": "body"}).assign(title="x")
    path = upload(frame, tmp_path / "named.csv")
    with pytest.raises(gr.Error, match="cannot tell which column holds the text"):
        handlers.score_file(path)
    with pytest.raises(gr.Error, match="named.csv is gone: an upload is deleted once it is scored"):
        handlers.score_file(path, "body")  # the page hands back the deleted upload's path
    path = upload(frame, tmp_path / "named.csv")
    assert "from column `body`" in handlers.score_file(path, "body")[1]


def test_a_text_file_keeps_its_line_numbers_and_invisible_text_is_not_scored(handlers, tmp_path):
    path = tmp_path / "lines.txt"
    path.write_text("A fine, warm and funny film.\n\nA dull film.\n\u200b\u200b\n", encoding="utf-8")
    predictions = pd.read_csv(handlers.score_file(str(path))[0], keep_default_na=False)
    assert predictions["row"].tolist() == [0, 1, 2, 3]  # line numbers, counted from 0
    assert predictions["warnings"][1] == "empty text: no prediction" and predictions["label"][1] == ""
    assert predictions["label"][3] == "" and predictions["warnings"][3].startswith("not scored: the review is empty")
    assert predictions["label"][2] in {"negative", "positive"}


@pytest.mark.parametrize(("name", "content", "message"), [
    ("empty.csv", b"", "is empty"),
    ("latin1.txt", "caf\xe9 cr\xe8me".encode("latin-1"), "not valid UTF-8"),
    ("reviews.docx", b"PK\x03\x04", "cannot be scored"),
    ("broken.csv", b'text,label\n"unclosed,1\n', "could not be read as csv"),
    ("header-only.csv", b"text,label\n", "holds no rows"),
    ("no-text.csv", b"title,stars\nA,1\n", "cannot tell which column holds the text"),
    ("blank.csv", b"text\n\" \"\n\" \"\n", "every row of column 'text' is empty"),
])
def test_every_bad_upload_gets_a_clear_message(handlers, tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(gr.Error, match=message):
        handlers.score_file(str(path))
    assert not path.exists()


def test_uploads_over_the_limits_are_refused(handlers, tmp_path, monkeypatch):
    monkeypatch.setattr(bulk, "MAX_ROWS", 3)
    path = upload(pd.DataFrame({"text": ["Fine film."] * 4}), tmp_path / "rows.csv")
    with pytest.raises(gr.Error, match="has 4 rows; the limit here is 3"):
        handlers.score_file(path)
    monkeypatch.setattr(bulk, "MAX_UPLOAD_BYTES", 10)
    path = upload(pd.DataFrame({"text": ["Fine film."] * 2}), tmp_path / "bytes.csv")
    with pytest.raises(gr.Error, match="the limit here is 0 MB"):
        handlers.score_file(path)
    with pytest.raises(gr.Error, match="Upload a file"):
        handlers.score_file(None)
    monkeypatch.setattr(bulk, "MAX_UPLOAD_BYTES", 10 * 2**20)
    path = upload(pd.DataFrame({"text": ["Fine film."] * 4}), tmp_path / "rows.parquet")
    monkeypatch.setattr(bulk, "read_table", None)  # refused from the metadata, before any row is decoded
    with pytest.raises(gr.Error, match="rows.parquet has 4 rows .* the limit here is 3 rows"):
        handlers.score_file(path)


@pytest.mark.parametrize(("labels", "why"), [([1, 1], "only the positive class"), (["maybe", 1], "values found")])
def test_labels_that_cannot_be_evaluated_still_get_predictions_and_say_why(handlers, tmp_path, labels, why):
    path = upload(pd.DataFrame({"text": ["Great film.", "Lovely film."], "label": labels}), tmp_path / "one.csv")
    out, summary, *figures = handlers.score_file(path)
    assert len(pd.read_csv(out)) == 2 and figures == [None, None, None]
    assert "No evaluation:" in summary and why in summary


def test_the_app_serves_scoring_through_its_api(live_app, labelled, tmp_path):
    from gradio_client import Client, handle_file

    url, _ = live_app
    path = upload(labelled, tmp_path / "api.csv")
    download, summary, *_ = Client(url, verbose=False).predict(handle_file(path), "", api_name="/score_file")
    assert len(pd.read_csv(download)) == 60 and "Scored 60 rows" in summary
    shutil.rmtree(Path(download).parent, ignore_errors=True)


def test_columns_named_like_a_spreadsheet_export_are_found(handlers, labelled, tmp_path):
    frame = labelled.rename(columns={"Review": "Review Text", "Sentiment": "Sentiment Label"})
    download, summary, *_ = handlers.score_file(upload(frame, tmp_path / "export.csv"))
    assert "from column `Review Text`" in summary and "Labels read from `Sentiment Label`" in summary
    assert len(pd.read_csv(download)) == len(frame)
