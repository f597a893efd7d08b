"""The one exception type for errors a user can cause (bad path, column, label, text)."""


class SentimentError(ValueError):
    """A problem with the user's input; the message says what to do about it."""
