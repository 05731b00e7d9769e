"""Settings of the orchestrator service (prefix WAYLINE_ORCHESTRATOR_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from wayline.common.registry import REGISTRY
from wayline.common.settings import ServiceSettings

__all__ = ["OrchestratorSettings"]

_SERVICE = REGISTRY["orchestrator"]


class OrchestratorSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix=_SERVICE.env_prefix)
    service_name: ClassVar[str] = _SERVICE.name

    port: int = Field(default=_SERVICE.port, ge=0, le=65535, description="gRPC port.")
    metrics_port: int = Field(
        default=_SERVICE.metrics_port, ge=0, le=65535, description="Prometheus port; 0 turns it off."
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL URL for the contact policy, the contact ledger and the flows (shared by "
        "every orchestrator replica, so that frequency caps hold across them); unset: SQLite (WAL) at "
        "<WAYLINE_DATA_DIR>/orchestrator/orchestrator.db, for one replica.",
    )
    check_cache_entries: int = Field(
        default=20_000,
        ge=0,
        le=10_000_000,
        description="Persons whose CheckContact inputs (policy, consent, attributes, channel scores, "
        "contacts in the policy's longest window) each replica keeps in memory, the least recently "
        "checked dropped first (about 1.2 KB each with six contacts in the window: 25 MB at the "
        "default); 0 turns the cache off. Every replica's writes invalidate them (PostgreSQL: "
        "LISTEN/NOTIFY; SQLite: data_version), and a replica that is not listening reads the database "
        "(ADR 60).",
    )
    timer_poll_interval_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="How often the flows' timer loop looks for due timers (waits, timeouts, exits); it looks "
        "again at once while a batch comes back full.",
    )
    timer_batch_size: int = Field(
        default=100, ge=1, le=10_000, description="The most due timers one replica claims at a time."
    )
    timer_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long a claimed timer stays with the replica that claimed it; a replica that dies "
        "before firing it leaves it to be claimed again after this.",
    )
    outbox_poll_interval_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="How often the outbox dispatcher looks for flow messages to deliver through connectors; "
        "it looks again at once while a batch comes back full.",
    )
    outbox_batch_size: int = Field(
        default=50, ge=1, le=10_000, description="The most outbox messages one replica claims at a time."
    )
    outbox_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long a claimed outbox message stays with the replica that claimed it; one whose "
        "replica dies before recording the attempt is claimed again after this (at least once, same "
        "idempotency key). Keep it above the connectors' timeouts.",
    )
    segment_poll_seconds: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="How often the segment poller reads journeys' segment membership change feed for the "
        "segments that published flows enter on or exit on, and registers scheduled flows; an entry or exit "
        "by segment follows the person's change within this plus the segment's evaluation. It reads again at "
        "once while a page comes back full, and backs off (doubling, up to a minute) while journeys does not "
        "answer. Off when journeys_address is empty.",
    )
    segment_page_size: int = Field(
        default=1000,
        ge=1,
        le=10_000,
        description="The most membership changes, or segment members, read from journeys in one call (the "
        "segment poller, the entry of existing members and scheduled entries).",
    )
    journeys_address: str = Field(
        default=REGISTRY["journeys"].default_address,
        description="host:port of the journeys service: flows' person conditions (branches, entry "
        "audiences), `person.<trait>` personalisation, segment-triggered and scheduled entries, segment "
        "exits and SimulateFlow's history read it (empty: person conditions do not hold, segment triggers "
        "take no entries, SimulateFlow answers FAILED_PRECONDITION).",
    )
    journeys_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="The most a flow step waits for the journeys service (person conditions of a branch, an "
        "entry audience, `person.<trait>` personalisation), and the most one read of its segment feed or "
        "members waits (segment triggers, schedules: retried after a backoff); past it the step's "
        "transaction rolls back and is retried (ObserveEvents answers UNAVAILABLE, a timer fires again when "
        "its lease ends).",
    )
    decision_address: str = Field(
        default=REGISTRY["decision"].default_address,
        description="host:port of the decision service, asked by flows' decision branches and by action "
        "steps with a `decision_placement` (empty: decision conditions do not hold and actions send their "
        "fallback `action_id`).",
    )
    decision_timeout_seconds: float = Field(
        default=0.5,
        gt=0,
        le=30,
        description="How long a flow waits for DecisionService.Decide (a decision branch, an action step "
        "with a `decision_placement`) before it takes the fallback: the branch's condition does not hold, "
        "the action sends its `action_id`. Asked with no database transaction open.",
    )
    identity_address: str = Field(
        default=REGISTRY["identity"].default_address,
        description="host:port of the identity service, whose override feed (ListPersonOverrides) moves a "
        "merged person's flow entries, contacts and consent to the survivor and erases an erased person's "
        "(empty: merges and erasures are not followed).",
    )
    ingest_address: str = Field(
        default=REGISTRY["ingest"].default_address,
        description="host:port of the ingest service, through which every contact the ledger records and "
        "every suppression of a flow's send reach the person's timeline as `Contact Sent` and `Contact "
        "Suppressed` events (docs/contact-policy.md). Needs identity_address too (the events name the "
        "person by an identifier identity gives). Empty (or an empty identity_address): no timeline events; "
        "none are even kept to ship later.",
    )
    contact_events_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="How often the timeline's shipper looks for contact events to write through ingest; it "
        "looks again at once while a batch comes back full.",
    )
    contact_events_batch_size: int = Field(
        default=500,
        ge=1,
        le=500,
        description="The most contact events one replica claims and writes (one TrackBatch per tenant) at a "
        "time; ingest takes up to 1,000 per batch by default.",
    )
    contact_events_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long claimed contact events stay with the replica that claimed them; those of a "
        "replica that dies before ingest answers are shipped again after this (stored once: their event "
        "ids are stable). Keep it above the ingest and identity timeouts.",
    )
    ingest_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=60,
        description="The most the timeline's shipper waits for ingest's TrackBatch or identity's GetProfile; "
        "past it the events are shipped again after a backoff.",
    )
    override_poll_seconds: float = Field(
        default=1.0,
        ge=0,
        le=300,
        description="How often the orchestrator reads identity's override feed for every tenant it keeps "
        "state for, moving merged persons' flow entries, contacts, consent and dead letters to the survivor "
        "and deleting erased persons' (it waits longer after a failure, up to 30 s); 0 turns the follower "
        "off, as does an empty identity_address. Identity's erasures wait for it when identity lists "
        "`orchestrator` in WAYLINE_IDENTITY_ERASURE_FEED_CONSUMERS.",
    )
