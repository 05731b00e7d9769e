"""What UpdateContactPolicy refuses, with the path of every offending field, so that a caller can fix them
all at once: non-positive caps and windows, windows longer than a year, minutes outside a day, empty quiet
periods, unknown time zones, ambiguous consent rules and meaningless channel lists.

And what a stored policy the checks would refuse now means (`in_force`, ADR 78): a cap window over
MAX_WINDOW_DAYS, stored before UpdateContactPolicy limited windows (2026-12), counts as MAX_WINDOW_DAYS."""

from __future__ import annotations

import dataclasses
from collections import Counter

import structlog

from wayline.common.errors import FieldViolation
from wayline_orchestrator.contacts.model import ANY_CHANNEL, ContactPolicy
from wayline_orchestrator.contacts.rules import time_zone, window_label

__all__ = ["MAX_WINDOW_DAYS", "MINUTES_PER_DAY", "in_force", "policy_violations"]

log = structlog.get_logger("wayline.orchestrator.contacts")

MINUTES_PER_DAY = 1440
# A cap's window is at most a year (a leap year's 366 days, for "once a year" caps). Far longer windows mean
# nothing for a contact policy, and beyond ~292,000 years `time - window` no longer fits the ledger's 64-bit
# columns: every CheckContact of the tenant would fail (the policy is read by each one). The proto field's
# comment documents the limit.
MAX_WINDOW_DAYS = 366
_MAX_WINDOW_US = MAX_WINDOW_DAYS * 86_400 * 1_000_000
_ROOT = "contact_policy"


def _caps(policy: ContactPolicy) -> list[FieldViolation]:
    found = []
    for i, cap in enumerate(policy.frequency_caps):
        path = f"{_ROOT}.frequency_caps[{i}]"
        if cap.max_contacts <= 0:
            found.append(FieldViolation(f"{path}.max_contacts", "must be positive", "OUT_OF_RANGE"))
        if not 0 < cap.window_us <= _MAX_WINDOW_US:
            found.append(
                FieldViolation(
                    f"{path}.window",
                    f"must be a positive duration of at most {MAX_WINDOW_DAYS} days (for example 7d)",
                    "OUT_OF_RANGE",
                )
            )
    return found


def _quiet_hours(policy: ContactPolicy) -> list[FieldViolation]:
    found = []
    for i, rule in enumerate(policy.quiet_hours):
        path = f"{_ROOT}.quiet_hours[{i}]"
        for name, minute in (("start_minute", rule.start_minute), ("end_minute", rule.end_minute)):
            if not 0 <= minute < MINUTES_PER_DAY:
                found.append(
                    FieldViolation(
                        f"{path}.{name}", "must be minutes after midnight, 0 to 1439", "OUT_OF_RANGE"
                    )
                )
        if rule.start_minute == rule.end_minute:
            found.append(
                FieldViolation(
                    f"{path}.end_minute",
                    "equals start_minute: the quiet period would be empty",
                    "EMPTY_PERIOD",
                )
            )
        if rule.default_time_zone and time_zone(rule.default_time_zone) is None:
            found.append(
                FieldViolation(
                    f"{path}.default_time_zone",
                    f"{rule.default_time_zone!r} is not an IANA time zone (for example Europe/Paris)",
                    "UNKNOWN_TIME_ZONE",
                )
            )
        for j, channel in enumerate(rule.channels):
            if channel == ANY_CHANNEL:
                found.append(
                    FieldViolation(
                        f"{path}.channels[{j}]", "must name a channel; leave the list empty for all"
                    )
                )
    return found


def _consent_rules(policy: ContactPolicy) -> list[FieldViolation]:
    seen = Counter((r.channel, r.purpose) for r in policy.consent_rules)
    return [
        FieldViolation(
            f"{_ROOT}.consent_rules[{i}]",
            "another rule has the same channel and purpose; which one applies would be ambiguous",
            "DUPLICATE",
        )
        for i, rule in enumerate(policy.consent_rules)
        if seen[(rule.channel, rule.purpose)] > 1
    ]


def _channel_preference(policy: ContactPolicy) -> list[FieldViolation]:
    order = policy.channel_preference.default_order
    path = f"{_ROOT}.channel_preference.default_order"
    return [
        FieldViolation(f"{path}[{i}]", "must name a channel, once", "INVALID")
        for i, channel in enumerate(order)
        if channel == ANY_CHANNEL or channel in order[:i]
    ]


def policy_violations(policy: ContactPolicy) -> list[FieldViolation]:
    """Every problem of `policy`, each with its field path; empty when it can be stored."""
    return _caps(policy) + _quiet_hours(policy) + _consent_rules(policy) + _channel_preference(policy)


def in_force(tenant: str, policy: ContactPolicy) -> ContactPolicy:
    """`policy` as read from the store, as the ledger applies it (ADR 78). A cap window over MAX_WINDOW_DAYS
    can only have been stored before UpdateContactPolicy refused one: it counts as MAX_WINDOW_DAYS, for every
    reader alike (CheckContact, RecordContact with `enforce_policy`, flows' sends, GetContactPolicy, and so
    the next update, which stores it so). The tenant's CheckContact, on Decide's path, answered INTERNAL for
    a window whose microseconds no longer subtract from a time in 64 bits; a shorter one too long still
    answered retry times no Timestamp holds, and a window longer than a year means nothing for a contact
    policy. Logged as `orchestrator.contacts.cap_window_over_limit`, by the caller once per stored policy."""
    over = {
        f"frequency_caps[{i}]": window_label(cap.window_us)
        for i, cap in enumerate(policy.frequency_caps)
        if cap.window_us > _MAX_WINDOW_US
    }
    if not over:
        return policy
    log.warning(
        "orchestrator.contacts.cap_window_over_limit",
        tenant=tenant,
        revision=policy.revision,
        caps=over,
        counted_as=window_label(_MAX_WINDOW_US),
    )
    caps = tuple(
        dataclasses.replace(cap, window_us=min(cap.window_us, _MAX_WINDOW_US))
        for cap in policy.frequency_caps
    )
    return dataclasses.replace(policy, frequency_caps=caps)
