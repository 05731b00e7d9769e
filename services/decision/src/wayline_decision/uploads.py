"""An UploadModelVersion stream, assembled into a staging directory, validated and registered.

The protocol (decision_service.proto): a header first and only once (model id, version, optionally the
total size), then every file of the package in chunks, the chunks of one file consecutive and in order, no
file twice, each file name a plain name. Files are hashed as they are written and fsync'd as they close;
the size limit is enforced on the header's total and again on the bytes as they arrive, so an oversized
package is refused before it is on disk whole. Once the stream ends: the manifest is read and must name the
header's model and version; a version already registered answers at once (the same content: the stored
version, `created` False; other content: ModelVersionExists), and otherwise the package is validated in full
and registered in one atomic step. A staging directory that is not registered is removed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from wayline_decision.errors import MalformedUpload, ModelVersionExists, PackageTooLarge, RegistryUnavailable
from wayline_decision.packages import (
    MANIFEST_FILE,
    MAX_FILES,
    MODEL_ID_PATTERN,
    VERSION_PATTERN,
    PackageId,
    is_plain_name,
    package_digest,
)
from wayline_decision.registry import ModelRegistry, Registration
from wayline_decision.validation import ValidationLimits, read_manifest, validate_package

__all__ = ["MAX_CHUNK_BYTES", "Chunk", "Header", "UploadLimits", "receive_package"]

MAX_CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Header:
    model_id: str
    version: str
    total_bytes: int


@dataclass(frozen=True, slots=True)
class Chunk:
    file: str
    data: bytes


@dataclass(frozen=True, slots=True)
class UploadLimits:
    max_package_bytes: int
    validation: ValidationLimits = field(default_factory=ValidationLimits)


def receive_package(
    registry: ModelRegistry, tenant: str, parts: Iterable[Header | Chunk | None], limits: UploadLimits
) -> Registration:
    """Read the stream `parts` (None: a message with neither header nor chunk) into the tenant's registry."""
    stream = iter(parts)
    header = _header(stream, limits)
    staging = registry.open_staging(tenant, header.model_id)
    try:
        try:
            digests = _write_files(staging, stream, limits)
        except OSError as error:  # a full or failing volume: retryable, the package is not at fault
            raise RegistryUnavailable(f"the upload cannot be written: {error.strerror}") from error
        return _register(registry, tenant, header, staging, digests, limits)
    finally:
        registry.discard(staging)  # gone already when registered


def _header(stream: Iterator[Header | Chunk | None], limits: UploadLimits) -> Header:
    first = next(stream, None)
    if not isinstance(first, Header):
        raise MalformedUpload("header", "the stream's first message must be the header")
    if not MODEL_ID_PATTERN.fullmatch(first.model_id):
        raise MalformedUpload(
            "header.model_id", f"{first.model_id!r} does not match {MODEL_ID_PATTERN.pattern}"
        )
    if not VERSION_PATTERN.fullmatch(first.version):
        raise MalformedUpload("header.version", f"{first.version!r} does not match {VERSION_PATTERN.pattern}")
    if first.total_bytes < 0:
        raise MalformedUpload("header.total_bytes", "must be 0 (unknown) or the package's size")
    if first.total_bytes > limits.max_package_bytes:
        raise PackageTooLarge(first.total_bytes, limits.max_package_bytes)
    return first


class _OpenFile:
    """The file being received: written, hashed, fsync'd and closed when the next one starts."""

    def __init__(self, path: Path) -> None:
        self.name = path.name
        self._handle: BinaryIO = path.open("xb")
        self._digest = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self._handle.write(data)
        self._digest.update(data)

    def close(self) -> str:
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        return self._digest.hexdigest()

    def abandon(self) -> None:
        self._handle.close()


def _write_files(
    staging: Path, stream: Iterator[Header | Chunk | None], limits: UploadLimits
) -> dict[str, str]:
    digests: dict[str, str] = {}
    current: _OpenFile | None = None
    received = 0
    try:
        for part in stream:
            if isinstance(part, Header):
                raise MalformedUpload("header", "a second header; the header comes once, first")
            if part is None:
                raise MalformedUpload("content", "a message with neither a header nor a chunk")
            if current is None or part.file != current.name:
                if current is not None:
                    digests[current.name] = current.close()
                    current = None
                current = _open(staging, part.file, digests)
            if len(part.data) > MAX_CHUNK_BYTES:
                raise MalformedUpload("chunk.data", f"{len(part.data):,} bytes; a chunk holds at most 1 MiB")
            received += len(part.data)
            if received > limits.max_package_bytes:
                raise PackageTooLarge(received, limits.max_package_bytes)
            current.write(part.data)
        if current is not None:
            digests[current.name] = current.close()
            current = None
    finally:
        if current is not None:
            current.abandon()
    return digests


def _open(staging: Path, name: str, digests: dict[str, str]) -> _OpenFile:
    if not is_plain_name(name):
        raise MalformedUpload("chunk.file", f"{name!r} is not a plain file name (no directory, not hidden)")
    if name in digests:
        raise MalformedUpload(
            "chunk.file", f"{name!r} was sent before: each file is sent once, its chunks one after another"
        )
    if len(digests) >= MAX_FILES:
        raise MalformedUpload("chunk.file", f"more than {MAX_FILES} files; a package holds a handful")
    return _OpenFile(staging / name)


def _register(  # noqa: PLR0917 - one call site, which names them
    registry: ModelRegistry,
    tenant: str,
    header: Header,
    staging: Path,
    digests: dict[str, str],
    limits: UploadLimits,
) -> Registration:
    manifest = read_manifest(staging)
    for field_name, sent, declared in (
        ("model_id", header.model_id, manifest.model_id),
        ("version", header.version, manifest.version),
    ):
        if sent != declared:
            raise MalformedUpload(
                f"header.{field_name}", f"is {sent!r}; the package's {MANIFEST_FILE} says {declared!r}"
            )
    existing = registry.find(tenant, PackageId(header.model_id, header.version))
    if existing is not None:
        if existing.digest != package_digest(digests):
            raise ModelVersionExists(header.model_id, header.version)
        return Registration(existing, created=False)
    package = validate_package(staging, limits.validation, digests=digests, manifest=manifest)
    return registry.register(tenant, staging, package)
