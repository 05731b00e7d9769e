"""A request protobuf cannot parse is INVALID_ARGUMENT naming the field (decoding.py), over a real server: it
used to be gRPC's own INTERNAL "Exception deserializing request!", before any servicer ran."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from tests.conftest import INTERNAL_TOKEN
from tests.rpc_errors import violations
from wayline.common.decoding import MAX_DEPTH, refusal
from wayline.common.server import Server
from wayline.ingest.v1 import ingest_service_pb2 as pb

INTERNAL = (("x-wayline-internal-token", INTERNAL_TOKEN), ("x-wayline-tenant", "decoding"))
TRACK = "/wayline.ingest.v1.IngestService/Track"


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        value = {"a": value}
    return value


def track(depth: int) -> bytes:
    request = pb.TrackRequest()
    request.event.properties.update(nested(depth))
    return request.SerializeToString()


def with_invalid_utf8() -> bytes:
    request = pb.TrackRequest()
    request.event.name = "abc"
    return request.SerializeToString().replace(b"abc", b"a\xffc")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (track(33), "event.properties"),  # each JSON level is 3 messages: past the 100 protobuf parses
        (track(150), "event.properties"),
        (with_invalid_utf8(), "event.name"),
        (track(1)[:-3], "event"),  # cut short: the length of `event` runs past the end
    ],
)
def test_track_refuses_a_request_protobuf_cannot_parse_naming_the_field(
    ingest_server: Server, payload: bytes, field: str
) -> None:
    with grpc.insecure_channel(ingest_server.address) as channel:
        call = channel.unary_unary(TRACK, None, None)
        with pytest.raises(grpc.RpcError) as refused:
            call(payload, metadata=INTERNAL, timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, refused.value.details()
    assert list(violations(refused.value)) == [field]


def test_a_request_nested_just_within_the_limit_is_parsed() -> None:
    pb.TrackRequest.FromString(track(32))  # the limit the walker assumes is protobuf's own
    assert MAX_DEPTH == 100
    with pytest.raises(Exception, match="MaxDepth"):
        pb.TrackRequest.FromString(track(33))
    assert [v.field for v in refusal(pb.TrackRequest.DESCRIPTOR, track(33)).violations] == [
        "event.properties"
    ]
