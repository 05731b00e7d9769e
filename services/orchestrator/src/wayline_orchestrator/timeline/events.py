"""The timeline's events of the contact ledger: `Contact Sent` for a contact the ledger recorded, `Contact
Suppressed` for a send a flow's action step could not make because the contact policy refused it.

Both are track events on the contact's channel, at the contact's time, with the contact's fields as
properties (`contact_id`, `channel`, `purpose`, `action_id`, `source`, `flow`, `flow_version`,
`flow_step_id`, `decision_id` when any) and, for a suppression, its `reasons` (a list of {reason, rule,
description}). The event id derives from the tenant and the contact id (a suppression: the step run's
suppression key), so a batch shipped twice is one event in the journey store (ingest and journeys
deduplicate by event id).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf import timestamp_pb2

from wayline.event.v1 import event_pb2
from wayline_orchestrator.contacts.model import Contact, Violation

__all__ = [
    "CONTACT_SENT",
    "CONTACT_SUPPRESSED",
    "EVENT_NAMESPACE",
    "ContactEvent",
    "sent",
    "suppressed",
    "track_event",
]

CONTACT_SENT = "Contact Sent"
CONTACT_SUPPRESSED = "Contact Suppressed"
# uuid5(NAMESPACE_URL, "https://wayline.dev/ns/contact-events"). Fixed forever: changing it would give a
# shipped-again row another event id, stored twice.
EVENT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://wayline.dev/ns/contact-events")


@dataclass(frozen=True)
class ContactEvent:
    """One event waiting in the outbox: everything but the person's identifier, named at shipping time."""

    event_id: str
    person_id: str
    name: str
    channel: str  # the contract's enum value name, as the ledger keeps it
    time_us: int
    properties: dict[str, Any]

    def body(self) -> str:
        return json.dumps(
            {
                "name": self.name,
                "channel": self.channel,
                "time_us": self.time_us,
                "properties": self.properties,
            },
            sort_keys=True,
        )

    @classmethod
    def of(cls, event_id: str, person_id: str, body: str) -> ContactEvent:
        fields = json.loads(body)
        return cls(
            event_id, person_id, fields["name"], fields["channel"], fields["time_us"], fields["properties"]
        )


def _event_id(tenant: str, key: str) -> str:
    return str(uuid.uuid5(EVENT_NAMESPACE, f"{tenant}/{key}"))


def _properties(contact: Contact) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "contact_id": contact.contact_id,
        "channel": contact.channel,
        "purpose": contact.purpose,
        "action_id": contact.action_id,
        "source": contact.source,
        "flow": contact.flow,
        "flow_version": contact.flow_version,
        "flow_step_id": contact.flow_step_id,
    }
    if contact.decision_id:
        properties["decision_id"] = contact.decision_id
    return properties


def sent(tenant: str, contact: Contact) -> ContactEvent:
    """The `Contact Sent` event of a contact the ledger recorded."""
    return ContactEvent(
        _event_id(tenant, f"contact/{contact.contact_id}"),
        contact.person_id,
        CONTACT_SENT,
        contact.channel,
        contact.contact_time,
        _properties(contact),
    )


def suppressed(tenant: str, contact: Contact, key: str, violations: Sequence[Violation]) -> ContactEvent:
    """The `Contact Suppressed` event of `contact` refused by the policy; `key` names this refusal (a flow's
    step run: the step visit's key and the attempt)."""
    reasons = [{"reason": v.reason, "rule": v.rule, "description": v.description} for v in violations]
    return ContactEvent(
        _event_id(tenant, f"suppression/{key}"),
        contact.person_id,
        CONTACT_SUPPRESSED,
        contact.channel,
        contact.contact_time,
        {**_properties(contact), "reasons": reasons},
    )


def track_event(event: ContactEvent, identifier: event_pb2.Identifier) -> event_pb2.Event:
    """The event ingest takes, naming the person by `identifier` (identity resolves it): never a person id."""
    channel = event.channel if event.channel in event_pb2.Channel.keys() else "CHANNEL_OTHER"  # noqa: SIM118
    built = event_pb2.Event(
        event_id=event.event_id,
        type=event_pb2.EVENT_TYPE_TRACK,
        name=event.name,
        channel=event_pb2.Channel.Value(channel),
        identifiers=[identifier],
        timestamp=timestamp_pb2.Timestamp(
            seconds=event.time_us // 1_000_000, nanos=event.time_us % 1_000_000 * 1_000
        ),
    )
    built.properties.update(event.properties)
    return built
