"""Wires the decision service together: the model registry, the action catalogue, holdouts, Decide (with the
clients of journeys, identity and the orchestrator it reads facts from) and DecisionService; the Open
Inference Protocol V2 service is served and answers UNIMPLEMENTED (with the RPC's name) until it lands, as
do DecisionService's RPCs not served yet.

Decide's model router, feature reader, trace sink and explainer come from other parts of the service and
are passed in (`DecideParts`); without them Decide answers NO_MODEL_DEPLOYED."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
import structlog
from google.protobuf import descriptor

from wayline.common.clients import internal_channel
from wayline.common.server import ServiceDefinition
from wayline.common.sql import open_database
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.decision.v1 import decision_service_pb2_grpc as pb_grpc
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.inference.v2 import grpc_service_pb2 as inference_pb
from wayline.inference.v2 import grpc_service_pb2_grpc as inference_grpc
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.orchestrator.v1 import orchestrator_service_pb2 as orchestrator_pb
from wayline_decision.actions import ActionCatalogue, ActionStore
from wayline_decision.decide.candidates import CatalogueCache
from wayline_decision.decide.explanations import Explainer
from wayline_decision.decide.pipeline import Budgets, Decider, DecideSources
from wayline_decision.decide.traces import TraceSink
from wayline_decision.decide.unwired import DefaultFeatures, NoModels, NoTraces
from wayline_decision.fact_clients import GrpcFactSource, GrpcPersonResolver
from wayline_decision.features.reader import FeatureReader
from wayline_decision.holdouts import Holdouts, HoldoutStore
from wayline_decision.registry.directory import DirectoryRegistry
from wayline_decision.servicer import DecisionServicer
from wayline_decision.serving.route import ModelRouter
from wayline_decision.settings import DecisionSettings
from wayline_decision.uploads import UploadLimits
from wayline_decision.validation import ValidationLimits

__all__ = ["DecideParts", "decision_service"]

log = structlog.get_logger("wayline.decision")


@dataclass(frozen=True)
class DecideParts:
    """Decide's parts that other parts of the service build: which loaded model serves a decision, the
    person's features, where traces go, and (optionally) the explainer of the chosen action's score."""

    router: ModelRouter = field(default_factory=NoModels)
    reader: FeatureReader = field(default_factory=DefaultFeatures)
    traces: TraceSink = field(default_factory=NoTraces)
    explainer: Explainer | None = None


def _peer(
    settings: DecisionSettings, address: str, service: descriptor.ServiceDescriptor
) -> grpc.Channel | None:
    if not address:
        return None
    return internal_channel(
        address,
        internal_token=settings.require_internal_token(),
        services=[service],
        tls=settings.channel_tls(),
    )


def decision_service(settings: DecisionSettings, decide: DecideParts | None = None) -> ServiceDefinition:
    parts = decide or DecideParts()
    registry = DirectoryRegistry(settings.registry_path)
    limits = UploadLimits(
        max_package_bytes=settings.max_package_bytes,
        validation=ValidationLimits(max_parity_tolerance=settings.max_parity_tolerance),
    )

    url = settings.database_url.get_secret_value() if settings.database_url else None
    db = open_database(url, settings.service_dir / "decision.db")
    store = ActionStore(db)
    actions = ActionCatalogue(store)
    holdout_store = HoldoutStore(db)
    holdouts = Holdouts(holdout_store, settings.holdout_cache_seconds)
    journeys = _peer(
        settings, settings.journeys_address, journeys_pb.DESCRIPTOR.services_by_name["JourneyService"]
    )
    identity = _peer(
        settings, settings.identity_address, identity_pb.DESCRIPTOR.services_by_name["IdentityService"]
    )
    orchestrator = _peer(
        settings,
        settings.orchestrator_address,
        orchestrator_pb.DESCRIPTOR.services_by_name["OrchestratorService"],
    )
    sources = DecideSources(
        router=parts.router,
        reader=parts.reader,
        catalogue=CatalogueCache(actions, settings.catalogue_cache_seconds),
        holdouts=holdouts,
        facts=GrpcFactSource(journeys, identity, orchestrator),
        resolver=GrpcPersonResolver(identity),
        explainer=parts.explainer,
    )
    budgets = Budgets(
        resolve_s=settings.decide_resolve_budget_seconds,
        facts_s=settings.decide_facts_budget_seconds,
        features_s=settings.decide_features_budget_seconds,
        reserve_s=settings.decide_reserve_seconds,
    )
    decider = Decider(sources, budgets=budgets)

    def register(server: grpc.Server) -> list[str]:
        # The RPCs DecisionServicer does not define yet fall through to the generated base: UNIMPLEMENTED.
        decision = DecisionServicer(  # type: ignore[abstract]
            registry, limits, actions, holdouts=holdouts, decider=decider, traces=parts.traces
        )
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
        holdout_store.migrate()
        removed = registry.sweep_staging(settings.stale_upload_seconds)
        if removed:
            log.info("registry.stale_uploads_removed", count=removed)

    def stop() -> None:
        for channel in (journeys, identity, orchestrator):
            if channel is not None:
                channel.close()
        db.close()

    return ServiceDefinition(name="decision", register=register, start=start, stop=stop)
