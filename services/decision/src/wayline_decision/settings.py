"""Settings of the decision service (prefix WAYLINE_DECISION_)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
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

    feature_state: Literal["in_process", "redis"] = Field(
        default="in_process",
        description="Where the online feature state lives: `in_process`, this replica's memory (the embedded "
        "default, for one replica: each replica would only see the events it consumed), or `redis`, shared "
        "by every replica through WAYLINE_DECISION_REDIS_URL (several replicas).",
    )
    redis_url: SecretStr | None = Field(
        default=None,
        description="Redis URL of the shared online feature state (`redis://[:password@]host:6379/0`, "
        "`rediss://` for TLS), required when WAYLINE_DECISION_FEATURE_STATE is `redis`. One Redis server "
        "(or a Cluster: each tenant's keys share one hash slot) for every replica; its `maxmemory-policy` "
        "must be `noeviction`, since an evicted person loses features silently.",
    )

    @model_validator(mode="after")
    def _redis_has_a_url(self) -> Self:
        if self.feature_state == "redis" and (
            self.redis_url is None or not self.redis_url.get_secret_value()
        ):
            raise ValueError("WAYLINE_DECISION_FEATURE_STATE=redis needs WAYLINE_DECISION_REDIS_URL")
        return self

    @field_validator("registry_dir", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def registry_path(self) -> Path:
        """The registry's directory: the setting, or its default under the data dir."""
        return self.registry_dir if self.registry_dir is not None else self.service_dir / "registry"
