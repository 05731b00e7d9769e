"""Settings of the journeys service (prefix WAYLINE_JOURNEYS_)."""

from __future__ import annotations

import socket
from typing import ClassVar

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from wayline.common.registry import REGISTRY
from wayline.common.settings import ServiceSettings

__all__ = ["JourneysSettings"]

_SERVICE = REGISTRY["journeys"]


class JourneysSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix=_SERVICE.env_prefix)
    service_name: ClassVar[str] = _SERVICE.name

    port: int = Field(default=_SERVICE.port, ge=0, le=65535, description="gRPC port.")
    metrics_port: int = Field(
        default=_SERVICE.metrics_port, ge=0, le=65535, description="Prometheus port; 0 turns it off."
    )
    clickhouse_url: str = Field(
        default="",
        validation_alias=AliasChoices("WAYLINE_JOURNEYS_CLICKHOUSE_URL", "WAYLINE_CLICKHOUSE_URL"),
        description=(
            "ClickHouse server as http(s)://user:password@host:8123/database. Empty: the embedded chDB "
            "engine under <WAYLINE_DATA_DIR>/journeys/chdb, through the same client and SQL."
        ),
    )
    clickhouse_database: str = Field(
        default="wayline", description="Database that holds the journey tables (created if missing)."
    )
    clickhouse_cluster: str = Field(
        default="",
        description=(
            "ClickHouse cluster name (as in the server's remote_servers). Set: the schema is created ON "
            "CLUSTER, events and the anchor lookups as Replicated*MergeTree `<table>_local` tables sharded "
            "by anchor behind Distributed tables, and small tables replicated whole to every node. Empty: "
            "plain MergeTree tables (the embedded engine, or one server)."
        ),
    )
    embedded_uncompressed_cache_bytes: int = Field(
        default=512 * 1024 * 1024,
        ge=0,
        description="Bytes of decompressed column blocks the embedded engine keeps (ClickHouse's "
        "uncompressed cache) for the short reads of a few persons' events that ask for it (a timeline page, "
        "a person's conditions or traits): a block read again is not decompressed again. Counted in the "
        "process's memory; 0 turns it off. A ClickHouse server has its own uncompressed_cache_size.",
    )
    timeline_max_page_size: int = Field(
        default=1000, ge=1, description="Largest page GetTimeline returns, whatever the caller asks for."
    )
    identity_address: str = Field(
        default=REGISTRY["identity"].default_address,
        description="host:port of the identity service, whose override feed (ListPersonOverrides) journeys "
        "follows so that merges, unmerges and splits made by administrators, and erasures, reach stored "
        "events; empty: the follower is off.",
    )
    override_poll_seconds: float = Field(
        default=1.0,
        ge=0,
        description="Seconds between two reads of identity's override feed (doubled after each failed read, "
        "up to ten times this and at most 30 s); 0 turns the follower off.",
    )
    erasure_purge_seconds: float = Field(
        default=60.0,
        ge=0,
        description="Seconds between two purges of erased rows from disk: an erasure masks the person's "
        "rows (unreadable at once), and one APPLY DELETED MASK per table rewrites the parts holding them for "
        "all the erasures of the interval; 0 purges after each erasure (a rewrite of the event parts each).",
    )
    erasure_sweep_seconds: float = Field(
        default=5.0,
        ge=0,
        description="Seconds between two sweeps for events of recently erased persons stored after their "
        "erasure (an event ingest resolved to the person just before identity erased them); each such event "
        "received before the erasure is erased. 0 turns the sweep off.",
    )
    erasure_sweep_window_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="How long after an erasure the sweep looks for the person's late events. Ingest's "
        "resolver reuses a resolution while its cache holds it (a second or two of a busy spool, longer on a "
        "quiet one) and for a delivery retried meanwhile; raise this where the journeys sink can lag behind "
        "ingest's other sinks for longer.",
    )
    export_max_events: int = Field(
        default=5_000_000,
        ge=1,
        description="Most events one ExportEvents call may stream (after sampling and the name filter); a "
        "larger export is refused up front (RESOURCE_EXHAUSTED, QUERY_TOO_LARGE) so that callers narrow the "
        "range or lower max_persons rather than time out.",
    )
    training_set_max_rows: int = Field(
        default=1_000_000,
        ge=1,
        description="Most rows one ExportTrainingSet call may produce; a larger set is refused up front "
        "(RESOURCE_EXHAUSTED, QUERY_TOO_LARGE) so that callers narrow it rather than time out.",
    )
    segment_refresh_seconds: float = Field(
        default=1.0,
        ge=0,
        description="Seconds between two passes of the segment evaluator, which keeps memberships current "
        "(the persons whose events or overrides changed since the last pass are evaluated again); it bounds "
        "how stale a membership is. 0 turns the evaluator off: run it on exactly one replica, since two "
        "would write every membership change twice.",
    )
    segment_evaluator_host: str = Field(
        default="",
        description="Host name of the one replica that runs the segment evaluator when several serve the "
        "same store: a StatefulSet's first pod, `journeys-0` (its host name is the pod's name, and the "
        "StatefulSet never runs two pods of one name at once). Every other replica serves reads and writes "
        "without evaluating. Empty: the evaluator runs wherever segment_refresh_seconds is above 0 (one "
        "replica).",
    )
    segment_window_check_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Seconds between two checks for trailing windows that lapsed with no event (the persons "
        "with an event that crossed a window boundary are evaluated again; segments with RFM conditions are "
        "evaluated in full); it bounds how late a window's lapse is applied (SegmentStatus.windows_as_of).",
    )
    segment_full_evaluation_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="Seconds between two full evaluations of a segment over every person, which repair "
        "whatever the incremental passes could not see (a store restored from a backup, say).",
    )
    segment_settle_seconds: float = Field(
        default=1.0,
        ge=0,
        description="Margin the segment evaluator allows for inserts still committing and for clock skew "
        "between journeys and ClickHouse: each pass reads again the events stored in the last this many "
        "seconds, and states its freshness (data_as_of) this much before its start.",
    )

    @property
    def evaluates_segments(self) -> bool:
        """Whether this process runs the segment evaluator: it is on, and this is the replica named for it."""
        if self.segment_refresh_seconds <= 0:
            return False
        return not self.segment_evaluator_host or self.segment_evaluator_host == socket.gethostname()
