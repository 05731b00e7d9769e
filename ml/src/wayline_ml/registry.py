"""The model registry, a directory per tenant: `<root>/<tenant>/<name>/<version>/` holds one package.

`put` validates a package and copies it in through the same staging-then-rename step that writes packages,
so a version, once there, is complete and never replaced. `get` validates again on the way out (a file
changed on disk after it was put is caught before anyone serves it). Tenant, name and version are checked
against fixed patterns, so none can climb out of the root (`..`, `/`).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from wayline.decision.v1 import model_package_pb2 as mpb
from wayline_ml.manifest import NAME_PATTERN, VERSION_PATTERN
from wayline_ml.package import publish
from wayline_ml.validation import PackageError, validate

__all__ = ["DirectoryRegistry", "RegistryError", "StoredPackage"]


class RegistryError(PackageError):
    """A tenant, name or version that is malformed or not in the registry."""


@dataclass(frozen=True, slots=True)
class StoredPackage:
    path: Path
    manifest: mpb.ModelManifest


class DirectoryRegistry:
    """Packages under `root`, one directory per tenant, model name and version."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, tenant: str, name: str, version: str) -> Path:
        """Where a version lives (whether or not it exists yet)."""
        _check("tenant", tenant, NAME_PATTERN)
        _check("name", name, NAME_PATTERN)
        _check("version", version, VERSION_PATTERN)
        return self.root / tenant / name / version

    def put(self, tenant: str, package: Path) -> StoredPackage:
        """Validate the package directory and copy it in; refuse a version that is already there."""
        manifest = validate(package)
        dest = self.path(tenant, manifest.model_id, manifest.version)
        publish(dest, lambda staging: _copy_files(package, staging))
        return StoredPackage(dest, validate(dest))

    def get(self, tenant: str, name: str, version: str) -> StoredPackage:
        """The validated package, or `RegistryError` when there is none."""
        path = self.path(tenant, name, version)
        if not path.is_dir():
            raise RegistryError(f"{tenant}/{name}/{version}: no such package")
        return StoredPackage(path, validate(path))

    def versions(self, tenant: str, name: str) -> list[str]:
        """The versions of a model, oldest first by version number (1.2 before 1.10)."""
        folder = self.path(tenant, name, "0").parent
        if not folder.is_dir():
            return []
        found = [p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
        return sorted(found, key=_version_key)


def _check(what: str, value: str, pattern: str) -> None:
    if not re.fullmatch(pattern, value):  # `$` alone lets a trailing newline through
        raise RegistryError(f"{what} {value!r} does not match {pattern}")


def _version_key(version: str) -> list[tuple[int, int | str]]:
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"[._+-]", version)]


def _copy_files(source: Path, staging: Path) -> None:
    for file in source.iterdir():
        if not file.is_file():
            raise PackageError(f"{file.name}: a package holds only files")
        shutil.copyfile(file, staging / file.name)
