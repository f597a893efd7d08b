"""The app served over HTTP from the tiny trained model with two evaluation sets, called through gradio_client: the
named endpoints, the error a user sees for an empty review or an unknown set, and that a submitted review is neither
logged nor written to disk."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest

from sentiment.predict import MAX_TEXT_CHARS

pytestmark = pytest.mark.slow

REVIEW = "A warm and funny film, though the middle drags. I would watch it again."


@pytest.fixture(scope="module")
def client(live_app):
    from gradio_client import Client

    url, _ = live_app
    client = Client(url, verbose=False, download_files=False, analytics_enabled=False)
    yield client
    client.close()


def test_predict_endpoint_returns_a_label_with_both_confidences(client):
    result = client.predict(REVIEW, api_name="/predict")
    assert result["label"] in ("negative", "positive")
    confidences = {c["label"]: c["confidence"] for c in result["confidences"]}
    assert set(confidences) == {"negative", "positive"}
    assert sum(confidences.values()) == pytest.approx(1.0, abs=1e-4)
    assert result["label"] == max(confidences, key=confidences.get)


def test_explain_endpoint_returns_highlights_table_and_note(client):
    highlighted, table, note = client.predict(REVIEW, 8, api_name="/explain")
    assert "".join(item["token"] for item in highlighted) == REVIEW
    scores = [item["class_or_confidence"] for item in highlighted if item["class_or_confidence"] is not None]
    assert scores and all(-1.0 <= s <= 1.0 for s in scores)
    assert table["headers"] == ["pushes toward", "word", "attribution"]
    assert "Convergence delta" in note


def test_the_app_lists_its_named_endpoints(client):
    assert {"/predict", "/explain", "/fairness", "/evaluation"} <= set(client.view_api(print_info=False,
                                                                                       return_format="dict")
                                                                       ["named_endpoints"])


def test_evaluation_endpoint_returns_the_view_of_the_chosen_set(client):
    first, second = (client.predict(name, api_name="/evaluation") for name in ("test", "ours"))
    assert len(first) == len(second) == 7  # results, two confusion matrices, ROC, PR, per-class table, reliability
    assert first[0].startswith("### Results on `test`") and "| reviews | 16 |" in first[0]
    assert second[0].startswith("### Results on `ours`") and "| reviews | 12 |" in second[0]
    assert second[5]["headers"] == ["class", "precision", "recall", "f1", "support"]


def test_an_unknown_evaluation_set_is_refused_with_the_sets_there_are(client):
    from gradio_client.exceptions import AppError

    # The set selector's own check answers first; Handlers.evaluation_view has the same check (test_services.py).
    with pytest.raises(AppError, match=r"nope is not in the list of choices: \['test', 'ours'\]"):
        client.predict("nope", api_name="/evaluation")


def test_an_empty_review_returns_the_apps_message(client):
    from gradio_client.exceptions import AppError

    for endpoint, args in (("/predict", ("",)), ("/explain", ("   ", 8))):
        with pytest.raises(AppError, match="the review is empty; type or paste some text"):
            client.predict(*args, api_name=endpoint)


def files_containing(root: Path, marker: bytes) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file() and marker in path.read_bytes()]


def test_submitted_reviews_are_neither_logged_nor_stored(client, live_app, caplog, capfd):
    from gradio.utils import get_upload_folder
    from gradio_client.exceptions import AppError

    _, workdir = live_app
    marker = f"privacy-marker-{uuid.uuid4().hex}"
    caplog.set_level(logging.DEBUG)
    client.predict(f"{REVIEW} {marker}", api_name="/predict")
    client.predict(f"{REVIEW} {marker}", 8, api_name="/explain")
    with pytest.raises(AppError, match=f"{MAX_TEXT_CHARS:,}"):  # an error must not echo the review either
        client.predict(f"{marker} " + "x" * MAX_TEXT_CHARS, api_name="/predict")
    out, err = capfd.readouterr()
    assert marker not in out and marker not in err
    assert marker not in caplog.text
    assert not any(marker in str(record.args) for record in caplog.records)
    uploads = Path(get_upload_folder())
    for root in (workdir, uploads):
        if root.exists():
            assert files_containing(root, marker.encode()) == [], root
    assert not list(workdir.rglob("flagged"))
