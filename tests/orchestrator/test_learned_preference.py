"""The channel preference learned from engagement, over real gRPC on SQLite and PostgreSQL: engagement events
(`Message Opened/Clicked/Replied` with the ledger's `contact_id`) reach ObserveEvents, the ledger scores the
contact's channel, and a flow's channel-preference condition reads the learned preference, the stated one,
or the stated one then the learned one. Each message counts once per kind (redelivered events included),
old evidence fades, contacts the tenant's ledger does not hold are ignored, and tenants never share scores.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from tests.orchestrator.conftest import Auth, as_tenant
from tests.orchestrator.helpers import Channel, Stub, record
from tests.orchestrator.runtime_calls import publish, send, track
from wayline.event.v1 import event_pb2
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb

DAY_US = 86_400 * 1_000_000
EMAIL, SMS = event_pb2.CHANNEL_EMAIL, event_pb2.CHANNEL_SMS
SOURCES = {
    "learned": "CHANNEL_PREFERENCE_SOURCE_LEARNED",
    "stated": "CHANNEL_PREFERENCE_SOURCE_STATED",
    "either": "",  # unspecified: stated, then learned
}


def _now() -> int:
    return time.time_ns() // 1000


def _flow(flow_id: str, source: str) -> dict[str, Any]:
    """A flow that texts persons whose preference (of `source`) is SMS and emails the others."""
    condition: dict[str, Any] = {"channels": ["CHANNEL_SMS"]}
    if source:
        condition["source"] = source
    branch = {"condition": {"channel_preference": condition}, "next_step_id": "sms"}
    return {
        "trigger": {"event": {"event": {"event_name": "Signed Up"}}},
        "entry_step_id": "route",
        "steps": [
            {"id": "route", "branch": {"branches": [branch], "default_step_id": "email"}},
            {"id": "sms", "action": {"channel": "CHANNEL_SMS", "action_id": f"{flow_id}-sms"}},
            {"id": "email", "action": {"channel": "CHANNEL_EMAIL", "action_id": f"{flow_id}-email"}},
        ],
    }


def _publish(stub: Stub, auth: Auth, *flows: str) -> None:
    for flow_id in flows:
        publish(stub, auth, flow_id, _flow(flow_id, SOURCES[flow_id]))


def _sent(stub: Stub, auth: Auth, channel: Channel, person: str, when_us: int | None = None) -> str:
    """Record a contact with the person on the channel (as a flow or a decision does); its id."""
    when = Timestamp()
    when.FromMicroseconds(when_us or _now())
    return record(stub, auth, person, when, channel).contact.contact_id


def _engage(stub: Stub, auth: Auth, person: str, name: str, contact_id: str, **extra: Any) -> event_pb2.Event:
    at = extra.pop("at_us", _now())
    event = track(person, name, at, extra.pop("event_id", ""), contact_id=contact_id)
    send(stub, auth, event)
    return event


def _routes(stub: Stub, auth: Auth, person: str) -> set[str]:
    """Enter the person into the tenant's flows; the action each flow took: `{flow}-sms` or `{flow}-email`."""
    send(stub, auth, track(person, "Signed Up", _now()))
    request = pb.ListContactsRequest(person_id=person, page_size=100)
    contacts = stub.ListContacts(request, metadata=auth, timeout=10).contacts
    return {c.action_id for c in contacts if c.action_id.endswith(("-sms", "-email"))}


def _person() -> str:
    return f"p-{uuid.uuid4().hex[:8]}"


def test_clicks_teach_the_learned_channel(stub: Stub, tenant: Auth) -> None:
    _publish(stub, tenant, "learned")
    clicker, silent = _person(), _person()
    for _ in range(2):
        _engage(stub, tenant, clicker, "Message Opened", _sent(stub, tenant, EMAIL, clicker))
    _engage(stub, tenant, clicker, "Message Clicked", _sent(stub, tenant, SMS, clicker))  # 3 > 2 opens
    assert _routes(stub, tenant, clicker) == {"learned-sms"}
    assert _routes(stub, tenant, silent) == {"learned-email"}


def test_replies_count_like_clicks_and_deliveries_not_at_all(stub: Stub, tenant: Auth) -> None:
    _publish(stub, tenant, "learned")
    replier, delivered = _person(), _person()
    _engage(stub, tenant, replier, "Message Replied", _sent(stub, tenant, SMS, replier))
    for _ in range(4):
        _engage(stub, tenant, delivered, "Message Delivered", _sent(stub, tenant, SMS, delivered))
    assert _routes(stub, tenant, replier) == {"learned-sms"}
    assert _routes(stub, tenant, delivered) == {"learned-email"}


def test_a_message_counts_once_per_kind_of_engagement(stub: Stub, tenant: Auth) -> None:
    _publish(stub, tenant, "learned")
    repeat, distinct = _person(), _person()
    message = _sent(stub, tenant, SMS, repeat)
    opened = _engage(stub, tenant, repeat, "Message Opened", message)
    send(stub, tenant, opened, opened)  # redelivered by ingest
    _engage(stub, tenant, repeat, "Message Opened", message)  # opened again: another event, same message
    _engage(stub, tenant, repeat, "Message Opened", message)
    for _ in range(3):  # three messages opened: enough evidence
        _engage(stub, tenant, distinct, "Message Opened", _sent(stub, tenant, SMS, distinct))
    assert _routes(stub, tenant, repeat) == {"learned-email"}  # one open: below the threshold
    assert _routes(stub, tenant, distinct) == {"learned-sms"}


def test_old_engagement_fades_whatever_order_it_arrives_in(stub: Stub, tenant: Auth) -> None:
    _publish(stub, tenant, "learned")
    faded, mixed = _person(), _person()
    long_ago = _now() - 150 * DAY_US  # five half-lives: a click weighs under 0.1
    for _ in range(3):
        message = _sent(stub, tenant, SMS, faded, long_ago)
        _engage(stub, tenant, faded, "Message Clicked", message, at_us=long_ago)
    recent = _sent(stub, tenant, SMS, mixed)
    _engage(stub, tenant, mixed, "Message Clicked", recent)
    late = _sent(stub, tenant, EMAIL, mixed, long_ago)
    _engage(stub, tenant, mixed, "Message Clicked", late, at_us=long_ago)  # arrives after the recent one
    assert _routes(stub, tenant, faded) == {"learned-email"}
    assert _routes(stub, tenant, mixed) == {"learned-sms"}


def test_the_condition_reads_the_source_it_names(stub: Stub, tenant: Auth) -> None:
    _publish(stub, tenant, "learned", "stated", "either")
    stated_email, learned_only = _person(), _person()
    for person in (stated_email, learned_only):
        _engage(stub, tenant, person, "Message Clicked", _sent(stub, tenant, SMS, person))
    preference = track(stated_email, "Channel Preference Updated", _now(), channel="email")
    send(stub, tenant, preference)
    assert _routes(stub, tenant, stated_email) == {"learned-sms", "stated-email", "either-email"}
    assert _routes(stub, tenant, learned_only) == {"learned-sms", "stated-email", "either-sms"}


def test_engagement_with_contacts_outside_the_tenants_ledger_is_ignored(stub: Stub, tenant: Auth) -> None:
    other = as_tenant(f"o-{uuid.uuid4().hex[:8]}")
    _publish(stub, tenant, "learned")
    _publish(stub, other, "learned")
    theirs, unknown = _person(), _person()
    messages = [_sent(stub, tenant, SMS, theirs) for _ in range(2)]
    for message in messages:  # the other tenant hears of this tenant's messages: not its contacts
        _engage(stub, other, theirs, "Message Clicked", message)
    for _ in range(2):
        _engage(stub, tenant, unknown, "Message Clicked", f"nobody-{uuid.uuid4().hex}")
    assert _routes(stub, other, theirs) == {"learned-email"}
    assert _routes(stub, tenant, unknown) == {"learned-email"}
    _engage(stub, tenant, theirs, "Message Clicked", messages[0])
    assert _routes(stub, tenant, theirs) == {"learned-sms"}
