"""Settings of the decision service (prefix WAYLINE_DECISION_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from wayline.common.settings import ServiceSettings

__all__ = ["DecisionSettings"]


class DecisionSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="WAYLINE_DECISION_")
    service_name: ClassVar[str] = "decision"

    port: int = Field(default=50064, ge=0, le=65535, description="gRPC port.")
    metrics_port: int = Field(default=9464, ge=0, le=65535, description="Prometheus port; 0 turns it off.")
