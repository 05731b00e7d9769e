"""The contact ledger and the contact policy: one ledger of every contact made with a person, by flows and
by decisions, and the tenant's rules (frequency caps, quiet hours, consent, channel preference) read against
it."""

from wayline_orchestrator.contacts.engagement import Engagement, learned_channel
from wayline_orchestrator.contacts.ledger import (
    MASK_PATHS,
    CheckAnswer,
    ContactEvents,
    ContactLedger,
    ContactPage,
    NoContactEvents,
    Recorded,
)
from wayline_orchestrator.contacts.model import (
    ChannelPreference,
    ChannelScore,
    CheckResult,
    Consent,
    ConsentRule,
    Contact,
    ContactCheck,
    ContactPolicy,
    FrequencyCap,
    Person,
    QuietHours,
    Violation,
)
from wayline_orchestrator.contacts.store import Attribute, ConsentStatement, ContactFilter, ContactStore

__all__ = [
    "MASK_PATHS",
    "Attribute",
    "ChannelPreference",
    "ChannelScore",
    "CheckAnswer",
    "CheckResult",
    "Consent",
    "ConsentRule",
    "ConsentStatement",
    "Contact",
    "ContactCheck",
    "ContactEvents",
    "ContactFilter",
    "ContactLedger",
    "ContactPage",
    "ContactPolicy",
    "ContactStore",
    "Engagement",
    "FrequencyCap",
    "NoContactEvents",
    "Person",
    "QuietHours",
    "Recorded",
    "Violation",
    "learned_channel",
]
