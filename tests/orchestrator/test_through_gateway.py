"""The ledger's and the flows' RPCs through the gateway: routed to the orchestrator with the caller's tenant,
each under the scope its contract names (a read key checks, lists and reads flows but cannot record, change
the policy or change a flow), and the internal ObserveEvents not routed at all."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import grpc
import pytest

from tests.conftest import API_KEY, TENANT, gateway_settings, start_server
from tests.orchestrator.conftest import start_orchestrator
from tests.orchestrator.flow_calls import create, flow, get, update
from tests.orchestrator.flow_samples import small_flow
from tests.orchestrator.helpers import (
    EMAIL,
    MARKETING,
    Stub,
    at,
    cap,
    check,
    days,
    event,
    observe,
    record,
    set_policy,
)
from wayline.api.v1 import annotations_pb2
from wayline.gateway.v1 import api_key_pb2
from wayline.gateway.v1 import gateway_service_pb2 as admin_pb
from wayline.gateway.v1 import gateway_service_pb2_grpc as admin_grpc
from wayline.orchestrator.v1 import contact_policy_pb2 as policy_pb
from wayline.orchestrator.v1 import flow_pb2
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline.orchestrator.v1 import orchestrator_service_pb2_grpc as pb_grpc
from wayline_gateway.service import gateway_service

Auth = tuple[tuple[str, str], ...]
OPERATOR: Auth = (("authorization", f"Bearer {API_KEY}"),)


@pytest.fixture(scope="module")
def channel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[grpc.Channel]:
    orchestrator = start_orchestrator(tmp_path_factory.mktemp("orchestrator"))
    settings = gateway_settings(
        tmp_path_factory.mktemp("gateway"), {"orchestrator": orchestrator.address}, API_KEY, TENANT
    )
    gateway = start_server(gateway_service(settings), settings)
    with grpc.insecure_channel(gateway.address) as opened:
        yield opened
    gateway.stop(0)
    orchestrator.stop(0)


def keys(channel: grpc.Channel) -> tuple[Auth, Auth]:
    """An admin+write key and a read-only key of a new tenant."""
    admin = admin_grpc.AdminServiceStub(channel)
    tenant = admin.CreateTenant(
        admin_pb.CreateTenantRequest(tenant_id=f"ledger-{uuid.uuid4().hex[:6]}"),
        metadata=OPERATOR,
        timeout=10,
    ).tenant

    def key(*scopes: annotations_pb2.Scope.ValueType) -> Auth:
        made = admin.CreateApiKey(
            admin_pb.CreateApiKeyRequest(parent=tenant.name, api_key=api_key_pb2.ApiKey(scopes=list(scopes))),
            metadata=OPERATOR,
            timeout=10,
        )
        return (("authorization", f"Bearer {made.secret}"),)

    return key(annotations_pb2.SCOPE_ADMIN, annotations_pb2.SCOPE_WRITE, annotations_pb2.SCOPE_READ), key(
        annotations_pb2.SCOPE_READ
    )


def test_ledger_rpcs_are_routed_under_their_scopes(channel: grpc.Channel) -> None:
    stub: Stub = pb_grpc.OrchestratorServiceStub(channel)
    writer, reader = keys(channel)
    set_policy(stub, writer, policy_pb.ContactPolicy(frequency_caps=[cap(1, days(1))]))
    assert record(stub, writer, "p1", at("2026-03-02T10:00"), enforce=True).recorded
    result = check(stub, reader, "p1", at("2026-03-02T11:00"), (EMAIL, MARKETING)).results[0]
    assert not result.allowed  # the reader sees the writer's tenant: the same ledger
    assert (
        stub.ListContacts(pb.ListContactsRequest(person_id="p1"), metadata=reader, timeout=10).total_size == 1
    )
    assert stub.GetContactPolicy(
        pb.GetContactPolicyRequest(), metadata=reader, timeout=10
    ).contact_policy.revision
    for call in (
        lambda: record(stub, reader, "p1", at("2026-03-02T12:00")),
        lambda: set_policy(stub, reader, policy_pb.ContactPolicy()),
    ):
        with pytest.raises(grpc.RpcError) as error:
            call()
        assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # Another tenant's key sees none of it.
    stranger, _ = keys(channel)
    assert (
        stub.ListContacts(pb.ListContactsRequest(person_id="p1"), metadata=stranger, timeout=10).total_size
        == 0
    )


def test_observe_events_is_internal_and_not_routed(channel: grpc.Channel) -> None:
    stub: Stub = pb_grpc.OrchestratorServiceStub(channel)
    writer, _ = keys(channel)
    with pytest.raises(grpc.RpcError) as error:
        observe(
            stub,
            writer,
            event(
                "p1", "Consent Updated", at("2026-03-01T00:00"), channel="email", purpose="all", granted=True
            ),
        )
    assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_flow_rpcs_are_routed_under_their_scopes(channel: grpc.Channel) -> None:
    stub: Stub = pb_grpc.OrchestratorServiceStub(channel)
    admin, reader = keys(channel)
    made = create(stub, admin, "welcome", flow(small_flow()))
    published = stub.PublishFlow(pb.PublishFlowRequest(name=made.name), metadata=admin, timeout=10).flow
    assert published.published_version == 1
    assert get(stub, reader, "welcome", 1).version == 1  # a read key reads
    assert [f.name for f in stub.ListFlows(pb.ListFlowsRequest(), metadata=reader, timeout=10).flows] == [
        "flows/welcome"
    ]
    for call in (
        lambda: create(stub, reader, "mine", flow()),
        lambda: stub.PauseFlow(pb.PauseFlowRequest(name=made.name), metadata=reader, timeout=10),
        lambda: stub.ArchiveFlow(pb.ArchiveFlowRequest(name=made.name), metadata=reader, timeout=10),
    ):
        with pytest.raises(grpc.RpcError) as error:
            call()
        assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # Issue 9's isolation check for flows: another tenant's keys see and change nothing of them.
    stranger, _ = keys(channel)
    assert list(stub.ListFlows(pb.ListFlowsRequest(), metadata=stranger, timeout=10).flows) == []
    renamed = flow_pb2.Flow(name=made.name, display_name="taken over")
    attempts: tuple[Callable[[], object], ...] = (
        lambda: get(stub, stranger, "welcome"),
        lambda: get(stub, stranger, "welcome", 1),
        lambda: update(stub, stranger, renamed, "display_name"),
        lambda: stub.PublishFlow(pb.PublishFlowRequest(name=made.name), metadata=stranger, timeout=10),
        lambda: stub.PauseFlow(pb.PauseFlowRequest(name=made.name), metadata=stranger, timeout=10),
        lambda: stub.ArchiveFlow(pb.ArchiveFlowRequest(name=made.name), metadata=stranger, timeout=10),
    )
    for attempt in attempts:
        with pytest.raises(grpc.RpcError) as error:
            attempt()
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert get(stub, reader, "welcome").display_name == made.display_name  # untouched
