"""Hostile and unusual input in every tab: a clear gr.Error or a normal answer, never a traceback; markup is
passed on as text, never as HTML."""

from __future__ import annotations

import gradio as gr
import pandas as pd
import pytest

from sentiment.ui import Handlers, Services

ODD_TEXTS = {
    "control characters": "Great \x00\x01\x02 film \x7f with \x1b[31m escape codes \ufffd and a tab\t.",
    "binary as latin-1": bytes(range(256)).decode("latin-1") + " a good movie",
    "chinese": "这部电影非常好看，演员的表演很精彩。",
    "arabic": "فيلم رائع جدا وأنصح بمشاهدته",
    "emoji": "Loved it 🎬🍿👍👍 would watch again 😍",
    "combining marks": "Zalgo: t̷̢h̵e̶ ̸f̵i̴l̸m̶ was fine",
    "script tag": "<script>alert('x')</script> A wonderful film.",
    "img onerror": '<img src=x onerror="alert(1)"> The acting was awful.',
    "markdown link": "[click me](javascript:alert(1)) and **bold** claims: a dull movie.",
    "zero-width spaces around words": "\u200bgood\u200b film\u200b",
}
HUGE = "word " * 220_000  # over 1 MB


@pytest.fixture(scope="module")
def handlers(tiny_artifacts, small_imdb) -> Handlers:
    return Handlers(Services.load(tiny_artifacts, str(small_imdb), ig_steps=4))


@pytest.mark.parametrize("text", ODD_TEXTS.values(), ids=ODD_TEXTS.keys())
def test_predict_answers_odd_text(handlers, text):
    probabilities = handlers.predict(text)
    assert set(probabilities) == {"negative", "positive"}
    assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("text", ODD_TEXTS.values(), ids=ODD_TEXTS.keys())
def test_explain_returns_the_text_verbatim_as_plain_segments(handlers, text):
    highlighted, table, note = handlers.explain(text)
    # The segments are the user's text, character for character: HighlightedText renders them as text.
    assert "".join(segment for segment, _ in highlighted) == text
    assert isinstance(table, pd.DataFrame) and isinstance(note, str)


@pytest.mark.parametrize("text", ODD_TEXTS.values(), ids=ODD_TEXTS.keys())
def test_fairness_probe_answers_odd_text(handlers, text):
    table, _, note = handlers.fairness(text)
    assert isinstance(table, pd.DataFrame) and "P(positive)" in note


@pytest.mark.parametrize("call", ["predict", "explain", "fairness"])
@pytest.mark.parametrize("text", ["", " \n\t ", "\u200b\u200b", HUGE], ids=["empty", "whitespace", "invisible", "1MB"])
def test_unusable_text_gets_a_clear_message_in_every_tab(handlers, call, text):
    with pytest.raises(gr.Error) as raised:
        getattr(handlers, call)(text)
    message = str(raised.value.message)
    assert "empty" in message or "limit" in message


def test_markup_in_the_fairness_variants_stays_text(handlers):
    text = "<b>He</b> was <script>alert(1)</script> brilliant."
    table, _, _ = handlers.fairness(text)
    assert "<b>She</b> was <script>alert(1)</script> brilliant." in table["variant"].tolist()
