"""`python -m bench decision-gateway`: Decide through the gateway beside a bare echo through the same gateway,
in the same run.

The suite runs as child processes (ingest, identity, journeys on chDB, decision, orchestrator, gateway), as
`wayline dev` starts it. The decision service holds the 60-feature, 8-action model (bench/decision_model.py)
pushed through UploadModelVersion and deployed with DeployModel FULL, one catalogue action per model action
(CreateAction), every call through the gateway with the suite's API key. `--persons` persons are identified
through the gateway (TrackBatch of identify events whose traits are the 60 features); ingest resolves them
with identity and forwards them to journeys and to the decision service's online features, so every timed
Decide names a known person by id and is scored on ONLINE features (checked on every person first), and its
trace goes back through ingest as in production.

The echo: a second gateway process started from the same code with the same settings and the same API key,
whose decision backend address is bench/echo_server.py (a bare grpc.aio server that returns any unary
request's bytes). The same serialized DecideRequests are sent to both gateways' DecisionService/Decide, so
the two differ only in what stands behind the gateway; only one of the two is driven at a time.

Rows: closed loop at 1, 16 and 64 callers (p50, p99, decisions/s) and an open loop paced at `--rate`
decisions/s (latency from each call's scheduled start). The load generator runs in this process on the same
2 cores as every service. Two settings differ from the defaults, through the environment: the tenant's
concurrency quota is 256 on every gateway (the default, 24, would refuse the 64-caller row's calls, and a
paced row may hold more than 64 calls in progress through the nginx data plane, which queues nothing
itself, while the decision service stalls for 100 ms), and the online state's settle horizon is 2 s
instead of an hour (SETTLE_AFTER_SECONDS below).

With `--decision-cpus 1`, the decision service's process runs on CPU 1 only (WAYLINE_DECISION_CPU_AFFINITY,
ADR 108); the other services and the load generator still run on every CPU.

With `--nginx` (nginx and its Lua module installed; Debian: nginx, libnginx-mod-http-lua), every row runs
again through two more gateways with the nginx data plane (ADR 105), one in front of the decision service and
one in front of the echo: what Decide costs with the gateway's per-call work out of gRPC Python.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import cycle
from pathlib import Path
from typing import Any

import grpc
from rich.console import Console
from rich.table import Table

from bench.decision_model import ACTIONS, build_package, sample_features
from bench.extra_gateway import extra_gateway, nginx_unavailable
from bench.harness import Measurement, cpu_seconds, measure, measure_paced, measure_paced_futures, metric_sum
from bench.track import server_process
from wayline.common.timestamps import to_timestamp
from wayline.decision.v1 import action_pb2
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.decision.v1 import decision_service_pb2_grpc as pb_grpc
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from wayline_cli.models import package_files, upload_requests
from wayline_cli.suite import Suite, free_port

__all__ = ["main"]

DECIDE = "/wayline.decision.v1.DecisionService/Decide"
MODEL_ID = "bench-nbo"
CONCURRENCY = (1, 16, 64)
QUOTA_CONCURRENCY = "256"
SETTLE_AFTER_SECONDS = "2"
"""The online state's settle horizon (production: an hour). A person is read online once the state has
verified with journeys that it saw their whole history, which it asks only once the horizon has passed
since the model's spec registered; shortened so that persons identified a moment after the deploy are
online a few seconds later, as every person is an hour after a deploy in production."""
Metadata = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Rows:
    decide: dict[int, Measurement]  # callers → measurement; 0 the paced row, -1 paced from the sync client
    echo: dict[int, Measurement]
    cpu_ms: dict[str, float]  # each suite process's CPU per decision over the 1-caller Decide row


def _cpu_per_call(pids: Mapping[str, int], before: Mapping[str, float], calls: int) -> dict[str, float]:
    return {name: (cpu_seconds(pid) - before[name]) * 1000 / calls for name, pid in pids.items()}


def settle_traces(metrics_ports: Mapping[str, int], timeout: float = 120) -> float:
    """Wait until decision has written (or dropped) every trace it recorded and ingest's sinks have taken
    everything spooled, so that a row neither starts with the suite still working for the previous one nor
    ends before the decisions' traces have been paid for (a trace sink backing off would otherwise hold them
    past the row: one run measured Decide without its traces that way). The seconds waited."""
    began = time.monotonic()
    recorded = written = dropped = backlog = 0.0
    while time.monotonic() - began < timeout:
        recorded = metric_sum(metrics_ports["decision"], "decision_traces_recorded_total")
        written = metric_sum(metrics_ports["decision"], "decision_traces_written_total")
        dropped = metric_sum(metrics_ports["decision"], "decision_traces_dropped_total")
        backlog = metric_sum(metrics_ports["ingest"], "ingest_spool_backlog_bytes")
        if written + dropped >= recorded and backlog == 0:
            return time.monotonic() - began
        time.sleep(0.1)
    raise RuntimeError(
        f"decision's traces did not reach the journey store within {timeout:.0f} s: {recorded:.0f} recorded, "
        f"{written:.0f} written, {dropped:.0f} dropped, {backlog:.0f} bytes of the spool not delivered"
    )


def _user(i: int) -> str:
    return f"bench-user-{i}"


def _identify_events(persons: int) -> list[event_pb2.Event]:
    """One identify per person, its traits the 60 features (a missing feature is left out, as a sender
    that does not know it would)."""
    rows = sample_features(persons, seed=5)
    now = to_timestamp(datetime.now(UTC))
    events = []
    for i, row in enumerate(rows):
        event = event_pb2.Event(
            type=event_pb2.EVENT_TYPE_IDENTIFY,
            channel=event_pb2.CHANNEL_WEB,
            timestamp=now,
            identifiers=[event_pb2.Identifier(type="user_id", value=_user(i))],
        )
        event.properties.update({f"f{j:02d}": float(v) for j, v in enumerate(row) if v == v})
        events.append(event)
    return events


def set_up(channel: grpc.Channel, auth: Metadata, scratch: Path, persons: int) -> list[str]:
    """Model pushed and deployed, one action per model action, persons known online; their person ids."""
    decision = pb_grpc.DecisionServiceStub(channel)
    package = build_package(scratch / "package", model_id=MODEL_ID, version="1")
    decision.UploadModelVersion(upload_requests(*package_files(package)), metadata=auth, timeout=120)
    decision.DeployModel(
        pb.DeployModelRequest(name=f"models/{MODEL_ID}", version="1", mode=pb.DEPLOY_MODE_FULL),
        metadata=auth,
        timeout=120,
    )
    for action_id in ACTIONS:
        action = action_pb2.Action(channel=event_pb2.CHANNEL_WEB, value=10.0)
        decision.CreateAction(
            pb.CreateActionRequest(action_id=action_id, action=action), metadata=auth, timeout=10
        )
    ingest = ingest_grpc.IngestServiceStub(channel)
    events = _identify_events(persons)
    for start in range(0, len(events), 500):
        batch = ingest.TrackBatch(
            ingest_pb.TrackBatchRequest(events=events[start : start + 500]), metadata=auth, timeout=60
        )
        assert not batch.rejections, batch.rejections[:3]
    identity = identity_grpc.IdentityServiceStub(channel)
    ids = []
    for i in range(persons):
        ref = event_pb2.PersonRef(identifier=event_pb2.Identifier(type="user_id", value=_user(i)))
        ids.append(_retry(identity, identity_pb.GetProfileRequest(person=ref), auth).profile.person_id)
    _wait_online(decision, auth, ids)
    return ids


def _retry(
    identity: identity_grpc.IdentityServiceStub,
    request: identity_pb.GetProfileRequest,
    auth: Metadata,
    seconds: float = 60.0,
) -> identity_pb.GetProfileResponse:
    """GetProfile until it answers (ingest resolves identities asynchronously: a person is known a moment
    after TrackBatch returns)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            response: identity_pb.GetProfileResponse = identity.GetProfile(request, metadata=auth, timeout=10)
            return response
        except grpc.RpcError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _wait_online(decision: pb_grpc.DecisionServiceStub, auth: Metadata, ids: Sequence[str]) -> None:
    """Until every person is decided on ONLINE features: their identify reached the online state and the
    state verified with journeys that it holds their whole history (asked on a person's first read, once
    the settle horizon has passed since the spec registered; until then reads go to journeys)."""
    pending = list(ids)
    deadline = time.monotonic() + 300
    while pending:
        waiting = []
        for person_id in pending:
            request = pb.DecideRequest(
                person=event_pb2.PersonRef(person_id=person_id),
                channel=event_pb2.CHANNEL_WEB,
                placement="home_hero",
            )
            response = decision.Decide(request, metadata=auth, timeout=10)
            assert len(response.actions) == 1, response
            assert response.model == f"models/{MODEL_ID}", response
            if response.feature_source != action_pb2.FEATURE_SOURCE_ONLINE:
                waiting.append(person_id)
        pending = waiting
        if pending and time.monotonic() > deadline:
            raise RuntimeError(f"{len(pending)} persons still not decided on ONLINE features")
        if pending:
            time.sleep(1.0)


def decide_payloads(ids: Sequence[str]) -> list[bytes]:
    return [
        pb.DecideRequest(
            person=event_pb2.PersonRef(person_id=person_id),
            channel=event_pb2.CHANNEL_WEB,
            placement="home_hero",
        ).SerializeToString()
        for person_id in ids
    ]


async def _closed(
    name: str, address: str, auth: Metadata, payloads: list[bytes], callers: int, n: int
) -> Measurement:
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.unary_unary(DECIDE, request_serializer=None, response_deserializer=None)
        source = cycle(payloads)

        async def one() -> object:
            return await call(next(source), metadata=auth, timeout=30)

        return await measure(name, one, callers, n)


async def _paced(
    name: str, address: str, auth: Metadata, payloads: list[bytes], rate: float, n: int
) -> Measurement:
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.unary_unary(DECIDE, request_serializer=None, response_deserializer=None)
        source = cycle(payloads)

        async def one() -> object:
            return await call(next(source), metadata=auth, timeout=30)

        return await measure_paced(name, one, rate, n)


def _paced_sync(
    name: str, address: str, auth: Metadata, payloads: list[bytes], rate: float, n: int
) -> Measurement:
    """The paced row from a synchronous client (call futures from one pacing thread): the kind of client a
    channel app's backend or another service calls from, and one that adds less of its own to each call
    than grpc.aio (`measure_paced_futures`)."""
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(DECIDE, request_serializer=None, response_deserializer=None)
        source = cycle(payloads)

        def start() -> Any:
            return call.future(next(source), metadata=auth, timeout=30)

        return measure_paced_futures(name, start, rate, n)


def run_rows(
    gateway: str,
    echo: str,
    auth: Metadata,
    payloads: list[bytes],
    requests: int,
    rate: float,
    pids: Mapping[str, int],
    metrics_ports: Mapping[str, int],
) -> Rows:
    """Each row for Decide then for the echo, so a noisy minute hits both; each Decide row on a settled
    suite. Over the 1-caller Decide row and the delivery of its traces, each suite process's CPU (`pids`)
    per decision: what a decision costs the whole suite, the trace's way back through ingest into journeys
    and the online state included."""
    rows = Rows({}, {}, {})
    for callers in CONCURRENCY:
        settle_traces(metrics_ports)
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        rows.decide[callers] = asyncio.run(_closed("Decide", gateway, auth, payloads, callers, requests))
        if callers == 1:
            settle_traces(metrics_ports)
            rows.cpu_ms.update(_cpu_per_call(pids, before, requests + 50))
        rows.echo[callers] = asyncio.run(_closed("echo", echo, auth, payloads, callers, requests))
    paced = max(requests, int(rate * 4))
    settle_traces(metrics_ports)
    rows.decide[0] = asyncio.run(_paced("Decide", gateway, auth, payloads, rate, paced))
    rows.echo[0] = asyncio.run(_paced("echo", echo, auth, payloads, rate, paced))
    settle_traces(metrics_ports)
    rows.decide[-1] = _paced_sync("Decide", gateway, auth, payloads, rate, paced)
    rows.echo[-1] = _paced_sync("echo", echo, auth, payloads, rate, paced)
    return rows


def report(rows: Rows, rate: float, console: Console, through: str = "the gateway") -> None:
    table = Table(
        title=f"Decide through {through} vs the bare echo through the same {through.removeprefix('the ')} "
        "(ms, decisions/s)",
        title_justify="left",
    )
    columns = (
        "load",
        "Decide p50",
        "Decide p99",
        "Decide /s",
        "echo p50",
        "echo p99",
        "echo /s",
        "/s ÷ echo",
        "p50 Δ",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "load" else "right")
    for key in (*CONCURRENCY, 0, -1):
        d, e = rows.decide[key], rows.echo[key]
        load = (
            f"paced {rate:.0f}/s"
            if key == 0
            else f"paced {rate:.0f}/s, sync client"
            if key < 0
            else f"{key} caller{'s' if key > 1 else ''}"
        )
        table.add_row(
            load,
            f"{d.p50_ms:.2f}",
            f"{d.p99_ms:.2f}",
            f"{d.rps:,.0f}",
            f"{e.p50_ms:.2f}",
            f"{e.p99_ms:.2f}",
            f"{e.rps:,.0f}",
            f"{d.rps / e.rps:.2f}",
            f"{d.p50_ms - e.p50_ms:+.2f}",
        )
    console.print(table)
    spent = ", ".join(f"{name} {ms:.2f}" for name, ms in sorted(rows.cpu_ms.items(), key=lambda kv: -kv[1]))
    console.print(
        f"CPU per decision, 1 caller (ms, each process): {spent}; "
        f"{sum(rows.cpu_ms.values()):.2f} in all, the load generator not counted"
    )
    saturation = max(rows.decide[c].rps for c in CONCURRENCY) / max(rows.echo[c].rps for c in CONCURRENCY)
    paced, sync = rows.decide[0], rows.decide[-1]
    console.print(
        f"Targets (2 cores, load generator included): paced {rate:.0f}/s p50 {paced.p50_ms:.2f} ms (≤ 2), "
        f"p99 {paced.p99_ms:.2f} ms (≤ 5), kept {paced.rps:,.0f}/s (sync client: p50 {sync.p50_ms:.2f}, "
        f"p99 {sync.p99_ms:.2f} ms, kept {sync.rps:,.0f}/s); saturation {saturation:.0%} of the echo's best "
        f"throughput (≥ 60%)"
    )


def main(
    requests: int = 2000,
    persons: int = 500,
    rate: float = 500.0,
    nginx: bool = False,
    decision_cpus: str = "",
) -> Rows:
    console = Console(width=140)
    if decision_cpus:  # the decision service on these CPUs only (ADR 108); the rest where the OS puts it
        os.environ["WAYLINE_DECISION_CPU_AFFINITY"] = decision_cpus
    placement = os.environ.get("WAYLINE_DECISION_CPU_AFFINITY", "")
    os.environ.setdefault("WAYLINE_GATEWAY_QUOTA_MAX_CONCURRENT_REQUESTS", QUOTA_CONCURRENCY)
    os.environ.setdefault("WAYLINE_DECISION_FEATURES_SETTLE_AFTER_SECONDS", SETTLE_AFTER_SECONDS)
    with tempfile.TemporaryDirectory(prefix="wayline-bench-") as scratch, ExitStack() as stack:
        root = Path(scratch)
        suite = Suite.on_free_ports(root / "suite", log_format="json")
        for service in ("decision", "ingest"):  # their metrics tell when the decisions' traces are stored
            suite.metrics_ports[service] = free_port()
        suite.start()
        stack.callback(suite.stop)
        suite.wait_ready(timeout=600)  # the services start slowly on a busy machine
        auth: Metadata = (("authorization", f"Bearer {suite.api_key}"),)
        with grpc.insecure_channel(suite.address("gateway")) as channel:
            began = time.monotonic()
            ids = set_up(channel, auth, root, persons)
        console.print(f"set up: model deployed, {len(ids)} persons ONLINE in {time.monotonic() - began:.0f}s")
        echo_port = free_port()
        echo_command = [sys.executable, "-m", "bench.echo_server", "aio", str(echo_port)]
        echo_address, _ = stack.enter_context(server_process(echo_command, echo_port))
        echo = stack.enter_context(
            extra_gateway(suite, root / "echo-gateway", backends={"decision": echo_address})
        ).address
        pids = {name: process.pid for name, process in suite.processes.items()}
        rows = run_rows(
            suite.address("gateway"),
            echo,
            auth,
            decide_payloads(ids),
            requests,
            rate,
            pids,
            suite.metrics_ports,
        )
        through_nginx = (
            _nginx_rows(stack, suite, root, echo_address, auth, decide_payloads(ids), requests, rate, pids)
            if nginx
            else None
        )
    console.print(
        f"{requests} closed-loop calls per row after 50 warm-up calls; paced row "
        f"{max(requests, int(rate * 4))} calls; {persons} persons, each decided on ONLINE features; 2 cores "
        "shared by the load generator and every service; the decision service "
        + (f"kept on CPU {placement} (WAYLINE_DECISION_CPU_AFFINITY)" if placement else "on any CPU")
    )
    report(rows, rate, console)
    if through_nginx is not None:
        report(through_nginx, rate, console, "the nginx data plane")
    elif nginx:
        console.print(f"no nginx rows: {nginx_unavailable()}")
    return rows


def _nginx_rows(
    stack: ExitStack,
    suite: Suite,
    root: Path,
    echo_address: str,
    auth: Metadata,
    payloads: list[bytes],
    requests: int,
    rate: float,
    pids: Mapping[str, int],
) -> Rows | None:
    """The rows again through gateways with the nginx data plane in front of the decision service and of the
    echo (ADR 105); None when nginx with Lua is not installed. nginx's worker's CPU per decision shows as
    `nginx`, its control plane's as `edge control`."""
    if nginx_unavailable() is not None:
        return None
    decision_edge = stack.enter_context(extra_gateway(suite, root / "edge", data_plane="nginx"))
    echo_edge = stack.enter_context(
        extra_gateway(suite, root / "echo-edge", data_plane="nginx", backends={"decision": echo_address})
    )
    return run_rows(
        decision_edge.address,
        echo_edge.address,
        auth,
        payloads,
        requests,
        rate,
        {**pids, "nginx": decision_edge.nginx_worker(), "edge control": decision_edge.process.pid},
        suite.metrics_ports,
    )
