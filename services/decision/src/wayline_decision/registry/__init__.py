"""The model registry: per tenant, the registered versions of each model, each an immutable package.

`ModelRegistry` is the seam: `DirectoryRegistry` keeps packages in a directory (the embedded default, and a
volume every replica mounts); an object store fits behind the same five calls. An upload writes the package
into a local staging directory the registry hands out (`open_staging`), the package is validated there, and
`register` makes it a version in one atomic step, or tells the caller that the version exists (with the same
content: the idempotent answer; with other content: ModelVersionExists).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from wayline.decision.v1 import model_package_pb2
from wayline_decision.packages import PackageId
from wayline_decision.validation import ValidPackage

__all__ = ["ModelRegistry", "RegisteredVersion", "Registration"]


@dataclass(frozen=True, slots=True)
class RegisteredVersion:
    """One registered version of a model."""

    package: PackageId
    manifest: model_package_pb2.ModelManifest
    digest: str  # the whole package's SHA-256 (packages.package_digest): equal digests, equal content
    register_time: datetime
    location: str  # where the package lives: a path, or an object-store URI


@dataclass(frozen=True, slots=True)
class Registration:
    """The answer to a registration: the stored version, and whether this call made it."""

    version: RegisteredVersion
    created: bool


class ModelRegistry(Protocol):
    def open_staging(self, tenant: str, model_id: str) -> Path:
        """A new, empty local directory to write a package of `model_id` into before it is registered."""
        ...

    def discard(self, staging: Path) -> None:
        """Remove a staging directory that was not registered (nothing when it is gone already)."""
        ...

    def register(self, tenant: str, staging: Path, package: ValidPackage) -> Registration:
        """Make the validated package in `staging` a version, atomically: exactly one of concurrent
        registrations of a version makes it; the others get it with `created` False when their content is
        the same, ModelVersionExists when it differs. `staging` is consumed either way."""
        ...

    def find(self, tenant: str, package: PackageId) -> RegisteredVersion | None:
        """The registered version, or None."""
        ...

    def model_ids(self, tenant: str) -> list[str]:
        """The ids of the tenant's models that have at least one registered version, in order."""
        ...

    def versions(self, tenant: str, model_id: str) -> list[RegisteredVersion]:
        """A model's registered versions, the newest registration first; empty when there is none."""
        ...
