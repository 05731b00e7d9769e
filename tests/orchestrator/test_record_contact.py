"""RecordContact and ListContacts over real sockets, on both engines: idempotency by contact id, enforcement
checked and recorded atomically (many concurrent senders for the last slot of a cap: exactly one wins),
validation, newest-first paging with opaque tokens, filters, and tenants kept apart."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from tests.orchestrator.conftest import Auth, as_tenant
from tests.orchestrator.helpers import (
    EMAIL,
    MARKETING,
    SMS,
    Stub,
    at,
    blocks,
    cap,
    check,
    days,
    record,
    set_policy,
)
from tests.rpc_errors import reason, violations
from wayline.event.v1 import event_pb2
from wayline.orchestrator.v1 import contact_pb2
from wayline.orchestrator.v1 import contact_policy_pb2 as policy_pb
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb

PERSON = "person-1"


def listed(stub: Stub, auth: Auth, **fields: object) -> pb.ListContactsResponse:
    request = pb.ListContactsRequest(**{"person_id": PERSON, **fields})  # type: ignore[arg-type]
    return stub.ListContacts(request, metadata=auth, timeout=10)


def test_record_contact_is_idempotent_by_contact_id(stub: Stub, tenant: Auth) -> None:
    first = record(stub, tenant, PERSON, at("2026-03-02T10:00"), contact_id="decision-1/offer")
    assert first.recorded
    assert first.contact.record_time.seconds > 0
    assert first.contact.source == contact_pb2.CONTACT_SOURCE_FLOW
    again = record(stub, tenant, PERSON, at("2026-03-02T11:00"), channel=SMS, contact_id="decision-1/offer")
    assert again.recorded
    assert again.contact == first.contact  # the ledger keeps the first, unchanged
    assert listed(stub, tenant).total_size == 1


def test_record_contact_without_a_time_is_made_now(stub: Stub, tenant: Auth) -> None:
    contact = contact_pb2.ContactRecord(contact_id="c1", person_id=PERSON, channel=EMAIL)
    stored = stub.RecordContact(pb.RecordContactRequest(contact=contact), metadata=tenant, timeout=10).contact
    assert stored.contact_time == stored.record_time
    assert stored.purpose == policy_pb.CONTACT_PURPOSE_UNSPECIFIED


def test_record_contact_with_enforce_policy_records_only_allowed_contacts(stub: Stub, tenant: Auth) -> None:
    set_policy(stub, tenant, policy_pb.ContactPolicy(frequency_caps=[cap(1, days(1), EMAIL)]))
    assert record(stub, tenant, PERSON, at("2026-03-02T10:00"), enforce=True).recorded
    refused = record(stub, tenant, PERSON, at("2026-03-02T11:00"), contact_id="second", enforce=True)
    assert not refused.recorded
    assert [(v.rule, v.retry_time) for v in refused.violations] == [
        ("frequency_caps[0]", at("2026-03-03T10:00"))
    ]
    assert refused.contact.contact_id == "second"
    assert listed(stub, tenant).total_size == 1
    # Without enforcement the ledger records what was sent, over the cap or not.
    assert record(stub, tenant, PERSON, at("2026-03-02T11:00"), contact_id="second").recorded
    assert listed(stub, tenant).total_size == 2
    # A replay of a recorded id answers recorded, even where the policy would now forbid it.
    assert record(stub, tenant, PERSON, at("2026-03-02T12:00"), contact_id="second", enforce=True).recorded


@pytest.mark.timeout(120)
def test_record_contact_concurrent_senders_never_share_the_last_slot(stub: Stub, tenant: Auth) -> None:
    set_policy(stub, tenant, policy_pb.ContactPolicy(frequency_caps=[cap(3, days(7), EMAIL)]))
    senders = 12
    for round_ in range(4):
        person = f"racer-{round_}"
        record(stub, tenant, person, at("2026-03-02T08:00"))
        record(stub, tenant, person, at("2026-03-02T09:00"))
        start = threading.Barrier(senders)

        def send(i: int, person: str = person, start: threading.Barrier = start) -> bool:
            start.wait()
            return record(
                stub, tenant, person, at("2026-03-02T10:00"), contact_id=f"{person}/{i}", enforce=True
            ).recorded

        with ThreadPoolExecutor(senders) as pool:
            outcomes = list(pool.map(send, range(senders)))
        assert outcomes.count(True) == 1, outcomes
        assert listed(stub, tenant, person_id=person).total_size == 3
        assert blocks(check(stub, tenant, person, at("2026-03-02T10:00"), (EMAIL, MARKETING)).results[0]) == [
            ("FREQUENCY_CAP", "frequency_caps[0]")
        ]


def test_record_contact_refuses_malformed_contacts(stub: Stub, tenant: Auth) -> None:
    with pytest.raises(grpc.RpcError) as error:
        stub.RecordContact(
            pb.RecordContactRequest(contact=contact_pb2.ContactRecord()), metadata=tenant, timeout=10
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason(error.value) == "CONTACT_REQUEST_INVALID"
    assert set(violations(error.value)) == {"contact.contact_id", "contact.person_id", "contact.channel"}
    long_id = contact_pb2.ContactRecord(contact_id="x" * 257, person_id=PERSON, channel=EMAIL)
    with pytest.raises(grpc.RpcError) as error:
        stub.RecordContact(pb.RecordContactRequest(contact=long_id), metadata=tenant, timeout=10)
    assert set(violations(error.value)) == {"contact.contact_id"}


def test_list_contacts_pages_newest_first(stub: Stub, tenant: Auth) -> None:
    ids = [f"c{i:02d}" for i in range(7)]
    for i, contact_id in enumerate(ids):
        # Two contacts share each time: the id breaks the tie, so paging neither skips nor repeats.
        record(
            stub,
            tenant,
            PERSON,
            at(f"2026-03-0{1 + i // 2}T10:00"),
            channel=SMS if i % 2 else EMAIL,
            contact_id=contact_id,
        )
    record(stub, tenant, "person-2", at("2026-03-09T10:00"))
    seen: list[str] = []
    token = ""
    while True:
        page = listed(stub, tenant, page_size=3, page_token=token)
        assert page.total_size == 7
        seen += [c.contact_id for c in page.contacts]
        token = page.next_page_token
        if not token:
            break
    assert seen == sorted(ids, key=lambda c: (int(c[1:]) // 2, c), reverse=True)
    times = [c.contact_time.seconds for c in listed(stub, tenant).contacts]
    assert times == sorted(times, reverse=True)
    sms = listed(stub, tenant, channel=SMS)
    assert [c.contact_id for c in sms.contacts] == ["c05", "c03", "c01"]
    window = event_pb2.TimeRange(start=at("2026-03-02T10:00"), end=at("2026-03-03T10:00"))
    assert [c.contact_id for c in listed(stub, tenant, time_range=window).contacts] == ["c03", "c02"]


def test_list_contacts_refuses_foreign_tokens_and_bad_requests(stub: Stub, tenant: Auth) -> None:
    for i in range(3):
        record(stub, tenant, PERSON, at(f"2026-03-0{i + 1}T10:00"))
    token = listed(stub, tenant, page_size=1).next_page_token
    assert token
    for request in (
        pb.ListContactsRequest(person_id=PERSON, page_token="not-a-token"),
        pb.ListContactsRequest(person_id=PERSON, page_token=token, channel=SMS),  # other filters
        pb.ListContactsRequest(person_id="person-2", page_token=token),
    ):
        with pytest.raises(grpc.RpcError) as error:
            stub.ListContacts(request, metadata=tenant, timeout=10)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert reason(error.value) == "INVALID_PAGE_TOKEN"
    for request, field in (
        (pb.ListContactsRequest(), "person_id"),
        (pb.ListContactsRequest(person_id=PERSON, page_size=-1), "page_size"),
        (
            pb.ListContactsRequest(
                person_id=PERSON,
                time_range=event_pb2.TimeRange(start=at("2026-03-02T00:00"), end=at("2026-03-01T00:00")),
            ),
            "time_range.end",
        ),
    ):
        with pytest.raises(grpc.RpcError) as error:
            stub.ListContacts(request, metadata=tenant, timeout=10)
        assert set(violations(error.value)) == {field}


def test_contacts_are_per_tenant(stub: Stub, tenant: Auth) -> None:
    other = as_tenant(f"other-{uuid.uuid4().hex[:6]}")
    set_policy(stub, other, policy_pb.ContactPolicy(frequency_caps=[cap(1, days(1))]))
    record(stub, tenant, PERSON, at("2026-03-02T10:00"), contact_id="shared-id")
    assert listed(stub, other).total_size == 0
    # The other tenant's cap does not count this tenant's contact, and the id is free there.
    assert check(stub, other, PERSON, at("2026-03-02T11:00"), (EMAIL, MARKETING)).results[0].allowed
    mine = record(
        stub, other, PERSON, at("2026-03-02T11:00"), channel=SMS, contact_id="shared-id", enforce=True
    )
    assert mine.recorded
    assert mine.contact.channel == SMS
    assert listed(stub, tenant).contacts[0].channel == EMAIL
