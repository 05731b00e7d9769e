"""Settings of the decision service (prefix WAYLINE_DECISION_)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from wayline.common.registry import REGISTRY
from wayline.common.settings import ServiceSettings

__all__ = ["DecisionSettings"]

_SERVICE = REGISTRY["decision"]


class DecisionSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix=_SERVICE.env_prefix)
    service_name: ClassVar[str] = _SERVICE.name

    port: int = Field(default=_SERVICE.port, ge=0, le=65535, description="gRPC port.")
    metrics_port: int = Field(
        default=_SERVICE.metrics_port, ge=0, le=65535, description="Prometheus port; 0 turns it off."
    )
    registry_dir: Path | None = Field(
        default=None,
        description="Directory of the model registry, one `<tenant>/<model_id>/<version>/` folder per "
        "registered package (immutable once there). Unset: <WAYLINE_DATA_DIR>/decision/registry. Replicas "
        "that share a registry must share this directory (a volume every replica mounts).",
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL URL for the action catalogue (shared by every decision replica); unset: "
        "SQLite (WAL) at <WAYLINE_DATA_DIR>/decision/decision.db, for one replica.",
    )
    max_package_bytes: int = Field(
        default=512 * 1024 * 1024,
        ge=1024,
        description="Largest model package UploadModelVersion accepts, all files together; a larger one is "
        "refused as it streams in (RESOURCE_EXHAUSTED, PACKAGE_TOO_LARGE), before it is written whole.",
    )
    max_parity_tolerance: float = Field(
        default=1e-3,
        gt=0,
        description="Loosest parity tolerance a package may declare for a graph: a package whose ONNX graph "
        "only matches its training library within a wider tolerance is refused (PACKAGE_INVALID).",
    )
    stale_upload_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="Age after which an upload's staging folder that no push is writing any more (a replica "
        "stopped mid-upload) is removed when the service starts. Keep it above the longest upload.",
    )

    journeys_address: str = Field(
        default=REGISTRY["journeys"].default_address,
        description="host:port of the journeys service, whose segment memberships and lifecycle stages "
        "Decide's eligibility reads; empty: none, so candidates with segment or lifecycle conditions are "
        "filtered (FILTER_REASON_FACT_UNAVAILABLE).",
    )
    identity_address: str = Field(
        default=REGISTRY["identity"].default_address,
        description="host:port of the identity service, which resolves Decide's identifiers and holds the "
        "identifiers reachability needs; empty: none (Decide by identifier is UNAVAILABLE).",
    )
    orchestrator_address: str = Field(
        default=REGISTRY["orchestrator"].default_address,
        description="host:port of the orchestrator, whose contact ledger (CheckContact) Decide asks for "
        "every contact candidate and required consent; empty: none, so those candidates are filtered.",
    )
    catalogue_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How long Decide reuses a tenant's action catalogue before reading it again: a change to "
        "the catalogue reaches decisions within this time. When the store cannot be read, the last copy "
        "keeps serving.",
    )
    holdout_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How long Decide reuses a tenant's holdout config before reading it again (a change "
        "made through another replica reaches this one within this time).",
    )
    decide_facts_budget_seconds: float = Field(
        default=0.05,
        gt=0,
        description="Longest Decide waits for eligibility's facts (segments, lifecycle, profile, contact "
        "policy), all fetched at once; within the caller's deadline. A fact not read in time filters the "
        "candidates that need it.",
    )
    decide_features_budget_seconds: float = Field(
        default=0.02,
        gt=0,
        description="Longest the feature reader may take for a person's features (the journeys fallback "
        "included) before defaults are used; within the caller's deadline.",
    )
    decide_resolve_budget_seconds: float = Field(
        default=0.05,
        gt=0,
        description="Longest Decide waits for identity to resolve an identifier (UNAVAILABLE after it).",
    )
    decide_reserve_seconds: float = Field(
        default=0.002,
        ge=0,
        description="Time kept back from the caller's deadline for scoring and answering: the outside reads "
        "get what is left of the deadline minus this.",
    )

    @field_validator("registry_dir", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def registry_path(self) -> Path:
        """The registry's directory: the setting, or its default under the data dir."""
        return self.registry_dir if self.registry_dir is not None else self.service_dir / "registry"
