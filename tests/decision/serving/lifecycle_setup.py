"""A model lifecycle as the service wires it, over a real directory registry and a real database, with
packages registered the way UploadModelVersion does (staged, validated, registered)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from tests.decision.ml_package import ml_package
from tests.decision.model_packages import build_package, edit_manifest
from wayline.common.sql import Database
from wayline.event.v1 import event_pb2
from wayline_decision.registry.directory import DirectoryRegistry
from wayline_decision.serving.lifecycle import ModelLifecycle
from wayline_decision.serving.loader import VersionLoader
from wayline_decision.serving.route import ModelLoadListener
from wayline_decision.serving.server import ModelServer
from wayline_decision.serving.traffic_store import TrafficStore
from wayline_decision.validation import ValidationLimits, validate_package

LIMITS = ValidationLimits(max_parity_tolerance=1e-3)


@dataclass
class Lifecycle:
    registry: DirectoryRegistry
    store: TrafficStore
    loader: VersionLoader
    server: ModelServer
    lifecycle: ModelLifecycle


def lifecycle_over(root: Path, db: Database, listeners: tuple[ModelLoadListener, ...] = ()) -> Lifecycle:
    registry = DirectoryRegistry(root)
    store = TrafficStore(db)
    store.migrate()
    loader = VersionLoader(registry, LIMITS, listeners)
    server = ModelServer(lambda tenant, model_id: bool(registry.versions(tenant, model_id)))
    return Lifecycle(registry, store, loader, server, ModelLifecycle(registry, store, loader, server))


def register(registry: DirectoryRegistry, tenant: str, package: Path) -> Path:
    """Register the package at `package`; the registered version's directory."""
    package_id = validate_package(package, LIMITS).manifest
    staging = registry.open_staging(tenant, package_id.model_id)
    for file in package.iterdir():
        shutil.copy(file, staging / file.name)
    registration = registry.register(tenant, staging, validate_package(staging, LIMITS))
    return Path(registration.version.location)


def register_ml(registry: DirectoryRegistry, tenant: str, tmp: Path, model_id: str, version: str) -> Path:
    """A package written by wayline_ml, registered."""
    return register(
        registry, tenant, ml_package(tmp / f"{model_id}-{version}", model_id=model_id, version=version)
    )


def register_serving(
    registry: DirectoryRegistry,
    tenant: str,
    tmp: Path,
    model_id: str,
    channels: tuple[event_pb2.Channel.ValueType, ...],
    placements: tuple[str, ...],
    version: str = "1",
) -> Path:
    """A hand-made package serving `channels` and `placements` (empty: all), registered."""
    package = build_package(tmp / f"{model_id}-{version}", model_id=model_id, version=version)

    def serve(manifest):  # type: ignore[no-untyped-def]
        del manifest.channels[:]
        manifest.channels.extend(channels)
        del manifest.placements[:]
        manifest.placements.extend(placements)

    edit_manifest(package, serve)
    return register(registry, tenant, package)
