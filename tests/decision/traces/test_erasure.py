"""What the decision service forgets when identity erases a person, or moves an identifier away from them,
over real sockets (identity, ingest, journeys): the identifier its trace and feedback events are written with
(PersonIdentifiers) and the recent traces it keeps (RecentTraces), told by identity's override feed
(traces/forgetting.py), with the cache's expiry as the backstop when the feed is not followed.

A trace or feedback written after the erasure with the erased person's cached identifier would reach ingest,
and identity would make a new profile of that identifier: the erased person's identifier brought back."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import grpc
import pytest

from tests.conftest import INTERNAL_TOKEN
from tests.decision.traces.conftest import (
    DecisionUnderTest,
    make_trace,
    metadata,
    start_decision,
    wait_stored,
)
from wayline.common.clients import internal_channel
from wayline.common.server import Server
from wayline.decision.v1 import decision_pb2
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline.identity.v1 import person_override_pb2
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline_decision.errors import DownstreamUnavailable
from wayline_decision.traces.clients import BatchOutcome, EventWriter, PersonIdentifiers
from wayline_decision.traces.forgetting import TraceForgetting
from wayline_decision.traces.recent import RecentTraces
from wayline_decision.traces.sink import IngestTraceSink, SinkPolicy


@pytest.fixture(scope="module")
def decision(
    identity_server: Server,
    ingest_server: Server,
    journeys_server: Server,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[DecisionUnderTest]:
    """Follows identity's override feed every 0.2 s."""
    started = start_decision(
        tmp_path_factory.mktemp("decision-erasure"),
        identity_server.address,
        ingest_server.address,
        journeys_server.address,
        override_poll_seconds=0.2,
    )
    yield started
    started.stop()


@pytest.fixture
def identity(identity_server: Server) -> Iterator[identity_grpc.IdentityServiceStub]:
    with grpc.insecure_channel(identity_server.address) as channel:
        yield identity_grpc.IdentityServiceStub(channel)


def _known_person(
    identity: identity_grpc.IdentityServiceStub, tenant: str, *more: event_pb2.Identifier
) -> tuple[str, str]:
    """A person identity knows by a new user id (and `more`); their person id and user id."""
    user = f"u-{uuid.uuid4().hex[:10]}"
    request = identity_pb.ResolveIdentitiesRequest(
        inputs=[
            identity_pb.IdentityResolutionInput(
                event_id=str(uuid.uuid4()),
                event_type=event_pb2.EVENT_TYPE_IDENTIFY,
                identifiers=[event_pb2.Identifier(type="user_id", value=user), *more],
            )
        ]
    )
    request.inputs[0].timestamp.GetCurrentTime()
    response = identity.ResolveIdentities(request, metadata=metadata(tenant), timeout=10)
    return str(response.resolutions[0].person_id), user


def _profile_exists(identity: identity_grpc.IdentityServiceStub, tenant: str, user: str) -> bool:
    ref = event_pb2.PersonRef(identifier=event_pb2.Identifier(type="user_id", value=user))
    try:
        identity.GetProfile(identity_pb.GetProfileRequest(person=ref), metadata=metadata(tenant), timeout=10)
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
        return False
    return True


def _erase(identity: identity_grpc.IdentityServiceStub, tenant: str, person: str) -> str:
    """Erase the person; the erasure's id."""
    erased = identity.DeleteProfile(
        identity_pb.DeleteProfileRequest(person_id=person, reason="test"),
        metadata=metadata(tenant),
        timeout=10,
    )
    return str(erased.erasure.erasure_id)


def _traced_then_erased(
    decision: DecisionUnderTest,
    journeys: journeys_grpc.JourneyServiceStub,
    identity: identity_grpc.IdentityServiceStub,
    tenant: str,
) -> tuple[str, str, decision_pb2.Decision, str]:
    """A known person's trace stored (so the sink looked their identifier up), then the person erased: their
    person id, user id, that trace and the erasure's id."""
    person, user = _known_person(identity, tenant)
    trace = make_trace(person)
    decision.traces.sink.record(tenant, trace)
    wait_stored(journeys, tenant, trace.decision_id)
    return person, user, trace, _erase(identity, tenant, person)


def _feed(
    identity: identity_grpc.IdentityServiceStub, tenant: str
) -> list[person_override_pb2.PersonOverride]:
    response = identity.ListPersonOverrides(
        identity_pb.ListPersonOverridesRequest(after_version=0, page_size=10_000),
        metadata=metadata(tenant),
        timeout=10,
    )
    return list(response.person_overrides)


def _wait_feed_read(
    decision: DecisionUnderTest, identity: identity_grpc.IdentityServiceStub, tenant: str
) -> None:
    """Until the decision service has applied the tenant's override feed as far as it goes now."""
    head = identity.ListPersonOverrides(
        identity_pb.ListPersonOverridesRequest(page_size=1), metadata=metadata(tenant), timeout=10
    ).max_version
    assert head > 0
    deadline = time.monotonic() + 20
    while decision.traces.forgetting.version(tenant) < head:
        assert time.monotonic() < deadline, f"the decision service did not read {tenant}'s feed to {head}"
        time.sleep(0.05)


def _wait(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _wait_idle(sink: IngestTraceSink) -> None:
    _wait(lambda: sink.waiting == 0, "the sink still has traces waiting")


def _not_found(call: Callable[[], object]) -> bool:
    try:
        call()
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
        return True
    return False


@pytest.mark.timeout(120)
def test_a_trace_for_an_erased_person_is_dropped_not_written_with_their_identifier(
    decision: DecisionUnderTest,
    journeys: journeys_grpc.JourneyServiceStub,
    identity: identity_grpc.IdentityServiceStub,
    tenant: str,
) -> None:
    person, user, _, _ = _traced_then_erased(decision, journeys, identity, tenant)
    assert not _profile_exists(identity, tenant, user)
    _wait_feed_read(decision, identity, tenant)

    # A Decide naming the erased person id (Decide takes a person id as given) records a trace for them.
    dropped = decision.traces.sink.dropped.get("person_unknown", 0)
    later = make_trace(person)
    decision.traces.sink.record(tenant, later)
    _wait_idle(decision.traces.sink)
    assert decision.traces.sink.dropped.get("person_unknown", 0) == dropped + 1
    assert _not_found(
        lambda: decision.stub.GetDecision(
            pb.GetDecisionRequest(decision_id=later.decision_id), metadata=metadata(tenant), timeout=10
        )
    ), "the trace of the erased person is kept in memory"
    assert not _profile_exists(identity, tenant, user), (
        f"the erased user id {user!r} has a profile again: the trace was written with the identifier the"
        " decision service had cached for the erased person"
    )


@pytest.mark.timeout(120)
def test_the_decision_of_an_erased_person_is_not_served_nor_given_feedback(
    decision: DecisionUnderTest,
    journeys: journeys_grpc.JourneyServiceStub,
    identity: identity_grpc.IdentityServiceStub,
    tenant: str,
) -> None:
    _, user, trace, erasure = _traced_then_erased(decision, journeys, identity, tenant)

    def journeys_erased() -> bool:
        done = identity.GetErasure(
            identity_pb.GetErasureRequest(erasure_id=erasure), metadata=metadata(tenant), timeout=10
        ).erasure
        return all(s.state == identity_pb.ERASURE_STATE_DONE for s in done.steps if s.store == "journeys")

    _wait(journeys_erased, "journeys did not erase the person")
    assert not wait_stored(journeys, tenant, trace.decision_id, events=0), "journeys still holds the decision"
    _wait_feed_read(decision, identity, tenant)

    assert _not_found(
        lambda: decision.stub.GetDecision(
            pb.GetDecisionRequest(decision_id=trace.decision_id), metadata=metadata(tenant), timeout=10
        )
    ), "GetDecision still serves the erased person's decision from memory"
    assert _not_found(
        lambda: decision.stub.Feedback(
            pb.FeedbackRequest(
                decision_id=trace.decision_id,
                action_id="discount-10",
                outcome=decision_pb2.FEEDBACK_OUTCOME_CLICK,
            ),
            metadata=metadata(tenant),
            timeout=10,
        )
    ), "Feedback accepted on the erased person's decision"
    assert not _profile_exists(identity, tenant, user), f"the erased user id {user!r} has a profile again"


class _IngestDownUntilOpened(EventWriter):
    """Ingest as the sink sees it: down until `opened` is set, then the real one."""

    def __init__(self, channel: grpc.Channel) -> None:
        super().__init__(channel)
        self.opened = threading.Event()
        self.attempts = 0

    def write(self, tenant: str, events: Sequence[event_pb2.Event]) -> BatchOutcome:
        self.attempts += 1
        if not self.opened.is_set():
            raise DownstreamUnavailable("ingest", "UNAVAILABLE: down for the test")
        return super().write(tenant, events)


@pytest.mark.timeout(120)
def test_a_trace_waiting_for_ingest_when_its_person_is_erased_is_dropped(
    ingest_server: Server, identity: identity_grpc.IdentityServiceStub, identity_server: Server, tenant: str
) -> None:
    """Its event was built with the person's identifier before the erasure: it must not be sent after."""
    writer = _IngestDownUntilOpened(internal_channel(ingest_server.address, internal_token=INTERNAL_TOKEN))
    people = PersonIdentifiers(internal_channel(identity_server.address, internal_token=INTERNAL_TOKEN))
    recent = RecentTraces(1000, 300.0)
    forgetting = TraceForgetting(people, recent)
    sink = IngestTraceSink(
        writer, people, recent, SinkPolicy(linger_seconds=0.01, initial_backoff=0.05, max_backoff=0.1)
    )
    sink.start()
    try:
        person, user = _known_person(identity, tenant)
        sink.record(tenant, make_trace(person))
        _wait(lambda: writer.attempts >= 2, "the sink did not try to write the trace")  # its event is built

        _erase(identity, tenant, person)
        forgetting.apply_overrides(tenant, _feed(identity, tenant))  # as the follower does
        writer.opened.set()
        _wait_idle(sink)
        assert sink.dropped.get("person_unknown", 0) == 1
        assert sink.written == 0
        assert not _profile_exists(identity, tenant, user), f"the erased user id {user!r} has a profile again"
    finally:
        sink.stop(5)


@pytest.mark.timeout(120)
def test_after_an_unmerge_a_persons_trace_carries_an_identifier_still_theirs(
    decision: DecisionUnderTest,
    journeys: journeys_grpc.JourneyServiceStub,
    identity: identity_grpc.IdentityServiceStub,
    tenant: str,
) -> None:
    email = event_pb2.Identifier(type="email", value=f"{uuid.uuid4().hex[:10]}@example.com")
    person, user = _known_person(identity, tenant, email)
    first = make_trace(person)
    decision.traces.sink.record(tenant, first)
    (stored,) = wait_stored(journeys, tenant, first.decision_id)
    assert stored.person_id == person
    assert [(i.type, i.value) for i in stored.identifiers] == [("user_id", user)]  # their first identifier

    moved = identity.UnmergeIdentifier(
        identity_pb.UnmergeIdentifierRequest(
            person_id=person, identifier=event_pb2.Identifier(type="user_id", value=user), reason="test"
        ),
        metadata=metadata(tenant),
        timeout=10,
    )
    other = moved.new_profile.person_id
    assert other
    assert other != person
    _wait_feed_read(decision, identity, tenant)

    later = make_trace(person)
    decision.traces.sink.record(tenant, later)
    (event,) = wait_stored(journeys, tenant, later.decision_id)
    assert [(i.type, i.value) for i in event.identifiers] == [("email", email.value)]
    assert event.person_id == person, f"the decision of {person} was filed under {other}"


@pytest.mark.timeout(120)
def test_without_the_feed_the_cached_identifier_of_an_erased_person_expires(
    identity_server: Server,
    ingest_server: Server,
    journeys_server: Server,
    journeys: journeys_grpc.JourneyServiceStub,
    identity: identity_grpc.IdentityServiceStub,
    tenant: str,
    tmp_path: Path,
) -> None:
    """WAYLINE_DECISION_OVERRIDE_POLL_SECONDS=0: the erasure is not read, but identity is asked again once
    the cached identifier expires, and answers that the person is gone."""
    unfollowing = start_decision(
        tmp_path,
        identity_server.address,
        ingest_server.address,
        journeys_server.address,
        override_poll_seconds=0,
        person_identifier_cache_seconds=0.5,
    )
    try:
        person, user, _, _ = _traced_then_erased(unfollowing, journeys, identity, tenant)
        time.sleep(0.6)
        later = make_trace(person)
        unfollowing.traces.sink.record(tenant, later)
        _wait_idle(unfollowing.traces.sink)
        assert unfollowing.traces.sink.dropped.get("person_unknown", 0) == 1
        assert not _profile_exists(identity, tenant, user), f"the erased user id {user!r} has a profile again"
    finally:
        unfollowing.stop()
