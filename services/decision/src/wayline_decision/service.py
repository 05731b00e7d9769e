"""Wires the decision service together: the model registry, the action catalogue, the model lifecycle (the
traffic table, the loader, the model server that routes decisions, the poller that follows other replicas),
the online features, the decision traces (TraceSink, GetDecision, Feedback, ExportDecisions),
DecisionService and the Open Inference Protocol V2 service.

At start every deployed version is loaded before the service reports SERVING."""

from __future__ import annotations

import threading

import grpc
import structlog

from wayline.common.server import ServiceDefinition
from wayline.common.sql import open_database
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.decision.v1 import decision_service_pb2_grpc as pb_grpc
from wayline.inference.v2 import grpc_service_pb2 as inference_pb
from wayline.inference.v2 import grpc_service_pb2_grpc as inference_grpc
from wayline_decision.actions import ActionCatalogue, ActionStore
from wayline_decision.features.runtime import FeatureRuntime
from wayline_decision.inference import InferenceServicer
from wayline_decision.registry.directory import DirectoryRegistry
from wayline_decision.servicer import DecisionServicer
from wayline_decision.serving.lifecycle import ModelLifecycle
from wayline_decision.serving.loader import VersionLoader
from wayline_decision.serving.poller import TrafficPoller
from wayline_decision.serving.server import ModelServer
from wayline_decision.serving.traffic_store import TrafficStore
from wayline_decision.settings import DecisionSettings
from wayline_decision.traces.wiring import Traces, build_traces
from wayline_decision.uploads import UploadLimits
from wayline_decision.validation import ValidationLimits

__all__ = ["decision_service"]

log = structlog.get_logger("wayline.decision")


def decision_service(
    settings: DecisionSettings,
    features: FeatureRuntime | None = None,
    *,
    traces: Traces | None = None,
) -> ServiceDefinition:
    """The service. `features`: the online feature runtime to serve, `traces`: the trace parts (each built
    from the settings when None; tests pass their own to read through them or hold the same TraceSink)."""
    features = features or FeatureRuntime(settings)
    registry = DirectoryRegistry(settings.registry_path)
    limits = UploadLimits(
        max_package_bytes=settings.max_package_bytes,
        validation=ValidationLimits(max_parity_tolerance=settings.max_parity_tolerance),
    )

    url = settings.database_url.get_secret_value() if settings.database_url else None
    db = open_database(url, settings.service_dir / "decision.db")
    store = ActionStore(db)
    actions = ActionCatalogue(store)
    traffic = TrafficStore(db)
    loader = VersionLoader(
        registry,
        limits.validation,
        retry_seconds=settings.load_retry_seconds,
        batching=settings.micro_batching,
    )
    loader.add_listener(features.features)  # a loaded version's feature spec is kept up from the stream
    models = ModelServer(lambda tenant, model_id: bool(registry.versions(tenant, model_id)))
    lifecycle = ModelLifecycle(registry, traffic, loader, models)
    poller = TrafficPoller(lifecycle.sync, settings.traffic_poll_seconds)
    ready = threading.Event()

    # Decide records into `traces.sink`; GetDecision, Feedback and ExportDecisions read.
    traces = traces or build_traces(settings)

    def register(server: grpc.Server) -> list[str]:
        # The RPCs DecisionServicer does not define yet fall through to the generated base: UNIMPLEMENTED.
        decision = DecisionServicer(  # type: ignore[abstract]
            registry, limits, actions, lifecycle, features.features, traces=traces
        )
        pb_grpc.add_DecisionServiceServicer_to_server(decision, server)
        inference = InferenceServicer(models, ready)
        inference_grpc.add_GRPCInferenceServiceServicer_to_server(inference, server)
        return [
            pb.DESCRIPTOR.services_by_name["DecisionService"].full_name,
            inference_pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name,
        ]

    def start() -> None:
        settings.registry_path.mkdir(parents=True, exist_ok=True)
        store.migrate()
        traces.sink.start()
        traffic.migrate()
        features.start()  # the online state restored before models load (they register their specs on it)
        lifecycle.sync()  # every deployed version loaded before SERVING; one that fails is FAILED, retried
        poller.start()
        ready.set()
        removed = registry.sweep_staging(settings.stale_upload_seconds)
        if removed:
            log.info("registry.stale_uploads_removed", count=removed)

    def stop() -> None:
        ready.clear()
        poller.stop()
        features.stop()  # a last snapshot
        traces.sink.stop(settings.shutdown_grace_seconds)  # writes the traces still waiting, within the grace
        db.close()

    return ServiceDefinition(name="decision", register=register, start=start, stop=stop)
