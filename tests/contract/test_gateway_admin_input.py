"""AdminService refuses times outside Timestamp's range with the field, over the suite's gateway: a key's
`expire_time` of any int64 seconds used to reach the store and come back INTERNAL."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from tests.contract.test_gateway_json_bridge import OPERATOR, Tenant
from tests.rpc_errors import violations
from wayline.api.v1 import annotations_pb2
from wayline.common.timestamps import MAX_TIMESTAMP_SECONDS
from wayline.gateway.v1 import api_key_pb2
from wayline.gateway.v1 import gateway_service_pb2 as admin_pb
from wayline.gateway.v1 import gateway_service_pb2_grpc as admin_grpc


@pytest.mark.parametrize(
    ("expire_time", "field"),
    [
        (Timestamp(seconds=2**62), "api_key.expire_time"),
        (Timestamp(seconds=MAX_TIMESTAMP_SECONDS + 1), "api_key.expire_time"),
        (Timestamp(seconds=MAX_TIMESTAMP_SECONDS, nanos=-1), "api_key.expire_time.nanos"),
    ],
)
def test_a_key_expiring_outside_timestamps_range_is_refused(
    gateway_channel: grpc.Channel, expire_time: Timestamp, field: str
) -> None:
    tenant = Tenant(gateway_channel)
    admin = admin_grpc.AdminServiceStub(gateway_channel)
    key = api_key_pb2.ApiKey(scopes=[annotations_pb2.SCOPE_WRITE], expire_time=expire_time)
    with pytest.raises(grpc.RpcError) as refused:
        admin.CreateApiKey(
            admin_pb.CreateApiKeyRequest(parent=tenant.name, api_key=key), metadata=OPERATOR, timeout=10
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(violations(refused.value)) == [field]
    listed = admin.ListApiKeys(admin_pb.ListApiKeysRequest(parent=tenant.name), metadata=OPERATOR, timeout=10)
    assert list(listed.api_keys) == []


@pytest.mark.parametrize(
    ("overlap", "field"),
    [
        (Duration(seconds=-(2**63)), "overlap"),  # ToTimedelta overflowed: INTERNAL
        (Duration(seconds=1, nanos=-1), "overlap.nanos"),
    ],
)
def test_a_rotation_overlap_outside_durations_range_is_refused(
    gateway_channel: grpc.Channel, overlap: Duration, field: str
) -> None:
    tenant = Tenant(gateway_channel)
    admin = admin_grpc.AdminServiceStub(gateway_channel)
    key = api_key_pb2.ApiKey(scopes=[annotations_pb2.SCOPE_WRITE])
    created = admin.CreateApiKey(
        admin_pb.CreateApiKeyRequest(parent=tenant.name, api_key=key), metadata=OPERATOR, timeout=10
    )
    with pytest.raises(grpc.RpcError) as refused:
        admin.RotateApiKey(
            admin_pb.RotateApiKeyRequest(name=created.api_key.name, overlap=overlap),
            metadata=OPERATOR,
            timeout=10,
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list(violations(refused.value)) == [field]
