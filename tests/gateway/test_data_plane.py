"""The gateway's nginx data plane (ADR 105) over real sockets: nginx started by the gateway in front of its
control plane and real services. The authorization matrix runs through it in tests/contract; these are what
only the data plane has: changes reaching its key cache, services it cannot reach, compressed batches, its
own restarts and drain, TLS on both sides and renewed certificates, its metrics."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import structlog
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from structlog.testing import capture_logs

from tests.certificates import CertificateAuthority, KeyPair
from tests.conftest import (
    API_KEY,
    TENANT,
    EdgeGateway,
    common_settings,
    gateway_settings,
    start_edge_gateway,
    start_server,
)
from tests.events import make_event
from tests.tenant_echo import tenant_echo
from wayline.api.v1 import annotations_pb2
from wayline.common.errors import status_details
from wayline.common.server import Server
from wayline.common.sql import open_database
from wayline.gateway.v1 import api_key_pb2, quota_pb2
from wayline.gateway.v1 import gateway_service_pb2 as admin_pb
from wayline.gateway.v1 import gateway_service_pb2_grpc as admin_grpc
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from wayline.orchestrator.v1 import orchestrator_service_pb2 as orchestrator_pb
from wayline.orchestrator.v1 import orchestrator_service_pb2_grpc as orchestrator_grpc
from wayline_cli.suite import free_port
from wayline_gateway.data_plane.config import admin_socket, data_plane_directory
from wayline_gateway.data_plane.metrics import DataPlaneMetrics
from wayline_gateway.data_plane.process import read_metrics, relay_error_log
from wayline_gateway.model import now_micros
from wayline_gateway.store.admin_store import AdminStore
from wayline_identity.settings import IdentitySettings

OPERATOR = (("authorization", f"Bearer {API_KEY}"),)
KEY_CACHE_SECONDS = 1.0


def bearer(secret: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {secret}"),)


def reason(error: grpc.RpcError) -> str:
    infos = [d for d in status_details(error) if isinstance(d, error_details_pb2.ErrorInfo)]
    return infos[0].reason if infos else ""


@pytest.fixture(scope="module")
def edge(ingest_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EdgeGateway]:
    """A gateway of its own behind nginx: a short key cache window, and an orchestrator nobody serves."""
    settings = gateway_settings(
        tmp_path_factory.mktemp("data-plane"),
        {"ingest": ingest_server.address, "orchestrator": f"127.0.0.1:{free_port()}"},
        API_KEY,
        TENANT,
    ).model_copy(update={"key_cache_seconds": KEY_CACHE_SECONDS})
    gateway = start_edge_gateway(settings)
    yield gateway
    gateway.server.stop(0)


@pytest.fixture
def channel(edge: EdgeGateway) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(edge.address) as opened:
        yield opened


def new_key(
    channel: grpc.Channel, limits: quota_pb2.QuotaLimits | None = None
) -> admin_pb.CreateApiKeyResponse:
    """A write key of a new tenant, made by the operator; `limits` set on the tenant."""
    admin = admin_grpc.AdminServiceStub(channel)
    tenant = admin.CreateTenant(
        admin_pb.CreateTenantRequest(tenant_id=f"edge-{uuid.uuid4().hex[:6]}"), metadata=OPERATOR, timeout=10
    ).tenant
    if limits is not None:
        admin.UpdateQuota(
            admin_pb.UpdateQuotaRequest(quota=quota_pb2.Quota(name=f"{tenant.name}/quota", limits=limits)),
            metadata=OPERATOR,
            timeout=10,
        )
    return admin.CreateApiKey(
        admin_pb.CreateApiKeyRequest(
            parent=tenant.name, api_key=api_key_pb2.ApiKey(scopes=[annotations_pb2.SCOPE_WRITE])
        ),
        metadata=OPERATOR,
        timeout=10,
    )


def track(channel: grpc.Channel, secret: str) -> grpc.RpcError | None:
    try:
        ingest_grpc.IngestServiceStub(channel).Track(
            ingest_pb.TrackRequest(event=make_event(f"edge-{uuid.uuid4().hex[:8]}")),
            metadata=bearer(secret),
            timeout=10,
        )
    except grpc.RpcError as error:
        return error
    return None


def test_a_key_revoked_through_this_replica_is_refused_by_the_data_plane_at_once(
    channel: grpc.Channel,
) -> None:
    created = new_key(channel)
    assert track(channel, created.secret) is None  # the data plane now holds the key
    admin_grpc.AdminServiceStub(channel).RevokeApiKey(
        admin_pb.RevokeApiKeyRequest(name=created.api_key.name), metadata=OPERATOR, timeout=10
    )
    refused = track(channel, created.secret)
    assert refused is not None
    assert (refused.code(), reason(refused)) == (grpc.StatusCode.UNAUTHENTICATED, "API_KEY_REVOKED")


def test_a_key_revoked_through_another_replica_is_refused_within_the_key_cache_window(
    edge: EdgeGateway, channel: grpc.Channel
) -> None:
    created = new_key(channel)
    assert track(channel, created.secret) is None
    # Another replica shares the store: it revokes without telling this one's data plane.
    database = open_database(None, edge.settings.service_dir / "gateway.db")
    try:
        tenant_id, _, key_id = created.api_key.name.removeprefix("tenants/").partition("/apiKeys/")
        AdminStore(database).revoke_key(tenant_id, key_id, now_micros(), caller_key_id="")
    finally:
        database.close()
    revoked_at = time.monotonic()
    while (refused := track(channel, created.secret)) is None:
        assert time.monotonic() - revoked_at < KEY_CACHE_SECONDS + 1.0, "the revocation never reached nginx"
        time.sleep(0.05)
    assert (refused.code(), reason(refused)) == (grpc.StatusCode.UNAUTHENTICATED, "API_KEY_REVOKED")


def test_a_service_it_cannot_reach_is_unavailable_with_a_delay_and_gives_its_place_back(
    channel: grpc.Channel, capfd: pytest.CaptureFixture[str]
) -> None:
    """As the Python pass-through answers (proxy.py), and the call's place under the concurrency cap (one
    here) is free again afterwards. nginx's error-log line about it is the gateway's log line, not nginx's
    text on the gateway's stderr."""
    created = new_key(channel, quota_pb2.QuotaLimits(max_concurrent_requests=1))
    orchestrator = orchestrator_grpc.OrchestratorServiceStub(channel)
    for _ in range(3):
        with pytest.raises(grpc.RpcError) as refused:
            orchestrator.RecordContact(
                orchestrator_pb.RecordContactRequest(), metadata=bearer(created.secret), timeout=10
            )
        assert (refused.value.code(), reason(refused.value)) == (
            grpc.StatusCode.UNAVAILABLE,
            "BACKEND_UNAVAILABLE",
        )
        assert "orchestrator service cannot be reached" in (refused.value.details() or "")
        retries = [d for d in status_details(refused.value) if isinstance(d, error_details_pb2.RetryInfo)]
        assert retries[0].retry_delay.seconds == 1
    assert track(channel, created.secret) is None
    out = err = ""
    deadline = time.monotonic() + 5
    while "while connecting to upstream" not in out and time.monotonic() < deadline:
        captured = capfd.readouterr()
        out, err = out + captured.out, err + captured.err
        time.sleep(0.05)
    logged = [line for line in out.splitlines() if "nginx.error_log" in line]
    assert any("connect() failed" in line and "while connecting to upstream" in line for line in logged), out
    assert "[error]" not in err


def test_a_compressed_batch_is_counted_by_the_control_plane(channel: grpc.Channel) -> None:
    """nginx does not inflate messages: a gzip batch goes to the control plane, which counts its events."""
    created = new_key(channel, quota_pb2.QuotaLimits(events_per_second=0.001, events_burst=3))
    ingest = ingest_grpc.IngestServiceStub(channel)
    batch = ingest_pb.TrackBatchRequest(events=[make_event(f"gz-{n}") for n in range(3)])
    answered = ingest.TrackBatch(
        batch, metadata=bearer(created.secret), timeout=10, compression=grpc.Compression.Gzip
    )
    assert answered.accepted_count == 3
    with pytest.raises(grpc.RpcError) as refused:
        ingest.TrackBatch(
            batch, metadata=bearer(created.secret), timeout=10, compression=grpc.Compression.Gzip
        )
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    failures = [d for d in status_details(refused.value) if isinstance(d, error_details_pb2.QuotaFailure)]
    assert failures[0].violations[0].subject.endswith("/quota")


def stream_acks(
    channel: grpc.Channel,
    secret: str,
    batches: list[ingest_pb.StreamEventsRequest],
    compression: grpc.Compression | None,
    acked: list[int],
) -> None:
    """Send `batches` on one StreamEvents call, appending each acknowledged sequence to `acked`."""
    responses = ingest_grpc.IngestServiceStub(channel).StreamEvents(
        iter(batches), metadata=bearer(secret), timeout=30, compression=compression
    )
    acked.extend(r.sequence for r in responses if r.sequence)


def test_event_streams_go_straight_to_ingest_which_paces_them_to_the_callers_quota(
    edge: EdgeGateway, channel: grpc.Channel
) -> None:
    """StreamEvents is passed by nginx itself with the caller's event limits, which ingest paces each batch
    to (ADR 106): nginx counts the call as one it passed, and a compressed stream, whose messages nginx never
    reads, is paced as well."""
    method = "/wayline.ingest.v1.IngestService/StreamEvents"
    before = edge_metrics(edge).get((method, "8", "count"), 0.0)
    for compression in (None, grpc.Compression.Gzip):
        created = new_key(channel, quota_pb2.QuotaLimits(events_per_second=0.001, events_burst=5))
        batches = [
            ingest_pb.StreamEventsRequest(
                sequence=sequence, events=[make_event(f"st-{uuid.uuid4().hex[:8]}") for _ in range(5)]
            )
            for sequence in (1, 2)
        ]
        acked: list[int] = []
        with pytest.raises(grpc.RpcError) as refused:
            stream_acks(channel, created.secret, batches, compression, acked)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, refused.value.details()
        assert acked == [1]  # the burst's five passed; the next five would wait past the stream's limit
        failures = [d for d in status_details(refused.value) if isinstance(d, error_details_pb2.QuotaFailure)]
        tenant = created.api_key.name.partition("/apiKeys/")[0]
        assert failures[0].violations[0].subject.startswith(tenant + "/")
    assert edge_metrics(edge).get((method, "8", "count"), 0.0) == before + 2


def test_the_data_plane_answers_health_and_counts_the_calls_it_passed(
    edge: EdgeGateway, channel: grpc.Channel
) -> None:
    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    before = edge_metrics(edge).get(("/wayline.ingest.v1.IngestService/Track", "0", "count"), 0.0)
    created = new_key(channel)
    assert track(channel, created.secret) is None
    after = edge_metrics(edge).get(("/wayline.ingest.v1.IngestService/Track", "0", "count"), 0.0)
    assert after == before + 1


def edge_metrics(edge: EdgeGateway) -> dict[tuple[str, str, str], float]:
    return read_metrics(admin_socket(data_plane_directory(edge.settings.service_dir)))


def nginx_master(edge: EdgeGateway) -> int:
    return int((data_plane_directory(edge.settings.service_dir) / "nginx.pid").read_text())


def test_nginx_that_dies_is_started_again(edge: EdgeGateway, channel: grpc.Channel) -> None:
    created = new_key(channel)
    first = nginx_master(edge)
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 15
    while True:
        try:
            restarted = nginx_master(edge)
        except (FileNotFoundError, ValueError):
            restarted = first
        if restarted != first and track(channel, created.secret) is None:
            break
        assert time.monotonic() < deadline, "nginx was not started again"
        time.sleep(0.1)


def test_stopping_the_gateway_drains_and_stops_nginx(
    ingest_server: Server, tmp_path_factory: pytest.TempPathFactory
) -> None:
    settings = gateway_settings(
        tmp_path_factory.mktemp("data-plane-stop"), {"ingest": ingest_server.address}, API_KEY, TENANT
    )
    gateway = start_edge_gateway(settings)
    master = nginx_master(gateway)
    with grpc.insecure_channel(gateway.address) as channel:
        assert track(channel, API_KEY) is None
    gateway.server.stop(2.0)
    with pytest.raises(ProcessLookupError):
        os.kill(master, 0)
    with grpc.insecure_channel(gateway.address) as channel, pytest.raises(grpc.RpcError) as gone:
        ingest_grpc.IngestServiceStub(channel).Track(
            ingest_pb.TrackRequest(event=make_event("after")), metadata=OPERATOR, timeout=2
        )
    assert gone.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_stream_open_when_the_gateway_drains_is_cut_after_the_grace_as_unavailable(
    ingest_server: Server, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A StreamEvents nginx passed to ingest (ADR 106) is not the control plane's to end at once: nginx lets
    it run for the drain's grace, then its connection closes. The client sees UNAVAILABLE, which it retries
    on a new stream with what was not acknowledged; what was acknowledged is ingest's already."""
    settings = gateway_settings(
        tmp_path_factory.mktemp("data-plane-drain"), {"ingest": ingest_server.address}, API_KEY, TENANT
    ).model_copy(update={"shutdown_grace_seconds": 1.0})
    gateway = start_edge_gateway(settings)
    keep_open = threading.Event()

    def requests() -> Iterator[ingest_pb.StreamEventsRequest]:
        yield ingest_pb.StreamEventsRequest(sequence=1, events=[make_event(f"drain-{uuid.uuid4().hex[:8]}")])
        keep_open.wait(60)

    stopping = threading.Thread(target=gateway.server.stop, args=(1.0,))
    try:
        with grpc.insecure_channel(gateway.address) as channel:
            responses = iter(
                ingest_grpc.IngestServiceStub(channel).StreamEvents(requests(), metadata=OPERATOR, timeout=60)
            )
            assert [next(responses).sequence, next(responses).sequence] == [0, 1]
            began = time.monotonic()
            stopping.start()
            with pytest.raises(grpc.RpcError) as ended:
                next(responses)
            assert ended.value.code() == grpc.StatusCode.UNAVAILABLE, ended.value.details()
            assert time.monotonic() - began < 15  # the grace and nginx's stop, not the stream's deadline
            stopping.join(30)
            assert not stopping.is_alive()
    finally:
        keep_open.set()
        if stopping.ident is None:
            gateway.server.stop(0)
        else:
            stopping.join()


def replace_files(pair: KeyPair, current: KeyPair) -> None:
    """As a Secret volume does: new files, then one rename each."""
    for new, old in ((pair.key, current.key), (pair.cert, current.cert)):
        staged = old.with_suffix(".new")
        shutil.copyfile(new, staged)
        os.replace(staged, old)


def test_nginx_serves_tls_publicly_calls_services_over_mutual_tls_and_takes_renewed_certificates(
    tmp_path: Path,
) -> None:
    internal = CertificateAuthority(tmp_path, "internal-ca")
    public = CertificateAuthority(tmp_path, "public-ca")
    renewed_public = CertificateAuthority(tmp_path, "renewed-public-ca")
    service_pair = internal.issue("identity")
    identity_settings = IdentitySettings(
        **common_settings(tmp_path / "identity"),  # type: ignore[arg-type]
        tls_cert_file=service_pair.cert,
        tls_key_file=service_pair.key,
        tls_client_ca_file=internal.cert,  # only callers with a certificate of the internal CA
    )
    identity = start_server(tenant_echo(), identity_settings)
    gateway_pair, client_pair = public.issue("gateway"), internal.issue("gateway-client")
    settings = gateway_settings(
        tmp_path / "gateway", {"identity": f"127.0.0.1:{identity.port}"}, API_KEY, TENANT
    ).model_copy(
        update={
            "tls_cert_file": gateway_pair.cert,
            "tls_key_file": gateway_pair.key,
            "tls_ca_file": internal.cert,
            "tls_client_cert_file": client_pair.cert,
            "tls_client_key_file": client_pair.key,
            "tls_server_name": "localhost",
        }
    )
    gateway = start_edge_gateway(settings)

    def tenant_seen(trust: CertificateAuthority) -> str:
        credentials = grpc.ssl_channel_credentials(root_certificates=trust.cert.read_bytes())
        with grpc.secure_channel(gateway.address, credentials) as channel:
            return (
                identity_grpc.IdentityServiceStub(channel)
                .GetProfile(identity_pb.GetProfileRequest(), metadata=OPERATOR, timeout=5)
                .profile.person_id
            )

    try:
        assert tenant_seen(public) == TENANT  # through nginx's TLS, on to the service over mutual TLS
        with grpc.insecure_channel(gateway.address) as plaintext, pytest.raises(grpc.RpcError):
            identity_grpc.IdentityServiceStub(plaintext).GetProfile(
                identity_pb.GetProfileRequest(), metadata=OPERATOR, timeout=2
            )
        replace_files(renewed_public.issue("gateway-renewed"), gateway_pair)
        deadline = time.monotonic() + 15
        while True:
            try:
                assert tenant_seen(renewed_public) == TENANT
                break
            except grpc.RpcError:
                assert time.monotonic() < deadline, "nginx never served the renewed certificate"
                time.sleep(0.2)
    finally:
        gateway.server.stop(0)
        identity.stop(0)


def test_the_data_plane_calls_reach_the_gateway_metrics(edge: EdgeGateway, channel: grpc.Channel) -> None:
    reader = InMemoryMetricReader()
    DataPlaneMetrics(MeterProvider(metric_readers=[reader]).get_meter("test"), lambda: edge_metrics(edge))
    created = new_key(channel)
    assert track(channel, created.secret) is None
    collected = reader.get_metrics_data()
    assert collected is not None
    points = {
        (metric.name, point.attributes["rpc.method"], point.attributes["rpc.grpc.status_code"]): point.value
        for resource in collected.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        for point in metric.data.data_points
        if isinstance(point, NumberDataPoint) and point.attributes is not None
    }
    track_path = "/wayline.ingest.v1.IngestService/Track"
    assert points[("wayline.gateway.data_plane.requests", track_path, "OK")] >= 1
    assert points[("wayline.gateway.data_plane.duration", track_path, "OK")] > 0


def test_each_call_nginx_passes_is_logged_as_the_gateway_logs_its_own(
    ingest_server: Server, tmp_path_factory: pytest.TempPathFactory, capfd: pytest.CaptureFixture[str]
) -> None:
    settings = gateway_settings(
        tmp_path_factory.mktemp("data-plane-log"), {"ingest": ingest_server.address}, API_KEY, TENANT
    )
    gateway = start_edge_gateway(settings)  # started here, so that nginx writes to the captured stdout
    trace_id = uuid.uuid4().hex
    try:
        with grpc.insecure_channel(gateway.address) as channel:
            ingest_grpc.IngestServiceStub(channel).Track(
                ingest_pb.TrackRequest(event=make_event("logged")),
                metadata=(
                    *OPERATOR,
                    ("traceparent", f"00-{trace_id}-{'1' * 16}-01"),
                    ("x-request-id", "r-42"),
                ),
                timeout=10,
            )
    finally:
        gateway.server.stop(0)
    # nginx writes each line whole; the test process's own log lines may share its line in the capture.
    out = capfd.readouterr().out
    decoder = json.JSONDecoder()
    lines = [decoder.raw_decode(out, at.start())[0] for at in re.finditer(r'\{"event": "rpc"', out)]
    lines = [line for line in lines if line.get("plane") == "nginx"]
    assert len(lines) == 1
    line = lines[0]
    assert {
        k: line[k] for k in ("event", "level", "service", "method", "status", "tenant", "request_id")
    } == {
        "event": "rpc",
        "level": "info",
        "service": "gateway",
        "method": "/wayline.ingest.v1.IngestService/Track",
        "status": "OK",
        "tenant": TENANT,
        "request_id": "r-42",
    }
    assert line["trace_id"] == trace_id
    assert line["latency_ms"] >= 0
    assert line["timestamp"].endswith("Z")


def test_nginx_error_log_lines_become_the_gateways_log_lines_at_their_level() -> None:
    lines = [
        b"2026/12/07 16:00:00 [error] 41#41: *5 connect() failed (111: Connection refused) while connecting "
        b"to upstream, client: 127.0.0.1\n",
        b'2026/12/07 16:00:01 [warn] 40#40: the "user" directive makes sense only if the master is root\n',
        b"2026/12/07 16:00:02 [notice] 40#40: signal process started\n",
        b"\n",
        b"not nginx's format\n",
        b'nginx: [emerg] unknown directive "bogus" in /etc/nginx.conf:3\n',
    ]
    with capture_logs() as logs:
        relay_error_log(lines, structlog.get_logger())
    assert [(entry["log_level"], entry["nginx_level"], entry["detail"][:20]) for entry in logs] == [
        ("error", "error", "connect() failed (11"),
        ("warning", "warn", 'the "user" directive'),
        ("info", "notice", "signal process start"),
        ("error", "error", "not nginx's format"),
        ("critical", "emerg", 'unknown directive "b'),
    ]
    assert {entry["event"] for entry in logs} == {"nginx.error_log"}
