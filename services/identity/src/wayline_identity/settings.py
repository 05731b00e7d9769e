"""Settings of the identity service (prefix WAYLINE_IDENTITY_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from wayline.common.registry import REGISTRY
from wayline.common.settings import ServiceSettings

__all__ = ["IdentitySettings"]

_SERVICE = REGISTRY["identity"]


class IdentitySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix=_SERVICE.env_prefix)
    service_name: ClassVar[str] = _SERVICE.name

    port: int = Field(default=_SERVICE.port, ge=0, le=65535, description="gRPC port.")
    metrics_port: int = Field(
        default=_SERVICE.metrics_port, ge=0, le=65535, description="Prometheus port; 0 turns it off."
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL URL for profiles, identifiers, the edge log and the override feed (shared by "
        "every replica); unset: SQLite (WAL) in the data dir.",
    )
    journeys_address: str = Field(
        default=REGISTRY["journeys"].default_address,
        description="host:port of the journeys service, whose events an erasure deletes; empty: no journeys.",
    )
    ingest_address: str = Field(
        default=REGISTRY["ingest"].default_address,
        description="host:port of the ingest service, whose dead letters an erasure deletes; empty: none.",
    )
    erasure_feed_consumers: list[str] = Field(
        default_factory=list,
        description="Stores that erase by following the override feed (for example decision, orchestrator), "
        "as a JSON list: an erasure completes once each has acknowledged the feed past its markers. Each "
        "follows a tenant from the first of its events ingest forwards to it, so list only stores that "
        "WAYLINE_INGEST_SINKS names: an erasure in a tenant a store never heard of waits for it. "
        "`wayline up` and the Kubernetes manifests list decision and orchestrator.",
    )
    seen_granularity_seconds: float = Field(
        default=3600.0,
        ge=0,
        description="Precision of profiles' and identifiers' last seen times: a later event updates them "
        "only once it is this much newer, so the events of a visit after its first write nothing (0: every "
        "event). An earlier event always widens first seen. Exact times are on the events in journeys.",
    )
    cache_identifiers: int = Field(
        default=500_000,
        ge=0,
        description="How many identifiers' owners the SQLite store keeps in memory between calls (about 350 "
        "bytes each); 0 turns the cache off. PostgreSQL, shared by replicas, is read every time.",
    )
    erasure_retry_seconds: float = Field(
        default=5.0, gt=0, description="How often pending erasures are retried in the other stores."
    )
