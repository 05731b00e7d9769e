"""Settings of the journeys service (prefix WAYLINE_JOURNEYS_)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from wayline.common.settings import ServiceSettings

__all__ = ["JourneysSettings"]


class JourneysSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="WAYLINE_JOURNEYS_")
    service_name: ClassVar[str] = "journeys"

    port: int = Field(default=50063, ge=0, le=65535, description="gRPC port.")
    metrics_port: int = Field(default=9463, ge=0, le=65535, description="Prometheus port; 0 turns it off.")
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
    timeline_max_page_size: int = Field(
        default=1000, ge=1, description="Largest page GetTimeline returns, whatever the caller asks for."
    )
    identity_address: str = Field(
        default="127.0.0.1:50062",
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
