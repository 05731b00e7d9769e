"""The contact ledger's types, free of protobuf: the policy, the contacts, the checks and their answers, and
what the ledger knows of a person (consent, stated preferred channel, time zone, and the engagement scores
per channel from which `contacts/engagement.py` learns a preferred channel).

Channels and purposes are the contract's enum value names (`CHANNEL_EMAIL`, `CONTACT_PURPOSE_MARKETING`),
so that the JSON the store keeps stays readable and a renumbering could never change its meaning. Times are
microseconds since the epoch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "ALL",
    "ANY_CHANNEL",
    "ANY_PURPOSE",
    "MARKETING",
    "TRANSACTIONAL",
    "ChannelPreference",
    "ChannelScore",
    "CheckResult",
    "Consent",
    "ConsentRule",
    "Contact",
    "ContactCheck",
    "ContactPolicy",
    "FrequencyCap",
    "Person",
    "QuietHours",
    "Violation",
    "purpose_of",
]

ANY_CHANNEL = "CHANNEL_UNSPECIFIED"
ANY_PURPOSE = "CONTACT_PURPOSE_UNSPECIFIED"
MARKETING = "CONTACT_PURPOSE_MARKETING"
TRANSACTIONAL = "CONTACT_PURPOSE_TRANSACTIONAL"
# A consent event's scope that covers every channel or every purpose (`"channel": "all"`).
ALL = "ALL"


def purpose_of(purpose: str) -> str:
    """The contract treats an unset purpose as marketing, the strictest."""
    return MARKETING if purpose == ANY_PURPOSE else purpose


@dataclass(frozen=True)
class FrequencyCap:
    channel: str = ANY_CHANNEL  # ANY_CHANNEL: every channel together (the overall cap)
    purposes: tuple[str, ...] = ()  # empty: every purpose but transactional
    max_contacts: int = 0
    window_us: int = 0


@dataclass(frozen=True)
class QuietHours:
    channels: tuple[str, ...] = ()  # empty: every channel
    purposes: tuple[str, ...] = ()  # empty: every purpose but transactional
    start_minute: int = 0
    end_minute: int = 0  # below start_minute: the period spans midnight
    default_time_zone: str = ""  # empty: UTC
    action: str = "QUIET_HOURS_ACTION_DEFER"


@dataclass(frozen=True)
class ConsentRule:
    channel: str = ANY_CHANNEL
    purpose: str = ANY_PURPOSE
    mode: str = "CONSENT_MODE_OPT_IN"


@dataclass(frozen=True)
class ChannelPreference:
    enforce: bool = False
    default_order: tuple[str, ...] = ()


@dataclass(frozen=True)
class ContactPolicy:
    """A tenant's policy; revision 0 is the empty policy of a tenant that never set one."""

    frequency_caps: tuple[FrequencyCap, ...] = ()
    quiet_hours: tuple[QuietHours, ...] = ()
    consent_rules: tuple[ConsentRule, ...] = ()
    channel_preference: ChannelPreference = field(default_factory=ChannelPreference)
    revision: int = 0
    update_time: int = 0

    @property
    def etag(self) -> str:
        return str(self.revision)


@dataclass(frozen=True)
class Contact:
    """One ledger entry. `contact_time` 0 means "when recorded" until the ledger fills it in."""

    contact_id: str
    person_id: str
    channel: str
    purpose: str = ANY_PURPOSE
    action_id: str = ""
    source: str = "CONTACT_SOURCE_UNSPECIFIED"
    flow: str = ""
    flow_version: int = 0
    flow_step_id: str = ""
    decision_id: str = ""
    contact_time: int = 0
    record_time: int = 0


@dataclass(frozen=True)
class ContactCheck:
    channel: str
    purpose: str = ANY_PURPOSE
    action_id: str = ""


@dataclass(frozen=True)
class Violation:
    reason: str  # CONTACT_BLOCK_REASON_* without the prefix: FREQUENCY_CAP, QUIET_HOURS, ...
    rule: str  # the rule's path in the policy, such as `frequency_caps[1]`
    description: str
    retry_time: int | None = None  # None: unknown or never


@dataclass(frozen=True)
class CheckResult:
    check: ContactCheck
    violations: tuple[Violation, ...] = ()

    @property
    def allowed(self) -> bool:
        return not self.violations

    @property
    def next_allowed_time(self) -> int | None:
        """The latest retry time of the violations; None when allowed, or when one of them never frees."""
        if not self.violations or any(v.retry_time is None for v in self.violations):
            return None
        return max(v.retry_time for v in self.violations if v.retry_time is not None)


@dataclass(frozen=True)
class Consent:
    """One consent statement of a person: its scope (a channel or ALL, a purpose or ALL) and when it was
    made; for a contact, the latest statement whose scope covers it wins."""

    channel: str
    purpose: str
    granted: bool
    event_time: int

    def covers(self, channel: str, purpose: str) -> bool:
        return self.channel in (ALL, channel) and self.purpose in (ALL, purpose)


@dataclass(frozen=True)
class ChannelScore:
    """A person's engagement with one channel: `score` as of `score_time` (microseconds); see
    `contacts/engagement.py`."""

    channel: str
    score: float
    score_time: int


@dataclass(frozen=True)
class Person:
    """What the ledger knows of a person beyond their contacts, from their events. The learned preferred
    channel is `engagement.learned_channel(person.engagement, at)`: it depends on the time asked."""

    consents: tuple[Consent, ...] = ()
    preferred_channel: str = ANY_CHANNEL  # ANY_CHANNEL: none stated
    time_zone: str = ""  # empty: unknown
    engagement: tuple[ChannelScore, ...] = ()  # one per channel engaged with
