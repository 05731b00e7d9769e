"""Settings of the identity service (prefix WAYLINE_IDENTITY_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from wayline.common.settings import ServiceSettings

__all__ = ["IdentitySettings"]


class IdentitySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="WAYLINE_IDENTITY_")
    service_name: ClassVar[str] = "identity"

    port: int = Field(default=50062, ge=0, le=65535, description="gRPC port.")
    metrics_port: int = Field(default=9462, ge=0, le=65535, description="Prometheus port; 0 turns it off.")
