"""What Decide uses where nothing better is wired in: no model deployed (every Decide is
FAILED_PRECONDITION NO_MODEL_DEPLOYED), features from the spec's defaults, and traces not kept. The model
lifecycle, the online feature state and the trace store replace them (`decision_service(..., decide=...)`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from wayline.decision.v1 import decision_pb2
from wayline.event.v1 import event_pb2
from wayline_decision.errors import NoModelDeployed
from wayline_decision.features.reader import FeatureOrigin, FeatureRead

if TYPE_CHECKING:
    from wayline_decision.serving.loaded import ServingModel
    from wayline_decision.serving.route import Route

__all__ = ["DefaultFeatures", "NoModels", "NoTraces"]


class NoModels:
    def route(self, tenant: str, model_id: str | None, channel: int, placement: str, person_id: str) -> Route:
        raise NoModelDeployed(event_pb2.Channel.Name(event_pb2.Channel.ValueType(channel)), placement)


class DefaultFeatures:
    def read(self, model: ServingModel, person_id: str, as_of_us: int, budget_s: float) -> FeatureRead:
        return FeatureRead([f.default for f in model.spec.features], FeatureOrigin.DEFAULTS)


class NoTraces:
    def record(self, tenant: str, trace: decision_pb2.Decision) -> None:
        return None
