"""The channel preference learned from engagement: how much a person engages with the messages of each
channel, as exponentially decayed scores, and the channel they favour. Pure functions, no store, no clock.

An engagement event (`Message Opened`, `Message Clicked`, `Message Replied`, carrying the ledger's
`contact_id` of the message, as docs/flows.md documents) adds its weight to the score of the contact's
channel: a click or a reply (3) says more than an open (1), which image proxies and previews also cause.
Each message counts once per kind of engagement, so a redelivered event, or a message opened five times,
adds once. Scores halve every HALF_LIFE_US (30 days): what a person did last month weighs more than what
they did last year, and stale evidence fades out.

A score is kept as (value, time): the value as of that time. Adding a weight at `at` decays the value to
the later of the two times before adding, so events arriving out of order give the same score as in order
(the sum of each weight decayed from its own time). The learned channel is the one with the highest score
at the time asked, if that score reaches MIN_SCORE, 2.5: a click or a reply in the last week or so, three
opens in that time, or more evidence from longer ago (a threshold between whole sums, so that a fresh click
still counts a moment later, when its 3 has decayed to 2.99...); below it the person has no learned
preference. ContactPolicy.ChannelPreferencePolicy has no field for the half-life or
the threshold yet, so both are these documented constants (ADR 41).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from wayline_orchestrator.contacts.model import ANY_CHANNEL, ChannelScore

__all__ = [
    "ENGAGEMENT_KINDS",
    "HALF_LIFE_US",
    "MIN_SCORE",
    "ChannelScore",
    "Engagement",
    "added",
    "learned_channel",
    "score_at",
]

HALF_LIFE_US = 30 * 86_400 * 1_000_000
MIN_SCORE = 2.5
# An engagement event's name → (its kind, its weight).
ENGAGEMENT_KINDS: dict[str, tuple[str, float]] = {
    "Message Opened": ("opened", 1.0),
    "Message Clicked": ("clicked", 3.0),
    "Message Replied": ("replied", 3.0),
}


class Engagement(NamedTuple):
    """One engagement event: the person, the ledger's contact engaged with, the kind (ENGAGEMENT_KINDS)."""

    person_id: str
    contact_id: str
    kind: str
    weight: float
    event_time: int
    event_id: str


def _decay(elapsed_us: int) -> float:
    return float(0.5 ** (elapsed_us / HALF_LIFE_US))


def score_at(score: ChannelScore, at: int) -> float:
    """The score decayed to `at`; a time before `score_time` reads the score as of `score_time`."""
    return score.score * _decay(max(0, at - score.score_time))


def added(current: ChannelScore | None, channel: str, weight: float, at: int) -> ChannelScore:
    """`current` (None: no engagement yet) with `weight` added at time `at`, whatever the order of arrival."""
    if current is None:
        return ChannelScore(channel, weight, at)
    if at >= current.score_time:
        return ChannelScore(channel, score_at(current, at) + weight, at)
    return ChannelScore(channel, current.score + weight * _decay(current.score_time - at), current.score_time)


def learned_channel(scores: Iterable[ChannelScore], at: int) -> str:
    """The channel with the highest score at `at` when it reaches MIN_SCORE, else ANY_CHANNEL. Equal scores
    go to the channel engaged with last, then to the channel's name, so the answer never flickers."""
    ranked = [(score_at(s, at), s.score_time, s.channel) for s in scores]
    best = max(ranked, default=None)
    return best[2] if best is not None and best[0] >= MIN_SCORE else ANY_CHANNEL
