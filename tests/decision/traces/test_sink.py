"""The TraceSink against real services: ingest down then back (nothing lost within the buffer, nothing
duplicated), a full buffer (dropped, counted), the flush on stop, and Decide's pending traces (built on the
sink's thread, or once by a reader that comes first)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import INTERNAL_TOKEN, common_settings, start_server
from tests.decision.traces.conftest import make_trace, metadata, start_decision, wait_stored
from wayline.common.clients import internal_channel
from wayline.common.server import Server
from wayline.decision.v1 import decision_pb2
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline_cli.suite import free_port
from wayline_decision.decide.traces import PendingTrace
from wayline_decision.traces.clients import EventWriter, PersonIdentifiers
from wayline_decision.traces.recent import RecentTraces
from wayline_decision.traces.sink import IngestTraceSink, SinkPolicy
from wayline_ingest.service import ingest_service
from wayline_ingest.settings import IngestSettings


def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.1)


def sink_to(ingest: str, identity: str, policy: SinkPolicy) -> IngestTraceSink:
    return IngestTraceSink(
        EventWriter(internal_channel(ingest, internal_token=INTERNAL_TOKEN), timeout=2.0),
        PersonIdentifiers(internal_channel(identity, internal_token=INTERNAL_TOKEN)),
        RecentTraces(1000, 300.0),
        policy,
    )


def start_ingest(
    data_dir: Path, port: int, journeys_server: Server, identity_server: Server, **overrides: object
) -> Server:
    """A real ingest on `port` delivering to the journey store, with `overrides` of its settings."""
    settings = IngestSettings(
        **{**common_settings(data_dir), "port": port, **overrides},  # type: ignore[arg-type]
        journeys_address=journeys_server.address,
        identity_address=identity_server.address,
    )
    return start_server(ingest_service(settings), settings)


@pytest.mark.timeout(180)
def test_sink_keeps_traces_while_ingest_is_down_and_writes_each_once_when_it_is_back(
    identity_server: Server,
    journeys_server: Server,
    journeys: journeys_grpc.JourneyServiceStub,
    tenant: str,
    person: Callable[[], str],
    tmp_path: Path,
) -> None:
    port = free_port()  # nothing listens here yet: ingest is down
    decision = start_decision(
        tmp_path / "decision",
        identity_server.address,
        f"127.0.0.1:{port}",
        journeys_server.address,
        trace_batch_size=7,
    )
    ingest: Server | None = None
    try:
        someone = person()
        traces = [make_trace(someone) for _ in range(20)]
        for trace in traces:
            decision.traces.sink.record(tenant, trace)
        time.sleep(2.0)  # several failed attempts
        sink = decision.traces.sink
        assert (sink.waiting, sink.written, sink.dropped) == (20, 0, {})
        found = decision.stub.GetDecision(
            pb.GetDecisionRequest(decision_id=traces[-1].decision_id), metadata=metadata(tenant), timeout=10
        ).decision
        assert found == traces[-1]  # served from memory while the store cannot have it
        ingest = start_ingest(tmp_path / "ingest", port, journeys_server, identity_server)
        until(lambda: sink.written == 20, 60, f"the sink wrote {sink.written} of 20 after ingest came back")
        assert (sink.waiting, sink.dropped) == (0, {})
        for trace in traces:
            assert len(wait_stored(journeys, tenant, trace.decision_id)) == 1
        time.sleep(1.0)  # a duplicate would be delivered by now
        assert all(len(wait_stored(journeys, tenant, t.decision_id)) == 1 for t in traces)
    finally:
        decision.stop()
        if ingest is not None:
            ingest.stop(0)


def test_sink_drops_and_counts_what_overflows_its_buffer(
    identity_server: Server, tenant: str, person: Callable[[], str]
) -> None:
    sink = sink_to(
        f"127.0.0.1:{free_port()}", identity_server.address, SinkPolicy(capacity=5, max_backoff=0.2)
    )
    sink.start()
    someone = person()
    for _ in range(8):
        sink.record(tenant, make_trace(someone))
    assert sink.dropped == {"buffer_full": 3}
    assert sink.waiting == 5
    sink.stop(timeout=0.5)  # ingest is still down: what waits is lost, and counted
    assert sink.dropped == {"buffer_full": 3, "shutdown": 5}


def test_sink_flushes_what_waits_on_stop(
    identity_server: Server,
    ingest_server: Server,
    journeys: journeys_grpc.JourneyServiceStub,
    tenant: str,
    person: Callable[[], str],
) -> None:
    # A linger far longer than the test: only the stop makes the sink write.
    sink = sink_to(ingest_server.address, identity_server.address, SinkPolicy(linger_seconds=60.0))
    sink.start()
    someone = person()
    traces = [make_trace(someone) for _ in range(3)]
    for trace in traces:
        sink.record(tenant, trace)
    sink.stop(timeout=10.0)
    assert (sink.written, sink.dropped) == (3, {})
    for trace in traces:
        wait_stored(journeys, tenant, trace.decision_id)


class _Builds:
    """A PendingTrace's build that notes every thread it ran on."""

    def __init__(self, trace: decision_pb2.Decision) -> None:
        self.trace = trace
        self.threads: list[str] = []

    def __call__(self) -> decision_pb2.Decision:
        self.threads.append(threading.current_thread().name)
        return self.trace


def test_a_pending_trace_is_built_on_the_sink_thread_not_by_the_caller_of_record(
    identity_server: Server,
    ingest_server: Server,
    journeys: journeys_grpc.JourneyServiceStub,
    tenant: str,
    person: Callable[[], str],
) -> None:
    sink = sink_to(ingest_server.address, identity_server.address, SinkPolicy(linger_seconds=0.05))
    trace = make_trace(person())
    builds = _Builds(trace)
    sink.start()
    try:
        sink.record(tenant, PendingTrace(trace.decision_id, trace.person_id, builds))
        assert builds.threads in ([], ["decision-trace-sink"])  # record itself built nothing
        until(lambda: sink.written == 1, 60, "the sink wrote the pending trace")
    finally:
        sink.stop(timeout=10.0)
    assert builds.threads == ["decision-trace-sink"]
    events = wait_stored(journeys, tenant, trace.decision_id)
    assert len(events) == 1


def test_a_trace_read_before_the_sink_writes_it_is_built_once_and_written_as_read(
    identity_server: Server,
    ingest_server: Server,
    journeys: journeys_grpc.JourneyServiceStub,
    tenant: str,
    person: Callable[[], str],
) -> None:
    recent = RecentTraces(1000, 300.0)
    sink = IngestTraceSink(
        EventWriter(internal_channel(ingest_server.address, internal_token=INTERNAL_TOKEN), timeout=2.0),
        PersonIdentifiers(internal_channel(identity_server.address, internal_token=INTERNAL_TOKEN)),
        recent,
        SinkPolicy(linger_seconds=60.0),  # nothing is written before the stop
    )
    trace = make_trace(person())
    builds = _Builds(trace)
    sink.start()
    sink.record(tenant, PendingTrace(trace.decision_id, trace.person_id, builds))
    found, feedback = recent.get(tenant, trace.decision_id)  # as GetDecision does, before the write
    assert (found, feedback) == (trace, [])
    assert builds.threads == [threading.current_thread().name]
    sink.stop(timeout=10.0)
    assert (sink.written, sink.dropped) == (1, {})
    assert builds.threads == [threading.current_thread().name]  # the sink wrote the message already built
    wait_stored(journeys, tenant, trace.decision_id)


def test_sink_splits_what_ingest_would_refuse_as_one_batch_too_large(
    identity_server: Server,
    journeys_server: Server,
    journeys: journeys_grpc.JourneyServiceStub,
    tenant: str,
    person: Callable[[], str],
    tmp_path: Path,
) -> None:
    # An ingest whose batch limit a dozen traces exceed: sent as one TrackBatch they were refused whole,
    # again on every retry, and waited for ever.
    ingest = start_ingest(
        tmp_path / "ingest", free_port(), journeys_server, identity_server, max_batch_bytes=4096
    )
    try:
        sink = sink_to(
            ingest.address, identity_server.address, SinkPolicy(linger_seconds=60.0, max_batch_bytes=4096)
        )
        sink.start()
        someone = person()
        traces = [make_trace(someone) for _ in range(12)]
        assert sum(len(t.SerializeToString()) for t in traces) > 4096
        for trace in traces:
            sink.record(tenant, trace)
        sink.stop(timeout=20.0)
        assert (sink.written, sink.dropped) == (12, {})
        for trace in traces:
            wait_stored(journeys, tenant, trace.decision_id)
    finally:
        ingest.stop(0)
