"""The error explorer's handlers on the tiny model's two evaluation sets: the mistakes of the chosen set, filtered,
with their reviews where the texts can be read; selecting one explains it; every bad input is a clear gr.Error."""

from __future__ import annotations

import gradio as gr
import pytest

from sentiment.services import DATA_HINT, TOP_COLUMNS, Handlers, Services

SETS = ["test", "ours"]


@pytest.fixture(scope="module")
def services(two_set_artifacts, small_imdb) -> Services:
    return Services.load(two_set_artifacts, str(small_imdb), ig_steps=8)


@pytest.fixture(scope="module")
def handlers(services) -> Handlers:
    return Handlers(services)


@pytest.fixture(scope="module")
def handlers_without_texts(artifacts_without_texts) -> Handlers:
    return Handlers(Services.load(artifacts_without_texts, None, ig_steps=8))


def select(row: int, column: int = 0) -> gr.SelectData:
    """The event a click on a Dataframe cell sends."""
    return gr.SelectData(None, {"index": [row, column], "value": None})


def mistakes(handlers: Handlers, name: str = "test"):
    return handlers.errors(name, 0.5, "all", None, None)


@pytest.mark.parametrize("name", SETS)
def test_errors_lists_exactly_the_misclassified_rows_of_the_set(handlers, services, name):
    predictions = services.evaluation_set(name)["predictions"]
    table = mistakes(handlers, name)
    wrong = predictions[predictions["predicted"] != predictions["labels"]]
    assert len(table) > 0, f"the tiny model is expected to get some of the {len(predictions)} reviews wrong"
    assert sorted(table["key"]) == sorted(wrong["key"])
    assert (table["true label"] != table["predicted label"]).all()
    assert list(table["confidence"]) == sorted(table["confidence"], reverse=True)


def test_the_errors_table_switches_with_the_set(handlers):
    test, ours = (set(mistakes(handlers, name)["key"]) for name in SETS)
    assert test and ours and not test & ours  # the two sets hold different reviews


def test_each_mistake_previews_its_own_review(handlers, services):
    table = mistakes(handlers)
    texts = services.texts["test"]  # joined by key from the texts given with --data
    assert all(review and review.split()[0] in texts[key] for key, review in zip(table["key"], table["review"],
                                                                                  strict=True))


def test_errors_filters(handlers):
    everything = mistakes(handlers)
    by_label = {label: handlers.errors("test", 0.5, label, None, None) for label in ("negative", "positive")}
    assert len(by_label["negative"]) + len(by_label["positive"]) == len(everything)
    for label, table in by_label.items():
        assert (table["true label"] == label).all()
    low, high = everything["tokens"].min(), everything["tokens"].max()
    short = handlers.errors("test", 0.5, "all", None, float(low))
    assert len(short) >= 1 and (short["tokens"] <= low).all()
    long = handlers.errors("test", 0.5, "all", float(high), None)
    assert len(long) >= 1 and (long["tokens"] >= high).all()
    assert handlers.errors("test", 1.0, "all", None, None)["confidence"].ge(1.0).all()


@pytest.mark.parametrize(("filters", "message"), [(("test", 1.5, "all", None, None), "between 0 and 1"),
                                                  (("test", 0.5, "neutral", None, None), "true label"),
                                                  (("test", 0.5, "all", 300.0, 100.0), "below minimum"),
                                                  (("nope", 0.5, "all", None, None), "no evaluation set 'nope'")])
def test_errors_rejects_bad_filters_with_a_clear_message(handlers, filters, message):
    with pytest.raises(gr.Error, match=message):
        handlers.errors(*filters)


def test_errors_note_says_where_each_sets_texts_come_from(handlers, services, handlers_without_texts):
    assert [handlers.errors_note(name) for name in SETS] == [services.data_messages[name] for name in SETS]
    assert handlers_without_texts.errors_note("test").endswith(DATA_HINT)


def test_selecting_a_mistake_explains_its_review(handlers, services):
    table = mistakes(handlers)
    row = len(table) - 1
    highlighted, top, note = handlers.explain_error("test", table, select(row, 3))
    text = services.texts["test"][table.iloc[row]["key"]]
    assert "".join(segment for segment, _ in highlighted) == text
    assert list(top.columns) == TOP_COLUMNS
    assert "Convergence delta" in note


def test_errors_without_texts_still_lists_the_mistakes(handlers_without_texts, handlers):
    table = mistakes(handlers_without_texts)
    assert list(table["key"]) == list(mistakes(handlers)["key"])
    assert (table["review"] == "").all()


def test_selecting_a_mistake_without_texts_says_how_to_get_them(handlers_without_texts):
    table = mistakes(handlers_without_texts)
    with pytest.raises(gr.Error) as caught:
        handlers_without_texts.explain_error("test", table, select(0))
    assert DATA_HINT in caught.value.message
    assert str(table.iloc[0]["key"]) in caught.value.message
