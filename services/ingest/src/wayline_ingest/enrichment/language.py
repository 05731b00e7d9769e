"""Which lexicon scores a text: English or French, the two languages our first users write.

The rule, in order:

1. The event's locale, when its primary language subtag (BCP 47, case-insensitive, `-` or `_` separated)
   is `fr` or `en`: the person's own setting is a better signal than a guess from a few words.
2. Otherwise (no locale, or another language), a count of function words: French wins only with strictly
   more hits than English; a tie, including a text with none of them, goes to English, the default.

Function words ("the", "and", "le", "est", "j'"...) are frequent in every text, few in number, and almost
never shared between the two languages, so counting them is as reliable as a statistical detector on
sentences this short, costs a few microseconds, needs no model, and is deterministic. Words that both
languages use ("a", "on", "me", "son", "plus") are left out. Only the first `DETECTION_CHARS` characters
are read: the opening of a message settles its language.
"""

from __future__ import annotations

import enum
import re

__all__ = ["DETECTION_CHARS", "Language", "choose_language", "detect_language", "language_of_locale"]

DETECTION_CHARS = 1_000


class Language(enum.StrEnum):
    """A language that has a sentiment lexicon, by its ISO 639-1 code."""

    ENGLISH = "en"
    FRENCH = "fr"


_LOCALE_LANGUAGES = {"en": Language.ENGLISH, "fr": Language.FRENCH}

# Words, with a trailing apostrophe kept so that French elisions ("c'", "j'", "qu'") stay distinct.
_WORD = re.compile(r"[^\W\d_]+'?")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})

_ENGLISH = frozenset(
    """the and is are was were be been have has had i i' you your it it' its my this that these those to
    of in for with not no but they we our what why how when can could would will please thanks thank from
    at just still after do does did don' didn' can' won' isn' doesn' haven' very all any there if hi hello
    """.split()  # noqa: SIM905 (a word list reads best as words)
)
_FRENCH = frozenset(
    """le la les un une des du de et est je j' tu il elle nous vous ils elles ne n' pas que qu' qui ce c'
    cette ces mon ma mes votre vos notre nos pour avec dans sur mais très au aux l' d' s' m' merci bonjour
    ça été être ai avez sont toujours rien aucun aucune chez depuis
    """.split()  # noqa: SIM905
)


def language_of_locale(locale: str) -> Language | None:
    """The language named by the primary subtag of `locale` ("fr-CA" -> French), if it has a lexicon."""
    primary = locale.replace("_", "-").split("-", 1)[0].strip().lower()
    return _LOCALE_LANGUAGES.get(primary)


def detect_language(text: str) -> Language:
    """French when the text has strictly more French than English function words; English otherwise."""
    english = french = 0
    for word in _WORD.findall(text[:DETECTION_CHARS].lower().translate(_APOSTROPHES)):
        if word in _ENGLISH:
            english += 1
        elif word in _FRENCH:
            french += 1
    return Language.FRENCH if french > english else Language.ENGLISH


def choose_language(locale: str, text: str) -> Language:
    """The locale's language when it has a lexicon, else the one detected in `text` (see the module doc)."""
    return language_of_locale(locale) or detect_language(text)
