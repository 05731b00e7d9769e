"""The policy's rules as pure functions, with hypothesis: a frequency cap forbids exactly when its window is
full and frees a slot exactly at the retry time it reports; quiet hours forbid every instant between the
check and the reported end of the period, and no longer, in zones with DST changes (and Lord Howe's half-hour
one) and for periods that span midnight."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.breadth import examples
from wayline.common.timestamps import to_micros
from wayline_orchestrator.contacts.model import (
    ContactCheck,
    ContactPolicy,
    FrequencyCap,
    Person,
    QuietHours,
)
from wayline_orchestrator.contacts.rules import Past, evaluate, window_label

HOUR = 3_600_000_000
DAY = 24 * HOUR
START = to_micros(datetime(2026, 1, 1, tzinfo=UTC))
ZONES = ["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "America/Santiago"]
EMAIL = ContactCheck("CHANNEL_EMAIL", "CONTACT_PURPOSE_MARKETING")

instants = st.integers(START, START + 365 * DAY)
# The zones' changes of 2026 (zone, the instant, the local minute of day the clocks leave): a gap in spring
# and a repeat in autumn, at 02:00 (Paris, New York), at midnight (Santiago), by half an hour (Lord Howe), at
# a quarter to the hour (Chatham) and across midnight (Nuuk).
# Instants near them, with a period starting or ending near the change, find what a year of instants rarely
# hits.
CHANGES = [
    ("Europe/Paris", datetime(2026, 3, 29, 1, tzinfo=UTC), 120),
    ("Europe/Paris", datetime(2026, 10, 25, 1, tzinfo=UTC), 180),
    ("America/New_York", datetime(2026, 3, 8, 7, tzinfo=UTC), 120),
    ("America/New_York", datetime(2026, 11, 1, 6, tzinfo=UTC), 120),
    ("America/Santiago", datetime(2026, 4, 5, 3, tzinfo=UTC), 0),
    ("America/Santiago", datetime(2026, 9, 6, 4, tzinfo=UTC), 0),
    ("Australia/Lord_Howe", datetime(2026, 4, 4, 15, tzinfo=UTC), 120),
    ("Australia/Lord_Howe", datetime(2026, 10, 3, 15, 30, tzinfo=UTC), 120),
    ("Pacific/Chatham", datetime(2026, 4, 4, 14, tzinfo=UTC), 225),  # at 03:45, to 02:45
    ("Pacific/Chatham", datetime(2026, 9, 26, 14, tzinfo=UTC), 165),  # at 02:45, to 03:45
    ("America/Nuuk", datetime(2026, 3, 29, 1, tzinfo=UTC), 23 * 60),  # from 23:00 to 00:00 the next day
]
minutes = st.integers(0, 1439)


def _near(minute: int) -> st.SearchStrategy[int]:
    return st.integers(minute - 90, minute + 90).map(lambda m: m % 1440)


# (zone, instant, start minute, end minute) of a quiet period and a check.
quiet_cases = st.one_of(
    st.tuples(st.sampled_from(ZONES), instants, minutes, minutes),
    st.sampled_from(CHANGES).flatmap(
        lambda change: st.tuples(
            st.just(change[0]),
            st.integers(to_micros(change[1]) - 30 * HOUR, to_micros(change[1]) + 30 * HOUR),
            st.one_of(minutes, _near(change[2])),
            st.one_of(_near(change[2]), minutes),
        )
    ),
)
past = st.builds(
    Past,
    st.sampled_from(["CHANNEL_EMAIL", "CHANNEL_SMS"]),
    st.sampled_from(
        ["CONTACT_PURPOSE_MARKETING", "CONTACT_PURPOSE_TRANSACTIONAL", "CONTACT_PURPOSE_UNSPECIFIED"]
    ),
    st.integers(START, START + 20 * DAY),
)


@settings(max_examples=examples(150), deadline=None)
@given(
    history=st.lists(past, max_size=30),
    max_contacts=st.integers(1, 5),
    window=st.integers(1, 10 * DAY),
    at=st.integers(START, START + 20 * DAY),
)
def test_a_cap_forbids_exactly_when_its_window_is_full(
    history: list[Past], max_contacts: int, window: int, at: int
) -> None:
    cap = FrequencyCap("CHANNEL_EMAIL", (), max_contacts, window)
    policy = ContactPolicy(frequency_caps=(cap,))
    counted = [
        p
        for p in history
        if p.channel == "CHANNEL_EMAIL"
        and p.purpose != "CONTACT_PURPOSE_TRANSACTIONAL"
        and at - window < p.contact_time <= at
    ]
    result = evaluate(policy, Person(), history, EMAIL, at)
    assert result.allowed == (len(counted) < max_contacts)
    if not result.allowed:
        retry = result.violations[0].retry_time
        assert retry is not None
        assert retry > at
        # Nothing later than `at` is recorded: the slot frees exactly at the retry time, not a moment before.
        before = [p for p in history if p.contact_time <= at]
        assert evaluate(policy, Person(), before, EMAIL, retry).allowed
        assert not evaluate(policy, Person(), before, EMAIL, retry - 1).allowed


@settings(max_examples=examples(500), deadline=None)
@given(case=quiet_cases, probe=st.floats(0, 1, exclude_max=True))
def test_quiet_hours_forbid_until_the_end_they_report(case: tuple[str, int, int, int], probe: float) -> None:
    zone, at, start, end = case
    if start == end:
        return
    policy = ContactPolicy(
        quiet_hours=(QuietHours(start_minute=start, end_minute=end, default_time_zone=zone),)
    )
    result = evaluate(policy, Person(), [], EMAIL, at)
    if result.allowed:
        return
    retry = result.violations[0].retry_time
    assert retry is not None
    # The end of this night, never a later one, unless the clocks skip the whole allowed window that day.
    allowed_minutes = (start - end) % (24 * 60)
    assert at < retry <= at + (49 if allowed_minutes <= 60 else 25) * HOUR
    assert evaluate(policy, Person(), [], EMAIL, retry).allowed
    inside = at + int((retry - at) * probe)
    assert not evaluate(policy, Person(), [], EMAIL, inside).allowed
    assert not evaluate(policy, Person(), [], EMAIL, retry - 1).allowed  # the first allowed instant


def test_an_allowed_window_the_clocks_skip_moves_the_retry_to_the_next_one() -> None:
    """Quiet from 00:01 to 00:00 leaves one allowed minute a day; Santiago's clocks go from 00:00 to 01:00 on
    6 September 2026, so that day has none: the retry is the next midnight, not the skipped one (which
    would land in the next period)."""
    rule = QuietHours(start_minute=1, end_minute=0, default_time_zone="America/Santiago")
    policy = ContactPolicy(quiet_hours=(rule,))
    at = to_micros(datetime(2026, 9, 5, 4, 1, tzinfo=UTC))  # 00:01 on the 5th in Santiago (-04:00)
    result = evaluate(policy, Person(), [], EMAIL, at)
    assert not result.allowed
    next_midnight = to_micros(datetime(2026, 9, 7, 3, 0, tzinfo=UTC))  # 00:00 on the 7th (-03:00)
    assert result.violations[0].retry_time == next_midnight
    after_the_gap = to_micros(datetime(2026, 9, 6, 4, 0, tzinfo=UTC))  # 01:00 on the 6th (-03:00)
    assert evaluate(policy, Person(), [], EMAIL, after_the_gap).violations


def test_a_quiet_night_ending_in_the_hour_the_clocks_skip_ends_as_they_jump() -> None:
    """Quiet from 22:00 to 02:30 in New York: on 8 March 2026 the clocks go from 02:00 EST to 03:00 EDT, so
    the night ends at the jump (03:00 EDT), not at 02:30 read with the winter offset (03:30 EDT)."""
    rule = QuietHours(start_minute=22 * 60, end_minute=2 * 60 + 30, default_time_zone="America/New_York")
    policy = ContactPolicy(quiet_hours=(rule,))
    at = to_micros(datetime(2026, 3, 8, 4, tzinfo=UTC))  # 23:00 EST on the 7th
    jump = to_micros(datetime(2026, 3, 8, 7, tzinfo=UTC))  # 02:00 EST = 03:00 EDT
    assert evaluate(policy, Person(), [], EMAIL, at).violations[0].retry_time == jump
    assert evaluate(policy, Person(), [], EMAIL, jump).allowed
    assert not evaluate(policy, Person(), [], EMAIL, jump - 1).allowed


def test_a_quiet_night_in_the_hour_the_clocks_repeat_ends_at_the_ends_second_showing() -> None:
    """Quiet from 00:00 to 02:30 in Paris: on 25 October 2026 the clocks go back from 03:00 CEST to 02:00 CET.
    At 02:10 CET (the repeated hour's second pass) 02:30 CEST has passed: the night ends at 02:30 CET, not
    at a retry time before the check."""
    rule = QuietHours(start_minute=0, end_minute=2 * 60 + 30, default_time_zone="Europe/Paris")
    policy = ContactPolicy(quiet_hours=(rule,))
    second_pass = to_micros(datetime(2026, 10, 25, 1, 10, tzinfo=UTC))  # 02:10 CET
    end = to_micros(datetime(2026, 10, 25, 1, 30, tzinfo=UTC))  # 02:30 CET
    assert evaluate(policy, Person(), [], EMAIL, second_pass).violations[0].retry_time == end
    assert not evaluate(policy, Person(), [], EMAIL, end - 1).allowed
    first_pass = to_micros(datetime(2026, 10, 25, 0, 10, tzinfo=UTC))  # 02:10 CEST: ends at 02:30 CEST
    first_end = first_pass + 20 * 60_000_000
    assert evaluate(policy, Person(), [], EMAIL, first_pass).violations[0].retry_time == first_end


def test_a_time_zone_this_machine_does_not_know_falls_back_to_the_rules_default() -> None:
    rule = QuietHours(start_minute=21 * 60, end_minute=8 * 60, default_time_zone="Asia/Tokyo")
    noon_utc = to_micros(datetime(2026, 1, 15, 12, tzinfo=UTC))  # 21:00 in Tokyo, 07:00 in New York
    policy = ContactPolicy(quiet_hours=(rule,))
    tokyo = evaluate(policy, Person(time_zone="Nowhere/Land"), [], EMAIL, noon_utc)
    assert "Asia/Tokyo" in tokyo.violations[0].description
    new_york = evaluate(policy, Person(time_zone="America/New_York"), [], EMAIL, noon_utc)
    assert "America/New_York" in new_york.violations[0].description
    assert new_york.violations[0].retry_time == to_micros(datetime(2026, 1, 15, 13, tzinfo=UTC))


def test_window_labels_read_naturally() -> None:
    assert window_label(7 * DAY) == "7 days"
    assert window_label(DAY) == "1 day"
    assert window_label(36 * HOUR) == "36 hours"
    assert window_label(90 * 60_000_000) == "90 minutes"
    assert window_label(1_500_000) == "1.5 seconds"
