"""The journeys side of the online features over gRPC: a person's values of a spec at a time
(JourneyService.GetProfileFeatures), for reads the online state cannot answer exactly, and whether journeys
holds events of a person received before a time (a one-feature COUNT spec read at that time), which tells the
feature service whether the state, fed from that time on, has all of the person's history.

Each call names its tenant in metadata; the channel (wayline.common.clients.internal_channel) adds the
internal token and retries UNAVAILABLE within the call's timeout (the method is safe to retry). Failures
become JourneysFailed with a short reason for the metrics (`deadline`, `unavailable`, `refused`).
"""

from __future__ import annotations

import grpc
from google.protobuf import struct_pb2

from wayline.common.context import TENANT_HEADER
from wayline.common.feature_encoding import python_value
from wayline.common.timestamps import from_micros, to_timestamp
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import feature_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as pb_grpc
from wayline_decision.features.model import FeatureValue
from wayline_decision.features.service import JourneysFailed

__all__ = ["COVERAGE_SPEC", "JourneysClient"]

COVERAGE_SPEC = feature_pb2.FeatureSpec(
    name="wayline_online_coverage",
    version="1",
    features=[
        feature_pb2.FeatureDefinition(
            name="events",
            aggregation=feature_pb2.FEATURE_AGGREGATION_COUNT,
            description="Every event of the person, whatever its type or name.",
        )
    ],
)
"""Counts every event of a person: read at time C, zero means journeys holds none received before C."""


_REASONS = {
    grpc.StatusCode.DEADLINE_EXCEEDED: "deadline",
    grpc.StatusCode.UNAVAILABLE: "unavailable",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "unavailable",
    grpc.StatusCode.CANCELLED: "unavailable",
}


class JourneysClient:
    """Owns `channel`: `close` closes it."""

    def __init__(self, channel: grpc.Channel) -> None:
        self._channel = channel
        self._stub = pb_grpc.JourneyServiceStub(channel)

    def values(
        self, tenant: str, spec: feature_pb2.FeatureSpec, person_id: str, as_of_us: int, timeout_s: float
    ) -> list[FeatureValue]:
        """The person's values of `spec` at `as_of_us`, in spec order (numbers as floats, null as None)."""
        found = self._profile(tenant, spec, person_id, as_of_us, timeout_s)
        values: list[FeatureValue] = []
        for feature in spec.features:
            value = python_value(found[feature.name]) if feature.name in found else None
            values.append(float(value) if isinstance(value, int) and not isinstance(value, bool) else value)
        return values

    def holds_events_before(self, tenant: str, person_id: str, before_us: int, timeout_s: float) -> bool:
        """True when journeys holds an event of the person (overrides applied) that happened and was
        received before `before_us`."""
        found = self._profile(tenant, COVERAGE_SPEC, person_id, before_us, timeout_s)
        count = python_value(found["events"]) if "events" in found else None
        return bool(count)

    def _profile(
        self, tenant: str, spec: feature_pb2.FeatureSpec, person_id: str, as_of_us: int, timeout_s: float
    ) -> dict[str, struct_pb2.Value]:
        request = pb.GetProfileFeaturesRequest(
            person=event_pb2.PersonRef(person_id=person_id),
            spec=spec,
            as_of=to_timestamp(from_micros(as_of_us)),
        )
        try:
            response: pb.GetProfileFeaturesResponse = self._stub.GetProfileFeatures(
                request, metadata=((TENANT_HEADER, tenant),), timeout=max(timeout_s, 0.0)
            )
        except grpc.RpcError as error:
            code = error.code()
            raise JourneysFailed(_REASONS.get(code, "refused"), f"{code.name}: {error.details()}") from error
        return dict(response.features.values)

    def close(self) -> None:
        self._channel.close()
