"""Settings of the decision service (prefix WAYLINE_DECISION_)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr, field_validator
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

    journeys_address: str = Field(
        default=REGISTRY["journeys"].default_address,
        description="host:port of the journeys service: GetDecision, ExportDecisions and the canary judge's "
        "counts read the decision traces it stores.",
    )
    ingest_address: str = Field(
        default=REGISTRY["ingest"].default_address,
        description="host:port of the ingest service, through which decision traces (`Decision Logged`) and "
        "feedback (`Decision Feedback`) are written as events, durable once acknowledged.",
    )
    identity_address: str = Field(
        default=REGISTRY["identity"].default_address,
        description="host:port of the identity service, which gives a person's identifier for the events "
        "written on their behalf (ingest takes identifiers, never person ids).",
    )
    orchestrator_address: str = Field(
        default=REGISTRY["orchestrator"].default_address,
        description="host:port of the orchestrator, whose contact ledger records the impressions of contact "
        "actions reported by Feedback; empty: impressions are not recorded in a ledger.",
    )
    trace_buffer: int = Field(
        default=50_000,
        ge=1,
        description="Most decision traces waiting to be written to ingest. When ingest is down for longer "
        "than this covers, further traces are dropped, counted (decision.traces.dropped) and logged; the "
        "decisions themselves are unaffected.",
    )
    trace_batch_size: int = Field(
        default=500, ge=1, le=1000, description="Traces per TrackBatch call to ingest (ingest takes 1,000)."
    )
    trace_linger_seconds: float = Field(
        default=0.1,
        ge=0,
        description="How long the trace writer waits for a batch to fill before writing a smaller one.",
    )
    trace_max_backoff_seconds: float = Field(
        default=5.0,
        gt=0,
        description="Longest wait between two attempts to write traces while ingest is down.",
    )
    trace_max_event_bytes: int = Field(
        default=32 * 1024,
        ge=1024,
        description="Largest trace event to send (keep it at ingest's WAYLINE_INGEST_MAX_EVENT_BYTES): a "
        "larger trace is sent without its feature values.",
    )
    recent_traces_per_tenant: int = Field(
        default=20_000,
        ge=0,
        description="Most recent traces kept in memory per tenant, so GetDecision and Feedback find a "
        "decision before the journey store has it.",
    )
    recent_trace_seconds: float = Field(
        default=300.0,
        gt=0,
        description="How long a recent trace is kept in memory; longer than a trace takes to reach the "
        "journey store, including an ingest outage the service should ride out.",
    )

    @field_validator("registry_dir", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def registry_path(self) -> Path:
        """The registry's directory: the setting, or its default under the data dir."""
        return self.registry_dir if self.registry_dir is not None else self.service_dir / "registry"
