"""Support texts: short sentences from templates, positive or negative, in English or French.

Every (language, tone, template, item) combination is built once into TEXTS, and events carry an index into
it, so texts cost nothing per event; `TEXT_FRENCH` and `TEXT_POSITIVE` give each text's true language and
tone, the labels a sentiment model can be checked against.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["TEXTS", "TEXT_FRENCH", "TEXT_POSITIVE", "draw_texts"]

ITEMS = {  # singular, and feminine in French, so that every template agrees with every item
    "en": ("jacket", "scarf", "order", "dress", "shirt", "watch"),
    "fr": ("veste", "écharpe", "commande", "robe", "chemise", "montre"),
}
TEMPLATES = {
    ("en", True): (
        "Thanks a lot, my {item} arrived early and it is perfect.",
        "Great service, the {item} fits beautifully, I love it.",
        "The agent was really helpful about my {item}, thank you!",
        "Very happy with the {item}, I will order again.",
        "Quick answer and the {item} is exactly what I wanted, excellent.",
    ),
    ("en", False): (
        "My {item} arrived damaged and nobody answers, this is unacceptable.",
        "I have been waiting two weeks for my {item}, very disappointed.",
        "The {item} is too expensive and the checkout keeps failing.",
        "Terrible experience, the {item} was wrong and the refund is late.",
        "I am angry, I was charged twice for the {item}.",
    ),
    ("fr", True): (
        "Merci beaucoup, ma {item} est arrivée en avance, elle est parfaite.",
        "Super service, la {item} me va très bien, je l'adore.",
        "Le conseiller a été vraiment utile pour ma {item}, merci !",
        "Très contente de la {item}, je recommanderai.",
        "Réponse rapide et la {item} est exactement ce que je voulais, excellent.",
    ),
    ("fr", False): (
        "Ma {item} est arrivée abîmée et personne ne répond, c'est inacceptable.",
        "J'attends ma {item} depuis deux semaines, très déçue.",
        "La {item} est trop chère et le paiement échoue sans cesse.",
        "Expérience horrible, la {item} n'était pas la bonne et le remboursement tarde.",
        "Je suis furieuse, on m'a débité deux fois pour la {item}.",
    ),
}
N_TEMPLATES = 5
N_ITEMS = 6


def _build() -> tuple[tuple[str, ...], NDArray[np.bool_], NDArray[np.bool_]]:
    texts: list[str] = []
    french: list[bool] = []
    positive: list[bool] = []
    for language in ("en", "fr"):  # index = ((language * 2 + tone) * N_TEMPLATES + template) * N_ITEMS + item
        for tone in (False, True):
            for template in TEMPLATES[(language, tone)]:
                for item in ITEMS[language]:
                    texts.append(template.format(item=item))
                    french.append(language == "fr")
                    positive.append(tone)
    return tuple(texts), np.array(french), np.array(positive)


TEXTS, TEXT_FRENCH, TEXT_POSITIVE = _build()


def draw_texts(
    rng: np.random.Generator, french: NDArray[np.bool_], positive: NDArray[np.bool_]
) -> NDArray[np.int32]:
    """An index into TEXTS per row, in the row's language and tone, template and item uniform."""
    n = len(french)
    template = rng.integers(0, N_TEMPLATES, n)
    item = rng.integers(0, N_ITEMS, n)
    group = french.astype(np.int64) * 2 + positive.astype(np.int64)
    return ((group * N_TEMPLATES + template) * N_ITEMS + item).astype(np.int32)
