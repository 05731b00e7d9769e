"""Generated people with known truth, for measuring stitching quality (tests and bench).

Each person has devices (a device id and the anonymous id of the app or browser on it), some register (a user
id), most have one or two emails (typed with random case and spaces) and some a phone (typed in national or
international format). Households share a tablet on which each registered member logs in. Trackers send
placeholders (`undefined`, `null`, `0`, the all-zero UUID) where an id is missing. Every event remembers who
really made it.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count

from wayline.common.timestamps import to_micros
from wayline_identity.model import Key, ResolutionInput
from wayline_identity.rules import Rules

__all__ = ["GeneratedEvent", "Quality", "generate", "pair_quality", "reachable"]

PLACEHOLDERS = ("undefined", "null", "0", "00000000-0000-0000-0000-000000000000", "anonymous")
DETERMINISTIC = frozenset({"user_id", "email", "phone"})


@dataclass(frozen=True)
class GeneratedEvent:
    truth: int  # the person who made it
    item: ResolutionInput

    @property
    def deterministic(self) -> bool:
        """Carries an identifier that names one person (not a device that may be shared)."""
        return any(
            kind in DETERMINISTIC and value not in PLACEHOLDERS for kind, value in self.item.identifiers
        )


def _noisy_email(rng: random.Random, email: str) -> str:
    typed = "".join(c.upper() if rng.random() < 0.3 else c for c in email)
    return " " * rng.randint(0, 2) + typed + " " * rng.randint(0, 2)


def _noisy_phone(rng: random.Random, national: str) -> str:
    return rng.choice([f"+33 {national[1:]}", national, f"0033{national[1:]}", f"+33{national[1:]}"])


def generate(people: int, seed: int = 1, households: int = 0) -> list[GeneratedEvent]:
    rng = random.Random(seed)
    ids = count(1)
    clock = (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=i) for i in count())
    out: list[GeneratedEvent] = []

    def emit(truth: int, event_type: str, *identifiers: Key) -> None:
        at = to_micros(next(clock))
        out.append(GeneratedEvent(truth, ResolutionInput(f"g{next(ids)}", at, event_type, identifiers)))

    for person in range(people):
        user = ("user_id", f"user-{person}") if rng.random() < 0.7 else None
        emails = [f"person{person}.{n}@example.com" for n in range(rng.choice([0, 1, 1, 2]))]
        phone = f"06{rng.randrange(10**8):08d}" if rng.random() < 0.4 else None
        devices = [
            (("device_id", f"dev-{person}-{d}"), ("anonymous_id", f"anon-{person}-{d}"))
            for d in range(rng.randint(1, 3))
        ]
        for device, anonymous in devices:
            for _ in range(rng.randint(1, 4)):
                placeholder = ("user_id", rng.choice(PLACEHOLDERS)) if rng.random() < 0.2 else None
                emit(person, "page", anonymous, device, *([placeholder] if placeholder else []))
            if user:
                emit(person, "identify", user, anonymous, device)
            elif emails and rng.random() < 0.5:
                emit(person, "identify", ("email", _noisy_email(rng, emails[0])), anonymous)
        for email in emails:
            # A newsletter signup on one of the person's devices, sometimes while logged in.
            context = [user] if user and rng.random() < 0.5 else [rng.choice(devices)[1]]
            emit(person, "identify", ("email", _noisy_email(rng, email)), *context)
        if phone:
            # A call to the contact centre, which looks the caller up by email or customer number when it can.
            known = [user] if user else [("email", _noisy_email(rng, emails[0]))] if emails else []
            emit(person, "track", ("phone", _noisy_phone(rng, phone)), *known)
    for household in range(households):
        # Two registered people log in on one shared tablet.
        tablet = (("device_id", f"tablet-{household}"), ("anonymous_id", f"tablet-anon-{household}"))
        members = [people + 2 * household, people + 2 * household + 1]
        for member in members:
            user = ("user_id", f"user-{member}")
            emit(member, "identify", user, ("email", f"person{member}@example.com"))
            emit(member, "identify", user, *tablet)
            emit(member, "track", user, *tablet)
            for _ in range(2):  # browsing before logging in: only the tablet says who it might be
                emit(member, "page", *tablet)
    return out


@dataclass(frozen=True)
class Quality:
    precision: float
    recall: float
    events: int


def pair_quality(truth: Sequence[Hashable], predicted: Sequence[Hashable]) -> Quality:
    """Pairwise precision and recall: of the event pairs put on one profile, how many are one person; of the
    event pairs of one person, how many are on one profile."""

    def pairs(counter: Counter[object]) -> int:
        return sum(n * (n - 1) // 2 for n in counter.values())

    together = pairs(Counter(predicted))
    same = pairs(Counter(truth))
    both = pairs(Counter(zip(truth, predicted, strict=True)))
    return Quality(both / together if together else 1.0, both / same if same else 1.0, len(truth))


def reachable(events: list[GeneratedEvent], rules: Rules) -> list[tuple[int, Key]]:
    """The best grouping any resolver could reach: within each true person, the events joined by shared
    usable identifiers (a person whose two devices never met stays two groups). One label per event."""
    parent: dict[tuple[int, Key], tuple[int, Key]] = {}

    def find(node: tuple[int, Key]) -> tuple[int, Key]:
        parent.setdefault(node, node)
        while parent[node] != node:
            node = parent[node]
        return node

    usable: list[list[Key]] = []
    for event in events:
        keys = [k for k in (rules.normalise(i) for i in event.item.identifiers) if isinstance(k, tuple)]
        usable.append(keys)
        for key in keys[1:]:
            parent[find((event.truth, key))] = find((event.truth, keys[0]))
    return [
        find((e.truth, keys[0])) if keys else (e.truth, ("", e.item.event_id))
        for e, keys in zip(events, usable, strict=True)
    ]
