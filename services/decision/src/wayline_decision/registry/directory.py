"""The model registry on a directory: `<root>/<tenant>/<model_id>/<version>/` holds one package, read-only.

Registration is a rename. An upload is written into a staging directory beside its destination
(`<root>/<tenant>/<model_id>/.staging-*`, hidden, so never taken for a version), its files fsync'd as they
close; `register` adds the registry's own record (`.registration.json`: when, and the package's digest),
makes the files read-only, fsyncs the directory and renames it to the version's path, then fsyncs the
model's directory. A rename onto a version that exists fails (the destination is never empty: it holds at
least the record), so of two concurrent pushes of a version exactly one makes it, and the other compares
digests. A version directory is never written again.

Model ids and versions are checked against fixed patterns before they become paths, and a tenant id that is
not a plain name is hex-encoded (`%<hex>`), so none climbs out of the root. Versions are immutable, so what
is read of them is cached for good.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import structlog

from wayline_decision.errors import ModelVersionExists, RegistryUnavailable
from wayline_decision.packages import (
    MANIFEST_FILE,
    MODEL_ID_PATTERN,
    VERSION_PATTERN,
    ManifestError,
    PackageId,
    parse_manifest,
)
from wayline_decision.registry import RegisteredVersion, Registration
from wayline_decision.validation import ValidPackage

__all__ = ["RECORD_FILE", "DirectoryRegistry"]

RECORD_FILE = ".registration.json"
_STAGING_PREFIX = ".staging-"
_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_CACHE_LIMIT = 4096

log = structlog.get_logger("wayline.decision.registry")


def _now() -> datetime:
    return datetime.now(tz=UTC)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DirectoryRegistry:
    """Packages under `root`, one directory per tenant, model and version."""

    def __init__(self, root: Path, clock: Callable[[], datetime] = _now) -> None:
        self.root = root
        self._clock = clock
        self._cache: dict[Path, RegisteredVersion] = {}
        self._lock = threading.Lock()

    def _tenant_dir(self, tenant: str) -> Path:
        if not tenant:
            raise ValueError("a registry path needs a tenant")
        return self.root / (tenant if _TENANT.fullmatch(tenant) else "%" + tenant.encode().hex())

    def _model_dir(self, tenant: str, model_id: str) -> Path:
        if not MODEL_ID_PATTERN.fullmatch(model_id):
            raise ValueError(f"model id {model_id!r} does not match {MODEL_ID_PATTERN.pattern}")
        return self._tenant_dir(tenant) / model_id

    def open_staging(self, tenant: str, model_id: str) -> Path:
        parent = self._model_dir(tenant, model_id)
        try:
            parent.mkdir(parents=True, exist_ok=True)
            return Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=parent))
        except OSError as error:
            raise RegistryUnavailable(f"the model registry cannot be written: {error.strerror}") from error

    def discard(self, staging: Path) -> None:
        if staging.name.startswith(_STAGING_PREFIX):
            shutil.rmtree(staging, ignore_errors=True)

    def register(self, tenant: str, staging: Path, package: ValidPackage) -> Registration:
        manifest = package.manifest
        target = PackageId(manifest.model_id, manifest.version)
        dest = self._model_dir(tenant, target.model_id) / target.version
        if staging.parent != dest.parent:
            raise ValueError(f"{staging} is not a staging directory of {dest.parent}")
        try:
            record = {"register_time": self._clock().isoformat(), "digest": package.digest}
            self._write_record(staging / RECORD_FILE, record)
            for file in staging.iterdir():
                file.chmod(0o444)
            _fsync_dir(staging)
            if not dest.exists():
                os.rename(staging, dest)
                dest.chmod(0o555)
                _fsync_dir(dest.parent)
                return Registration(self._read(dest, target), created=True)
        except OSError as error:
            if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                self.discard(staging)
                raise RegistryUnavailable(
                    f"the model registry cannot be written: {error.strerror}"
                ) from error
        # Another push registered this version first (or before this one started).
        self.discard(staging)
        existing = self.find(tenant, target)
        if existing is None or existing.digest != package.digest:
            raise ModelVersionExists(target.model_id, target.version)
        return Registration(existing, created=False)

    @staticmethod
    def _write_record(path: Path, record: dict[str, str]) -> None:
        with path.open("x", encoding="utf-8") as handle:
            json.dump(record, handle)
            handle.flush()
            os.fsync(handle.fileno())

    def find(self, tenant: str, package: PackageId) -> RegisteredVersion | None:
        if not VERSION_PATTERN.fullmatch(package.version):
            return None
        path = self._model_dir(tenant, package.model_id) / package.version
        try:
            return self._read(path, package)
        except FileNotFoundError:
            return None

    def model_ids(self, tenant: str) -> list[str]:
        tenant_dir = self._tenant_dir(tenant)
        if not tenant_dir.is_dir():
            return []
        try:
            names = sorted(
                entry.name for entry in tenant_dir.iterdir() if MODEL_ID_PATTERN.fullmatch(entry.name)
            )
        except OSError as error:
            raise RegistryUnavailable(f"the model registry cannot be read: {error.strerror}") from error
        return [name for name in names if self._version_dirs(tenant_dir / name)]

    def versions(self, tenant: str, model_id: str) -> list[RegisteredVersion]:
        model_dir = self._model_dir(tenant, model_id)
        found = []
        for path in self._version_dirs(model_dir):
            try:
                found.append(self._read(path, PackageId(model_id, path.name)))
            except FileNotFoundError:  # removed by an operator while we listed
                continue
        return sorted(found, key=lambda v: (v.register_time, v.package.version), reverse=True)

    def _version_dirs(self, model_dir: Path) -> list[Path]:
        try:
            entries = list(model_dir.iterdir()) if model_dir.is_dir() else []
        except OSError as error:
            raise RegistryUnavailable(f"the model registry cannot be read: {error.strerror}") from error
        return [e for e in entries if VERSION_PATTERN.fullmatch(e.name) and (e / RECORD_FILE).is_file()]

    def _read(self, path: Path, package: PackageId) -> RegisteredVersion:
        """The version at `path` (FileNotFoundError when there is none); cached, since it never changes."""
        with self._lock:
            cached = self._cache.get(path)
        if cached is not None:
            return cached
        try:
            record = json.loads((path / RECORD_FILE).read_bytes())
            manifest = parse_manifest((path / MANIFEST_FILE).read_bytes())
            version = RegisteredVersion(
                package=package,
                manifest=manifest,
                digest=str(record["digest"]),
                register_time=datetime.fromisoformat(record["register_time"]),
                location=str(path.resolve()),
            )
        except FileNotFoundError:
            raise
        except (OSError, ValueError, KeyError, TypeError, ManifestError) as error:
            log.error("registry.unreadable_version", path=str(path), error=str(error))
            raise RegistryUnavailable(f"{package.name} cannot be read from the model registry") from error
        with self._lock:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[path] = version
        return version

    def sweep_staging(self, older_than_seconds: float) -> int:
        """Remove staging directories nobody has written to for `older_than_seconds` (uploads cut short by
        a stopped replica); how many were removed."""
        cutoff = time.time() - older_than_seconds
        removed = 0
        for staging in self.root.glob(f"*/*/{_STAGING_PREFIX}*"):
            try:
                if staging.stat().st_mtime < cutoff:
                    shutil.rmtree(staging, ignore_errors=True)
                    removed += 1
            except FileNotFoundError:
                continue
        return removed
