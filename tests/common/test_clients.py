"""Client channels: retries follow the contract's idempotency levels; deadline and context pass on."""

from __future__ import annotations

import time
from typing import cast

import grpc
import pytest

from wayline.common.clients import PropagatingInterceptor, _CallDetails, retry_service_config
from wayline.common.context import CallContext, bind_call
from wayline.common.errors import DeadlineExceeded
from wayline.ingest.v1 import ingest_service_pb2
from wayline.journeys.v1 import journeys_service_pb2


def retried_methods(*files: object) -> set[str]:
    services = [s for f in files for s in f.DESCRIPTOR.services_by_name.values()]  # type: ignore[attr-defined]
    config = retry_service_config(services)
    return {f"{n['service']}/{n['method']}" for c in config.get("methodConfig", []) for n in c["name"]}


def test_only_methods_the_contract_marks_safe_are_retried() -> None:
    retried = retried_methods(journeys_service_pb2, ingest_service_pb2)
    assert "wayline.journeys.v1.JourneyService/WriteEvents" in retried  # IDEMPOTENT (dedup by event_id)
    assert "wayline.journeys.v1.JourneyService/GetTimeline" in retried  # NO_SIDE_EFFECTS
    assert "wayline.ingest.v1.IngestService/StreamEvents" not in retried


def details(timeout: float | None = None) -> grpc.ClientCallDetails:
    return cast(grpc.ClientCallDetails, _CallDetails("/x.v1.S/M", timeout, None, None, None, None))


def test_the_current_calls_context_and_remaining_deadline_are_passed_on() -> None:
    interceptor = PropagatingInterceptor("secret")
    call = CallContext(request_id="r1", method="/m", tenant="acme", deadline=time.monotonic() + 2)
    with bind_call(call):
        out = interceptor._details(details(timeout=30))
    assert dict(out.metadata or ()) == {
        "x-wayline-internal-token": "secret",
        "x-request-id": "r1",
        "x-wayline-tenant": "acme",
    }
    assert out.timeout is not None
    assert 1.5 < out.timeout <= 2


def test_a_passed_deadline_fails_before_the_call_is_made() -> None:
    call = CallContext(request_id="r1", method="/m", tenant="acme", deadline=time.monotonic() - 1)
    with bind_call(call), pytest.raises(DeadlineExceeded):
        PropagatingInterceptor("secret")._details(details())
