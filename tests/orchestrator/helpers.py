"""Builders and readers the ledger's tests share: policies, checks, contacts, consent events, and the
google.rpc details of a refusal."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TypeAlias

from google.protobuf.duration_pb2 import Duration
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp

from wayline.event.v1 import event_pb2
from wayline.orchestrator.v1 import contact_pb2
from wayline.orchestrator.v1 import contact_policy_pb2 as policy_pb
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline.orchestrator.v1 import orchestrator_service_pb2_grpc as pb_grpc

Auth = tuple[tuple[str, str], ...]
Channel: TypeAlias = event_pb2.Channel.ValueType
Purpose: TypeAlias = policy_pb.ContactPurpose.ValueType
Stub = pb_grpc.OrchestratorServiceStub
DAY = 86_400
EMAIL = event_pb2.CHANNEL_EMAIL
SMS = event_pb2.CHANNEL_SMS
PUSH = event_pb2.CHANNEL_PUSH
MARKETING = policy_pb.CONTACT_PURPOSE_MARKETING
TRANSACTIONAL = policy_pb.CONTACT_PURPOSE_TRANSACTIONAL
SERVICE = policy_pb.CONTACT_PURPOSE_SERVICE


def at(text: str) -> Timestamp:
    """A UTC instant written `2026-03-02T10:00`."""
    ts = Timestamp()
    ts.FromDatetime(datetime.fromisoformat(text).replace(tzinfo=UTC))
    return ts


def days(n: float) -> Duration:
    return Duration(seconds=int(n * DAY))


def cap(
    max_contacts: int,
    window: Duration,
    channel: Channel = event_pb2.CHANNEL_UNSPECIFIED,
    purposes: tuple[Purpose, ...] = (),
) -> policy_pb.FrequencyCap:
    return policy_pb.FrequencyCap(
        channel=channel, purposes=purposes, max_contacts=max_contacts, window=window
    )


def set_policy(
    stub: Stub, auth: Auth, policy: policy_pb.ContactPolicy, *paths: str
) -> policy_pb.ContactPolicy:
    request = pb.UpdateContactPolicyRequest(contact_policy=policy, update_mask=FieldMask(paths=list(paths)))
    return stub.UpdateContactPolicy(request, metadata=auth, timeout=10).contact_policy


def check(
    stub: Stub, auth: Auth, person: str, when: Timestamp, *checks: tuple[Channel, Purpose]
) -> pb.CheckContactResponse:
    request = pb.CheckContactRequest(
        person_id=person,
        checks=[contact_pb2.ContactCheck(channel=c, purpose=p) for c, p in checks],
        contact_time=when,
    )
    return stub.CheckContact(request, metadata=auth, timeout=10)


def record(
    stub: Stub,
    auth: Auth,
    person: str,
    when: Timestamp,
    channel: Channel = EMAIL,
    purpose: Purpose = MARKETING,
    contact_id: str = "",
    enforce: bool = False,
) -> pb.RecordContactResponse:
    contact = contact_pb2.ContactRecord(
        contact_id=contact_id or str(uuid.uuid4()),
        person_id=person,
        channel=channel,
        purpose=purpose,
        action_id="spring-offer",
        source=contact_pb2.CONTACT_SOURCE_FLOW,
        contact_time=when,
    )
    request = pb.RecordContactRequest(contact=contact, enforce_policy=enforce)
    return stub.RecordContact(request, metadata=auth, timeout=10)


def event(
    person: str, name: str, when: Timestamp, timezone: str = "", **properties: object
) -> event_pb2.Event:
    message = event_pb2.Event(
        event_id=str(uuid.uuid4()),
        type=event_pb2.EVENT_TYPE_TRACK,
        name=name,
        channel=event_pb2.CHANNEL_WEB,
        timestamp=when,
        person_id=person,
    )
    message.properties.update(properties)  # type: ignore[arg-type]
    message.context.timezone = timezone
    return message


def observe(stub: Stub, auth: Auth, *events: event_pb2.Event) -> int:
    request = pb.ObserveEventsRequest(events=list(events))
    return stub.ObserveEvents(request, metadata=auth, timeout=10).observed_count


def blocks(result: contact_pb2.ContactCheckResult) -> list[tuple[str, str]]:
    """(reason without its prefix, rule) of each violation."""
    return [
        (contact_pb2.ContactBlockReason.Name(v.reason).removeprefix("CONTACT_BLOCK_REASON_"), v.rule)
        for v in result.violations
    ]
