"""Settings of the ingest service (prefix WAYLINE_INGEST_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from wayline.common.settings import ServiceSettings

__all__ = ["IngestSettings"]


class IngestSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="WAYLINE_INGEST_")
    service_name: ClassVar[str] = "ingest"

    port: int = Field(default=50061, ge=0, le=65535, description="gRPC port.")
    metrics_port: int = Field(default=9461, ge=0, le=65535, description="Prometheus port; 0 turns it off.")
    journeys_address: str = Field(default="127.0.0.1:50063", description="host:port of the journeys service.")
    max_batch_events: int = Field(default=1000, ge=1, description="Most events one TrackBatch may carry.")
    max_write_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        description="Largest WriteEvents call to journeys; bigger batches go in several (each idempotent).",
    )
    max_properties_bytes: int = Field(
        default=32 * 1024, ge=1, description="Largest serialised `properties` of one event."
    )
    max_text_bytes: int = Field(default=64 * 1024, ge=1, description="Largest `text` of one event (UTF-8).")
    max_future_skew_seconds: float = Field(
        default=3600.0, ge=0, description="How far past the receive time an event's timestamp may lie."
    )
