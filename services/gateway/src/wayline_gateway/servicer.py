"""AdminService over gRPC: a thin adapter. Requests are converted (converters.py), the rules are the domain's
(admin.py), and the records converted back."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from wayline.common.auth import Caller
from wayline.common.context import current_call
from wayline.common.errors import Unauthenticated
from wayline.gateway.v1 import gateway_service_pb2 as pb
from wayline.gateway.v1 import gateway_service_pb2_grpc as pb_grpc
from wayline_gateway import converters as c
from wayline_gateway.admin import Admin
from wayline_gateway.model import now_micros

__all__ = ["AdminServicer"]


class AdminServicer(pb_grpc.AdminServiceServicer):
    def __init__(self, admin: Admin, charge: Callable[[Caller], None] = lambda _caller: None) -> None:
        """`charge` takes each call from its caller's request quota (the gateway's `Admission.request`)."""
        self._admin = admin
        self._charge = charge

    def _caller(self) -> Caller:
        call = current_call()
        if call is None or not call.tenant:
            raise Unauthenticated("AdminService needs an API key")
        caller = Caller(call.tenant, call.scopes, call.principal)
        self._charge(caller)
        return caller

    def CreateTenant(  # noqa: N802 - gRPC method names are the contract's
        self, request: pb.CreateTenantRequest, context: grpc.ServicerContext
    ) -> pb.CreateTenantResponse:
        tenant = self._admin.create_tenant(self._caller(), request.tenant_id, request.tenant.display_name)
        return pb.CreateTenantResponse(tenant=c.tenant_pb(tenant))

    def GetTenant(  # noqa: N802 - gRPC method names are the contract's
        self, request: pb.GetTenantRequest, context: grpc.ServicerContext
    ) -> pb.GetTenantResponse:
        return pb.GetTenantResponse(tenant=c.tenant_pb(self._admin.get_tenant(self._caller(), request.name)))

    def ListTenants(  # noqa: N802 - gRPC method names are the contract's
        self, request: pb.ListTenantsRequest, context: grpc.ServicerContext
    ) -> pb.ListTenantsResponse:
        tenants, token, total = self._admin.list_tenants(
            self._caller(), request.page_size, request.page_token
        )
        return pb.ListTenantsResponse(
            tenants=[c.tenant_pb(t) for t in tenants], next_page_token=token, total_size=total
        )

    def UpdateTenant(  # noqa: N802 - gRPC method names are the contract's
        self, request: pb.UpdateTenantRequest, context: grpc.ServicerContext
    ) -> pb.UpdateTenantResponse:
        tenant = self._admin.update_tenant(
            self._caller(),
            request.tenant.name,
            list(request.update_mask.paths),
            request.tenant.display_name,
            c.tenant_state_from_pb(request.tenant.state),
            request.tenant.etag,
        )
        return pb.UpdateTenantResponse(tenant=c.tenant_pb(tenant))

    def DeleteTenant(  # noqa: N802 - gRPC method names are the contract's
        self, request: pb.DeleteTenantRequest, context: grpc.ServicerContext
    ) -> pb.DeleteTenantResponse:
        return pb.DeleteTenantResponse(
            tenant=c.tenant_pb(self._admin.delete_tenant(self._caller(), request.name))
        )

    def CreateApiKey(  # noqa: N802 - gRPC method names are the contract's
        self, request: pb.CreateApiKeyRequest, context: grpc.ServicerContext
    ) -> pb.CreateApiKeyResponse:
        key = request.api_key
        new = self._admin.create_key(
            self._caller(),
            request.parent,
            key.display_name,
            c.scopes_from_pb(list(key.scopes)),
            c.micros_of(key.expire_time, "api_key.expire_time") if key.HasField("expire_time") else None,
        )
        return pb.CreateApiKeyResponse(api_key=c.api_key_pb(new.key, now_micros()), secret=new.secret)

    def ListApiKeys(  # noqa: N802 - gRPC method names are the contract's
        self, request: pb.ListApiKeysRequest, context: grpc.ServicerContext
    ) -> pb.ListApiKeysResponse:
        keys, token, total = self._admin.list_keys(
            self._caller(), request.parent, request.page_size, request.page_token, request.show_inactive
        )
        now = now_micros()
        return pb.ListApiKeysResponse(
            api_keys=[c.api_key_pb(k, now) for k in keys], next_page_token=token, total_size=total
        )

    def RevokeApiKey(  # noqa: N802 - gRPC method names are the contract's
        self, request: pb.RevokeApiKeyRequest, context: grpc.ServicerContext
    ) -> pb.RevokeApiKeyResponse:
        key = self._admin.revoke_key(self._caller(), request.name)
        return pb.RevokeApiKeyResponse(api_key=c.api_key_pb(key, now_micros()))

    def RotateApiKey(  # noqa: N802 - gRPC method names are the contract's
        self, request: pb.RotateApiKeyRequest, context: grpc.ServicerContext
    ) -> pb.RotateApiKeyResponse:
        overlap = c.seconds_of(request.overlap, "overlap") if request.HasField("overlap") else None
        new, previous = self._admin.rotate_key(self._caller(), request.name, overlap)
        now = now_micros()
        return pb.RotateApiKeyResponse(
            api_key=c.api_key_pb(new.key, now),
            secret=new.secret,
            previous_api_key=c.api_key_pb(previous, now),
        )

    def GetQuota(  # noqa: N802 - gRPC method names are the contract's
        self, request: pb.GetQuotaRequest, context: grpc.ServicerContext
    ) -> pb.GetQuotaResponse:
        return pb.GetQuotaResponse(quota=c.quota_pb(self._admin.get_quota(self._caller(), request.name)))

    def UpdateQuota(  # noqa: N802 - gRPC method names are the contract's
        self, request: pb.UpdateQuotaRequest, context: grpc.ServicerContext
    ) -> pb.UpdateQuotaResponse:
        view = self._admin.update_quota(
            self._caller(),
            request.quota.name,
            c.limits_from_pb(request.quota.limits),
            list(request.update_mask.paths),
            request.quota.etag,
        )
        return pb.UpdateQuotaResponse(quota=c.quota_pb(view))
