"""The contact policy's rules as pure functions: one check of one person against the policy, what the ledger
holds of them, and the time of the contact. No store, no clock, no protobuf: CheckContact, RecordContact with
`enforce_policy`, flows and the property tests all call the same code.

A contact is allowed when no rule forbids it; every rule that forbids it is reported, each with the time it
would next allow the contact when that is known.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import NamedTuple

from wayline.common.time_zones import first_showing, load_zone
from wayline.common.timestamps import from_micros, to_micros
from wayline_orchestrator.contacts.model import (
    ANY_CHANNEL,
    ANY_PURPOSE,
    TRANSACTIONAL,
    CheckResult,
    ConsentRule,
    ContactCheck,
    ContactPolicy,
    FrequencyCap,
    Person,
    QuietHours,
    Violation,
    purpose_of,
)

__all__ = ["Past", "channel_label", "evaluate", "preferred_channel", "time_zone", "window_label"]


class Past(NamedTuple):
    """One contact of the ledger, as the caps count it."""

    channel: str
    purpose: str
    contact_time: int


def channel_label(channel: str) -> str:
    """`CHANNEL_EMAIL` → `email`: the short name events and messages use."""
    return channel.removeprefix("CHANNEL_").lower()


def window_label(window_us: int) -> str:
    """A window in the largest whole unit: `7 days`, `36 hours`, `90 minutes`, `45 seconds`."""
    seconds = window_us / 1_000_000
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds:g} seconds"


@lru_cache(maxsize=1024)
def time_zone(name: str) -> tzinfo | None:
    """The IANA zone `name` (UTC for an empty name); None when it is not a zone this machine knows."""
    return load_zone(name) if name else UTC


def _covers_purpose(purposes: Sequence[str], purpose: str) -> bool:
    # Empty means every purpose but transactional: receipts are never capped or kept quiet by default.
    return purpose in purposes if purposes else purpose != TRANSACTIONAL


def _cap_counts(cap: FrequencyCap, channel: str, purpose: str) -> bool:
    return cap.channel in (ANY_CHANNEL, channel) and _covers_purpose(cap.purposes, purpose_of(purpose))


def _frequency_cap(index: int, cap: FrequencyCap, history: Sequence[Past], at: int) -> Violation | None:
    # The rolling window (at - window, at]: a contact made at t frees its slot at t + window. This loop runs
    # for every cap of every check on Decide's hot path, so it is written out rather than composed.
    since = at - cap.window_us
    channel = cap.channel
    purposes = {purpose_of(p) for p in cap.purposes}
    times = sorted(
        t
        for c, p, t in history
        if since < t <= at
        and channel in (ANY_CHANNEL, c)
        and (purpose_of(p) in purposes if purposes else p != TRANSACTIONAL)
    )
    if len(times) < cap.max_contacts:
        return None
    # Once the oldest `len - max + 1` have left the window, one slot is free.
    frees = times[len(times) - cap.max_contacts] + cap.window_us
    scope = f"{channel_label(cap.channel)} " if cap.channel != ANY_CHANNEL else ""
    return Violation(
        reason="FREQUENCY_CAP",
        rule=f"frequency_caps[{index}]",
        description=f"{len(times)} of {cap.max_contacts} {scope}contacts in the last "
        f"{window_label(cap.window_us)}",
        retry_time=frees,
    )


# Periods whose end a DST gap can swallow, one after the other: one per gap, and zones change twice a year.
_GAPS_CROSSED = 2


def _quiet_end(rule: QuietHours, instant: datetime, zone: tzinfo) -> datetime | None:
    """The end (UTC) of the quiet period `instant` is in, read on the clocks of `zone`: the first instant
    after it that its last day's clocks show the end time or later. An end the clocks skip is reached as they
    jump over it (`first_showing`); one they show twice, at its second showing when `instant` lies in the
    repeated hour's second pass (its first has passed). None when `instant` is outside the period."""
    local = instant.astimezone(zone)
    minute = local.hour * 60 + local.minute
    start, end = rule.start_minute, rule.end_minute
    if start <= end:
        if not start <= minute < end:
            return None
        day = local.date()
    else:  # spans midnight: from start today to end tomorrow
        if end <= minute < start:
            return None
        day = local.date() + timedelta(days=1) if minute >= start else local.date()
    wall = time(end // 60, end % 60)
    first = first_showing(day, wall, zone)
    if first > instant:
        return first
    return datetime.combine(day, wall, tzinfo=zone).replace(fold=1).astimezone(UTC)


def _quiet_hours(
    index: int, rule: QuietHours, person: Person, check: ContactCheck, at: int
) -> Violation | None:
    if rule.channels and check.channel not in rule.channels:
        return None
    if not _covers_purpose(rule.purposes, purpose_of(check.purpose)):
        return None
    # The person's latest known zone; the rule's default when unknown (or not a zone this machine knows).
    known = bool(person.time_zone) and time_zone(person.time_zone) is not None
    zone_name = person.time_zone if known else rule.default_time_zone
    zone = time_zone(zone_name) or UTC
    local = from_micros(at).astimezone(zone)
    end = _quiet_end(rule, local, zone)
    if end is None:
        return None
    # The clocks can jump from the end straight into the next period: an allowed window shorter than the jump
    # (quiet 00:01-00:00 in Santiago, whose clocks go from 00:00 to 01:00) does not happen that day. The retry
    # is the first instant outside every period.
    for _ in range(_GAPS_CROSSED):
        later = _quiet_end(rule, end, zone)
        if later is None:
            break
        end = later
    suppress = rule.action == "QUIET_HOURS_ACTION_SUPPRESS"
    return Violation(
        reason="QUIET_HOURS",
        rule=f"quiet_hours[{index}]",
        description=f"{local:%H:%M} in {zone_name or 'UTC'} is within the quiet hours "
        f"{rule.start_minute // 60:02d}:{rule.start_minute % 60:02d}-{rule.end_minute // 60:02d}:"
        f"{rule.end_minute % 60:02d}",
        retry_time=None if suppress else to_micros(end),
    )


def _consent_rule(rules: Sequence[ConsentRule], channel: str, purpose: str) -> tuple[int, ConsentRule] | None:
    """The most specific rule for the contact: channel and purpose, then channel, then purpose, then
    neither; the first of equally specific ones."""
    best: tuple[int, int, ConsentRule] | None = None
    for index, rule in enumerate(rules):
        if rule.channel not in (ANY_CHANNEL, channel) or rule.purpose not in (ANY_PURPOSE, purpose):
            continue
        rank = 2 * (rule.channel == channel) + (rule.purpose == purpose)
        if best is None or rank > best[0]:
            best = (rank, index, rule)
    return (best[1], best[2]) if best else None


def _consent(policy: ContactPolicy, person: Person, check: ContactCheck) -> Violation | None:
    purpose = purpose_of(check.purpose)
    found = _consent_rule(policy.consent_rules, check.channel, purpose)
    if found is None or found[1].mode == "CONSENT_MODE_NOT_REQUIRED":
        return None
    index, rule = found
    covering = [c for c in person.consents if c.covers(check.channel, purpose)]
    latest = max(covering, key=lambda c: c.event_time) if covering else None
    what = f"{channel_label(check.channel)} {purpose.removeprefix('CONTACT_PURPOSE_').lower()} contacts"
    if latest is not None and not latest.granted:
        description = f"the person withdrew consent to {what}"
    elif latest is None and rule.mode != "CONSENT_MODE_OPT_OUT":
        description = f"{what} need consent (opt-in) and the person has not granted it"
    else:
        return None
    return Violation(reason="NO_CONSENT", rule=f"consent_rules[{index}]", description=description)


def _preference(policy: ContactPolicy, person: Person, check: ContactCheck) -> Violation | None:
    preferred = person.preferred_channel
    if not policy.channel_preference.enforce or preferred in (ANY_CHANNEL, check.channel):
        return None
    if purpose_of(check.purpose) == TRANSACTIONAL:
        return None
    return Violation(
        reason="CHANNEL_PREFERENCE",
        rule="channel_preference",
        description=f"the person prefers {channel_label(preferred)}, and preferences are enforced",
    )


def evaluate(
    policy: ContactPolicy, person: Person, history: Sequence[Past], check: ContactCheck, at: int
) -> CheckResult:
    """Whether `policy` allows the contact `check` with `person` at `at` (microseconds), given the person's
    ledger `history`, and every rule that forbids it."""
    found: list[Violation | None] = [
        _frequency_cap(i, cap, history, at)
        for i, cap in enumerate(policy.frequency_caps)
        if _cap_counts(cap, check.channel, check.purpose)
    ]
    found += [_quiet_hours(i, rule, person, check, at) for i, rule in enumerate(policy.quiet_hours)]
    found += [_consent(policy, person, check), _preference(policy, person, check)]
    return CheckResult(check=check, violations=tuple(v for v in found if v is not None))


def preferred_channel(policy: ContactPolicy, person: Person, results: Sequence[CheckResult]) -> str:
    """The person's stated channel, else the first channel of the policy's default order that one of the
    checks allows; ANY_CHANNEL when neither."""
    if person.preferred_channel != ANY_CHANNEL:
        return person.preferred_channel
    allowed = {r.check.channel for r in results if r.allowed}
    return next((c for c in policy.channel_preference.default_order if c in allowed), ANY_CHANNEL)
