"""Settings of the gateway (prefix WAYLINE_GATEWAY_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from wayline.common.registry import REGISTRY
from wayline.common.settings import ServiceSettings

__all__ = ["GatewaySettings"]

_SERVICE = REGISTRY["gateway"]


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix=_SERVICE.env_prefix)
    service_name: ClassVar[str] = _SERVICE.name

    port: int = Field(default=_SERVICE.port, ge=0, le=65535, description="Public gRPC port.")
    metrics_port: int = Field(
        default=_SERVICE.metrics_port, ge=0, le=65535, description="Prometheus port; 0 turns it off."
    )
    ingest_address: str = Field(
        default=REGISTRY["ingest"].default_address, description="host:port of the ingest service."
    )
    identity_address: str = Field(
        default=REGISTRY["identity"].default_address, description="host:port of the identity service."
    )
    journeys_address: str = Field(
        default=REGISTRY["journeys"].default_address, description="host:port of the journeys service."
    )
    decision_address: str = Field(
        default=REGISTRY["decision"].default_address, description="host:port of the decision service."
    )
    orchestrator_address: str = Field(
        default=REGISTRY["orchestrator"].default_address, description="host:port of the orchestrator service."
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
