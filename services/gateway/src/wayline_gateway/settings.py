"""Settings of the gateway (prefix WAYLINE_GATEWAY_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from wayline.common.settings import ServiceSettings

__all__ = ["GatewaySettings"]


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="WAYLINE_GATEWAY_")
    service_name: ClassVar[str] = "gateway"

    port: int = Field(default=50051, ge=0, le=65535, description="Public gRPC port.")
    metrics_port: int = Field(default=9460, ge=0, le=65535, description="Prometheus port; 0 turns it off.")
    ingest_address: str = Field(default="127.0.0.1:50061", description="host:port of the ingest service.")
    identity_address: str = Field(default="127.0.0.1:50062", description="host:port of the identity service.")
    journeys_address: str = Field(default="127.0.0.1:50063", description="host:port of the journeys service.")
    decision_address: str = Field(default="127.0.0.1:50064", description="host:port of the decision service.")
    orchestrator_address: str = Field(
        default="127.0.0.1:50065", description="host:port of the orchestrator service."
    )
    api_key: SecretStr | None = Field(
        default=None,
        description=(
            "Bootstrap API key with read, write and admin scopes for WAYLINE_GATEWAY_TENANT. Unset: no key "
            "is accepted until keys are managed through AdminService."
        ),
    )
    tenant: str = Field(default="default", min_length=1, description="Tenant of the bootstrap API key.")
    default_deadline_seconds: float = Field(
        default=10.0, gt=0, description="Deadline given to calls that arrive without one."
    )
    max_deadline_seconds: float = Field(
        default=60.0, gt=0, description="Longest deadline a caller may ask for; longer ones are cut to it."
    )
    http_port: int = Field(
        default=8080,
        ge=0,
        le=65535,
        description=(
            "Port of the Segment-compatible HTTP collector (/v1/track, /v1/batch, ..., /healthz, "
            "/metrics) on the gRPC host; 0 turns it off."
        ),
    )
    http_max_message_bytes: int = Field(
        default=32 * 1024,
        gt=0,
        description="Largest body of one collector call (/v1/track, ...), decompressed (Segment: 32 KB).",
    )
    http_max_batch_bytes: int = Field(
        default=500 * 1024,
        gt=0,
        description="Largest /v1/batch body, decompressed; Segment's 500 KB.",
    )
    http_ingest_batch_events: int = Field(
        default=500,
        ge=1,
        le=1000,
        description=(
            "Events per TrackBatch call from the HTTP collector to ingest; larger batches are split (keep it "
            "within ingest's WAYLINE_INGEST_MAX_BATCH_EVENTS)."
        ),
    )
