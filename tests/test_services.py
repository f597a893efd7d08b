"""Services load a model folder with every evaluation set in it, and the review texts of each set from where it can
be read (or say why they cannot); the Evaluation tab's view of each set has the seven outputs its components take."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sentiment.errors import SentimentError
from sentiment.services import DATA_HINT, Handlers, Services, _texts
from sentiment.sources import review_key


@pytest.fixture(scope="module")
def services(two_set_artifacts, small_imdb) -> Services:
    """The two sets "test" (train.py's, texts from --data) and "ours" (evaluate.py's, texts from its CSV)."""
    return Services.load(two_set_artifacts, str(small_imdb), ig_steps=8)


@pytest.fixture(scope="module")
def handlers(services) -> Handlers:
    return Handlers(services)


def evaluation_set(keys: list[str], data_path: str | None) -> dict:
    """A stored evaluation set as load_report gives it, with only what the texts join reads."""
    return {"name": "some-set", "info": {"data": "reviews [test]", "data_path": data_path, "split": "test"},
            "predictions": pd.DataFrame({"key": keys})}


# Evaluation sets


def test_services_load_every_evaluation_set_train_py_first(services):
    assert services.set_names == ["test", "ours"]
    assert [services.evaluation_set(name)["metrics"]["n"] for name in services.set_names] == [16, 12]


def test_an_unknown_set_is_refused_with_the_sets_there_are(services):
    with pytest.raises(SentimentError, match="no evaluation set 'nope' in this folder; pick one of test, ours"):
        services.evaluation_set("nope")


@pytest.mark.parametrize("name", ["test", "ours"])
def test_evaluation_view_returns_the_seven_outputs_of_the_set(handlers, services, name):
    metrics = services.evaluation_set(name)["metrics"]
    results, counts, rates, roc, pr, per_class, reliability = handlers.evaluation_view(name)
    assert results.startswith(f"### Results on `{name}`")
    low, high = metrics["accuracy_ci"]
    assert f"| accuracy | {metrics['accuracy']:.4f} (95% CI {low:.4f}-{high:.4f}) |" in results
    assert f"| reviews | {metrics['n']:,} |" in results
    assert np.asarray(counts.data[0].z).tolist() == metrics["confusion_matrix"]
    np.testing.assert_allclose(np.asarray(rates.data[0].z).sum(axis=1), [1.0, 1.0])
    assert list(roc.data[0].x) == metrics["roc_curve"]["fpr"]
    assert list(pr.data[0].x) == metrics["pr_curve"]["recall"]
    assert list(per_class["class"]) == ["negative", "positive", "macro avg"]
    assert per_class["support"].iloc[-1] == metrics["n"]
    assert f"{metrics['ece']:.4f}" in reliability.layout.title.text


def test_evaluation_view_of_an_unknown_set_is_a_clear_error(handlers):
    import gradio as gr

    with pytest.raises(gr.Error, match="no evaluation set 'nope'"):
        handlers.evaluation_view("nope")


# Review texts of each set


def test_services_with_data_join_the_test_texts(services, review_tables):
    texts = services.texts["test"]
    assert texts is not None and len(texts) == len(review_tables[1]) == 16
    assert set(texts.values()) == set(review_tables[1]["text"])
    assert "(16 of 16 rows)" in services.data_messages["test"]
    assert set(services.evaluation_set("test")["predictions"]["key"]) <= set(texts)


def test_a_set_evaluated_from_a_file_reads_its_texts_from_that_file(services, review_tables):
    """evaluate.py ran on a CSV whose text column is `Review Body`: the app reads that column of the same file."""
    texts = services.texts["ours"]
    assert texts is not None, services.data_messages["ours"]
    assert set(texts.values()) == set(review_tables[0].groupby("label").head(6)["text"])
    assert "(12 of 12 rows)" in services.data_messages["ours"]


def test_without_data_the_test_texts_come_from_where_the_set_was_evaluated(two_set_artifacts, small_imdb,
                                                                           review_tables):
    services = Services.load(two_set_artifacts, None, ig_steps=8)
    assert set(services.texts["test"].values()) == set(review_tables[1]["text"])
    assert f"joined from `{small_imdb}`" in services.data_messages["test"]


def test_services_whose_data_was_moved_say_where_texts_come_from(artifacts_without_texts):
    services = Services.load(artifacts_without_texts, None, ig_steps=8)
    assert services.texts == {"test": None}
    message = services.data_messages["test"]
    assert f"evaluated from (`{artifacts_without_texts.parent / 'data-moved-away'}`) is not on this machine" in message
    assert message.endswith(DATA_HINT)
    assert "--data" in DATA_HINT and "SENTIMENT_DATA" in DATA_HINT


def test_a_set_with_no_local_data_gets_the_hint():
    """Such as a set evaluated from the hub: nothing to read the texts from."""
    assert _texts(evaluation_set(["k"], None), None) == (None, DATA_HINT)


def test_services_take_a_folder_with_only_the_test_file(tiny_artifacts, review_tables, tmp_path):
    """What DATA_HINT and --help promise: the app needs no training data to show the test reviews."""
    review_tables[1].to_parquet(tmp_path / "test.parquet", index=False)
    services = Services.load(tiny_artifacts, str(tmp_path), ig_steps=8)
    assert services.texts["test"] is not None
    assert set(services.texts["test"].values()) == set(review_tables[1]["text"])


def test_services_read_the_test_texts_from_one_file_holding_them_among_others(tiny_artifacts, review_tables,
                                                                              tmp_path):
    """As when train.py carved its test split out of one file; that file's text column is `review`."""
    reviews = pd.concat(review_tables).rename(columns={"text": "review"})
    reviews.to_csv(tmp_path / "reviews.csv", index=False)
    services = Services.load(tiny_artifacts, str(tmp_path / "reviews.csv"), ig_steps=8)
    assert services.texts["test"] is not None
    assert set(services.texts["test"].values()) == set(review_tables[1]["text"])
    assert "(16 of 16 rows)" in services.data_messages["test"]


def test_the_join_counts_rows_that_share_a_text_once_each(review_tables, tmp_path):
    """IMDB's test split repeats some reviews word for word; they share a key, and each row counts as joined."""
    texts = review_tables[1]["text"].tolist()[:2]
    pd.DataFrame({"text": texts, "label": [0, 1]}).to_parquet(tmp_path / "test.parquet", index=False)
    keys = [review_key(texts[0]), review_key(texts[0]), review_key(texts[1]), "not-in-the-data"]
    found, message = _texts(evaluation_set(keys, str(tmp_path)), None)
    assert found == {review_key(t): t for t in texts}
    assert f"joined from `{tmp_path}` (3 of 4 rows)" in message


def test_data_given_to_the_app_wins_over_where_the_set_was_evaluated(review_tables, tmp_path):
    review_tables[1].to_parquet(tmp_path / "test.parquet", index=False)
    keys = [review_key(t) for t in review_tables[1]["text"]]
    found, message = _texts(evaluation_set(keys, str(tmp_path / "moved-away")), str(tmp_path))
    assert found is not None and len(found) == 16 and f"joined from `{tmp_path}`" in message


def test_services_with_data_holding_none_of_the_test_reviews_say_so(tiny_artifacts, review_tables, tmp_path):
    review_tables[0].to_parquet(tmp_path / "train-only.parquet", index=False)
    services = Services.load(tiny_artifacts, str(tmp_path / "train-only.parquet"), ig_steps=8)
    assert services.texts["test"] is None
    message = services.data_messages["test"]
    assert f"None of the 48 texts read from `{tmp_path / 'train-only.parquet'}` is one of the 16 of this set" in message
    assert f"(evaluated on `{services.evaluation_set('test')['info']['data']}`); give that data" in message


def test_services_with_a_bad_data_path_still_load_and_say_how_to_fix_it(tiny_artifacts, tmp_path):
    missing = tmp_path / "no-such-imdb"
    services = Services.load(tiny_artifacts, str(missing), ig_steps=8)
    assert services.texts["test"] is None
    message = services.data_messages["test"]
    assert f"Could not read review texts from `{missing}`" in message
    assert "no such file or folder" in message
    assert "--data PATH" in message


def test_services_refuse_a_folder_without_a_model(tmp_path):
    with pytest.raises(SentimentError, match="train.py"):
        Services.load(tmp_path)
