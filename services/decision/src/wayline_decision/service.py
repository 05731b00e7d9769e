"""Wires the decision service together: the model registry, the action catalogue, the model lifecycle (the
traffic table, the loader, the model server that routes decisions, the poller that follows other replicas),
the online features, the decision traces (TraceSink, GetDecision, Feedback, ExportDecisions), holdouts,
Decide (with the clients of journeys, identity and the orchestrator it reads facts from), DecisionService
and the Open Inference Protocol V2 service.

At start the online state is restored and every deployed version is loaded before the service reports
SERVING."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import grpc
import structlog

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
from wayline_decision.decide.explanations import ServingExplainer
from wayline_decision.decide.pipeline import Budgets, Decider, DecideSources
from wayline_decision.fact_clients import GrpcFactSource, GrpcPersonResolver
from wayline_decision.features.runtime import FeatureRuntime
from wayline_decision.holdouts import Holdouts, HoldoutStore
from wayline_decision.inference import InferenceServicer
from wayline_decision.metrics import DecisionMetrics
from wayline_decision.registry.directory import DirectoryRegistry
from wayline_decision.servicer import DecisionServicer
from wayline_decision.serving.judging import CanaryJudging
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


@dataclass(frozen=True)
class _Peers:
    """The channels Decide reads facts through; None where the address setting is empty."""

    journeys: grpc.Channel | None
    identity: grpc.Channel | None
    orchestrator: grpc.Channel | None

    @classmethod
    def open(cls, settings: DecisionSettings) -> _Peers:
        services = {
            name: file.DESCRIPTOR.services_by_name[service]
            for name, file, service in (
                ("journeys", journeys_pb, "JourneyService"),
                ("identity", identity_pb, "IdentityService"),
                ("orchestrator", orchestrator_pb, "OrchestratorService"),
            )
        }
        return cls(
            journeys=settings.peer_channel(settings.journeys_address, services["journeys"]),
            identity=settings.peer_channel(settings.identity_address, services["identity"]),
            orchestrator=settings.peer_channel(settings.orchestrator_address, services["orchestrator"]),
        )

    def close(self) -> None:
        for channel in (self.journeys, self.identity, self.orchestrator):
            if channel is not None:
                channel.close()


def _budgets(settings: DecisionSettings) -> Budgets:
    return Budgets(
        resolve_s=settings.decide_resolve_budget_seconds,
        facts_s=settings.decide_facts_budget_seconds,
        features_s=settings.decide_features_budget_seconds,
        reserve_s=settings.decide_reserve_seconds,
    )


def _following(traces: Traces, features: FeatureRuntime) -> Traces:
    """`traces`, told of identity's override feed by the features' follower: an erasure or a merge also
    reaches the identifiers and recent traces they keep (traces/forgetting.py)."""
    if features.follower is not None:
        features.follower.add_listener(traces.forgetting)
    return traces


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
    domain_metrics = DecisionMetrics()
    loader = VersionLoader(
        registry,
        limits.validation,
        retry_seconds=settings.load_retry_seconds,
        batching=settings.micro_batching,
        metrics=domain_metrics,
    )
    loader.add_listener(features.features)  # a loaded version's feature spec is kept up from the stream
    models = ModelServer(lambda tenant, model_id: bool(registry.versions(tenant, model_id)))
    lifecycle = ModelLifecycle(registry, traffic, loader, models)
    poller = TrafficPoller(lifecycle.sync, settings.traffic_poll_seconds)
    ready = threading.Event()

    # Decide records into `traces.sink`; GetDecision, Feedback and ExportDecisions read.
    traces = _following(traces or build_traces(settings), features)
    judging = CanaryJudging(lifecycle, traces.journeys, settings.canary_judge_seconds)
    holdout_store = HoldoutStore(db)
    holdouts = Holdouts(holdout_store, settings.holdout_cache_seconds)
    peers = _Peers.open(settings)
    sources = DecideSources(
        router=models,
        reader=features.features,
        catalogue=CatalogueCache(actions, settings.catalogue_cache_seconds),
        holdouts=holdouts,
        facts=GrpcFactSource(peers.journeys, peers.identity, peers.orchestrator),
        resolver=GrpcPersonResolver(peers.identity),
        explainer=ServingExplainer(),
    )
    decider = Decider(sources, budgets=_budgets(settings), metrics=domain_metrics)

    def register(server: grpc.Server) -> list[str]:
        decision = DecisionServicer(
            registry,
            limits,
            actions,
            lifecycle,
            features.features,
            traces=traces,
            holdouts=holdouts,
            decider=decider,
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
        holdout_store.migrate()
        traces.sink.start()
        traffic.migrate()
        features.start()  # the online state restored before models load (they register their specs on it)
        lifecycle.sync()  # every deployed version loaded before SERVING; one that fails is FAILED, retried
        poller.start()
        judging.start()
        ready.set()
        removed = registry.sweep_staging(settings.stale_upload_seconds)
        if removed:
            log.info("registry.stale_uploads_removed", count=removed)

    def stop() -> None:
        ready.clear()
        judging.stop()
        poller.stop()
        features.stop()  # a last snapshot
        traces.sink.stop(settings.shutdown_grace_seconds)  # writes the traces still waiting, within the grace
        peers.close()
        db.close()

    return ServiceDefinition(name="decision", register=register, start=start, stop=stop)
