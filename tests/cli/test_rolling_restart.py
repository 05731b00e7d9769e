"""A rolling restart under load loses nothing (issue 13's acceptance).

The whole suite runs as processes (`Suite`). A new tenant's key sends Track and Identify calls through the
gateway from a few client threads and numbered batches on a long-lived StreamEvents call, each event with
its own id, while a reader reads timelines, profiles and models. Meanwhile every service in turn, the gateway
last, gets SIGTERM, must exit 0 within its grace, and is started again on the same data dir and port.

Each answer is classified as the real client does (`wayline.client.retry.RETRYABLE`): OK is an
acknowledgement; UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED and CANCELLED are retried with the same
event ids after a bounded backoff (refused when the retries run out); any other code fails the test.
CANCELLED may only come while the gateway itself shuts down (gRPC cancels the calls that reach a server in
that instant, grpc/grpc#41785); a backend's reaches clients as UNAVAILABLE. At the end every acknowledged
event is in journeys exactly once, every identified user has a profile holding their ids, and ingest's spool
is delivered to every sink, journeys, decision and the orchestrator alike: what waited while a sink was down
reached it after it came back (each sink's cursor at the spool's end, polled with a deadline).
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TypeVar

import grpc
import pytest
from google.rpc import error_details_pb2

from tests.decision.lifecycle_calls import deploy, push
from tests.decision.model_packages import ACTIONS, build_package
from wayline.api.v1 import annotations_pb2
from wayline.client.retry import RETRYABLE, Backoff, server_retry_delay, status_code
from wayline.common.errors import status_details
from wayline.common.timestamps import to_timestamp
from wayline.decision.v1 import action_pb2
from wayline.decision.v1 import decision_service_pb2 as decision_pb
from wayline.decision.v1 import decision_service_pb2_grpc as decision_grpc
from wayline.event.v1 import event_pb2
from wayline.gateway.v1 import api_key_pb2, tenant_pb2
from wayline.gateway.v1 import gateway_service_pb2 as admin_pb
from wayline.gateway.v1 import gateway_service_pb2_grpc as admin_grpc
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline_cli.suite import SERVICES, Suite
from wayline_decision.traces.events import DECISION_LOGGED, trace_event_id

# Six processes start, then each restarts once (decision loads ONNX Runtime each time): on 2 busy cores
# this takes minutes, not seconds.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

T = TypeVar("T")
Auth = tuple[tuple[str, str], ...]

WRITERS = 3
VISITORS_PER_WRITER = 4
WRITE_PAUSE_SECONDS = 0.08  # per writer: about 30 events/s in all, enough to have calls in flight
RETRY_FOR_SECONDS = 60.0  # a client gives up on an event after this long (then it was refused, not lost)
GRACE_SECONDS = 20.0  # above the services' shutdown grace (10 s): a clean exit is expected well within it
# Clients reconnect to a restarted gateway within a second (gRPC's default backoff grows to 120 s).
CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 1000)]
# Answers a read may legitimately get while events are still on their way: the person is not stored yet.
NOT_YET_STORED = {"PERSON_NOT_FOUND", "PROFILE_NOT_FOUND"}
MODEL_ID, MODEL_VERSION = "next-best-offer", "1.0.0"  # build_package's defaults


@dataclass(frozen=True)
class Sent:
    event_id: str
    anonymous_id: str
    user_id: str  # empty for a Track


@dataclass
class Ledger:
    """What the clients saw, shared by their threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    attempted: set[str] = field(default_factory=set)
    acked: dict[str, Sent] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)  # gave up after retryable answers only
    wrong: list[str] = field(default_factory=list)  # a non-retryable error: a defect
    retried: Counter[str] = field(default_factory=Counter)
    cancelled: list[float] = field(default_factory=list)  # when an answer was CANCELLED (time.monotonic)
    decisions: set[str] = field(default_factory=set)  # the decision ids Decide answered for a person
    reads: Counter[str] = field(default_factory=Counter)

    def has_acked(self, count: int) -> bool:
        with self.lock:
            return len(self.acked) >= count


def _reason(error: grpc.RpcError) -> str:
    for detail in status_details(error):
        if isinstance(detail, error_details_pb2.ErrorInfo):
            return str(detail.reason)
    return ""


def with_retries(
    ledger: Ledger, what: str, call: Callable[[], T], accept: frozenset[str] = frozenset()
) -> T | None:
    """`call` as a real client makes it: retryable codes again after a full-jitter backoff (at least the
    server's RetryInfo delay) until RETRY_FOR_SECONDS pass; None when refused or answered with a reason in
    `accept`; anything else is recorded as wrong."""
    backoff = Backoff(initial=0.1, maximum=2.0)
    give_up = time.monotonic() + RETRY_FOR_SECONDS
    attempt = 0
    while True:
        try:
            return call()
        except grpc.RpcError as error:
            code = status_code(error)
            if _reason(error) in accept:
                return None
            if code not in RETRYABLE:
                with ledger.lock:
                    ledger.wrong.append(f"{what}: {code.name} {_reason(error)} {error.details()}")
                return None
            with ledger.lock:
                ledger.retried[code.name] += 1
                if code == grpc.StatusCode.CANCELLED:
                    ledger.cancelled.append(time.monotonic())
            if time.monotonic() > give_up:
                with ledger.lock:
                    ledger.refused.append(f"{what}: {code.name}")
                return None
            time.sleep(min(backoff.delay(attempt, server_retry_delay(error)), 2.0))
            attempt += 1


def _event(sent: Sent) -> event_pb2.Event:
    identifiers = [event_pb2.Identifier(type="anonymous_id", value=sent.anonymous_id)]
    if sent.user_id:
        identifiers.append(event_pb2.Identifier(type="user_id", value=sent.user_id))
    return event_pb2.Event(
        event_id=sent.event_id,
        type=event_pb2.EVENT_TYPE_IDENTIFY if sent.user_id else event_pb2.EVENT_TYPE_TRACK,
        name="" if sent.user_id else "Page Viewed",
        channel=event_pb2.CHANNEL_WEB,
        identifiers=identifiers,
        timestamp=to_timestamp(datetime.now(UTC)),
    )


def write_load(address: str, auth: Auth, writer: int, ledger: Ledger, stop: threading.Event) -> None:
    """Track events, and now and then an Identify linking the visitor to a user id, each with a new event id
    that every retry of it reuses."""
    rng = random.Random(writer)
    with grpc.insecure_channel(address, options=CHANNEL_OPTIONS) as channel:
        ingest = ingest_grpc.IngestServiceStub(channel)
        sequence = 0
        while not stop.is_set():
            visitor = rng.randrange(VISITORS_PER_WRITER)
            sequence += 1
            identify = sequence % 7 == 0
            sent = Sent(
                str(uuid.uuid4()), f"anon-{writer}-{visitor}", f"user-{writer}-{visitor}" if identify else ""
            )
            with ledger.lock:
                ledger.attempted.add(sent.event_id)
            request = ingest_pb.TrackRequest(event=_event(sent))
            answer = with_retries(
                ledger, f"Track {sent.event_id}", partial(ingest.Track, request, metadata=auth, timeout=5)
            )
            if answer is not None:
                assert answer.event_id == sent.event_id
                with ledger.lock:
                    ledger.acked[sent.event_id] = sent
            stop.wait(WRITE_PAUSE_SECONDS)


class _OneStream:
    """The state of one StreamEvents call: the batches sent on it and not acknowledged yet, by sequence, and
    the window. Every change happens under `lock` (the request iterator runs on gRPC's thread)."""

    def __init__(self, carried: list[list[Sent]]) -> None:
        self.lock = threading.Condition()
        self.carried = carried  # batches of an earlier stream to send first
        self.unacked: dict[int, list[Sent]] = {}
        self.granted = 1
        self.closing = False

    def requests(
        self, new_batch: Callable[[], list[Sent]], stop: threading.Event
    ) -> Iterator[ingest_pb.StreamEventsRequest]:
        sent = 0

        def may_send() -> bool:
            return self.granted > sent or self.closing

        while True:
            with self.lock:
                if not self.lock.wait_for(may_send, timeout=30):
                    return
                if self.closing or (stop.is_set() and not self.carried):
                    return  # half-close: the server acknowledges the rest and ends with OK
                batch = self.carried.pop(0) if self.carried else new_batch()
                sent += 1
                self.unacked[sent] = batch
            yield ingest_pb.StreamEventsRequest(sequence=sent, events=[_event(event) for event in batch])
            stop.wait(WRITE_PAUSE_SECONDS * 3)

    def answered(self, response: ingest_pb.StreamEventsResponse) -> list[Sent]:
        with self.lock:
            self.granted = max(self.granted, response.max_sequence)
            self.lock.notify_all()
            return self.unacked.pop(response.sequence, []) if response.sequence else []

    def close(self) -> list[list[Sent]]:
        """End the request side; the batches to send again on the next stream, in order."""
        with self.lock:
            self.closing = True
            self.lock.notify_all()
            return [*(self.unacked[s] for s in sorted(self.unacked)), *self.carried]


def stream_load(address: str, auth: Auth, writer: int, ledger: Ledger, stop: threading.Event) -> None:
    """A long-lived StreamEvents call of numbered batches, as a high-volume collector keeps open. When the
    stream ends with a retryable code, the batches it did not acknowledge go again on a new stream, with
    the same event ids (the contract: they may or may not be stored)."""
    rng = random.Random(writer)
    backoff = Backoff(initial=0.1, maximum=2.0)

    def new_batch() -> list[Sent]:
        batch = [
            Sent(str(uuid.uuid4()), f"anon-{writer}-{rng.randrange(VISITORS_PER_WRITER)}", "")
            for _ in range(3)
        ]
        with ledger.lock:
            ledger.attempted.update(sent.event_id for sent in batch)
        return batch

    carried: list[list[Sent]] = []
    give_up: float | None = None
    failures = 0
    with grpc.insecure_channel(address, options=CHANNEL_OPTIONS) as channel:
        ingest = ingest_grpc.IngestServiceStub(channel)
        while not stop.is_set() or carried:
            if stop.is_set():
                give_up = give_up or time.monotonic() + RETRY_FOR_SECONDS
                if time.monotonic() > give_up:
                    with ledger.lock:
                        ledger.refused.extend(f"StreamEvents {sent.event_id}" for b in carried for sent in b)
                    return
            stream = _OneStream(carried)
            try:
                for response in ingest.StreamEvents(
                    stream.requests(new_batch, stop), metadata=auth, timeout=300
                ):
                    acknowledged = stream.answered(response)
                    assert len(response.accepted_event_ids) == len(acknowledged)
                    with ledger.lock:
                        ledger.acked.update((sent.event_id, sent) for sent in acknowledged)
                carried = stream.close()
                failures = 0
            except grpc.RpcError as error:
                carried = stream.close()
                code = status_code(error)
                if code not in RETRYABLE:
                    with ledger.lock:
                        ledger.wrong.append(f"StreamEvents: {code.name} {_reason(error)} {error.details()}")
                    return
                with ledger.lock:
                    ledger.retried[f"StreamEvents {code.name}"] += 1
                    if code == grpc.StatusCode.CANCELLED:
                        ledger.cancelled.append(time.monotonic())
                time.sleep(min(backoff.delay(failures, server_retry_delay(error)), 2.0))
                failures += 1


def decide_request(visitor: event_pb2.Identifier) -> decision_pb.DecideRequest:
    return decision_pb.DecideRequest(
        person=event_pb2.PersonRef(identifier=visitor),
        channel=event_pb2.CHANNEL_WEB,
        placement="home_hero",
        candidates=[action_pb2.CandidateAction(action_id=action) for action in ACTIONS],
        max_actions=len(ACTIONS),
        model=f"models/{MODEL_ID}",
    )


def read_load(address: str, auth: Auth, ledger: Ledger, stop: threading.Event) -> None:
    """A timeline, a profile, the model list and a decision in turn, through the gateway to journeys,
    identity and decision (which reads the person's features from its online state or journeys)."""
    rng = random.Random(99)
    with grpc.insecure_channel(address, options=CHANNEL_OPTIONS) as channel:
        journeys = journeys_grpc.JourneyServiceStub(channel)
        identity = identity_grpc.IdentityServiceStub(channel)
        decision = decision_grpc.DecisionServiceStub(channel)
        while not stop.is_set():
            visitor = event_pb2.Identifier(
                type="anonymous_id",
                value=f"anon-{rng.randrange(WRITERS)}-{rng.randrange(VISITORS_PER_WRITER)}",
            )
            reads: dict[str, Callable[[], object]] = {
                "GetTimeline": partial(
                    journeys.GetTimeline,
                    journeys_pb.GetTimelineRequest(identifier=visitor, page_size=5),
                    metadata=auth,
                    timeout=5,
                ),
                "GetProfile": partial(
                    identity.GetProfile,
                    identity_pb.GetProfileRequest(person=event_pb2.PersonRef(identifier=visitor)),
                    metadata=auth,
                    timeout=5,
                ),
                "ListModels": partial(
                    decision.ListModels, decision_pb.ListModelsRequest(), metadata=auth, timeout=5
                ),
                "Decide": partial(decision.Decide, decide_request(visitor), metadata=auth, timeout=5),
            }
            for name, read in reads.items():
                answer = with_retries(ledger, name, read, accept=frozenset(NOT_YET_STORED))
                if answer is not None:
                    with ledger.lock:
                        ledger.reads[name] += 1
                        # A decision names a person once identity knows the visitor; one for a visitor
                        # not resolved yet is not traced (no person to file it under: ADR 29).
                        if isinstance(answer, decision_pb.DecideResponse) and answer.person_id:
                            ledger.decisions.add(answer.decision_id)
            stop.wait(0.2)


def new_tenant_key(address: str, operator: Auth) -> Auth:
    """A tenant and a key for it (write, read and admin: it deploys a model), made by the operator as the
    demo does."""
    with grpc.insecure_channel(address) as channel:
        admin = admin_grpc.AdminServiceStub(channel)
        tenant = admin.CreateTenant(
            admin_pb.CreateTenantRequest(
                tenant_id=f"rolling-{uuid.uuid4().hex[:6]}", tenant=tenant_pb2.Tenant(display_name="Rolling")
            ),
            metadata=operator,
            timeout=10,
        ).tenant
        key = admin.CreateApiKey(
            admin_pb.CreateApiKeyRequest(
                parent=tenant.name,
                api_key=api_key_pb2.ApiKey(
                    display_name="load",
                    scopes=[
                        annotations_pb2.SCOPE_WRITE,
                        annotations_pb2.SCOPE_READ,
                        annotations_pb2.SCOPE_ADMIN,
                    ],
                ),
            ),
            metadata=operator,
            timeout=10,
        )
    return (("authorization", f"Bearer {key.secret}"),)


def spool_backlog(ingest_dir: Path) -> dict[str, int]:
    """Bytes of ingest's spool each sink has not taken yet, read from the files (the segments' durable end
    against each sink's cursor file)."""
    segments = sorted((ingest_dir / "spool" / "segments").glob("*"))
    segments = [s for s in segments if s.name[:20].isdigit()]
    end = int(segments[-1].name[:20]) + segments[-1].stat().st_size if segments else 0
    cursors = ingest_dir / "spool" / "cursors"
    backlog = {}
    for sink in ("journeys", "decision", "orchestrator"):
        path = cursors / sink
        position = int(path.read_text()) if path.exists() else 0
        backlog[sink] = end - position
    return backlog


def stored_events(address: str, auth: Auth, since: datetime) -> list[tuple[str, str]]:
    """Every event journeys holds for the tenant, as (event id, name), as often as it is stored (read
    through the gateway)."""
    with grpc.insecure_channel(address) as channel:
        journeys = journeys_grpc.JourneyServiceStub(channel)
        request = journeys_pb.ExportEventsRequest(
            time_range=event_pb2.TimeRange(
                start=to_timestamp(since), end=to_timestamp(datetime.now(UTC) + timedelta(hours=1))
            )
        )
        stream = journeys.ExportEvents(request, metadata=auth, timeout=30)
        return [(event.event_id, event.name) for chunk in stream for event in chunk.events]


def poll(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


@pytest.fixture
def suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Suite]:
    # A sink back from a restart is retried within a second, not after up to 30 s of backoff.
    monkeypatch.setenv("WAYLINE_INGEST_SINK_RETRY_MAX_SECONDS", "1")
    running = Suite.on_free_ports(tmp_path / "data")
    running.start()
    try:
        running.wait_ready(timeout=240)
        yield running
    finally:
        running.stop()


def test_a_rolling_restart_under_load_loses_and_duplicates_no_acknowledged_event(
    suite: Suite, tmp_path: Path
) -> None:
    started = datetime.now(UTC) - timedelta(minutes=1)
    gateway = suite.address("gateway")
    auth = new_tenant_key(gateway, (("authorization", f"Bearer {suite.api_key}"),))
    with grpc.insecure_channel(gateway) as channel:  # a model for Decide, which must survive the restarts
        push(channel, build_package(tmp_path / "model", model_id=MODEL_ID, version=MODEL_VERSION), auth)
        deploy(channel, MODEL_ID, MODEL_VERSION, auth=auth)
    ledger = Ledger()
    stop = threading.Event()
    clients = [
        threading.Thread(target=write_load, args=(gateway, auth, n, ledger, stop), daemon=True)
        for n in range(WRITERS)
    ]
    clients.append(
        threading.Thread(target=stream_load, args=(gateway, auth, WRITERS, ledger, stop), daemon=True)
    )
    clients.append(threading.Thread(target=read_load, args=(gateway, auth, ledger, stop), daemon=True))
    for client in clients:
        client.start()
    exit_codes: dict[str, int] = {}
    gateway_down = (0.0, 0.0)  # from its SIGTERM until it is SERVING again
    try:
        assert poll(partial(ledger.has_acked, 20), 60), "no load before the restarts"
        for spec in SERVICES:  # the registry's order: the gateway last
            before, began = len(ledger.acked), time.monotonic()
            exit_codes[spec.name] = suite.restart(spec.name, grace=GRACE_SECONDS, timeout=120)
            if spec.name == "gateway":
                gateway_down = (began, time.monotonic())
            # Load reaches the new process before the next one goes down.
            assert poll(partial(ledger.has_acked, before + 10), 60), f"no load after {spec.name}"
    finally:
        stop.set()
        for client in clients:
            client.join(RETRY_FOR_SECONDS + 10)

    assert exit_codes == {spec.name: 0 for spec in SERVICES}, {
        name: suite.log_tail(name) for name, code in exit_codes.items() if code
    }
    print(f"acked {len(ledger.acked)}, retried {dict(ledger.retried)}, refused {len(ledger.refused)}")
    assert not ledger.wrong, ledger.wrong
    # CANCELLED (retried, like UNAVAILABLE) comes only from the gateway's own gRPC as it shuts down
    # (grpc/grpc#41785); a backend's is UNAVAILABLE by the time it reaches a client.
    assert [t for t in ledger.cancelled if not gateway_down[0] <= t <= gateway_down[1]] == []
    assert not [c.name for c in clients if c.is_alive()]
    acked = dict(ledger.acked)
    assert len(acked) >= 20 * len(SERVICES)

    # Every sink takes the whole spool: what waited while a sink was down is delivered after it returned.
    ingest_dir = suite.data_dir / "ingest"
    assert poll(lambda: set(spool_backlog(ingest_dir).values()) == {0}, 90), spool_backlog(ingest_dir)

    # Every decision answered is traced in journeys too: its `Decision Logged` event, through ingest.
    assert ledger.decisions
    expected = set(acked) | {trace_event_id(decision) for decision in ledger.decisions}
    stored: list[tuple[str, str]] = []

    def all_stored() -> bool:
        stored[:] = stored_events(gateway, auth, started)
        return expected <= {event_id for event_id, _ in stored}

    assert poll(all_stored, 30), (
        f"{len(expected - {i for i, _ in stored})} answered events missing in journeys"
    )
    assert {event_id: n for event_id, n in Counter(i for i, _ in stored).items() if n != 1} == {}
    # Nothing stored that no client sent (decisions aside: a Decide answered UNAVAILABLE may have decided).
    assert {event_id for event_id, name in stored if name != DECISION_LOGGED} <= ledger.attempted

    with grpc.insecure_channel(gateway) as channel:
        identity = identity_grpc.IdentityServiceStub(channel)
        users = {sent.user_id: sent.anonymous_id for sent in acked.values() if sent.user_id}
        assert users
        for user_id, anonymous_id in users.items():
            profile = identity.GetProfile(
                identity_pb.GetProfileRequest(
                    person=event_pb2.PersonRef(identifier=event_pb2.Identifier(type="user_id", value=user_id))
                ),
                metadata=auth,
                timeout=10,
            ).profile
            held = {(i.identifier.type, i.identifier.value) for i in profile.identifiers}
            assert {("user_id", user_id), ("anonymous_id", anonymous_id)} <= held
    assert set(ledger.reads) == {"GetTimeline", "GetProfile", "ListModels", "Decide"}  # each answered
    with grpc.insecure_channel(gateway) as channel:  # the restarted decision service loaded the model again
        visitor = event_pb2.Identifier(type="anonymous_id", value="anon-0-0")
        decided = decision_grpc.DecisionServiceStub(channel).Decide(
            decide_request(visitor), metadata=auth, timeout=10
        )
    assert (decided.model_version, len(decided.actions)) == (MODEL_VERSION, len(ACTIONS))

    # Stopping the suite right after that decision keeps its trace: the registry's stop waves stop decision,
    # which flushes it through ingest and identity, before them. All at once, decision could find ingest
    # gone, retry for its whole grace (10 s) and drop the trace.
    assert suite.stop() == {spec.name: 0 for spec in SERVICES}
    decision_stopped = last_logged(suite.log_dir / "decision.log", "server.stopped")
    for peer in ("ingest", "identity"):
        assert decision_stopped < last_logged(suite.log_dir / f"{peer}.log", "server.signal"), peer
    assert not [
        line for line in (suite.log_dir / "decision.log").read_text().splitlines() if '"shutdown"' in line
    ]


def last_logged(log: Path, event: str) -> datetime:
    """When a service's JSON log last recorded `event`."""
    times = [
        datetime.fromisoformat(record["timestamp"])
        for line in log.read_text().splitlines()
        if line.startswith("{") and (record := json.loads(line)).get("event") == event
    ]
    assert times, f"no {event} in {log}"
    return times[-1]
