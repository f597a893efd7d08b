"""What a reader of a prediction should know about its input: text that is probably not English, very short
text, and text longer than the model's window (and which part of it the model read). The prediction is given
anyway; these are shown beside it."""

from __future__ import annotations

import logging

from sentiment.errors import SentimentError
from sentiment.predict import MAX_TEXT_CHARS, check_text
from sentiment.text import Encoder

log = logging.getLogger(__name__)

SHORT_WORDS = 4  # fewer words than this rarely carry enough context for a review-trained model
# py3langid's normalised probability; below it, or on fewer words, its guess is too often wrong to show.
LANGUAGE_CONFIDENCE = 0.9
LANGUAGE_MIN_WORDS = 4


class LanguageGuesser:
    """py3langid (langid.py's naive Bayes over byte n-grams, 97 languages: 4.5 MB installed, about 0.6 s to load,
    a tenth of a millisecond per review on one core), loaded once."""

    def __init__(self) -> None:
        from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

        self._identifier = LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=True)

    @classmethod
    def load(cls) -> LanguageGuesser | None:
        """The guesser, or None (with one log line) where py3langid is not installed."""
        try:
            return cls()
        except ImportError:
            log.warning("py3langid is not installed: no warnings about text that is not English "
                        "(pip install -r requirements.txt)")
            return None

    def not_english(self, text: str) -> tuple[str, float] | None:
        """(language code, probability) when the text is confidently another language than English."""
        if len(text.split()) < LANGUAGE_MIN_WORDS:
            return None
        language, probability = self._identifier.classify(text)
        return (language, float(probability)) if language != "en" and probability >= LANGUAGE_CONFIDENCE else None


def window(encoder: Encoder) -> tuple[int, int]:
    """How many word pieces the model reads from the start and from the end of a text longer than its window."""
    budget = encoder.max_length - 2
    if encoder.truncation == "head+tail":
        head = round(budget * encoder.head_ratio)
        return head, budget - head
    return (budget, 0) if encoder.truncation == "head" else (0, budget)


def row_warnings(text: str, n_tokens: int, encoder: Encoder, language: LanguageGuesser | None = None) -> list[str]:
    """The warnings for one text whose length in word pieces ([CLS] and [SEP] included) is `n_tokens`."""
    words = len(text.split())
    if words == 0:
        return ["empty text: no prediction"]
    if len(text) <= MAX_TEXT_CHARS:
        try:
            check_text(text)
        except SentimentError as err:  # invisible characters only, or not valid Unicode
            return [f"not scored: {err}"]
    warnings = []
    guess = language.not_english(text) if language is not None else None
    if guess is not None:
        warnings.append(f"probably not English (looks like '{guess[0]}', {guess[1]:.0%}): the model was trained on "
                        f"English reviews")
    if words < SHORT_WORDS:
        warnings.append(f"very short ({words} word{'s' if words > 1 else ''}): little for the model to go on")
    if len(text) > MAX_TEXT_CHARS:
        warnings.append(f"longer than {MAX_TEXT_CHARS:,} characters: not scored")
    if n_tokens > encoder.max_length:
        head, tail = window(encoder)
        warnings.append(f"{n_tokens} word pieces, more than the model's window of {encoder.max_length}: it read the "
                        f"first {head} and the last {tail}")
    return warnings
