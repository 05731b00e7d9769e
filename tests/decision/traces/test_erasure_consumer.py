"""The decision service as one of the stores identity's erasures wait for (`decision` in
WAYLINE_IDENTITY_ERASURE_FEED_CONSUMERS), over real sockets: an identity that lists it, the suite's journeys
and ingest, real decision servers (one as a process killed with SIGKILL) and a real Redis.

An erasure is DONE only once the decision service has acknowledged identity's override feed past its markers,
which it does after its online state and its traces forgot the person. So it must follow every tenant it
holds anything of, and remember those tenants across a restart (a crash too): a tenant it no longer follows
gets no acknowledgement, and an erasure there would never complete (ADR 76)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import grpc
import pytest
from pydantic import SecretStr

from tests.conftest import INTERNAL_TOKEN, common_settings, start_server
from tests.decision.features.online import SETTLE_AFTER_S, event, now_us, observe, spec
from tests.decision.traces.conftest import make_trace, metadata, start_decision, wait_stored
from tests.redis import redis_url  # noqa: F401 - the session's server, for the shared state
from wayline.common.server import Server
from wayline.decision.v1 import decision_pb2
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.decision.v1 import decision_service_pb2_grpc as pb_grpc
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline.identity.v1 import person_override_pb2
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline_cli.suite import free_port, is_serving
from wayline_decision.features.runtime import FeatureRuntime
from wayline_decision.service import decision_service
from wayline_decision.settings import DecisionSettings
from wayline_decision.traces.wiring import Traces, build_traces
from wayline_identity.service import identity_service
from wayline_identity.settings import IdentitySettings

SPEC = spec()
Identity = identity_grpc.IdentityServiceStub
ErasureState: TypeAlias = identity_pb.ErasureState.ValueType


@pytest.fixture(scope="module")
def waiting_identity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """An identity whose erasures wait for the decision service's feed cursor, and for no other store."""
    settings = IdentitySettings(
        **common_settings(tmp_path_factory.mktemp("identity-decision-consumer")),  # type: ignore[arg-type]
        journeys_address="",
        ingest_address="",
        erasure_feed_consumers=["decision"],
        erasure_retry_seconds=0.2,
    )
    server = start_server(identity_service(settings), settings)
    yield server
    server.stop(0)


@pytest.fixture(scope="module")
def identity(waiting_identity: Server) -> Iterator[Identity]:
    with grpc.insecure_channel(waiting_identity.address) as channel:
        yield identity_grpc.IdentityServiceStub(channel)


@dataclass
class _Decision:
    server: Server
    runtime: FeatureRuntime
    traces: Traces

    @property
    def address(self) -> str:
        return self.server.address

    def get_decision(self, tenant: str, decision_id: str) -> grpc.StatusCode | None:
        """None when GetDecision answers; else its status code."""
        with grpc.insecure_channel(self.address) as channel:
            try:
                pb_grpc.DecisionServiceStub(channel).GetDecision(
                    pb.GetDecisionRequest(decision_id=decision_id), metadata=metadata(tenant), timeout=10
                )
            except grpc.RpcError as error:
                return error.code()
        return None


def _settings(
    data_dir: Path, identity: Server, journeys: Server, ingest: Server, **extra: Any
) -> DecisionSettings:
    values: dict[str, Any] = {
        **common_settings(data_dir),
        "identity_address": identity.address,
        "journeys_address": journeys.address,
        "ingest_address": ingest.address,
        "orchestrator_address": "",
        "features_settle_after_seconds": SETTLE_AFTER_S,
        "trace_linger_seconds": 0.05,
        "trace_max_backoff_seconds": 0.5,
        "override_poll_seconds": 0.2,
    }
    return DecisionSettings(**(values | extra))


def _start(settings: DecisionSettings) -> _Decision:
    runtime = FeatureRuntime(settings)
    traces = build_traces(settings)
    server = start_server(decision_service(settings, runtime, traces=traces), settings)
    return _Decision(server, runtime, traces)


def _person(identity: Identity, tenant: str) -> str:
    """A person the waiting identity knows by a new user id: their person id."""
    request = identity_pb.ResolveIdentitiesRequest(
        inputs=[
            identity_pb.IdentityResolutionInput(
                event_id=str(uuid.uuid4()),
                event_type=event_pb2.EVENT_TYPE_IDENTIFY,
                identifiers=[event_pb2.Identifier(type="user_id", value=f"u-{uuid.uuid4().hex[:10]}")],
            )
        ]
    )
    request.inputs[0].timestamp.GetCurrentTime()
    response = identity.ResolveIdentities(request, metadata=metadata(tenant), timeout=10)
    return str(response.resolutions[0].person_id)


def _erase(identity: Identity, tenant: str, person: str) -> str:
    erased = identity.DeleteProfile(
        identity_pb.DeleteProfileRequest(person_id=person, reason="test"),
        metadata=metadata(tenant),
        timeout=10,
    )
    return str(erased.erasure.erasure_id)


def _steps(identity: Identity, tenant: str, erasure_id: str) -> dict[str, ErasureState]:
    """Each store's step state, and the erasure's own under `erasure`."""
    found = identity.GetErasure(
        identity_pb.GetErasureRequest(erasure_id=erasure_id), metadata=metadata(tenant), timeout=10
    ).erasure
    return {step.store: step.state for step in found.steps} | {"erasure": found.state}


def _eventually(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _done(identity: Identity, tenant: str, erasure_id: str) -> bool:
    return _steps(identity, tenant, erasure_id)["erasure"] == identity_pb.ERASURE_STATE_DONE


class _ErasureWatch:
    """A listener of the follower, told each page after the traces (forgetting.py): what identity says of
    the erasure while this process is still forgetting, asked once identity's driver (every 0.2 s) has had
    time to close an erasure already acknowledged."""

    def __init__(self, identity: Identity, erasure_id: str) -> None:
        self._identity = identity
        self._erasure_id = erasure_id
        self.seen: list[ErasureState] = []

    def tenant_names(self) -> set[str]:
        return set()

    def apply_overrides(self, tenant: str, overrides: Sequence[person_override_pb2.PersonOverride]) -> None:
        time.sleep(0.6)
        self.seen.append(_steps(self._identity, tenant, self._erasure_id)["erasure"])


@pytest.mark.timeout(120)
def test_get_erasure_waits_until_the_decision_service_forgot_the_person(
    waiting_identity: Server,
    identity: Identity,
    journeys_server: Server,
    ingest_server: Server,
    journeys: journeys_grpc.JourneyServiceStub,
    tenant: str,
    tmp_path: Path,
) -> None:
    # An hour between the follower's own reads of the feed (it reads once at start): it is paused, and the
    # test reads the feed for it with `poll`, as its thread would.
    decision = _start(
        _settings(tmp_path, waiting_identity, journeys_server, ingest_server, override_poll_seconds=3600)
    )
    try:
        person = _person(identity, tenant)
        decision.runtime.features.register(tenant, SPEC, now_us())
        assert observe(decision.address, tenant, event(person, hours_ago=2, price=3.0)) == 1
        state = decision.runtime.states.for_tenant(tenant)
        trace = make_trace(person)
        decision.traces.sink.record(tenant, trace)  # looks the person's identifier up, keeps the trace
        wait_stored(journeys, tenant, trace.decision_id)
        assert state.holds(person)
        assert decision.get_decision(tenant, trace.decision_id) is None

        erasure = _erase(identity, tenant, person)
        time.sleep(1.5)  # identity's driver passes every 0.2 s: it had every chance to close the erasure
        steps = _steps(identity, tenant, erasure)
        assert steps["decision"] == identity_pb.ERASURE_STATE_PENDING, steps
        assert steps["erasure"] == identity_pb.ERASURE_STATE_PENDING, "DONE before decision acknowledged"
        assert state.holds(person)  # what an erasure reported DONE now would have left behind
        assert decision.get_decision(tenant, trace.decision_id) is None

        follower = decision.runtime.follower
        assert follower is not None
        watch = _ErasureWatch(identity, erasure)
        follower.add_listener(watch)  # the follower's thread is waiting its hour: nothing reads the list now
        assert follower.poll()  # the feed read: the person forgotten, then the cursor acknowledged
        assert watch.seen == [identity_pb.ERASURE_STATE_PENDING], "DONE while the decision service forgot"
        _eventually(lambda: _done(identity, tenant, erasure), "the erasure did not complete")
        assert _steps(identity, tenant, erasure)["decision"] == identity_pb.ERASURE_STATE_DONE
        assert not state.holds(person)
        assert decision.get_decision(tenant, trace.decision_id) == grpc.StatusCode.NOT_FOUND
    finally:
        decision.server.stop(0)


def _decision_process(
    data_dir: Path, identity: Server, journeys: Server, ingest: Server
) -> tuple[subprocess.Popen[bytes], str]:
    """`python -m wayline_decision` on a free port, SERVING: the process and its address."""
    port = free_port()
    environment = os.environ | {
        "WAYLINE_DATA_DIR": str(data_dir),
        "WAYLINE_INTERNAL_TOKEN": INTERNAL_TOKEN,
        "WAYLINE_DECISION_HOST": "127.0.0.1",
        "WAYLINE_DECISION_PORT": str(port),
        "WAYLINE_DECISION_METRICS_PORT": "0",
        "WAYLINE_DECISION_IDENTITY_ADDRESS": identity.address,
        "WAYLINE_DECISION_JOURNEYS_ADDRESS": journeys.address,
        "WAYLINE_DECISION_INGEST_ADDRESS": ingest.address,
        "WAYLINE_DECISION_ORCHESTRATOR_ADDRESS": "",
        "WAYLINE_DECISION_OVERRIDE_POLL_SECONDS": "0.2",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "wayline_decision"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while not is_serving(address):
        assert process.poll() is None, "the decision process exited"
        assert time.monotonic() < deadline, "the decision process did not start in time"
        time.sleep(0.2)
    return process, address


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_tenant_known_only_from_feedback_is_still_followed_after_a_crash(
    waiting_identity: Server,
    identity: Identity,
    journeys_server: Server,
    ingest_server: Server,
    journeys: journeys_grpc.JourneyServiceStub,
    tenant: str,
    tmp_path: Path,
) -> None:
    """Feedback on a decision another replica made: the only contact this replica has with the tenant (it
    looks the person's identifier up, and caches it, to write the feedback event)."""
    person = _person(identity, tenant)
    other = start_decision(  # the replica that decided; it does not follow the feed, so never acknowledges
        tmp_path / "other",
        waiting_identity.address,
        ingest_server.address,
        journeys_server.address,
        override_poll_seconds=0,
    )
    try:
        trace = make_trace(person)
        other.traces.sink.record(tenant, trace)
        wait_stored(journeys, tenant, trace.decision_id)
    finally:
        other.stop()

    data_dir = tmp_path / "replica"
    process, address = _decision_process(data_dir, waiting_identity, journeys_server, ingest_server)
    try:
        with grpc.insecure_channel(address) as channel:
            pb_grpc.DecisionServiceStub(channel).Feedback(
                pb.FeedbackRequest(
                    decision_id=trace.decision_id,
                    action_id="discount-10",
                    outcome=decision_pb2.FEEDBACK_OUTCOME_CLICK,
                ),
                metadata=metadata(tenant),
                timeout=10,
            )
        time.sleep(0.5)  # a few reads of the feed: the process follows the tenant now
    finally:
        process.send_signal(signal.SIGKILL)  # no snapshot at stop: only what it wrote as it went
        process.wait(10)

    restarted = _start(_settings(data_dir, waiting_identity, journeys_server, ingest_server))
    try:
        erasure = _erase(identity, tenant, person)
        _eventually(
            lambda: _done(identity, tenant, erasure),
            "the erasure waits for a decision service that no longer follows the tenant",
        )
    finally:
        restarted.server.stop(0)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_replica_on_the_shared_state_follows_the_tenants_other_replicas_fed(
    waiting_identity: Server,
    identity: Identity,
    journeys_server: Server,
    ingest_server: Server,
    tenant: str,
    tmp_path: Path,
    redis_url: str,  # noqa: F811 - the fixture imported above
) -> None:
    """With the state in Redis, a replica's own directory is an emptyDir in Kubernetes: a replica replacing
    the one that consumed a tenant's events starts with no bookkeeping, while Redis holds the tenant's
    persons. It follows the tenant all the same, so their erasure reaches Redis and completes."""
    shared = {"feature_state": "redis", "redis_url": SecretStr(redis_url)}
    person = _person(identity, tenant)
    first = _start(
        _settings(
            tmp_path / "first",
            waiting_identity,
            journeys_server,
            ingest_server,
            override_poll_seconds=0,
            **shared,
        )
    )
    try:
        first.runtime.features.register(tenant, SPEC, now_us())
        assert observe(first.address, tenant, event(person, hours_ago=2, price=3.0)) == 1
        assert first.runtime.states.for_tenant(tenant).holds(person)
    finally:
        first.server.stop(0)

    replacing = _start(
        _settings(tmp_path / "replacing", waiting_identity, journeys_server, ingest_server, **shared)
    )
    try:
        erasure = _erase(identity, tenant, person)
        _eventually(
            lambda: _done(identity, tenant, erasure),
            "the erasure waits for a replica that does not follow the tenant",
        )
        assert not replacing.runtime.states.for_tenant(tenant).holds(person)
    finally:
        replacing.server.stop(0)
