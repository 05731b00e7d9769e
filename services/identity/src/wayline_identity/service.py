"""Wires the identity service together: database, domain façade, erasure driver, servicer, lifecycle."""

from __future__ import annotations

import grpc

from wayline.common.server import ServiceDefinition
from wayline.common.sql import open_database
from wayline.identity.v1 import identity_service_pb2 as pb
from wayline.identity.v1 import identity_service_pb2_grpc as pb_grpc
from wayline_identity.erasers import grpc_erasers
from wayline_identity.erasure_driver import ErasureDriver
from wayline_identity.identity import Identity
from wayline_identity.metrics import IdentityMetrics
from wayline_identity.servicer import IdentityServicer
from wayline_identity.settings import IdentitySettings

__all__ = ["identity_service"]


def identity_service(settings: IdentitySettings) -> ServiceDefinition:
    url = settings.database_url.get_secret_value() if settings.database_url else None
    db = open_database(url, settings.service_dir / "identity.db")
    erasers, channels = grpc_erasers(settings, settings.journeys_address, settings.ingest_address)
    metrics = IdentityMetrics()
    driver = ErasureDriver(db, erasers, interval=settings.erasure_retry_seconds, metrics=metrics)
    identity = Identity(
        db,
        erasure_stores=[*erasers, *settings.erasure_feed_consumers],
        on_erasure=driver.wake,
        seen_granularity_seconds=settings.seen_granularity_seconds,
        cache_identifiers=settings.cache_identifiers,
        metrics=metrics,
    )

    def register(server: grpc.Server) -> list[str]:
        pb_grpc.add_IdentityServiceServicer_to_server(IdentityServicer(identity), server)
        return [pb.DESCRIPTOR.services_by_name["IdentityService"].full_name]

    def start() -> None:
        identity.migrate()
        driver.start()

    def stop() -> None:
        driver.stop()
        for channel in channels:
            channel.close()
        db.close()

    return ServiceDefinition(name="identity", register=register, start=start, stop=stop)
