"""The flows' workloads over ObserveEvents: many customers entering the abandoned-cart flow, the events that
concern no flow, the events of customers inside, and a steady stream of due timers.

Events go in batches (what ingest's forwarder sends), as serialised requests, so the bare echo of the same
bytes is the baseline. Figures about the state (live entries, timers, the step runs that give each timer's
due and fire times, the database's size) are read from the orchestrator's database by the bench's own
connection, outside any timed call.

Timer lag: persons enter a flow whose first step waits `wait` seconds, at an even pace over `window`
seconds, so their timers come due evenly over a window of the same length, while every earlier entry stays
waiting in the tables. The lag of a timer is the `run_time` of the step run that follows the wait (the
entry's exit) minus the wait's `due_time` (its `WAIT` run's detail): how late the timer loop fired it.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import psycopg
from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from bench.harness import percentile
from wayline.event.v1 import event_pb2
from wayline.orchestrator.v1 import flow_pb2
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline.orchestrator.v1 import orchestrator_service_pb2_grpc as pb_grpc

__all__ = [
    "OBSERVE",
    "TIMER_FLOW",
    "BatchFigures",
    "LagFigures",
    "StateReader",
    "event_batches",
    "publish",
    "send_batches",
    "send_paced",
    "timer_flow",
]

OBSERVE = "/wayline.orchestrator.v1.OrchestratorService/ObserveEvents"
TIMER_FLOW = "timers"
Metadata = tuple[tuple[str, str], ...]


def event_batches(
    name: str, persons: Sequence[str], batch: int, properties: dict[str, Any] | None = None
) -> list[bytes]:
    """One web track event `name` per person, now, in serialised ObserveEvents requests of `batch`."""
    when = Timestamp()
    when.FromMicroseconds(time.time_ns() // 1_000)
    requests = []
    for start in range(0, len(persons), batch):
        events = []
        for person in persons[start : start + batch]:
            event = event_pb2.Event(
                event_id=str(uuid.uuid4()),
                type=event_pb2.EVENT_TYPE_TRACK,
                name=name,
                channel=event_pb2.CHANNEL_WEB,
                timestamp=when,
                person_id=person,
            )
            json_format.ParseDict(properties or {}, event.properties)
            events.append(event)
        requests.append(pb.ObserveEventsRequest(events=events).SerializeToString())
    return requests


def publish(address: str, metadata: Metadata, flow_id: str, definition: dict[str, Any]) -> int:
    """Create the flow from its proto3 JSON definition and publish it; the published version."""
    message = flow_pb2.Flow(display_name=flow_id)
    json_format.ParseDict(definition, message.definition)
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.OrchestratorServiceStub(channel)
        stub.CreateFlow(pb.CreateFlowRequest(flow_id=flow_id, flow=message), metadata=metadata, timeout=30)
        request = pb.PublishFlowRequest(name=f"flows/{flow_id}")
        return int(stub.PublishFlow(request, metadata=metadata, timeout=30).flow.published_version)


def timer_flow(wait_seconds: float) -> dict[str, Any]:
    """On `Timer Started`: wait, then leave (the exit is the step run that tells when the timer fired)."""
    return {
        "trigger": {"event": {"event": {"event_name": "Timer Started"}}},
        "entry_step_id": "wait",
        "steps": [
            {"id": "wait", "wait": {"duration": f"{wait_seconds:g}s", "next_step_id": "done"}},
            {"id": "done", "exit": {"reason": "finished"}},
        ],
    }


@dataclass(frozen=True)
class BatchFigures:
    what: str
    events: int
    seconds: float
    call_p50_ms: float
    call_p99_ms: float

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds


def send_batches(
    what: str, address: str, method: str, metadata: Metadata, requests: Sequence[bytes], events: int
) -> BatchFigures:
    """Send the requests (carrying `events` events in all) one after the other, from one caller as one
    forwarder does; throughput and latency."""
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        latencies = []
        began = time.perf_counter()
        for request in requests:
            started = time.perf_counter()
            call(request, metadata=metadata, timeout=600)
            latencies.append((time.perf_counter() - started) * 1000)
        elapsed = time.perf_counter() - began
    latencies.sort()
    return BatchFigures(what, events, elapsed, statistics.median(latencies), percentile(latencies, 0.99))


def send_paced(address: str, metadata: Metadata, requests: Sequence[bytes], window_s: float) -> float:
    """Send the requests evenly spread over `window_s` seconds; the seconds it actually took."""
    interval = window_s / max(1, len(requests))
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(OBSERVE, request_serializer=None, response_deserializer=None)
        began = time.perf_counter()
        for i, request in enumerate(requests):
            delay = began + i * interval - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            call(request, metadata=metadata, timeout=600)
        return time.perf_counter() - began


@dataclass(frozen=True)
class LagFigures:
    timers: int
    fired: int
    due_span_s: float  # first due to last due
    fire_span_s: float  # first fire to last fire
    p50_ms: float
    p99_ms: float
    max_ms: float

    @property
    def fired_per_s(self) -> float:
        return self.fired / self.fire_span_s if self.fire_span_s > 0 else 0.0

    @property
    def due_per_minute(self) -> float:
        return self.timers / self.due_span_s * 60 if self.due_span_s > 0 else 0.0


class StateReader:
    """Counts and step runs read from the orchestrator's database by a connection of the bench's own
    (plain reads: on SQLite no write lock is taken, so the server's writers are not held up)."""

    def __init__(self, url: str | None, path: Path) -> None:
        self._url = url
        self._path = path

    @contextmanager
    def _rows(self, sql: str, params: Sequence[object]) -> Iterator[list[tuple[Any, ...]]]:
        if self._url:
            with psycopg.connect(self._url) as server:
                yield list(server.execute(sql.replace("?", "%s"), tuple(params)).fetchall())
            return
        embedded = sqlite3.connect(f"file:{self._path}?mode=ro", uri=True, timeout=30)
        try:
            yield embedded.execute(sql, tuple(params)).fetchall()
        finally:
            embedded.close()

    def count(self, sql: str, params: Sequence[object]) -> int:
        with self._rows(sql, params) as rows:
            return int(rows[0][0])

    def live_entries(self, tenant: str, flow_id: str) -> int:
        return self.count(
            "SELECT COUNT(*) FROM flow_entries WHERE tenant_id = ? AND flow_id = ? AND status IN (?, ?)",
            (tenant, flow_id, "ACTIVE", "WAITING"),
        )

    def ended_entries(self, tenant: str, flow_id: str) -> int:
        return self.count(
            "SELECT COUNT(*) FROM flow_entries WHERE tenant_id = ? AND flow_id = ? AND status IN (?, ?)",
            (tenant, flow_id, "EXITED", "CONVERTED"),
        )

    def timers(self, tenant: str) -> int:
        return self.count("SELECT COUNT(*) FROM flow_timers WHERE tenant_id = ?", (tenant,))

    def size_mb(self) -> float:
        if self._url:
            return self.count("SELECT pg_database_size(current_database())", ()) / 1e6
        files = [self._path, self._path.with_name(self._path.name + "-wal")]
        return sum(f.stat().st_size for f in files if f.exists()) / 1e6

    def timer_lags(self, tenant: str, flow_id: str, expected: int) -> LagFigures:
        """Each entry's wait's due time against the run time of the step run that ended the wait."""
        with self._rows(
            "SELECT person_id, step_id, outcome, run_time, body FROM flow_step_runs"
            " WHERE tenant_id = ? AND flow_id = ?",
            (tenant, flow_id),
        ) as rows:
            due: dict[str, int] = {}
            fired: dict[str, int] = {}
            for person, step_id, outcome, run_time, body in rows:
                if outcome == "WAIT":
                    due[person] = int(json.loads(body)["detail"]["due_time"])
                elif step_id == "done":
                    fired[person] = int(run_time)
        lags = sorted((fired[p] - due[p]) / 1000 for p in fired if p in due)
        dues = sorted(due.values())
        fires = sorted(fired.values())
        return LagFigures(
            timers=expected,
            fired=len(lags),
            due_span_s=(dues[-1] - dues[0]) / 1e6 if dues else 0.0,
            fire_span_s=(fires[-1] - fires[0]) / 1e6 if fires else 0.0,
            p50_ms=statistics.median(lags) if lags else float("nan"),
            p99_ms=percentile(lags, 0.99) if lags else float("nan"),
            max_ms=lags[-1] if lags else float("nan"),
        )
