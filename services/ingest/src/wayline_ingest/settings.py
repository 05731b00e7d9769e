"""Settings of the ingest service (prefix WAYLINE_INGEST_)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, ClassVar, Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from wayline.client.batching import MAX_BATCH_BYTES, MAX_BATCH_EVENTS, MAX_EVENT_BYTES
from wayline.common.registry import REGISTRY
from wayline.common.settings import ServiceSettings

__all__ = ["IngestSettings", "SinkName"]

_SERVICE = REGISTRY["ingest"]

# The sinks ingest can deliver to; identity resolution runs in front of each (identity_address).
SinkName = Literal["journeys", "decision", "orchestrator"]

# The largest write a sink may be given: under the services' gRPC message limit (16 MiB by default), with
# room for the request's own fields.
_LARGEST_WRITE = 12 * 1024 * 1024


class IngestSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix=_SERVICE.env_prefix)
    service_name: ClassVar[str] = _SERVICE.name

    port: int = Field(default=_SERVICE.port, ge=0, le=65535, description="gRPC port.")
    metrics_port: int = Field(
        default=_SERVICE.metrics_port, ge=0, le=65535, description="Prometheus port; 0 turns it off."
    )

    # Limits at the door (Segment's, by default; the client library and the services' writers cut batches to
    # the same constants).
    max_batch_events: int = Field(
        default=MAX_BATCH_EVENTS, ge=1, description="Most events one TrackBatch may carry."
    )
    max_batch_bytes: int = Field(
        default=MAX_BATCH_BYTES,
        ge=1024,
        description="Largest serialised TrackBatch (or StreamEvents batch); bigger ones are refused whole.",
    )
    max_event_bytes: int = Field(
        default=MAX_EVENT_BYTES, ge=256, description="Largest serialised event; bigger ones are rejected."
    )
    max_future_skew_seconds: float = Field(
        default=3600.0, ge=0, description="How far past the receive time an event's timestamp may lie."
    )
    min_timestamp: datetime = Field(
        default=datetime(2000, 1, 1, tzinfo=UTC),
        description="Earliest timestamp a live event may carry (ISO 8601).",
    )
    backfill_min_timestamp: datetime = Field(
        default=datetime(1900, 1, 1, tzinfo=UTC),
        description="Earliest timestamp an event of a backfill batch (an import of history) may carry.",
    )

    # The spool: durable before ack.
    spool_segment_bytes: int = Field(
        default=64 * 1024 * 1024, ge=4096, description="Size at which the spool starts a new segment file."
    )
    spool_max_bytes: int = Field(
        default=10 * 1024**3,
        ge=4096,
        description="Disk quota of the spool; past it, writes get RESOURCE_EXHAUSTED (SPOOL_FULL) until "
        "the sinks catch up.",
    )
    dedup_window_events: int = Field(
        default=250_000,
        ge=0,
        description="How many recently accepted event ids ingest remembers (about 220 bytes each) to "
        "acknowledge retries without spooling them again; 0 turns the window off.",
    )
    stream_window_batches: int = Field(
        default=8, ge=1, description="StreamEvents flow control: batches a client may have unacknowledged."
    )

    # Sinks: where the forwarder delivers every spooled event.
    sinks: list[SinkName] = Field(
        default=["journeys"],
        description="Downstream sinks, as a JSON list of journeys, decision, orchestrator; each gets events "
        "with their person resolved by identity (see identity_address).",
    )
    identity_address: str = Field(
        default=REGISTRY["identity"].default_address,
        description="host:port of the identity service: the forwarder resolves every event's identifiers "
        "to a person (ResolveIdentities) before a sink gets it, and hands journeys the resulting person "
        "overrides; empty: events reach the sinks without a person id.",
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
    max_write_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        le=_LARGEST_WRITE,
        description="Largest delivery call to a sink; bigger runs of events go in several (each idempotent, "
        "each of at most 10,000 events, the contracts' limit).",
    )
    catch_up_write_bytes_by_sink: dict[str, Annotated[int, Field(ge=1024, le=_LARGEST_WRITE)]] = Field(
        default_factory=lambda: {"journeys": 4 * 1024 * 1024},
        description="Per-sink larger writes for a sink behind by at least that much, as JSON (sink name → "
        "bytes, at most 12 MiB: under the services' 16 MiB message limit). The journey store catches up in "
        "4 MiB writes: chDB writes a part per partition and materialized view for every INSERT and merges "
        "them again later, so after a burst fewer, larger INSERTs drain it faster on less CPU. While a sink "
        "keeps up its writes stay at WAYLINE_INGEST_MAX_WRITE_BYTES, so that no one INSERT holds the "
        "machine up long.",
    )
    sink_linger_seconds: float = Field(
        default=0.05,
        ge=0,
        description="The least time between two of a sink's writes smaller than a full write "
        "(WAYLINE_INGEST_MAX_WRITE_BYTES): an event after a quiet spell goes at once, a trickle goes in one "
        "write per linger, a backlog of a full write at once. Fewer, larger writes to the sinks, at the cost "
        "of delivery latency. Per sink: WAYLINE_INGEST_SINK_LINGER_BY_SINK.",
    )
    sink_linger_by_sink: dict[str, float] = Field(
        default_factory=lambda: {"journeys": 1.0},
        description="Per-sink lingers overriding WAYLINE_INGEST_SINK_LINGER_SECONDS, as JSON (sink name → "
        "seconds). The journey store defaults to 1 s, ClickHouse's own guidance (at most one INSERT a second "
        "per table): each INSERT costs chDB 30-70 ms of CPU whether it holds one event or a few hundred (a "
        "part per table and materialized view, and their merges), so a trickle of small writes would keep it "
        "busy. A trickle reaches the journey store up to this much later.",
    )
    burst_events_per_second: float = Field(
        default=20_000,
        ge=0,
        description="An intake over this many events a second is a burst: the sinks hold back (up to "
        "WAYLINE_INGEST_BURST_HOLD_SECONDS behind) so that the acknowledgements keep the cores, and catch up "
        "after it in fewer, larger writes. Keep it above the rate the sinks keep up with, so that a steady "
        "load is never held (on 2 cores with every sink on them they drain about 12-14k events a second); 0 "
        "never holds back.",
    )
    burst_hold_seconds: float = Field(
        default=2.0,
        ge=0,
        description="How far behind a sink may fall while it holds back in a burst: it delivers once its "
        "oldest undelivered event is this old, so under an intake that stays high it runs this much behind.",
    )
    sink_retry_initial_seconds: float = Field(
        default=0.1, gt=0, description="First retry delay of a failing sink (doubles, with full jitter)."
    )
    sink_retry_max_seconds: float = Field(default=30.0, gt=0, description="Longest retry delay of a sink.")
    sink_breaker_failures: int = Field(
        default=5, ge=1, description="Consecutive failures that open a sink's circuit breaker."
    )
    nats_url: str | None = Field(
        default=None,
        description="NATS server (nats://host:4222). Set: the spool publishes to JetStream and durable "
        "consumers deliver to the sinks; unset: the spool delivers to the sinks itself.",
    )
    nats_stream: str = Field(default="WAYLINE_EVENTS", description="The JetStream stream of accepted events.")

    # State beside the spool.
    database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL URL for tracking plans and dead letters (shared by every replica); unset: "
        "SQLite in the data dir.",
    )
    dead_letter_retention_days: int = Field(default=14, ge=1, description="How long dead letters are kept.")

    # Enrichment.
    user_agent_parsing: bool = Field(
        default=True, description="Fill context.browser, os and device from context.user_agent."
    )
    sentiment: Literal["off", "lexicon"] = Field(
        default="lexicon",
        description="Sentiment of `text`: lexicon (VADER in English, its French port in French) or off.",
    )

    # Fault injection, for the crash tests only.
    test_crash_before_fsync: int = Field(
        default=0,
        ge=0,
        description="Testing only: after this many spool writes, kill the process between write and "
        "fsync. 0 (always, in production) turns it off.",
    )
