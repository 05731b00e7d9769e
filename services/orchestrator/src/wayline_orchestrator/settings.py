"""Settings of the orchestrator service (prefix WAYLINE_ORCHESTRATOR_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from wayline.common.settings import ServiceSettings

__all__ = ["OrchestratorSettings"]


class OrchestratorSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="WAYLINE_ORCHESTRATOR_")
    service_name: ClassVar[str] = "orchestrator"

    port: int = Field(default=50065, ge=0, le=65535, description="gRPC port.")
    metrics_port: int = Field(default=9465, ge=0, le=65535, description="Prometheus port; 0 turns it off.")
