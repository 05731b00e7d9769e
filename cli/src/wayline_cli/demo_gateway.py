"""The demo's gateway steps: the operator makes a tenant and keys, and each rule of the door shows itself —
scopes, a quota with its retry delay, suspension, revocation."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import grpc
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2
from rich.console import Console
from rich.table import Table

from wayline.api.v1 import annotations_pb2
from wayline.common.errors import status_details
from wayline.gateway.v1 import api_key_pb2, quota_pb2, tenant_pb2
from wayline.gateway.v1 import gateway_service_pb2 as admin_pb
from wayline.gateway.v1 import gateway_service_pb2_grpc as admin_grpc
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from wayline_cli import demo

__all__ = ["show_gateway"]

Auth = tuple[tuple[str, str], ...]


def _bearer(secret: str) -> Auth:
    return (("authorization", f"Bearer {secret}"),)


def _outcome(call: Callable[[], object]) -> str:
    try:
        call()
    except grpc.RpcError as error:
        details = status_details(error)
        reasons = [d.reason for d in details if isinstance(d, error_details_pb2.ErrorInfo)]
        retry = [d for d in details if isinstance(d, error_details_pb2.RetryInfo)]
        after = f", retry in {retry[0].retry_delay.ToTimedelta().total_seconds():.2f} s" if retry else ""
        return f"{error.code().name} {reasons[0] if reasons else ''}{after}"
    return "OK"


def show_gateway(channel: grpc.Channel, operator: Auth, console: Console) -> None:
    admin = admin_grpc.AdminServiceStub(channel)
    ingest = ingest_grpc.IngestServiceStub(channel)
    tenant = admin.CreateTenant(
        admin_pb.CreateTenantRequest(
            tenant_id=f"demo-shop-{uuid.uuid4().hex[:4]}", tenant=tenant_pb2.Tenant(display_name="Demo Shop")
        ),
        metadata=operator,
        timeout=10,
    ).tenant

    def key(*scopes: annotations_pb2.Scope.ValueType) -> admin_pb.CreateApiKeyResponse:
        return admin.CreateApiKey(
            admin_pb.CreateApiKeyRequest(
                parent=tenant.name, api_key=api_key_pb2.ApiKey(display_name="demo", scopes=list(scopes))
            ),
            metadata=operator,
            timeout=10,
        )

    writer, reader = key(annotations_pb2.SCOPE_WRITE), key(annotations_pb2.SCOPE_READ)
    admin.UpdateQuota(
        admin_pb.UpdateQuotaRequest(
            quota=quota_pb2.Quota(
                name=f"{writer.api_key.name}/quota",
                limits=quota_pb2.QuotaLimits(events_per_second=5.0, events_burst=10),
            )
        ),
        metadata=operator,
        timeout=10,
    )

    seeds = iter(range(100, 200))

    def track(secret: str, count: int = 1) -> Callable[[], object]:
        events = demo.demo_events(count, datetime.now(UTC), seed=next(seeds))[:count]
        return lambda: ingest.TrackBatch(
            ingest_pb.TrackBatchRequest(events=events), metadata=_bearer(secret), timeout=10
        )

    def set_state(state: int) -> Callable[[], object]:
        return lambda: admin.UpdateTenant(
            admin_pb.UpdateTenantRequest(
                tenant=tenant_pb2.Tenant(name=tenant.name, state=state),  # type: ignore[arg-type]
                update_mask=field_mask_pb2.FieldMask(paths=["state"]),
            ),
            metadata=operator,
            timeout=10,
        )

    table = Table(title=f"the gateway's door, for new tenant {tenant.name}")
    table.add_column("step")
    table.add_column("answer")
    table.add_row(
        f"write key ({writer.api_key.key_prefix}…) sends 10 events", _outcome(track(writer.secret, 10))
    )
    table.add_row("read key sends an event", _outcome(track(reader.secret)))
    table.add_row("write key sends more, over its 5 events/s quota", _outcome(track(writer.secret, 5)))
    set_state(tenant_pb2.TENANT_STATE_SUSPENDED)()
    table.add_row(
        "the operator suspends the tenant; read key reads its quota",
        _outcome(
            lambda: admin.GetQuota(
                admin_pb.GetQuotaRequest(name=f"{tenant.name}/quota"),
                metadata=_bearer(reader.secret),
                timeout=10,
            )
        ),
    )
    set_state(tenant_pb2.TENANT_STATE_ACTIVE)()
    admin.RevokeApiKey(admin_pb.RevokeApiKeyRequest(name=writer.api_key.name), metadata=operator, timeout=10)
    table.add_row("resumed; the revoked write key sends an event", _outcome(track(writer.secret)))
    no_key: Auth = ()
    table.add_row(
        "a call without a key",
        _outcome(lambda: ingest.Track(ingest_pb.TrackRequest(), metadata=no_key, timeout=10)),
    )
    console.print(table)
