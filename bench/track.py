"""`Track` through the gateway vs straight to ingest vs bare echo servers (grpc.aio and thread-pool),
at concurrency 1 and 16. Every scenario sends serialised TrackRequest bytes through the same grpc.aio
client, so only the server side differs.

Two kinds of Track: stored (acknowledged after journeys wrote it to chDB, so the embedded ClickHouse's
INSERT dominates) and refused (an event without a channel, answered INVALID_ARGUMENT by ingest's validation
before any storage) — the second isolates what our own stack costs: interceptors, logging, tracing,
metrics, the gateway hop and error mapping."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import cycle
from pathlib import Path

import grpc

from bench.echo_server import ECHO_METHOD
from bench.harness import Measurement, measure, print_comparison
from wayline.common.context import INTERNAL_TOKEN_HEADER, TENANT_HEADER
from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline_cli.suite import Suite, free_port

TRACK = "/wayline.ingest.v1.IngestService/Track"


def track_requests(count: int, valid: bool = True) -> list[bytes]:
    """Distinct, realistic Track requests (three identifiers, a few properties).

    Invalid ones lack a channel, so ingest refuses them before any storage."""
    now = to_timestamp(datetime.now(UTC))
    requests = []
    for i in range(count):
        event = event_pb2.Event(
            event_id=str(uuid.uuid4()),
            type=event_pb2.EVENT_TYPE_TRACK,
            name="Product Viewed",
            channel=event_pb2.CHANNEL_WEB if valid else event_pb2.CHANNEL_UNSPECIFIED,
            timestamp=now,
            identifiers=[
                event_pb2.Identifier(type="anonymous_id", value=f"anon-{i % 500}"),
                event_pb2.Identifier(type="user_id", value=f"user-{i % 100}"),
                event_pb2.Identifier(type="email", value=f"user-{i % 100}@example.com"),
            ],
        )
        event.properties.update({"sku": f"SKU-{i % 50}", "price": 19.99, "currency": "EUR"})
        requests.append(ingest_pb.TrackRequest(event=event).SerializeToString())
    return requests


@contextmanager
def server_process(
    command: list[str], port: int, env: dict[str, str] | None = None, timeout: float = 60
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run `command` (a gRPC server listening on `port`) in its own process; its address once it answers,
    and the process (to watch its CPU or memory)."""
    process = subprocess.Popen(command, env=env)
    address = f"127.0.0.1:{port}"
    try:
        with grpc.insecure_channel(address) as channel:
            grpc.channel_ready_future(channel).result(timeout=timeout)
        yield address, process
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def process_server(
    command: list[str], port: int, env: dict[str, str] | None = None, timeout: float = 60
) -> Iterator[str]:
    """Run `command` (a gRPC server listening on `port`) in its own process; its address once it answers."""
    with server_process(command, port, env, timeout) as (address, _):
        yield address


@contextmanager
def echo_server(kind: str) -> Iterator[str]:
    port = free_port()
    with process_server([sys.executable, "-m", "bench.echo_server", kind, str(port), "32"], port) as address:
        yield address


async def run_scenario(
    name: str,
    address: str,
    method: str,
    metadata: tuple[tuple[str, str], ...],
    payloads: list[bytes],
    concurrency: int,
    requests: int,
    expected: grpc.StatusCode = grpc.StatusCode.OK,
) -> Measurement:
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        source = cycle(payloads)

        async def one() -> object:
            try:
                return await call(next(source), metadata=metadata, timeout=30)
            except grpc.aio.AioRpcError as error:
                if error.code() != expected:
                    raise
                return None

        return await measure(name, one, concurrency, requests)


def main(requests: int) -> list[Measurement]:
    stored = track_requests(max(requests, 1000))
    refused = track_requests(1000, valid=False)
    ok, invalid = grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT
    results: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="wayline-bench-") as scratch:
        suite = Suite.on_free_ports(Path(scratch), log_format="json")
        suite.start()
        try:
            suite.wait_ready()
            gateway = (suite.address("gateway"), (("authorization", f"Bearer {suite.api_key}"),))
            ingest = (
                suite.address("ingest"),
                ((INTERNAL_TOKEN_HEADER, suite.internal_token), (TENANT_HEADER, suite.tenant)),
            )
            with echo_server("aio") as aio_echo, echo_server("threadpool") as pool_echo:
                for concurrency in (1, 16):
                    scenarios = [
                        ("bare grpc.aio echo", (aio_echo, ()), ECHO_METHOD, stored, ok),
                        ("bare thread-pool echo", (pool_echo, ()), ECHO_METHOD, stored, ok),
                        ("Track refused, direct to ingest", ingest, TRACK, refused, invalid),
                        ("Track refused, via gateway", gateway, TRACK, refused, invalid),
                        ("Track stored, direct to ingest", ingest, TRACK, stored, ok),
                        ("Track stored, via gateway", gateway, TRACK, stored, ok),
                    ]
                    for name, (address, metadata), method, sent, expected in scenarios:
                        scenario = run_scenario(
                            name, address, method, metadata, sent, concurrency, requests, expected
                        )
                        results.append(asyncio.run(scenario))
                        time.sleep(0.5)  # let background merges settle between scenarios
        finally:
            suite.stop()
    print_comparison(
        f"Track: {requests} requests per row, 2 cores shared by client and servers",
        results,
        "bare grpc.aio echo",
    )
    return results
