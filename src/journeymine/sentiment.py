"""Sentiment of customer text: VADER's compound score and a three-way label.

VADER (``vaderSentiment``) is lexicon-based: its lexicon ships inside the package, so scoring
needs no download and gives the same number for the same text on every run and machine.

* ``compound`` is VADER's normalised sum of valences, in [-1, 1];
* the label uses VADER's standard thresholds: ``positive`` when compound >= 0.05,
  ``negative`` when compound <= -0.05, else ``neutral``.

Text is scored as given: HTML in a comment body is treated as plain characters (tags are
unknown words to VADER and score 0), never parsed or rendered.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

POSITIVE_THRESHOLD = 0.05
NEGATIVE_THRESHOLD = -0.05
POSITIVE = "positive"
NEUTRAL = "neutral"
NEGATIVE = "negative"


@dataclass(frozen=True)
class Sentiment:
    compound: float
    label: str


@lru_cache(maxsize=1)
def _analyzer() -> SentimentIntensityAnalyzer:
    # Building the analyser reads the lexicon file (~7,500 entries): do it once per process.
    return SentimentIntensityAnalyzer()


def label_of(compound: float) -> str:
    """``positive`` / ``neutral`` / ``negative`` by VADER's standard 0.05 thresholds."""
    if compound >= POSITIVE_THRESHOLD:
        return POSITIVE
    if compound <= NEGATIVE_THRESHOLD:
        return NEGATIVE
    return NEUTRAL


def score_text(text: str | None) -> Sentiment | None:
    """The sentiment of one text; ``None`` for no text or only whitespace."""
    if text is None or not text.strip():
        return None
    compound = float(_analyzer().polarity_scores(text)["compound"])
    return Sentiment(compound, label_of(compound))


def sentiment_attributes(text: str | None) -> dict[str, object]:
    """``{"sentiment": compound, "sentiment_label": label}`` for a touchpoint; ``{}`` if no text.

    Only the score and label go into attributes: the text itself stays in the raw layer.
    """
    scored = score_text(text)
    if scored is None:
        return {}
    return {"sentiment": scored.compound, "sentiment_label": scored.label}
