"""Each tenant's default lifecycle model: the built-in default until UpdateLifecycleModel stores one.

GetLifecycleStages requests without a model use it, and so will segments' lifecycle-stage conditions
(`model_for`). The store keeps the model's stages as the contract's JSON, so what is stored reads back as the
same message, and every read converts it again with the same validation.
"""

from __future__ import annotations

from google.protobuf import json_format

from wayline.common.errors import FieldViolation
from wayline.common.timestamps import to_timestamp
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline.journeys.v1 import lifecycle_pb2
from wayline_journeys.conditions_converters import raise_for
from wayline_journeys.lifecycle import LifecycleModel
from wayline_journeys.lifecycle_converters import BUILT_IN_MODEL, lifecycle_model
from wayline_journeys.store.lifecycle_models import ClickHouseLifecycleModelStore, StoredLifecycleModel

__all__ = ["LifecycleModels"]

_WRITABLE = ("stages",)


class LifecycleModels:
    def __init__(self, store: ClickHouseLifecycleModelStore) -> None:
        self._store = store

    def get(self, tenant: str) -> lifecycle_pb2.LifecycleModel:
        """The tenant's model with its revision and update time (the built-in default is revision 0)."""
        stored = self._store.get(tenant)
        return _message(stored) if stored is not None else _copy(BUILT_IN_MODEL)

    def model_for(self, tenant: str) -> LifecycleModel:
        """The tenant's model, ready to evaluate."""
        violations: list[FieldViolation] = []
        model = lifecycle_model(self.get(tenant), "", violations)
        raise_for(violations, "the tenant's stored lifecycle model")
        return model

    def update(self, tenant: str, request: pb.UpdateLifecycleModelRequest) -> lifecycle_pb2.LifecycleModel:
        """Validate and store the request's model (INVALID_ARGUMENT names every bad field)."""
        violations = [
            FieldViolation(f"update_mask.paths[{i}]", f"writable fields: {', '.join(_WRITABLE)}")
            for i, path in enumerate(request.update_mask.paths)
            if path not in _WRITABLE
        ]
        lifecycle_model(request.lifecycle_model, "lifecycle_model", violations)
        raise_for(violations, "the lifecycle model")
        stages = lifecycle_pb2.LifecycleModel(stages=request.lifecycle_model.stages)
        return _message(self._store.put(tenant, json_format.MessageToJson(stages, indent=None)))


def _copy(model: lifecycle_pb2.LifecycleModel) -> lifecycle_pb2.LifecycleModel:
    found = lifecycle_pb2.LifecycleModel()
    found.CopyFrom(model)
    return found


def _message(stored: StoredLifecycleModel) -> lifecycle_pb2.LifecycleModel:
    model = json_format.Parse(stored.definition, lifecycle_pb2.LifecycleModel())
    model.revision = stored.revision
    model.update_time.CopyFrom(to_timestamp(stored.update_time))
    return model
