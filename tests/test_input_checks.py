"""Warnings beside a prediction: text that is not English, very short text, text longer than the window."""

from __future__ import annotations

import pytest

from sentiment.input_checks import LanguageGuesser, row_warnings, window
from sentiment.services import Handlers, Services
from sentiment.text import Encoder

# Written for these tests.
FRENCH = "Ce film était magnifique, les acteurs sont excellents et je l'ai adoré du début à la fin."
GERMAN = "Der Film war viel zu lang und die Handlung hat mich überhaupt nicht überzeugt."
ENGLISH = "A warm and funny film, though the middle drags a little. I would watch it again."


@pytest.fixture(scope="module")
def guesser() -> LanguageGuesser:
    loaded = LanguageGuesser.load()
    assert loaded is not None, "py3langid is in requirements.txt"
    return loaded


def test_other_languages_are_flagged_and_english_is_not(guesser):
    assert guesser.not_english(FRENCH)[0] == "fr"
    assert guesser.not_english(GERMAN)[0] == "de"
    assert guesser.not_english(ENGLISH) is None
    assert guesser.not_english("Très bon film") is None  # three words: too few for a reliable guess


def test_window_says_which_pieces_the_model_reads(tokenizer):
    assert window(Encoder(tokenizer, 512, "head+tail", 0.25)) == (128, 382)
    assert window(Encoder(tokenizer, 128, "head", 0.25)) == (126, 0)
    assert window(Encoder(tokenizer, 128, "tail", 0.25)) == (0, 126)


def test_row_warnings(tokenizer, guesser):
    encoder = Encoder(tokenizer, 128, "head+tail", 0.25)
    assert row_warnings(ENGLISH, 20, encoder, guesser) == []
    assert row_warnings("  ", 0, encoder, guesser) == ["empty text: no prediction"]
    assert row_warnings("Loved it", 4, encoder, guesser) == ["very short (2 words): little for the model to go on"]
    (french,) = row_warnings(FRENCH, 30, encoder, guesser)
    assert french.startswith("probably not English (looks like 'fr'")
    (long,) = row_warnings(ENGLISH, 300, encoder, None)
    assert long == ("300 word pieces, more than the model's window of 128: it read the first 32 and the last 94")


def test_the_predict_tab_shows_the_warnings(tiny_artifacts):
    handlers = Handlers(Services.load(tiny_artifacts, None, ig_steps=8))
    assert handlers.input_warnings(ENGLISH) == ""
    assert "**Note:** Probably not English" in handlers.input_warnings(FRENCH)
    assert "Very short (1 word)" in handlers.input_warnings("Great!")
    for bad in (None, "  ", "x" * 200_001):  # the "warnings" API endpoint is reachable without a prediction
        assert handlers.input_warnings(bad) == ""
