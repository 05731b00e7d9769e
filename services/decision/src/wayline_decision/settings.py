"""Settings of the decision service (prefix WAYLINE_DECISION_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
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
