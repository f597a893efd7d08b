"""Sentiment analysis of movie reviews: fine-tune, evaluate, explain and probe a BERT-family model."""

from sentiment.errors import SentimentError

__all__ = ["SentimentError"]
