"""Malformed requests are INVALID_ARGUMENT naming the field, never INTERNAL, and change nothing, on both
engines: enumeration numbers this build does not define, Timestamps and Durations outside protobuf's ranges
(or with nanos of the wrong sign), NaN in a Struct, NUL in an id (PostgreSQL's text cannot hold it), page
tokens whose cursor cannot be bound into SQL, and frequency-cap windows that would make every CheckContact of
the tenant fail."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from tests.orchestrator.helpers import (
    DAY,
    EMAIL,
    MARKETING,
    Auth,
    Stub,
    at,
    cap,
    check,
    event,
    observe,
    set_policy,
)
from tests.rpc_errors import violations
from wayline.common.paging import encode_page_token
from wayline.common.timestamps import MAX_TIMESTAMP_SECONDS
from wayline.event.v1 import event_pb2
from wayline.orchestrator.v1 import contact_pb2, flow_pb2
from wayline.orchestrator.v1 import contact_policy_pb2 as policy_pb
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb

HUGE_SECONDS = 2**62  # an int64 the wire carries; in microseconds it no longer fits a 64-bit column
EMAIL_MARKETING = contact_pb2.ContactCheck(channel=EMAIL, purpose=MARKETING)


def refused(call: Callable[..., Any], request: object, auth: Auth) -> dict[str, str]:
    """The field violations of the INVALID_ARGUMENT `call` answers."""
    with pytest.raises(grpc.RpcError) as caught:
        call(request, metadata=auth, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    return violations(caught.value)


# ObserveEvents: a batch is accepted or refused whole, before anything is written.


def test_an_event_of_an_unknown_type_is_refused(stub: Stub, tenant: Auth) -> None:
    bad = event("p1", "Page Viewed", at("2026-03-02T10:00"))
    bad.type = 99  # type: ignore[assignment]
    assert "events[0].type" in refused(stub.ObserveEvents, pb.ObserveEventsRequest(events=[bad]), tenant)


def test_an_event_on_an_unknown_channel_is_refused(stub: Stub, tenant: Auth) -> None:
    good = event("p1", "Page Viewed", at("2026-03-02T10:00"))
    bad = event("p1", "Page Viewed", at("2026-03-02T10:00"))
    bad.channel = 99  # type: ignore[assignment]
    request = pb.ObserveEventsRequest(events=[good, bad])
    assert set(refused(stub.ObserveEvents, request, tenant)) == {"events[1].channel"}


def test_a_refused_batch_writes_no_consent(stub: Stub, tenant: Auth) -> None:
    """The batch's consent would allow marketing email; its other event cannot be converted, so the batch is
    refused and the consent it carried is not in force either."""
    rule = policy_pb.ConsentRule(channel=EMAIL, purpose=MARKETING, mode=policy_pb.CONSENT_MODE_OPT_IN)
    set_policy(stub, tenant, policy_pb.ContactPolicy(consent_rules=[rule]), "consent_rules")
    when = at("2026-03-02T12:00")
    assert not check(stub, tenant, "p9", when, (EMAIL, MARKETING)).results[0].allowed
    consent = event(
        "p9", "Consent Updated", at("2026-03-02T10:00"), channel="email", purpose="marketing", granted=True
    )
    odd = event("p9", "Page Viewed", at("2026-03-02T10:01"))
    odd.type = 99  # type: ignore[assignment]
    request = pb.ObserveEventsRequest(events=[consent, odd])
    assert set(refused(stub.ObserveEvents, request, tenant)) == {"events[1].type"}
    assert not check(stub, tenant, "p9", when, (EMAIL, MARKETING)).results[0].allowed
    assert observe(stub, tenant, consent) == 1  # the same consent, alone, is taken
    assert check(stub, tenant, "p9", when, (EMAIL, MARKETING)).results[0].allowed


def test_an_event_time_out_of_range_is_refused(stub: Stub, tenant: Auth) -> None:
    bad = event("p1", "Channel Preference Updated", Timestamp(seconds=HUGE_SECONDS), channel="sms")
    assert "events[0].timestamp" in refused(stub.ObserveEvents, pb.ObserveEventsRequest(events=[bad]), tenant)


def test_an_event_property_that_json_cannot_carry_is_refused(stub: Stub, tenant: Auth) -> None:
    bad = event("p1", "Page Viewed", at("2026-03-02T10:00"), score=math.nan)
    found = refused(stub.ObserveEvents, pb.ObserveEventsRequest(events=[bad]), tenant)
    assert set(found) == {"events[0].properties.score"}


def test_an_event_person_with_nul_is_refused(stub: Stub, tenant: Auth) -> None:
    bad = event("p\x001", "Page Viewed", at("2026-03-02T10:00"))
    assert "events[0].person_id" in refused(stub.ObserveEvents, pb.ObserveEventsRequest(events=[bad]), tenant)


# Timestamps outside protobuf's range.


@pytest.mark.parametrize(
    ("time", "field"),
    [
        (Timestamp(seconds=HUGE_SECONDS), "contact_time"),
        (Timestamp(seconds=1, nanos=-1), "contact_time.nanos"),
    ],
    ids=["seconds", "nanos"],
)
def test_check_contact_time_out_of_range_is_refused(
    stub: Stub, tenant: Auth, time: Timestamp, field: str
) -> None:
    request = pb.CheckContactRequest(person_id="p1", checks=[EMAIL_MARKETING], contact_time=time)
    assert field in refused(stub.CheckContact, request, tenant)


def test_contact_times_are_those_whose_answers_are_timestamps_too(stub: Stub, tenant: Auth) -> None:
    """At the end of Timestamp's range a quiet period's end in Kiritimati (UTC+14) would be past it: such a
    contact time is refused; the last one taken gets its answer."""
    quiet = policy_pb.QuietHours(start_minute=0, end_minute=1439, default_time_zone="Pacific/Kiritimati")
    set_policy(stub, tenant, policy_pb.ContactPolicy(quiet_hours=[quiet]), "quiet_hours")
    last = Timestamp(seconds=MAX_TIMESTAMP_SECONDS - 368 * DAY)  # 9998-12-28T23:59:59Z
    request = pb.CheckContactRequest(person_id="p1", checks=[EMAIL_MARKETING], contact_time=last)
    (result,) = stub.CheckContact(request, metadata=tenant, timeout=10).results
    assert result.next_allowed_time.seconds <= MAX_TIMESTAMP_SECONDS
    request.contact_time.seconds = MAX_TIMESTAMP_SECONDS
    assert set(refused(stub.CheckContact, request, tenant)) == {"contact_time"}


def test_record_contact_time_out_of_range_is_refused(stub: Stub, tenant: Auth) -> None:
    contact = contact_pb2.ContactRecord(
        contact_id=str(uuid.uuid4()),
        person_id="p1",
        channel=EMAIL,
        purpose=MARKETING,
        source=contact_pb2.CONTACT_SOURCE_FLOW,
        contact_time=Timestamp(seconds=HUGE_SECONDS),
    )
    found = refused(stub.RecordContact, pb.RecordContactRequest(contact=contact), tenant)
    assert "contact.contact_time" in found


def test_list_contacts_range_out_of_range_is_refused(stub: Stub, tenant: Auth) -> None:
    window = event_pb2.TimeRange(start=Timestamp(seconds=-HUGE_SECONDS))
    request = pb.ListContactsRequest(person_id="p1", time_range=window)
    assert "time_range.start" in refused(stub.ListContacts, request, tenant)


def test_flow_stats_range_out_of_range_is_refused(stub: Stub, tenant: Auth) -> None:
    window = event_pb2.TimeRange(end=Timestamp(seconds=HUGE_SECONDS))
    request = pb.GetFlowStatsRequest(name="flows/some-flow", time_range=window)
    assert set(refused(stub.GetFlowStats, request, tenant)) == {"time_range.end"}


# Page tokens whose cursor decodes but cannot be bound into SQL.


@pytest.mark.parametrize("after", [[True, "x"], [5, "x\x00"]], ids=["bool", "nul"])
def test_list_contacts_token_with_an_unusable_cursor_is_refused(
    stub: Stub, tenant: Auth, after: object
) -> None:
    token = encode_page_token({"after": after, "filters": ["p1", None, None, "CHANNEL_UNSPECIFIED"]})
    request = pb.ListContactsRequest(person_id="p1", page_token=token)
    assert set(refused(stub.ListContacts, request, tenant)) == {"page_token"}


def test_list_flows_token_with_nul_is_refused(stub: Stub, tenant: Auth) -> None:
    token = encode_page_token({"after": "flow-a\x00", "filters": {"state": ""}})
    assert set(refused(stub.ListFlows, pb.ListFlowsRequest(page_token=token), tenant)) == {"page_token"}


def test_list_connectors_token_with_nul_is_refused(stub: Stub, tenant: Auth) -> None:
    token = encode_page_token({"after": "hook\x00"})
    request = pb.ListConnectorsRequest(page_token=token)
    assert set(refused(stub.ListConnectors, request, tenant)) == {"page_token"}


@pytest.mark.parametrize("after", [[True, "k"], [5, "k\x00"]], ids=["bool", "nul"])
def test_dead_letters_token_with_an_unusable_cursor_is_refused(
    stub: Stub, tenant: Auth, after: object
) -> None:
    token = encode_page_token({"after": after, "parent": "push-hook"})
    request = pb.ListDeadLettersRequest(parent="connectors/push-hook", page_token=token)
    assert set(refused(stub.ListDeadLetters, request, tenant)) == {"page_token"}


# Frequency-cap windows: positive and at most 366 days, so that no policy makes CheckContact fail.


@pytest.mark.parametrize(
    ("window", "field"),
    [
        (Duration(seconds=10**13), "contact_policy.frequency_caps[0].window"),  # beyond Duration's range
        (Duration(seconds=367 * DAY), "contact_policy.frequency_caps[0].window"),
        (Duration(seconds=DAY, nanos=-5), "contact_policy.frequency_caps[0].window.nanos"),
    ],
    ids=["beyond_10000_years", "over_366_days", "sign_mismatch"],
)
def test_a_cap_window_out_of_range_is_refused(stub: Stub, tenant: Auth, window: Duration, field: str) -> None:
    policy = policy_pb.ContactPolicy(frequency_caps=[cap(1, window)])
    request = pb.UpdateContactPolicyRequest(contact_policy=policy)
    assert set(refused(stub.UpdateContactPolicy, request, tenant)) == {field}
    assert check(stub, tenant, "p1", at("2026-03-02T10:00"), (EMAIL, MARKETING)).results[0].allowed
    set_policy(stub, tenant, policy_pb.ContactPolicy(frequency_caps=[cap(1, Duration(seconds=366 * DAY))]))
    assert check(stub, tenant, "p1", at("2026-03-02T10:00"), (EMAIL, MARKETING)).results[0].allowed


# NUL in ids: refused on both engines alike (PostgreSQL's text cannot hold it).


def test_check_contact_person_with_nul_is_refused(stub: Stub, tenant: Auth) -> None:
    request = pb.CheckContactRequest(person_id="p\x001", checks=[EMAIL_MARKETING])
    assert set(refused(stub.CheckContact, request, tenant)) == {"person_id"}


def test_record_contact_id_with_nul_is_refused(stub: Stub, tenant: Auth) -> None:
    contact = contact_pb2.ContactRecord(
        contact_id="c\x00",
        person_id="p1",
        channel=EMAIL,
        purpose=MARKETING,
        source=contact_pb2.CONTACT_SOURCE_FLOW,
    )
    found = refused(stub.RecordContact, pb.RecordContactRequest(contact=contact), tenant)
    assert set(found) == {"contact.contact_id"}


def test_list_contacts_person_with_nul_is_refused(stub: Stub, tenant: Auth) -> None:
    assert set(refused(stub.ListContacts, pb.ListContactsRequest(person_id="p\x00"), tenant)) == {"person_id"}


def test_redrive_key_with_nul_is_refused(stub: Stub, tenant: Auth) -> None:
    request = pb.RedriveDeadLettersRequest(parent="connectors/push-hook", idempotency_keys=["ok", "k\x00"])
    assert set(refused(stub.RedriveDeadLetters, request, tenant)) == {"idempotency_keys[1]"}


# Flow definitions: what their JSON form cannot carry.


def _waiting(seconds: int, nanos: int) -> flow_pb2.FlowDefinition:
    definition = flow_pb2.FlowDefinition()
    step = definition.steps.add(id="wait")
    step.wait.duration.seconds = seconds
    step.wait.duration.nanos = nanos
    return definition


DURATIONS = pytest.mark.parametrize(
    ("seconds", "nanos", "field"),
    [(10**12, 0, "steps[0].wait.duration"), (1, -5, "steps[0].wait.duration.nanos")],
    ids=["beyond_10000_years", "sign_mismatch"],
)


@DURATIONS
def test_create_flow_with_a_duration_out_of_range_is_refused(
    stub: Stub, tenant: Auth, seconds: int, nanos: int, field: str
) -> None:
    flow = flow_pb2.Flow(display_name="x", definition=_waiting(seconds, nanos))
    request = pb.CreateFlowRequest(flow=flow, flow_id=f"f-{uuid.uuid4().hex[:8]}")
    assert set(refused(stub.CreateFlow, request, tenant)) == {f"flow.definition.{field}"}


@DURATIONS
def test_update_flow_with_a_duration_out_of_range_is_refused(
    stub: Stub, tenant: Auth, seconds: int, nanos: int, field: str
) -> None:
    created = stub.CreateFlow(
        pb.CreateFlowRequest(flow=flow_pb2.Flow(display_name="x")), metadata=tenant, timeout=10
    ).flow
    changes = flow_pb2.Flow(name=created.name, display_name="x", definition=_waiting(seconds, nanos))
    assert set(refused(stub.UpdateFlow, pb.UpdateFlowRequest(flow=changes), tenant)) == {
        f"flow.definition.{field}"
    }
    stored = stub.GetFlow(pb.GetFlowRequest(name=created.name), metadata=tenant, timeout=10).flow
    assert stored.definition == created.definition


@DURATIONS
def test_simulate_flow_with_a_duration_out_of_range_is_refused(
    stub: Stub, tenant: Auth, seconds: int, nanos: int, field: str
) -> None:
    window = event_pb2.TimeRange(start=at("2026-03-01T00:00"), end=at("2026-03-02T00:00"))
    request = pb.SimulateFlowRequest(definition=_waiting(seconds, nanos), time_range=window)
    assert set(refused(stub.SimulateFlow, request, tenant)) == {f"definition.{field}"}


def test_create_flow_with_nan_in_a_payload_is_refused(stub: Stub, tenant: Auth) -> None:
    flow = flow_pb2.Flow(display_name="x")
    step = flow.definition.steps.add(id="send")
    step.action.payload.update({"items": [1, {"price": math.inf}]})
    found = refused(stub.CreateFlow, pb.CreateFlowRequest(flow=flow), tenant)
    assert set(found) == {"flow.definition.steps[0].action.payload.items[1].price"}
