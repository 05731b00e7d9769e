"""DecisionService's model calls as the tests make them over real sockets: push a package, deploy it, read
the model; a fresh tenant with its own key; a registered package damaged on the volume."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path

import grpc

from tests.conftest import API_KEY
from wayline.api.v1 import annotations_pb2
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.decision.v1 import decision_service_pb2_grpc as pb_grpc
from wayline.decision.v1 import model_pb2
from wayline.gateway.v1 import api_key_pb2
from wayline.gateway.v1 import gateway_service_pb2 as admin_pb
from wayline.gateway.v1 import gateway_service_pb2_grpc as admin_grpc
from wayline_cli.models import package_files, upload_requests

Auth = tuple[tuple[str, str], ...]
OPERATOR: Auth = (("authorization", f"Bearer {API_KEY}"),)


def push(channel: grpc.Channel, package: Path, auth: Auth = OPERATOR) -> model_pb2.ModelVersion:
    stub = pb_grpc.DecisionServiceStub(channel)
    response = stub.UploadModelVersion(upload_requests(*package_files(package)), metadata=auth, timeout=60)
    return response.model_version


def deploy(
    channel: grpc.Channel,
    model_id: str,
    version: str,
    mode: pb.DeployMode.ValueType = pb.DEPLOY_MODE_FULL,
    percent: int = 0,
    auth: Auth = OPERATOR,
) -> model_pb2.Model:
    request = pb.DeployModelRequest(
        name=f"models/{model_id}", version=version, mode=mode, canary_percent=percent
    )
    return pb_grpc.DecisionServiceStub(channel).DeployModel(request, metadata=auth, timeout=60).model


def get_model(channel: grpc.Channel, model_id: str, auth: Auth = OPERATOR) -> model_pb2.Model:
    request = pb.GetModelRequest(name=f"models/{model_id}")
    return pb_grpc.DecisionServiceStub(channel).GetModel(request, metadata=auth, timeout=10).model


def states(model: model_pb2.Model) -> dict[str, str]:
    """Version → its state's name without the prefix (`LOADED`, ...)."""
    return {
        v.version: model_pb2.ModelVersionState.Name(v.state).removeprefix("MODEL_VERSION_STATE_")
        for v in model.versions
    }


READ_AND_ADMIN = (annotations_pb2.SCOPE_READ, annotations_pb2.SCOPE_ADMIN)
EVERY_SCOPE = (annotations_pb2.SCOPE_READ, annotations_pb2.SCOPE_WRITE, annotations_pb2.SCOPE_ADMIN)


def tenant_key(
    channel: grpc.Channel,
    scopes: Sequence[annotations_pb2.Scope.ValueType] = READ_AND_ADMIN,
    prefix: str = "life",
) -> Auth:
    """A key with `scopes` of a new tenant (its id starts with `prefix`), made by the operator through the
    gateway."""
    admin = admin_grpc.AdminServiceStub(channel)
    tenant = admin.CreateTenant(
        admin_pb.CreateTenantRequest(tenant_id=f"{prefix}-{uuid.uuid4().hex[:8]}"),
        metadata=OPERATOR,
        timeout=10,
    ).tenant
    created = admin.CreateApiKey(
        admin_pb.CreateApiKeyRequest(parent=tenant.name, api_key=api_key_pb2.ApiKey(scopes=scopes)),
        metadata=OPERATOR,
        timeout=10,
    )
    return (("authorization", f"Bearer {created.secret}"),)


def damage(version_dir: Path, file: str, data: bytes) -> None:
    """Overwrite a registered (read-only) package's file, as a failing volume or an operator might."""
    version_dir.chmod(0o755)
    path = version_dir / file
    path.chmod(0o644)
    path.write_bytes(data)
