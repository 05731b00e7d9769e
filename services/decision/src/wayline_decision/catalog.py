"""The tenant's models as ListModels and GetModel show them: each model with its registered versions, each
version's state on this replica, and the model's traffic."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from wayline_decision.errors import ModelNotFound
from wayline_decision.packages import MODEL_ID_PATTERN
from wayline_decision.registry import ModelRegistry, RegisteredVersion
from wayline_decision.serving.lifecycle import VersionState
from wayline_decision.serving.traffic import Traffic

__all__ = ["ModelEntry", "ModelPage", "ModelStatus", "VersionEntry", "get_model", "list_models"]


class ModelStatus(Protocol):
    def traffic_of(self, tenant: str) -> dict[str, Traffic]:
        """Model id → traffic, for the tenant's deployed models."""
        ...

    def version_state(self, tenant: str, model_id: str, version: str) -> tuple[VersionState, str]:
        """The version's state here, and why it failed when it did."""
        ...


@dataclass(frozen=True, slots=True)
class VersionEntry:
    version: RegisteredVersion
    state: VersionState = VersionState.REGISTERED
    error_message: str = ""


@dataclass(frozen=True, slots=True)
class ModelEntry:
    model_id: str
    versions: list[VersionEntry]  # the newest registration first
    traffic: Traffic | None = None  # None: never deployed


@dataclass(frozen=True, slots=True)
class ModelPage:
    models: list[ModelEntry]
    total: int  # how many models the tenant has
    more: bool  # whether models follow the last of this page


def _entry(
    registry: ModelRegistry, status: ModelStatus, tenant: str, model_id: str, traffic: Traffic | None
) -> ModelEntry:
    versions = []
    for registered in registry.versions(tenant, model_id):
        state, why = status.version_state(tenant, model_id, registered.package.version)
        versions.append(VersionEntry(registered, state, why))
    return ModelEntry(model_id, versions, traffic)


def list_models(
    registry: ModelRegistry, status: ModelStatus, tenant: str, after: str, limit: int
) -> ModelPage:
    """The tenant's models after `after` (by id; '' from the start), at most `limit`."""
    ids = registry.model_ids(tenant)
    following = [model_id for model_id in ids if model_id > after]
    page = following[:limit]
    traffic = status.traffic_of(tenant) if page else {}
    entries = [_entry(registry, status, tenant, model_id, traffic.get(model_id)) for model_id in page]
    return ModelPage([e for e in entries if e.versions], len(ids), len(following) > limit)


def get_model(registry: ModelRegistry, status: ModelStatus, tenant: str, model_id: str) -> ModelEntry:
    """One model of the tenant; ModelNotFound when it has no registered version."""
    if not MODEL_ID_PATTERN.fullmatch(model_id):
        raise ModelNotFound(f"models/{model_id}")
    entry = _entry(registry, status, tenant, model_id, status.traffic_of(tenant).get(model_id))
    if not entry.versions:
        raise ModelNotFound(f"models/{model_id}")
    return entry
