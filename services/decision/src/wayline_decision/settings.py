"""Settings of the decision service (prefix WAYLINE_DECISION_)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from wayline.common.registry import REGISTRY
from wayline.common.settings import ServiceSettings
from wayline_decision.serving.loaded import MicroBatching

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
        description="PostgreSQL URL for the action catalogue and the models' traffic (shared by every "
        "decision replica, which is how a deployment made on one reaches all); unset: SQLite (WAL) at "
        "<WAYLINE_DATA_DIR>/decision/decision.db, for one replica.",
    )
    traffic_poll_seconds: float = Field(
        default=2.0,
        gt=0,
        le=300,
        description="How often a replica reads the models' traffic generations and loads and swaps in what "
        "another replica deployed: the most a deployment takes to reach every replica (plus the load).",
    )
    canary_judge_seconds: float = Field(
        default=60.0,
        ge=0,
        description="How often the canary judge compares each judged canary's conversions with its stable "
        "version's (a canary deployed with an enabled CanaryJudgement) and promotes or rolls it back when "
        "the evidence is decisive; every replica judges, one applies each verdict. 0 turns the judge off.",
    )
    load_retry_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How long a replica waits before it tries again to load a deployed version that failed "
        "to load here (the poll retries it; an explicit DeployModel/SetModelTraffic/RollbackModel always "
        "tries at once).",
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

    micro_batch: bool = Field(
        default=False,
        description="Coalesce concurrent scoring calls of one model version into one ONNX Runtime run "
        "(micro-batching). Off by default: on 2 cores it traded throughput at 16 callers for a lower p99 at "
        "16 and 64 (docs/benchmarks.md, decision-scoring); measure on your hardware before turning it on.",
    )
    micro_batch_window_us: int = Field(
        default=0,
        ge=0,
        le=100_000,
        description="With micro-batching, how long the call that opens a batch waits for others to join, in "
        "microseconds; a lone call pays it whole. 0: no waiting, batches form only from calls that arrive "
        "while the previous batch runs.",
    )
    micro_batch_max_rows: int = Field(
        default=256,
        ge=1,
        description="With micro-batching, a batch with this many candidate rows runs at once instead of "
        "waiting out the window.",
    )

    journeys_address: str = Field(
        default=REGISTRY["journeys"].default_address,
        description="host:port of the journeys service: GetProfileFeatures answers the feature reads the "
        "online state cannot answer exactly (and tells which persons it can); Decide's eligibility reads "
        "segment memberships and lifecycle stages from it (empty: none, so candidates with such conditions "
        "are filtered, FILTER_REASON_FACT_UNAVAILABLE); GetDecision, ExportDecisions and the canary judge's "
        "counts read the decision traces it stores.",
    )
    identity_address: str = Field(
        default=REGISTRY["identity"].default_address,
        description="host:port of the identity service, whose override feed (ListPersonOverrides) moves a "
        "merged person's online features to the survivor and makes the service forget an erased person "
        "(empty: merges and erasures are not followed), and which gives a "
        "person's identifier for the trace events written on their behalf; it also resolves Decide's "
        "identifiers and holds the identifiers reachability needs.",
    )
    features_fallback_budget_ms: float = Field(
        default=20.0,
        gt=0,
        description="How long a feature read may wait for journeys when the online state cannot answer "
        "exactly; past it the spec's defaults are used (the decision says which).",
    )
    features_settle_after_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="How far behind the latest receipt the online state settles events (folds or forgets "
        "them); reads before that horizon go to journeys. Must exceed the delivery lag of ingest's slowest "
        "sink: an event received before its person's horizon is refused as late.",
    )
    features_dir: Path | None = Field(
        default=None,
        description="Directory of the online state's snapshot and change log (one replica's own). Unset: "
        "<WAYLINE_DATA_DIR>/decision/features.",
    )
    features_snapshot_seconds: float = Field(
        default=300.0,
        gt=0,
        description="Seconds between two snapshots of the online state (one is also written at stop); the "
        "change log since the last one is replayed at start.",
    )
    features_fsync: bool = Field(
        default=True,
        description="fsync the online state's change log before ObserveEvents answers (nothing acknowledged "
        "is lost even to a power cut); off: a crash of the process still loses nothing, a power cut may.",
    )
    features_advance_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Seconds between two moves of the online state's settle horizon with the clock (windowed "
        "events leave, persons with nothing left are dropped).",
    )
    override_poll_seconds: float = Field(
        default=1.0,
        ge=0,
        description="Seconds between two reads of identity's override feed (doubled after each failed read, "
        "up to ten times); until a merge is read, the survivor's online features lack the merged person's "
        "history, and until an erasure is read, a trace or feedback of the erased person may still be "
        "written with their identifier. 0 turns following off. Identity's erasures wait for it when identity "
        "lists `decision` in WAYLINE_IDENTITY_ERASURE_FEED_CONSUMERS: it follows every tenant it was sent "
        "events of, asked to decide for or given feedback for, across restarts.",
    )

    feature_state: Literal["in_process", "redis"] = Field(
        default="in_process",
        description="Where the online feature state lives: `in_process`, this replica's memory (the embedded "
        "default, for one replica: each replica would only see the events it consumed), or `redis`, shared "
        "by every replica through WAYLINE_DECISION_REDIS_URL (several replicas).",
    )
    redis_url: SecretStr | None = Field(
        default=None,
        description="Redis URL of the shared online feature state (`redis://[:password@]host:6379/0`, "
        "`rediss://` for TLS), required when WAYLINE_DECISION_FEATURE_STATE is `redis`. One Redis server "
        "(or a Cluster: each tenant's keys share one hash slot) for every replica; its `maxmemory-policy` "
        "must be `noeviction`, since an evicted person loses features silently.",
    )

    ingest_address: str = Field(
        default=REGISTRY["ingest"].default_address,
        description="host:port of the ingest service, through which decision traces (`Decision Logged`) and "
        "feedback (`Decision Feedback`) are written as events, durable once acknowledged.",
    )
    orchestrator_address: str = Field(
        default=REGISTRY["orchestrator"].default_address,
        description="host:port of the orchestrator, whose contact ledger Decide asks (CheckContact) for "
        "every contact candidate and required consent, and records the impressions of contact actions "
        "reported by Feedback; empty: none, so contact candidates are filtered and impressions are not "
        "recorded.",
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
    trace_max_batch_bytes: int = Field(
        default=500 * 1024,
        ge=1024,
        description="Largest batch of trace events to send at once (keep it at or below ingest's "
        "WAYLINE_INGEST_MAX_BATCH_BYTES, which refuses a larger batch whole).",
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
    person_identifier_cache_seconds: float = Field(
        default=60.0,
        ge=0,
        description="How long the identifier a person's trace and feedback events are written with (their "
        "first identifier, asked of identity) is reused before identity is asked again. Identity's override "
        "feed makes it forgotten at once on a merge, an unmerge, a split or an erasure; this bounds how long "
        "a stale one can be used when the feed is not followed (WAYLINE_DECISION_OVERRIDE_POLL_SECONDS 0, or "
        "identity's feed unreadable). Longer: fewer lookups, which the trace writer makes one at a time.",
    )

    catalogue_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How long Decide reuses a tenant's action catalogue before reading it again: a change to "
        "the catalogue reaches decisions within this time. When the store cannot be read, the last copy "
        "keeps serving.",
    )
    holdout_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How long Decide reuses a tenant's holdout config before reading it again (a change "
        "made through another replica reaches this one within this time).",
    )
    decide_facts_budget_seconds: float = Field(
        default=0.05,
        gt=0,
        description="Longest Decide waits for eligibility's facts (segments, lifecycle, profile, contact "
        "policy), all fetched at once; within the caller's deadline. A fact not read in time filters the "
        "candidates that need it.",
    )
    decide_features_budget_seconds: float = Field(
        default=0.02,
        gt=0,
        description="Longest the feature reader may take for a person's features (the journeys fallback "
        "included) before defaults are used; within the caller's deadline.",
    )
    decide_resolve_budget_seconds: float = Field(
        default=0.05,
        gt=0,
        description="Longest Decide waits for identity to resolve an identifier (UNAVAILABLE after it).",
    )
    decide_reserve_seconds: float = Field(
        default=0.002,
        ge=0,
        description="Time kept back from the caller's deadline for scoring and answering: the outside reads "
        "get what is left of the deadline minus this.",
    )

    @model_validator(mode="after")
    def _redis_has_a_url(self) -> Self:
        if self.feature_state == "redis" and (
            self.redis_url is None or not self.redis_url.get_secret_value()
        ):
            raise ValueError("WAYLINE_DECISION_FEATURE_STATE=redis needs WAYLINE_DECISION_REDIS_URL")
        return self

    @field_validator("registry_dir", "features_dir", mode="before")
    @classmethod
    def _empty_directory_is_unset(cls, value: object) -> object:
        # Not the kit's `_empty_is_unset` (TLS files) by name: the same name would replace that validator.
        return None if value == "" else value

    @property
    def micro_batching(self) -> MicroBatching | None:
        """What load_version needs to batch (None when micro-batching is off)."""
        if not self.micro_batch:
            return None
        return MicroBatching(window_s=self.micro_batch_window_us / 1e6, max_rows=self.micro_batch_max_rows)

    @property
    def features_path(self) -> Path:
        """The online state's directory: the setting, or its default under the data dir."""
        return self.features_dir if self.features_dir is not None else self.service_dir / "features"

    @property
    def registry_path(self) -> Path:
        """The registry's directory: the setting, or its default under the data dir."""
        return self.registry_dir if self.registry_dir is not None else self.service_dir / "registry"
