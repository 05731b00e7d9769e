"""Wires the journeys service together: store, servicer, lifecycle."""

from __future__ import annotations

import grpc

from wayline.common.server import ServiceDefinition
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as pb_grpc
from wayline_journeys.servicer import JourneyServicer
from wayline_journeys.settings import JourneysSettings
from wayline_journeys.store import ClickHouseEventStore, connect_clickhouse

__all__ = ["journeys_service"]


def journeys_service(settings: JourneysSettings) -> ServiceDefinition:
    store = ClickHouseEventStore(
        lambda: connect_clickhouse(
            settings.clickhouse_url, settings.clickhouse_database, settings.service_dir / "chdb"
        )
    )

    def register(server: grpc.Server) -> list[str]:
        # RPCs JourneyServicer does not define yet fall through to the generated base: UNIMPLEMENTED.
        servicer = JourneyServicer(store, settings.timeline_max_page_size)  # type: ignore[abstract]
        pb_grpc.add_JourneyServiceServicer_to_server(servicer, server)
        return [pb.DESCRIPTOR.services_by_name["JourneyService"].full_name]

    def start() -> None:
        store.open()
        store.ping()

    return ServiceDefinition(name="journeys", register=register, start=start, stop=store.close)
