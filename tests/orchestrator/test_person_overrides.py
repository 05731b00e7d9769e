"""Merges and erasures through the real identity service's override feed, on SQLite and PostgreSQL: a merge
in mid-flow moves the absorbed person's entry, timers, sends and dead letters to the survivor without
sending anything twice; when both are in one flow the survivor's entry carries on and the absorbed one ends
`merged`; the absorbed person's contacts count toward the survivor's caps and the latest consent statement
wins; an erasure deletes every state of the person and lets identity's erasure complete; a replayed page
changes nothing, and other tenants are never touched."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

from tests.conftest import INTERNAL_TOKEN, common_settings, start_server
from tests.orchestrator.conftest import as_tenant
from tests.orchestrator.flow_samples import abandoned_cart
from tests.orchestrator.helpers import (
    EMAIL,
    MARKETING,
    Auth,
    Stub,
    at,
    blocks,
    cap,
    check,
    days,
    event,
    observe,
    record,
    set_policy,
)
from tests.orchestrator.running import ENGINES, Running, run_per_engine
from tests.orchestrator.runtime_calls import State, eventually, publish, send, track
from wayline.common.context import INTERNAL_TOKEN_HEADER, TENANT_HEADER
from wayline.common.server import Server
from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline.orchestrator.v1 import contact_policy_pb2 as policy_pb
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline_identity.service import identity_service
from wayline_identity.settings import IdentitySettings
from wayline_orchestrator.connectors import ConnectorStore
from wayline_orchestrator.contacts import ContactStore, Person
from wayline_orchestrator.flows.runtime.outbox_store import OutboxStore
from wayline_orchestrator.merged_persons import MergedPersons
from wayline_orchestrator.override_cursors import OverrideCursors
from wayline_orchestrator.override_feed import override_of
from wayline_orchestrator.person_overrides import PersonStates

HOUR = 3600
Identity = identity_grpc.IdentityServiceStub


@pytest.fixture(scope="module")
def identity_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """An identity whose erasures wait for the orchestrator's feed cursor (and no other store)."""
    settings = IdentitySettings(
        **common_settings(tmp_path_factory.mktemp("identity-overrides")),  # type: ignore[arg-type]
        journeys_address="",
        ingest_address="",
        erasure_feed_consumers=["orchestrator"],
        erasure_retry_seconds=0.2,
    )
    server = start_server(identity_service(settings), settings)
    yield server
    server.stop(0)


@pytest.fixture(scope="module")
def identity(identity_server: Server) -> Iterator[Identity]:
    with grpc.insecure_channel(identity_server.address) as channel:
        yield identity_grpc.IdentityServiceStub(channel)


@pytest.fixture(scope="module", params=ENGINES)
def running(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, identity_server: Server
) -> Iterator[Running]:
    yield from run_per_engine(
        request,
        tmp_path_factory,
        outbox_poll_interval_seconds=0.05,
        override_poll_seconds=0.05,
        identity_address=identity_server.address,
    )


@pytest.fixture(scope="module")
def orchestrator(running: Running) -> Server:
    """The orchestrator `stub` calls: the one on the fake clock."""
    return running.server


def _states(running: Running) -> PersonStates:
    """The merge and erasure logic over the server's database (to replay a page by hand)."""
    return PersonStates(
        running.store,
        OutboxStore(running.db),
        ContactStore(running.db),
        ConnectorStore(running.db),
        OverrideCursors(running.db),
        MergedPersons(running.db),
        running.clock,
    )


def _cart() -> dict[str, Any]:
    definition: dict[str, Any] = abandoned_cart()["definition"]
    return definition


def _tenant(auth: Auth) -> str:
    return dict(auth)[TENANT_HEADER]


def _identity_auth(auth: Auth) -> Auth:
    return ((INTERNAL_TOKEN_HEADER, INTERNAL_TOKEN), (TENANT_HEADER, _tenant(auth)))


def _person(identity: Identity, auth: Auth, days_ago: int) -> str:
    """A person identity knows, first seen `days_ago` (the oldest profile survives a merge)."""
    seen = datetime.now(UTC) - timedelta(days=days_ago)
    request = identity_pb.ResolveIdentitiesRequest(
        inputs=[
            identity_pb.IdentityResolutionInput(
                event_id=str(uuid.uuid4()),
                timestamp=to_timestamp(seen),
                event_type=event_pb2.EVENT_TYPE_IDENTIFY,
                identifiers=[event_pb2.Identifier(type="email", value=f"{uuid.uuid4().hex[:8]}@example.com")],
            )
        ]
    )
    response = identity.ResolveIdentities(request, metadata=_identity_auth(auth), timeout=10)
    return str(response.resolutions[0].person_id)


def _pair(identity: Identity, auth: Auth) -> tuple[str, str]:
    """(survivor, absorbed): two persons, and which of them a merge of both keeps (asked without merging)."""
    older, newer = _person(identity, auth, 30), _person(identity, auth, 1)
    request = identity_pb.MergeProfilesRequest(person_ids=[older, newer], reason="test", validate_only=True)
    survivor = identity.MergeProfiles(request, metadata=_identity_auth(auth), timeout=10).profile.person_id
    return survivor, newer if survivor == older else older


def _merge(running: Running, identity: Identity, auth: Auth, survivor: str, absorbed: str) -> int:
    """Merge the two in identity and wait for the orchestrator to apply it; the feed's version."""
    request = identity_pb.MergeProfilesRequest(person_ids=[survivor, absorbed], reason="same customer")
    merged = identity.MergeProfiles(request, metadata=_identity_auth(auth), timeout=10)
    assert merged.profile.person_id == survivor
    version = max(o.version for o in merged.person_overrides)
    eventually(lambda: OverrideCursors(running.db).cursor(_tenant(auth)) >= version)
    return version


def _timers(running: Running, auth: Auth) -> list[tuple[str, str]]:
    return sorted((t.person_id, t.key) for t in running.store.timers(_tenant(auth)))


def _letters(running: Running, auth: Auth, connector: str = "smtp") -> list[tuple[str, str]]:
    letters = ConnectorStore(running.db).dead_letters(_tenant(auth), connector)
    return sorted((d.message.recipient.person_id, d.message.idempotency_key) for d in letters)


def _contacts(stub: Stub, auth: Auth, person: str) -> int:
    request = pb.ListContactsRequest(person_id=person, page_size=100)
    return stub.ListContacts(request, metadata=auth, timeout=10).total_size


def _engagement(running: Running, auth: Auth, person: str) -> list[tuple[str, float]]:
    """The person's engagement score per channel, as of the latest engagement."""
    with running.store.transaction() as tx:
        found = ContactStore(running.db).person(tx, _tenant(auth), person).engagement
    return [(s.channel, round(s.score, 6)) for s in found]


def _snapshot(running: Running, stub: Stub, auth: Auth, persons: list[str]) -> dict[str, Any]:
    state = State(running.store, auth)
    return {
        "entries": [(e.person_id, e.number, e.status, e.key()) for e in state.entries("abandoned-cart")],
        "timers": _timers(running, auth),
        "messages": sorted((m.person_id, m.entry_number, m.idempotency_key) for m in state.messages()),
        "runs": sorted((r.person_id, r.entry_number, r.key) for r in state.runs("abandoned-cart")),
        "letters": _letters(running, auth),
        "contacts": [_contacts(stub, auth, p) for p in persons],
    }


def test_a_merge_in_mid_flow_moves_the_entry_to_the_survivor_and_sends_nothing_twice(
    running: Running, stub: Stub, identity: Identity, auth: Auth, state: State
) -> None:
    publish(stub, auth, "abandoned-cart", _cart())
    survivor, absorbed = _pair(identity, auth)
    send(stub, auth, track(absorbed, "Cart Abandoned", running.clock(), cart_url="https://shop/c/1"))
    running.clock.advance(HOUR + 1)  # no purchase within the hour: the email reminder, then a day's wait
    eventually(lambda: [m.step_id for m in state.messages()] == ["email_reminder"])
    reminder = f"abandoned-cart/1/{absorbed}/1/email_reminder"
    # The dispatcher finds no `smtp` connector: the reminder becomes a dead letter, addressed to the absorbed.
    eventually(lambda: _letters(running, auth) == [(absorbed, reminder)])
    # The survivor clicked an email of theirs a month ago; the absorbed person clicks the reminder now.
    record(stub, auth, survivor, at("2026-01-31T10:00"), contact_id="older-email")
    month_ago = running.clock() - 30 * 86_400 * 1_000_000
    send(stub, auth, track(survivor, "Message Clicked", month_ago, contact_id="older-email"))
    send(stub, auth, track(absorbed, "Message Clicked", running.clock(), contact_id=reminder))

    _merge(running, identity, auth, survivor, absorbed)

    assert state.statuses("abandoned-cart") == [(survivor, "WAITING", "")]
    assert _timers(running, auth) == [
        (survivor, f"abandoned-cart/1/{absorbed}/1/wait_a_day"),
        (survivor, f"abandoned-cart/1/{absorbed}/1/~max_duration"),
        (survivor, f"abandoned-cart/1/{absorbed}/1/~time_exit0"),
    ]
    # Sent before the merge: the survivor's now, under the key it was sent with.
    assert [(m.person_id, m.idempotency_key) for m in state.messages()] == [(survivor, reminder)]
    assert _letters(running, auth) == [(survivor, reminder)]
    assert {r.person_id for r in state.runs("abandoned-cart")} == {survivor}
    assert _contacts(stub, auth, survivor) == 2
    assert _contacts(stub, auth, absorbed) == 0
    # The engagement scores add up, each decayed from its own time: 3 now, and 3 halved over the month.
    assert _engagement(running, auth, survivor) == [("CHANNEL_EMAIL", 4.5)]
    assert _engagement(running, auth, absorbed) == []

    running.clock.advance(86_400 + 1)  # the day's wait ends once, for the survivor: the offer
    eventually(lambda: len(state.messages()) == 2)
    send(stub, auth, track(survivor, "Order Completed", running.clock()))  # the survivor buys: converted
    assert state.statuses("abandoned-cart") == [(survivor, "CONVERTED", "goal")]
    assert _timers(running, auth) == []
    sent = [(m.person_id, m.step_id, m.idempotency_key) for m in state.messages()]
    assert sorted(sent) == [
        (survivor, "email_reminder", reminder),
        (survivor, "free_shipping_offer", f"abandoned-cart/1/{absorbed}/1/free_shipping_offer"),
    ]
    waits = [r for r in state.runs("abandoned-cart") if r.outcome == "WAIT" and r.step_id == "wait_a_day"]
    assert len(waits) == 1
    assert _contacts(stub, auth, survivor) == 3


def test_a_merge_of_two_persons_in_one_flow_keeps_the_survivors_entry_and_ends_the_other_merged(
    running: Running, stub: Stub, identity: Identity, auth: Auth, state: State
) -> None:
    cart = _cart()
    del cart["entry_rules"]["reentry_cooldown"]  # re-entry right after an exit
    publish(stub, auth, "abandoned-cart", cart)
    survivor, absorbed = _pair(identity, auth)
    send(stub, auth, track(survivor, "Cart Abandoned", running.clock()))
    send(stub, auth, track(absorbed, "Cart Abandoned", running.clock()))

    _merge(running, identity, auth, survivor, absorbed)

    # The absorbed entry is numbered after the survivor's: no key collides.
    assert [(e.person_id, e.number, e.status.value, e.reason) for e in state.entries("abandoned-cart")] == [
        (survivor, 1, "WAITING", ""),
        (survivor, 2, "EXITED", "merged"),
    ]
    assert {person for person, _ in _timers(running, auth)} == {survivor}
    assert all(f"/{survivor}/1/" in key for _, key in _timers(running, auth))
    # The survivor is inside: another cart does not enter them a second time.
    send(stub, auth, track(survivor, "Cart Abandoned", running.clock()))
    assert len(state.entries("abandoned-cart")) == 2

    running.clock.advance(HOUR + 1)  # one reminder: the survivor's
    eventually(lambda: len(state.messages()) == 1)
    running.clock.advance(1)
    assert [(m.person_id, m.idempotency_key) for m in state.messages()] == [
        (survivor, f"abandoned-cart/1/{survivor}/1/email_reminder")
    ]
    # The statistics join step runs to entries by person and number: both moved together, both count.
    stats = stub.GetFlowStats(
        pb.GetFlowStatsRequest(name="flows/abandoned-cart"), metadata=auth, timeout=10
    ).stats
    assert (stats.entered_count, stats.active_count, stats.exited_count) == (2, 1, 1)
    steps = {step.step_id: step for step in stats.steps}
    assert (steps["wait_for_purchase"].entered_count, steps["email_reminder"].sent_count) == (2, 1)


def test_a_merge_counts_the_absorbed_persons_contacts_toward_the_survivors_caps(
    running: Running, stub: Stub, identity: Identity, auth: Auth
) -> None:
    set_policy(stub, auth, policy_pb.ContactPolicy(frequency_caps=[cap(1, days(7))]), "frequency_caps")
    survivor, absorbed = _pair(identity, auth)
    record(stub, auth, absorbed, at("2026-03-02T09:00"))
    assert check(stub, auth, survivor, at("2026-03-02T10:00"), (EMAIL, MARKETING)).results[0].allowed

    _merge(running, identity, auth, survivor, absorbed)

    result = check(stub, auth, survivor, at("2026-03-02T10:00"), (EMAIL, MARKETING)).results[0]
    assert blocks(result) == [("FREQUENCY_CAP", "frequency_caps[0]")]
    assert (_contacts(stub, auth, survivor), _contacts(stub, auth, absorbed)) == (1, 0)


def _consent(person: str, when: str, granted: bool) -> event_pb2.Event:
    return event(person, "Consent Updated", at(when), channel="email", purpose="marketing", granted=granted)


def test_a_merge_keeps_the_latest_consent_statement_of_either_person(
    running: Running, stub: Stub, identity: Identity, auth: Auth
) -> None:
    opt_in = policy_pb.ConsentRule(channel=EMAIL, purpose=MARKETING, mode=policy_pb.CONSENT_MODE_OPT_IN)
    set_policy(stub, auth, policy_pb.ContactPolicy(consent_rules=[opt_in]), "consent_rules")
    when = at("2026-03-02T10:00")
    # The survivor granted; the absorbed person withdrew later: after the merge the withdrawal holds. So do
    # the absorbed person's later preferred channel and time zone.
    survivor, absorbed = _pair(identity, auth)
    observe(
        stub,
        auth,
        _consent(survivor, "2026-03-01T00:00", True),
        event(
            survivor, "Channel Preference Updated", at("2026-03-01T00:00"), "America/New_York", channel="sms"
        ),
        _consent(absorbed, "2026-03-01T12:00", False),
        event(absorbed, "Channel Preference Updated", at("2026-03-01T12:00"), "Europe/Paris", channel="push"),
    )
    assert check(stub, auth, survivor, when, (EMAIL, MARKETING)).results[0].allowed
    _merge(running, identity, auth, survivor, absorbed)
    assert blocks(check(stub, auth, survivor, when, (EMAIL, MARKETING)).results[0]) == [
        ("NO_CONSENT", "consent_rules[0]")
    ]
    with running.store.transaction() as tx:
        merged_person = ContactStore(running.db).person(tx, _tenant(auth), survivor)
        left = ContactStore(running.db).person(tx, _tenant(auth), absorbed)
    assert (merged_person.preferred_channel, merged_person.time_zone) == ("CHANNEL_PUSH", "Europe/Paris")
    assert left == Person()  # nothing stays with the absorbed person
    # The survivor withdrew after the absorbed person granted: the merge does not grant it back.
    kept, merged = _pair(identity, auth)
    observe(stub, auth, _consent(merged, "2026-03-01T00:00", True), _consent(kept, "2026-03-01T12:00", False))
    _merge(running, identity, auth, kept, merged)
    assert not check(stub, auth, kept, when, (EMAIL, MARKETING)).results[0].allowed
    # And a later grant of the absorbed person is the latest statement: it holds.
    third, absorbed_third = _pair(identity, auth)
    observe(
        stub,
        auth,
        _consent(third, "2026-03-01T00:00", False),
        _consent(absorbed_third, "2026-03-01T12:00", True),
    )
    _merge(running, identity, auth, third, absorbed_third)
    assert check(stub, auth, third, when, (EMAIL, MARKETING)).results[0].allowed


def test_an_erasure_deletes_every_state_of_the_person_and_completes_in_identity(
    running: Running, stub: Stub, identity: Identity, auth: Auth, state: State
) -> None:
    publish(stub, auth, "abandoned-cart", _cart())
    erased, kept = _person(identity, auth, 2), _person(identity, auth, 3)
    for person in (erased, kept):
        send(stub, auth, track(person, "Cart Abandoned", running.clock()))
        observe(stub, auth, _consent(person, "2026-03-01T00:00", True))
        observe(stub, auth, event(person, "Page Viewed", at("2026-03-01T00:00"), "Europe/Paris"))
        record(stub, auth, person, at("2026-03-02T09:00"))
    running.clock.advance(HOUR + 1)
    eventually(lambda: len(_letters(running, auth)) == 2)  # each reminder sent, and dead (no connector)
    for person in (erased, kept):
        clicked = f"abandoned-cart/1/{person}/1/email_reminder"
        send(stub, auth, track(person, "Message Clicked", running.clock(), contact_id=clicked))
    assert _engagement(running, auth, erased) == [("CHANNEL_EMAIL", 3.0)]

    request = identity_pb.DeleteProfileRequest(person_id=erased, reason="erasure request 42")
    deleted = identity.DeleteProfile(request, metadata=_identity_auth(auth), timeout=10)
    erasure = identity_pb.GetErasureRequest(erasure_id=deleted.erasure.erasure_id)

    def done() -> bool:
        found = identity.GetErasure(erasure, metadata=_identity_auth(auth), timeout=10).erasure
        return found.state == identity_pb.ERASURE_STATE_DONE

    eventually(done)
    assert {e.person_id for e in state.entries("abandoned-cart")} == {kept}
    assert {person for person, _ in _timers(running, auth)} == {kept}
    assert {m.person_id for m in state.messages()} == {kept}
    assert {r.person_id for r in state.runs("abandoned-cart")} == {kept}
    assert [person for person, _ in _letters(running, auth)] == [kept]
    assert (_contacts(stub, auth, erased), _contacts(stub, auth, kept)) == (0, 2)
    with running.store.transaction() as tx:
        gone = ContactStore(running.db).person(tx, _tenant(auth), erased)
        still = ContactStore(running.db).person(tx, _tenant(auth), kept)
    assert gone == Person()  # no consent, no time zone, no engagement
    assert (len(still.consents), still.time_zone, len(still.engagement)) == (1, "Europe/Paris", 1)


def test_events_still_under_an_erased_persons_id_enter_no_flow_and_write_nothing(
    running: Running, stub: Stub, identity: Identity, auth: Auth, state: State
) -> None:
    """Resolved to the person before identity erased them, observed after the orchestrator applied the
    erasure (in flight in ingest): they would start the person's flows and ledger again."""
    publish(stub, auth, "abandoned-cart", _cart())
    erased, kept = _person(identity, auth, 2), _person(identity, auth, 3)
    request = identity_pb.DeleteProfileRequest(person_id=erased, reason="erasure request 43")
    deleted = identity.DeleteProfile(request, metadata=_identity_auth(auth), timeout=10)
    erasure = identity_pb.GetErasureRequest(erasure_id=deleted.erasure.erasure_id)
    eventually(  # done once the orchestrator's cursor passed the erasure's marker
        lambda: (
            identity.GetErasure(erasure, metadata=_identity_auth(auth), timeout=10).erasure.state
            == identity_pb.ERASURE_STATE_DONE
        )
    )

    for person in (erased, kept):
        send(stub, auth, track(person, "Cart Abandoned", running.clock()))
        observe(stub, auth, _consent(person, "2026-03-01T00:00", True))
        observe(stub, auth, event(person, "Page Viewed", at("2026-03-01T00:00"), "Europe/Paris"))

    assert {e.person_id for e in state.entries("abandoned-cart")} == {kept}
    with running.store.transaction() as tx:
        assert ContactStore(running.db).person(tx, _tenant(auth), erased) == Person()
        assert len(ContactStore(running.db).person(tx, _tenant(auth), kept).consents) == 1


def _follow(running: Running, auth: Auth, changed: Any) -> int:
    """Wait for the orchestrator to apply a change's overrides; the highest version."""
    version = max(o.version for o in changed.person_overrides)
    eventually(lambda: OverrideCursors(running.db).cursor(_tenant(auth)) >= version)
    return int(version)


def test_a_replayed_page_changes_nothing_and_other_tenants_are_untouched(
    running: Running, stub: Stub, identity: Identity, auth: Auth
) -> None:
    publish(stub, auth, "abandoned-cart", _cart())
    other = as_tenant(f"t-{uuid.uuid4().hex[:8]}")
    publish(stub, other, "abandoned-cart", _cart())
    survivor, absorbed = _pair(identity, auth)
    for tenant in (auth, other):  # the same person ids in another tenant: none of theirs moves
        send(stub, tenant, track(survivor, "Cart Abandoned", running.clock()))
        send(stub, tenant, track(absorbed, "Cart Abandoned", running.clock()))
        record(stub, tenant, absorbed, at("2026-03-02T09:00"))
    running.clock.advance(HOUR + 1)
    eventually(lambda: len(_letters(running, auth)) == 2 and len(_letters(running, other)) == 2)
    other_before = _snapshot(running, stub, other, [survivor, absorbed])

    request = identity_pb.MergeProfilesRequest(person_ids=[survivor, absorbed], reason="same customer")
    merged = identity.MergeProfiles(request, metadata=_identity_auth(auth), timeout=10)
    _follow(running, auth, merged)
    after = _snapshot(running, stub, auth, [survivor, absorbed])
    assert after["contacts"] == [3, 0]  # the survivor's reminder, the absorbed's reminder and record
    # The merge undone: its overrides are cancelled or scoped by identifier, so nothing moves back.
    split = identity_pb.SplitProfileRequest(
        person_id=survivor, merge_id=merged.merges[0].merge_id, reason="not the same customer"
    )
    version = _follow(running, auth, identity.SplitProfile(split, metadata=_identity_auth(auth), timeout=10))
    assert _snapshot(running, stub, auth, [survivor, absorbed]) == after
    record(stub, auth, absorbed, at("2026-03-02T11:00"))  # the restored person's own, after the split
    after = _snapshot(running, stub, auth, [survivor, absorbed])

    # The merge's page again (as the follower read it), then the whole feed from the start, applied by hand:
    # every version is at or below the cursor, so the old merge does not take the restored person's contact.
    assert _states(running).apply(_tenant(auth), [override_of(o) for o in merged.person_overrides]) == version
    feed = identity.ListPersonOverrides(
        identity_pb.ListPersonOverridesRequest(after_version=0), metadata=_identity_auth(auth), timeout=10
    )
    page = [override_of(o) for o in feed.person_overrides]
    assert max(o.version for o in page) == version
    assert _states(running).apply(_tenant(auth), page) == version
    assert _snapshot(running, stub, auth, [survivor, absorbed]) == after
    assert after["contacts"] == [3, 1]
    assert _snapshot(running, stub, other, [survivor, absorbed]) == other_before
    assert OverrideCursors(running.db).cursor(_tenant(other)) == 0


def test_an_erasure_completes_in_a_tenant_whose_events_the_orchestrator_only_observed(
    running: Running, stub: Stub, identity: Identity, auth: Auth
) -> None:
    person = _person(identity, auth, 2)
    send(stub, auth, track(person, "Page Viewed", running.clock()))  # no flow, no consent: nothing is kept
    assert _contacts(stub, auth, person) == 0
    request = identity_pb.DeleteProfileRequest(person_id=person, reason="erasure request 43")
    deleted = identity.DeleteProfile(request, metadata=_identity_auth(auth), timeout=10)
    erasure = identity_pb.GetErasureRequest(erasure_id=deleted.erasure.erasure_id)
    eventually(
        lambda: (
            identity.GetErasure(erasure, metadata=_identity_auth(auth), timeout=10).erasure.state
            == identity_pb.ERASURE_STATE_DONE
        )
    )


def test_events_still_under_the_absorbed_persons_id_reach_the_survivor_until_a_split(
    running: Running, stub: Stub, identity: Identity, auth: Auth, state: State
) -> None:
    publish(stub, auth, "abandoned-cart", _cart())
    survivor, absorbed = _pair(identity, auth)
    send(stub, auth, track(absorbed, "Cart Abandoned", running.clock()))
    request = identity_pb.MergeProfilesRequest(person_ids=[survivor, absorbed], reason="same customer")
    merged = identity.MergeProfiles(request, metadata=_identity_auth(auth), timeout=10)
    _follow(running, auth, merged)

    # Resolved to the absorbed person before the merge, observed after it (in flight in ingest).
    send(stub, auth, track(absorbed, "Order Completed", running.clock()))
    observe(stub, auth, _consent(absorbed, "2026-03-02T09:00", False))
    assert state.statuses("abandoned-cart") == [(survivor, "CONVERTED", "goal")]
    with running.store.transaction() as tx:
        assert len(ContactStore(running.db).person(tx, _tenant(auth), survivor).consents) == 1
        assert ContactStore(running.db).person(tx, _tenant(auth), absorbed) == Person()

    split = identity_pb.SplitProfileRequest(
        person_id=survivor, merge_id=merged.merges[0].merge_id, reason="not the same customer"
    )
    _follow(running, auth, identity.SplitProfile(split, metadata=_identity_auth(auth), timeout=10))
    send(stub, auth, track(absorbed, "Cart Abandoned", running.clock()))  # a person of their own again
    assert sorted(state.statuses("abandoned-cart")) == sorted(
        [(absorbed, "WAITING", ""), (survivor, "CONVERTED", "goal")]
    )
