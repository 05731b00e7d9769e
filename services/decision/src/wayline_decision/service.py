"""Wires the decision service together: the model registry, the action catalogue, the decision traces
(TraceSink, GetDecision, Feedback, ExportDecisions) and DecisionService; the Open Inference Protocol V2
service is served and answers UNIMPLEMENTED (with the RPC's name) until the Decide path lands, as do
DecisionService's RPCs beyond these."""

from __future__ import annotations

import grpc
import structlog

from wayline.common.server import ServiceDefinition
from wayline.common.sql import open_database
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.decision.v1 import decision_service_pb2_grpc as pb_grpc
from wayline.inference.v2 import grpc_service_pb2 as inference_pb
from wayline.inference.v2 import grpc_service_pb2_grpc as inference_grpc
from wayline_decision.actions import ActionCatalogue, ActionStore
from wayline_decision.registry.directory import DirectoryRegistry
from wayline_decision.servicer import DecisionServicer
from wayline_decision.settings import DecisionSettings
from wayline_decision.traces.wiring import Traces, build_traces
from wayline_decision.uploads import UploadLimits
from wayline_decision.validation import ValidationLimits

__all__ = ["decision_service"]

log = structlog.get_logger("wayline.decision")


def decision_service(settings: DecisionSettings, *, traces: Traces | None = None) -> ServiceDefinition:
    """`traces`: the trace parts to use (built from the settings when None); given, the caller holds the
    same TraceSink the service uses."""
    registry = DirectoryRegistry(settings.registry_path)
    limits = UploadLimits(
        max_package_bytes=settings.max_package_bytes,
        validation=ValidationLimits(max_parity_tolerance=settings.max_parity_tolerance),
    )

    url = settings.database_url.get_secret_value() if settings.database_url else None
    db = open_database(url, settings.service_dir / "decision.db")
    store = ActionStore(db)
    actions = ActionCatalogue(store)
    # Decide (built beside this) records into `traces.sink`; GetDecision, Feedback and ExportDecisions read.
    traces = traces or build_traces(settings)

    def register(server: grpc.Server) -> list[str]:
        # The RPCs DecisionServicer does not define yet fall through to the generated base: UNIMPLEMENTED.
        decision = DecisionServicer(registry, limits, actions, traces=traces)  # type: ignore[abstract]
        pb_grpc.add_DecisionServiceServicer_to_server(decision, server)
        # Every RPC of the inference service: UNIMPLEMENTED, from the generated base class.
        inference = inference_grpc.GRPCInferenceServiceServicer()  # type: ignore[abstract]
        inference_grpc.add_GRPCInferenceServiceServicer_to_server(inference, server)
        return [
            pb.DESCRIPTOR.services_by_name["DecisionService"].full_name,
            inference_pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name,
        ]

    def start() -> None:
        settings.registry_path.mkdir(parents=True, exist_ok=True)
        store.migrate()
        traces.sink.start()
        removed = registry.sweep_staging(settings.stale_upload_seconds)
        if removed:
            log.info("registry.stale_uploads_removed", count=removed)

    def stop() -> None:
        traces.sink.stop(settings.shutdown_grace_seconds)  # writes the traces still waiting, within the grace
        db.close()

    return ServiceDefinition(name="decision", register=register, start=start, stop=stop)
