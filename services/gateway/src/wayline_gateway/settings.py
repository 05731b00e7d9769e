"""Settings of the gateway (prefix WAYLINE_GATEWAY_)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from wayline.common.registry import REGISTRY
from wayline.common.settings import ServiceSettings
from wayline_gateway.model import Limits

__all__ = ["GatewaySettings"]

_SERVICE = REGISTRY["gateway"]


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix=_SERVICE.env_prefix)
    service_name: ClassVar[str] = _SERVICE.name

    port: int = Field(default=_SERVICE.port, ge=0, le=65535, description="Public gRPC port.")
    data_plane: Literal["python", "nginx"] = Field(
        default="python",
        description="What serves the public gRPC port: `python`, this process; `nginx`, nginx with its Lua "
        "module (Debian: `apt-get install nginx libnginx-mod-http-lua`) started by this process, which "
        "passes the public calls straight to the services and sends this process, its control plane, what "
        "it cannot answer itself (AdminService, streams but StreamEvents, refusals; ADR 105, ADR 106).",
    )
    control_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="With the nginx data plane: the loopback port of this process's own gRPC server, which "
        "only nginx calls (the public port is nginx's); 0: the public port + 100.",
    )
    data_plane_workers: int = Field(
        default=1, ge=1, le=64, description="With the nginx data plane: nginx's worker processes."
    )
    nginx_binary: str = Field(default="nginx", description="The nginx executable of the nginx data plane.")
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
            "Bootstrap API key with read, write and admin scopes for the operator tenant "
            "(WAYLINE_GATEWAY_TENANT). It is held in memory only (change the variable to rotate it); use it "
            "to create tenants and their keys through AdminService or `wayline keys`. Unset: only stored "
            "keys work."
        ),
    )
    tenant: str = Field(
        default="default",
        min_length=1,
        description="The operator tenant: the bootstrap key's tenant, whose admin keys manage every tenant. "
        "Created at start when missing.",
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL URL for tenants, API keys and quotas (shared by every gateway replica); "
        "unset: SQLite (WAL) in the data dir.",
    )
    key_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How long a key lookup and the quota limits are cached: a key revoked, a tenant "
        "suspended or a limit changed through another replica takes effect here within this time (at once "
        "on the replica that made the change).",
    )
    quota_requests_per_second: float = Field(
        default=5000.0, gt=0, description="Default calls per second of a tenant without a limit of its own."
    )
    quota_requests_burst: int = Field(
        default=10000, gt=0, description="Default burst of calls above that rate (token bucket size)."
    )
    quota_events_per_second: float = Field(
        default=200_000.0,
        gt=0,
        description="Default events per second of a tenant (Track, TrackBatch and StreamEvents count each "
        "event).",
    )
    quota_events_burst: int = Field(
        default=400_000, gt=0, description="Default burst of events above that rate."
    )
    quota_max_concurrent_requests: int = Field(
        default=24,
        gt=0,
        description="Default number of calls (open streams included) one tenant may have in progress. Keep "
        "it below WAYLINE_GATEWAY_MAX_WORKERS so that one tenant cannot hold every serving thread.",
    )
    stream_quota_wait_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How long a stream's message may wait for its events' quota before the stream is refused "
        "with RESOURCE_EXHAUSTED: a stream is paced to its quota rather than cut (by ingest, to this wait, "
        "for the StreamEvents calls the nginx data plane passes it).",
    )
    answer_cache_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=0,
        description="Memory for recent answers of read-only RPCs over HTTP, for callers that accept an "
        "answer of a given age (`Cache-Control: max-stale=N`; the console does). 0 turns the cache off.",
    )
    answer_refresh_seconds: float = Field(
        default=60.0,
        gt=0,
        description="A kept answer older than this is computed again in the background when a caller is "
        "served it, so the next caller gets a younger one (stale-while-revalidate).",
    )
    answer_erasure_poll_seconds: float = Field(
        default=2.0,
        gt=0,
        description="How often the gateway reads identity's override feed for the tenants it keeps answers "
        "of, to drop them after an erasure made through another replica; a tenant whose feed cannot be read "
        "for ten times this loses its kept answers (ADR 73).",
    )
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

    @model_validator(mode="after")
    def _control_port_apart(self) -> GatewaySettings:
        if self.data_plane != "nginx":
            return self
        if self.port == 0:
            raise ValueError(
                "WAYLINE_GATEWAY_PORT must name a port with the nginx data plane: nginx takes it, and the "
                "gateway renders nginx's configuration before it starts"
            )
        if self.serving_control_port == self.port or self.serving_control_port > 65535:
            raise ValueError(
                "WAYLINE_GATEWAY_CONTROL_PORT must differ from WAYLINE_GATEWAY_PORT: with the nginx data "
                "plane nginx takes the public port and this process's own gRPC server the control port"
            )
        return self

    @property
    def serving_control_port(self) -> int:
        """The control port in force: the setting, or the public port + 100."""
        return self.control_port or self.port + 100

    def grpc_server_settings(self) -> GatewaySettings:
        """What this process's own gRPC server runs with: these settings, or, with the nginx data plane, the
        loopback control port without TLS (nginx holds the public port and its certificate)."""
        if self.data_plane != "nginx":
            return self
        return self.model_copy(
            update={
                "host": "127.0.0.1",
                "port": self.serving_control_port,
                "tls_cert_file": None,
                "tls_key_file": None,
                "tls_client_ca_file": None,
            }
        )

    def default_limits(self) -> Limits:
        return Limits(
            requests_per_second=self.quota_requests_per_second,
            requests_burst=self.quota_requests_burst,
            events_per_second=self.quota_events_per_second,
            events_burst=self.quota_events_burst,
            max_concurrent_requests=self.quota_max_concurrent_requests,
        )
