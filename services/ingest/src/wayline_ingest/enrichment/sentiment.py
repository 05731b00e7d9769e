"""Sentiment of customer text in [-1, 1]: VADER in English, its French port (vaderSentiment-fr) in French.

Why lexicons rather than a model: both libraries ship their word lists inside the wheel, so nothing is
downloaded at run time, a score costs a fraction of a millisecond on one core, and the same text always
gets the same score (events are re-enriched on replay). The price is accuracy on sarcasm and on negations
that a word list cannot see; docs/enrichment.md gives the measured figures and the limits.

The score is VADER's `compound`: the sum of the word valences after its rules (negation, boosters,
capitals, punctuation), normalised into [-1, 1]. Before scoring, typographic apostrophes become ASCII ones,
because both libraries look for "n't" (English) or split on "'" (French) and phones type U+2019; and only the
first `max_chars` characters are scored (cut at a space), which bounds the cost of a long email and keeps
the part that matters in a reply, the top, not the quoted history below it.

The libraries ship no type information; they are imported by name and held behind `_Analyzer`, the one
method this module uses.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Mapping
from types import ModuleType
from typing import Protocol

from wayline_ingest.enrichment.language import Language

__all__ = ["DEFAULT_MAX_CHARS", "SentimentScorer"]

DEFAULT_MAX_CHARS = 5_000

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})


class _Analyzer(Protocol):
    def polarity_scores(self, text: str) -> Mapping[str, float]: ...


class SentimentScorer:
    """Scores text with the lexicon of its language; build one per process (loading takes ~0.1 s)."""

    def __init__(self, max_chars: int = DEFAULT_MAX_CHARS) -> None:
        if max_chars < 1:
            raise ValueError(f"max_chars must be positive, got {max_chars}")
        self._max_chars = max_chars
        english = importlib.import_module("vaderSentiment.vaderSentiment")
        french = _import_french()
        self._analyzers: dict[Language, _Analyzer] = {
            Language.ENGLISH: english.SentimentIntensityAnalyzer(),
            Language.FRENCH: french.SentimentIntensityAnalyzer(),
        }

    def score(self, text: str, language: Language) -> float:
        """The sentiment of `text` from -1 (very negative) to 1 (very positive); 0 when it carries none."""
        prepared = _truncate(text.translate(_APOSTROPHES), self._max_chars)
        compound = float(self._analyzers[language].polarity_scores(prepared)["compound"])
        # Clamped for the contract, whatever a library version does; "+ 0.0" turns a -0.0 into 0.0.
        return min(1.0, max(-1.0, compound)) + 0.0


def _truncate(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    space = cut.rfind(" ")
    return cut[:space] if space > 0 else cut


def _import_french() -> ModuleType:
    """Imports vaderSentiment-fr without the side effects of its import.

    Its module appends "/" to `sys.path` (so any folder at the root of the file system would become
    importable), has an invalid escape in a regex literal (a warning when its source is compiled), and
    imports fuzzywuzzy, which warns about a missing C speed-up that the exact lookups used here never
    need (`polarity_scores` does no fuzzy matching). All three are contained here, once, at start-up.
    """
    had_root = "/" in sys.path
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Using slow pure-python SequenceMatcher", UserWarning)
        warnings.filterwarnings("ignore", "invalid escape sequence", DeprecationWarning)
        warnings.filterwarnings("ignore", "invalid escape sequence", SyntaxWarning)
        module = importlib.import_module("vaderSentiment_fr.vaderSentiment")
    if not had_root and "/" in sys.path:
        sys.path.remove("/")
    return module
