"""The tenant's models as ListModels and GetModel show them: each model with its registered versions."""

from __future__ import annotations

from dataclasses import dataclass

from wayline_decision.errors import ModelNotFound
from wayline_decision.packages import MODEL_ID_PATTERN
from wayline_decision.registry import ModelRegistry, RegisteredVersion

__all__ = ["ModelEntry", "ModelPage", "get_model", "list_models"]


@dataclass(frozen=True, slots=True)
class ModelEntry:
    model_id: str
    versions: list[RegisteredVersion]  # the newest registration first


@dataclass(frozen=True, slots=True)
class ModelPage:
    models: list[ModelEntry]
    total: int  # how many models the tenant has
    more: bool  # whether models follow the last of this page


def list_models(registry: ModelRegistry, tenant: str, after: str, limit: int) -> ModelPage:
    """The tenant's models after `after` (by id; '' from the start), at most `limit`."""
    ids = registry.model_ids(tenant)
    following = [model_id for model_id in ids if model_id > after]
    page = following[:limit]
    entries = [ModelEntry(model_id, registry.versions(tenant, model_id)) for model_id in page]
    return ModelPage([e for e in entries if e.versions], len(ids), len(following) > limit)


def get_model(registry: ModelRegistry, tenant: str, model_id: str) -> ModelEntry:
    """One model of the tenant; ModelNotFound when it has no registered version."""
    if not MODEL_ID_PATTERN.fullmatch(model_id):
        raise ModelNotFound(f"models/{model_id}")
    versions = registry.versions(tenant, model_id)
    if not versions:
        raise ModelNotFound(f"models/{model_id}")
    return ModelEntry(model_id, versions)
