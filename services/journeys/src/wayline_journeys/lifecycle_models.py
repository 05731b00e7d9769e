"""Each tenant's default lifecycle model: the built-in default until UpdateLifecycleModel stores one.

GetLifecycleStages requests without a model use it, and so do lifecycle-stage conditions (`model_for`:
segments, EvaluatePersonConditions). The store keeps the model's stages as the contract's JSON, so what is
stored reads back as the same message, and every read converts it again with the same validation.

`model_for` keeps each tenant's converted model for a few seconds: a flow's branch on the lifecycle stage
asked it once per call, a statement of its own (2 to 3 ms on chDB) for a model that changes a few times a
year. An update through this process applies at once; one through another replica within `ttl_seconds`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

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
_MODEL_TTL_SECONDS = 5.0


class LifecycleModels:
    def __init__(
        self,
        store: ClickHouseLifecycleModelStore,
        *,
        ttl_seconds: float = _MODEL_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._ttl = ttl_seconds
        self._clock = clock
        self._models: dict[str, tuple[float, LifecycleModel]] = {}  # tenant -> (read at, model)
        self._updates = 0  # bumped by update(): a read that began before it is not kept
        self._lock = threading.Lock()

    def get(self, tenant: str) -> lifecycle_pb2.LifecycleModel:
        """The tenant's model with its revision and update time (the built-in default is revision 0)."""
        stored = self._store.get(tenant)
        return _message(stored) if stored is not None else _copy(BUILT_IN_MODEL)

    def model_for(self, tenant: str) -> LifecycleModel:
        """The tenant's model, ready to evaluate (kept `ttl_seconds`, see the module's docstring)."""
        now = self._clock()
        kept = self._models.get(tenant)
        if kept is not None and now - kept[0] < self._ttl:
            return kept[1]
        updates = self._updates
        violations: list[FieldViolation] = []
        model = lifecycle_model(self.get(tenant), "", violations)
        raise_for(violations, "the tenant's stored lifecycle model")
        with self._lock:
            if updates == self._updates:
                self._models[tenant] = (now, model)
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
        stored = self._store.put(tenant, json_format.MessageToJson(stages, indent=None))
        with self._lock:
            self._updates += 1
            self._models.pop(tenant, None)
        return _message(stored)


def _copy(model: lifecycle_pb2.LifecycleModel) -> lifecycle_pb2.LifecycleModel:
    found = lifecycle_pb2.LifecycleModel()
    found.CopyFrom(model)
    return found


def _message(stored: StoredLifecycleModel) -> lifecycle_pb2.LifecycleModel:
    model = json_format.Parse(stored.definition, lifecycle_pb2.LifecycleModel())
    model.revision = stored.revision
    model.update_time.CopyFrom(to_timestamp(stored.update_time))
    return model
