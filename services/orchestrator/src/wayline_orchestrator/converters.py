"""Contact-policy and ledger messages ⇄ the ledger's domain types. Enumerations travel as their value names; a
number the contract does not define is refused here, with the field's path."""

from __future__ import annotations

from typing import Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from wayline.common.errors import FieldViolation
from wayline.common.timestamps import (
    MAX_TIMESTAMP_SECONDS,
    MIN_TIMESTAMP_SECONDS,
    duration_violation,
    from_micros,
    timestamp_violation,
)
from wayline.event.v1 import event_pb2
from wayline.orchestrator.v1 import contact_pb2
from wayline.orchestrator.v1 import contact_policy_pb2 as policy_pb
from wayline_orchestrator.contacts import (
    ChannelPreference,
    CheckResult,
    ConsentRule,
    Contact,
    ContactCheck,
    ContactPolicy,
    FrequencyCap,
    QuietHours,
    Violation,
)
from wayline_orchestrator.contacts.validation import MAX_WINDOW_DAYS
from wayline_orchestrator.errors import ContactInvalid, PolicyInvalid

__all__ = [
    "channel_name",
    "check_of",
    "checked_micros",
    "contact_message",
    "contact_micros",
    "contact_of",
    "micros",
    "policy_message",
    "policy_of",
    "result_message",
    "timestamp",
    "violation_message",
]


def micros(ts: Timestamp) -> int:
    return ts.seconds * 1_000_000 + ts.nanos // 1_000


def checked_micros(ts: Timestamp, path: str) -> int:
    """`micros` of a request's Timestamp, refused with its path when outside Timestamp's range: beyond it the
    microseconds no longer fit the ledger's 64-bit columns (an overflow, INTERNAL, instead of the caller's
    error)."""
    problem = timestamp_violation(ts, path)
    if problem is not None:
        raise ContactInvalid([problem])
    return ts.seconds * 1_000_000 + ts.nanos // 1_000


# A contact's time is also where the times an answer derives from it start: its local time in the person's
# zone (up to ±14 h), the end of a quiet period (the next day), a cap's retry time (up to a window, at most
# MAX_WINDOW_DAYS, later). Those must be Timestamps too, so a contact's time lies a day inside Timestamp's
# start and a longest window and two days inside its end.
_DAY = 86_400
_FIRST_CONTACT_SECONDS = MIN_TIMESTAMP_SECONDS + _DAY
_LAST_CONTACT_SECONDS = MAX_TIMESTAMP_SECONDS - (MAX_WINDOW_DAYS + 2) * _DAY
_CONTACT_RANGE = (
    f"must lie between {from_micros(_FIRST_CONTACT_SECONDS * 1_000_000).date().isoformat()} and "
    f"{from_micros(_LAST_CONTACT_SECONDS * 1_000_000).date().isoformat()} (UTC)"
)


def contact_micros(ts: Timestamp, path: str) -> int:
    """`micros` of a contact's time in a request (CheckContact's, RecordContact's), refused with its path
    outside the range above. A few integer comparisons: CheckContact's path."""
    if not _FIRST_CONTACT_SECONDS <= ts.seconds <= _LAST_CONTACT_SECONDS:
        raise ContactInvalid([FieldViolation(path, _CONTACT_RANGE, "OUT_OF_RANGE")])
    return checked_micros(ts, path)


def timestamp(us: int) -> Timestamp:
    return Timestamp(seconds=us // 1_000_000, nanos=(us % 1_000_000) * 1_000)


def _duration_us(d: Duration) -> int:
    return d.seconds * 1_000_000 + d.nanos // 1_000


def _duration(us: int) -> Duration:
    return Duration(seconds=us // 1_000_000, nanos=(us % 1_000_000) * 1_000)


def _name(enum: Any, number: int, path: str, error: type[PolicyInvalid] | type[ContactInvalid]) -> str:
    try:
        return str(enum.Name(number))
    except ValueError:
        raise error([FieldViolation(path, f"{number} is not a value of {enum.DESCRIPTOR.name}")]) from None


def channel_name(
    number: int, path: str, error: type[PolicyInvalid] | type[ContactInvalid] = ContactInvalid
) -> str:
    return _name(event_pb2.Channel, number, path, error)


def _purpose(
    number: int, path: str, error: type[PolicyInvalid] | type[ContactInvalid] = ContactInvalid
) -> str:
    return _name(policy_pb.ContactPurpose, number, path, error)


def _modes(enum: Any, number: int, default: str, path: str) -> str:
    name = _name(enum, number, path, PolicyInvalid)
    return default if name.endswith("_UNSPECIFIED") else name


def policy_of(message: policy_pb.ContactPolicy) -> ContactPolicy:
    """The domain policy of a request's message (its revision, time and etag are output only: not used)."""
    root = "contact_policy"
    # A window with seconds beyond Duration's range or nanos of the wrong sign is refused as such; its range
    # as a window (positive, at most MAX_WINDOW_US) is the policy's rule (contacts/validation.py).
    windows = [
        duration_violation(c.window, f"{root}.frequency_caps[{i}].window")
        for i, c in enumerate(message.frequency_caps)
    ]
    bad_windows = [w for w in windows if w is not None]
    if bad_windows:
        raise PolicyInvalid(bad_windows)
    caps = tuple(
        FrequencyCap(
            channel=channel_name(c.channel, f"{root}.frequency_caps[{i}].channel", PolicyInvalid),
            purposes=tuple(
                _purpose(p, f"{root}.frequency_caps[{i}].purposes[{j}]", PolicyInvalid)
                for j, p in enumerate(c.purposes)
            ),
            max_contacts=c.max_contacts,
            window_us=_duration_us(c.window),
        )
        for i, c in enumerate(message.frequency_caps)
    )
    quiet = tuple(
        QuietHours(
            channels=tuple(
                channel_name(ch, f"{root}.quiet_hours[{i}].channels[{j}]", PolicyInvalid)
                for j, ch in enumerate(q.channels)
            ),
            purposes=tuple(
                _purpose(p, f"{root}.quiet_hours[{i}].purposes[{j}]", PolicyInvalid)
                for j, p in enumerate(q.purposes)
            ),
            start_minute=q.start_minute,
            end_minute=q.end_minute,
            default_time_zone=q.default_time_zone,
            action=_modes(
                policy_pb.QuietHoursAction,
                q.action,
                "QUIET_HOURS_ACTION_DEFER",
                f"{root}.quiet_hours[{i}].action",
            ),
        )
        for i, q in enumerate(message.quiet_hours)
    )
    consent = tuple(
        ConsentRule(
            channel=channel_name(r.channel, f"{root}.consent_rules[{i}].channel", PolicyInvalid),
            purpose=_purpose(r.purpose, f"{root}.consent_rules[{i}].purpose", PolicyInvalid),
            mode=_modes(
                policy_pb.ConsentMode, r.mode, "CONSENT_MODE_OPT_IN", f"{root}.consent_rules[{i}].mode"
            ),
        )
        for i, r in enumerate(message.consent_rules)
    )
    preference = message.channel_preference
    return ContactPolicy(
        frequency_caps=caps,
        quiet_hours=quiet,
        consent_rules=consent,
        channel_preference=ChannelPreference(
            enforce=preference.enforce,
            default_order=tuple(
                channel_name(c, f"{root}.channel_preference.default_order[{i}]", PolicyInvalid)
                for i, c in enumerate(preference.default_order)
            ),
        ),
    )


def policy_message(policy: ContactPolicy) -> policy_pb.ContactPolicy:
    message = policy_pb.ContactPolicy(
        frequency_caps=[
            policy_pb.FrequencyCap(
                channel=event_pb2.Channel.Value(c.channel),
                purposes=[policy_pb.ContactPurpose.Value(p) for p in c.purposes],
                max_contacts=c.max_contacts,
                window=_duration(c.window_us),
            )
            for c in policy.frequency_caps
        ],
        quiet_hours=[
            policy_pb.QuietHours(
                channels=[event_pb2.Channel.Value(c) for c in q.channels],
                purposes=[policy_pb.ContactPurpose.Value(p) for p in q.purposes],
                start_minute=q.start_minute,
                end_minute=q.end_minute,
                default_time_zone=q.default_time_zone,
                action=policy_pb.QuietHoursAction.Value(q.action),
            )
            for q in policy.quiet_hours
        ],
        consent_rules=[
            policy_pb.ConsentRule(
                channel=event_pb2.Channel.Value(r.channel),
                purpose=policy_pb.ContactPurpose.Value(r.purpose),
                mode=policy_pb.ConsentMode.Value(r.mode),
            )
            for r in policy.consent_rules
        ],
        channel_preference=policy_pb.ChannelPreferencePolicy(
            enforce=policy.channel_preference.enforce,
            default_order=[event_pb2.Channel.Value(c) for c in policy.channel_preference.default_order],
        ),
        revision=policy.revision,
        etag=policy.etag,
    )
    if policy.update_time:
        message.update_time.CopyFrom(timestamp(policy.update_time))
    return message


def check_of(message: contact_pb2.ContactCheck, path: str) -> ContactCheck:
    return ContactCheck(
        channel=channel_name(message.channel, f"{path}.channel"),
        purpose=_purpose(message.purpose, f"{path}.purpose"),
        action_id=message.action_id,
    )


def violation_message(violation: Violation) -> contact_pb2.ContactViolation:
    message = contact_pb2.ContactViolation(
        reason=contact_pb2.ContactBlockReason.Value(f"CONTACT_BLOCK_REASON_{violation.reason}"),
        rule=violation.rule,
        description=violation.description,
    )
    if violation.retry_time is not None:
        message.retry_time.CopyFrom(timestamp(violation.retry_time))
    return message


def result_message(result: CheckResult) -> contact_pb2.ContactCheckResult:
    check = result.check
    message = contact_pb2.ContactCheckResult(
        check=contact_pb2.ContactCheck(
            channel=event_pb2.Channel.Value(check.channel),
            purpose=policy_pb.ContactPurpose.Value(check.purpose),
            action_id=check.action_id,
        ),
        allowed=result.allowed,
        violations=[violation_message(v) for v in result.violations],
    )
    if result.next_allowed_time is not None:
        message.next_allowed_time.CopyFrom(timestamp(result.next_allowed_time))
    return message


def contact_of(message: contact_pb2.ContactRecord) -> Contact:
    """The domain contact of a request's message (`record_time` is output only: not used)."""
    path = "contact"
    return Contact(
        contact_id=message.contact_id,
        person_id=message.person_id,
        channel=channel_name(message.channel, f"{path}.channel"),
        purpose=_purpose(message.purpose, f"{path}.purpose"),
        action_id=message.action_id,
        source=_name(contact_pb2.ContactSource, message.source, f"{path}.source", ContactInvalid),
        flow=message.flow,
        flow_version=message.flow_version,
        flow_step_id=message.flow_step_id,
        decision_id=message.decision_id,
        contact_time=contact_micros(message.contact_time, f"{path}.contact_time")
        if message.HasField("contact_time")
        else 0,
    )


def contact_message(contact: Contact) -> contact_pb2.ContactRecord:
    return contact_pb2.ContactRecord(
        contact_id=contact.contact_id,
        person_id=contact.person_id,
        channel=event_pb2.Channel.Value(contact.channel),
        purpose=policy_pb.ContactPurpose.Value(contact.purpose),
        action_id=contact.action_id,
        source=contact_pb2.ContactSource.Value(contact.source),
        flow=contact.flow,
        flow_version=contact.flow_version,
        flow_step_id=contact.flow_step_id,
        decision_id=contact.decision_id,
        contact_time=timestamp(contact.contact_time),
        record_time=timestamp(contact.record_time),
    )
