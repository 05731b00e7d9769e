"""TLS on the kit's server and on internal channels, with certificates made in the test, over real sockets."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.certificates import CertificateAuthority, KeyPair
from tests.conftest import common_settings, start_server
from tests.tenant_echo import tenant_echo
from wayline.common.clients import internal_channel
from wayline.common.context import CallContext, bind_call
from wayline.common.server import Server
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline_cli.suite import free_port
from wayline_identity.settings import IdentitySettings

SERVING = health_pb2.HealthCheckResponse.SERVING


@pytest.fixture
def ca(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority(tmp_path, "internal-ca")


@pytest.fixture
def other_ca(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority(tmp_path, "other-ca")


@pytest.fixture
def server_pair(ca: CertificateAuthority) -> KeyPair:
    return ca.issue("identity")


def serve(tmp_path: Path, **tls: object) -> Server:
    settings = IdentitySettings(**common_settings(tmp_path), **tls)  # type: ignore[arg-type]
    return start_server(tenant_echo(), settings)


@pytest.fixture
def tls_server(tmp_path: Path, server_pair: KeyPair) -> Iterator[Server]:
    server = serve(tmp_path, tls_cert_file=server_pair.cert, tls_key_file=server_pair.key)
    yield server
    server.stop(0)


@pytest.fixture
def mtls_server(tmp_path: Path, server_pair: KeyPair, ca: CertificateAuthority) -> Iterator[Server]:
    server = serve(
        tmp_path, tls_cert_file=server_pair.cert, tls_key_file=server_pair.key, tls_client_ca_file=ca.cert
    )
    yield server
    server.stop(0)


def health(channel: grpc.Channel) -> int:
    request = health_pb2.HealthCheckRequest()
    return int(health_pb2_grpc.HealthStub(channel).Check(request, timeout=5).status)


def tls_channel(server: Server, trust: CertificateAuthority, client: KeyPair | None = None) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=trust.cert.read_bytes(),
        private_key=None if client is None else client.key.read_bytes(),
        certificate_chain=None if client is None else client.cert.read_bytes(),
    )
    return grpc.secure_channel(f"localhost:{server.port}", credentials)


def refused(channel: grpc.Channel) -> grpc.StatusCode:
    with channel, pytest.raises(grpc.RpcError) as failure:
        health(channel)
    return failure.value.code()


def test_health_answers_a_client_that_trusts_the_ca(tls_server: Server, ca: CertificateAuthority) -> None:
    with tls_channel(tls_server, ca) as channel:
        assert health(channel) == SERVING


def test_a_plaintext_client_is_refused(tls_server: Server) -> None:
    assert refused(grpc.insecure_channel(tls_server.address)) == grpc.StatusCode.UNAVAILABLE


def test_a_client_that_trusts_another_ca_is_refused(
    tls_server: Server, other_ca: CertificateAuthority
) -> None:
    assert refused(tls_channel(tls_server, other_ca)) == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_refuses_a_client_without_a_certificate(
    mtls_server: Server, ca: CertificateAuthority
) -> None:
    assert refused(tls_channel(mtls_server, ca)) == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_refuses_a_client_certificate_from_another_ca(
    mtls_server: Server, ca: CertificateAuthority, other_ca: CertificateAuthority
) -> None:
    stranger = other_ca.issue("stranger")
    assert refused(tls_channel(mtls_server, ca, stranger)) == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_accepts_a_client_certificate_signed_by_the_client_ca(
    mtls_server: Server, ca: CertificateAuthority
) -> None:
    with tls_channel(mtls_server, ca, ca.issue("gateway")) as channel:
        assert health(channel) == SERVING


def test_an_internal_channel_from_settings_carries_the_tenant_over_mutual_tls(
    tmp_path: Path, mtls_server: Server, ca: CertificateAuthority
) -> None:
    client = ca.issue("ingest")
    caller = IdentitySettings(
        **common_settings(tmp_path),  # type: ignore[arg-type]
        tls_ca_file=ca.cert,
        tls_client_cert_file=client.cert,
        tls_client_key_file=client.key,
    )
    channel = internal_channel(
        mtls_server.address, internal_token=caller.require_internal_token(), tls=caller.channel_tls()
    )
    with channel, bind_call(CallContext(request_id="r1", method="/test", tenant="acme")):
        response = identity_grpc.IdentityServiceStub(channel).GetProfile(
            identity_pb.GetProfileRequest(), timeout=5
        )
    assert response.profile.person_id == "acme"


def test_the_server_name_setting_checks_a_name_the_address_does_not_carry(
    tmp_path: Path, ca: CertificateAuthority
) -> None:
    journeys = ca.issue("journeys", hosts=("journeys",))  # the Service name only, as in a cluster
    server = serve(tmp_path, tls_cert_file=journeys.cert, tls_key_file=journeys.key)
    try:
        for name, works in (("journeys", True), (None, False)):
            caller = IdentitySettings(
                **common_settings(tmp_path),  # type: ignore[arg-type]
                tls_ca_file=ca.cert,
                tls_server_name=name,
            )
            with internal_channel(server.address, internal_token=None, tls=caller.channel_tls()) as channel:
                if works:
                    assert health(channel) == SERVING
                else:
                    assert refused(channel) == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop(0)


def test_a_renewed_certificate_serves_new_connections_without_a_restart(
    tls_server: Server, server_pair: KeyPair, ca: CertificateAuthority, other_ca: CertificateAuthority
) -> None:
    renewed = other_ca.issue("identity-renewed")
    # Replace the files the way a Secret volume does: new files, then one rename each.
    for new, current in ((renewed.key, server_pair.key), (renewed.cert, server_pair.cert)):
        staged = current.with_suffix(".new")
        shutil.copyfile(new, staged)
        os.replace(staged, current)
    with tls_channel(tls_server, other_ca) as channel:
        assert health(channel) == SERVING
    assert refused(tls_channel(tls_server, ca)) == grpc.StatusCode.UNAVAILABLE


def test_the_health_port_answers_plaintext_probes_beside_a_tls_port(
    tmp_path: Path, server_pair: KeyPair
) -> None:
    port = free_port()
    server = serve(tmp_path, tls_cert_file=server_pair.cert, tls_key_file=server_pair.key, health_port=port)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            assert health(channel) == SERVING
        assert refused(grpc.insecure_channel(server.address)) == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop(0)
