"""The learned channel preference's arithmetic (contacts/engagement.py), on its own: scores decay by half
every half-life, the order engagements arrive in does not matter, clicks outweigh opens, and below the
evidence threshold there is no learned channel."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from wayline_orchestrator.contacts import ChannelScore
from wayline_orchestrator.contacts.engagement import (
    ENGAGEMENT_KINDS,
    HALF_LIFE_US,
    MIN_SCORE,
    added,
    learned_channel,
    score_at,
)

EMAIL, SMS = "CHANNEL_EMAIL", "CHANNEL_SMS"
OPEN, CLICK = ENGAGEMENT_KINDS["Message Opened"][1], ENGAGEMENT_KINDS["Message Clicked"][1]
DAY = 86_400 * 1_000_000


def _scored(channel: str, events: list[tuple[float, int]]) -> ChannelScore | None:
    score: ChannelScore | None = None
    for weight, at in events:
        score = added(score, channel, weight, at)
    return score


def test_a_score_halves_every_half_life() -> None:
    score = ChannelScore(EMAIL, 8.0, 0)
    assert score_at(score, HALF_LIFE_US) == 4.0
    assert score_at(score, 3 * HALF_LIFE_US) == 1.0
    assert score_at(score, -DAY) == 8.0  # a time before the score reads it as of its time


@given(
    st.lists(
        st.tuples(st.sampled_from([OPEN, CLICK]), st.integers(min_value=0, max_value=400 * DAY)),
        min_size=1,
        max_size=12,
    ),
    st.randoms(use_true_random=False),
)
def test_the_order_of_arrival_does_not_change_a_score(events: list[tuple[float, int]], rng: object) -> None:
    shuffled = list(events)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    at = 500 * DAY
    in_order, any_order = _scored(EMAIL, sorted(events, key=lambda e: e[1])), _scored(EMAIL, shuffled)
    assert in_order is not None
    assert any_order is not None
    expected = sum(weight * 0.5 ** ((at - t) / HALF_LIFE_US) for weight, t in events)
    assert math.isclose(score_at(in_order, at), expected, rel_tol=1e-9)
    assert math.isclose(score_at(any_order, at), expected, rel_tol=1e-9)


def test_one_click_outweighs_two_opens_and_reaches_the_threshold() -> None:
    now = 100 * DAY
    email = _scored(EMAIL, [(OPEN, now), (OPEN, now)])
    sms = _scored(SMS, [(CLICK, now)])
    assert email is not None
    assert sms is not None
    assert learned_channel([email, sms], now) == SMS
    assert learned_channel([email], now) == "CHANNEL_UNSPECIFIED"  # 2 < MIN_SCORE
    assert CLICK >= MIN_SCORE > 2 * OPEN


def test_old_evidence_fades_below_the_threshold() -> None:
    sms = _scored(SMS, [(CLICK, 0), (CLICK, DAY)])
    assert sms is not None
    assert learned_channel([sms], 2 * DAY) == SMS
    assert learned_channel([sms], 2 * DAY + 2 * HALF_LIFE_US) == "CHANNEL_UNSPECIFIED"


def test_equal_scores_go_to_the_channel_engaged_with_last() -> None:
    assert learned_channel([ChannelScore(SMS, 4.0, DAY), ChannelScore(EMAIL, 4.0, DAY)], DAY) == SMS
    assert learned_channel([ChannelScore(EMAIL, 4.0, 2 * DAY), ChannelScore(SMS, 4.0, DAY)], 0) == EMAIL
    assert learned_channel([], DAY) == "CHANNEL_UNSPECIFIED"
