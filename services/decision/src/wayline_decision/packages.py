"""The model package format, as the decision service reads it: the names, patterns and keys a package must
use, and the manifest read strictly.

A package is a directory of `manifest.json` (the proto3 JSON of `wayline.decision.v1.ModelManifest`) and the
files it lists with their SHA-256: the two ONNX graphs, a parity sample per graph and the model card. Each
graph carries in its ONNX metadata the feature spec (`wayline.feature_spec`, the compact proto3 JSON of the
FeatureSpec) and the action ids (`wayline.actions`, a JSON list) it was trained with, so that a manifest
edited afterwards cannot re-label the graph's inputs.

The manifest is a file format defined by a proto message, so this module reads it as that message rather
than as a copy of it in dataclasses (docs/adr/0021-model-registry.md).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import json_format

from wayline.decision.v1 import model_package_pb2

__all__ = [
    "ACTIONS_KEY",
    "FEATURE_SPEC_KEY",
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "MAX_FEATURES",
    "MAX_FILES",
    "MODEL_ID_PATTERN",
    "VERSION_PATTERN",
    "ManifestError",
    "PackageId",
    "is_plain_name",
    "package_digest",
    "parse_manifest",
    "sha256_file",
]

MANIFEST_FILE = "manifest.json"
FEATURE_SPEC_KEY = "wayline.feature_spec"
ACTIONS_KEY = "wayline.actions"
FORMAT_VERSION = 1
MAX_FEATURES = 500
MAX_FILES = 64  # a package holds a handful (graphs, samples, card); this only bounds what a stream may open
MODEL_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
VERSION_PATTERN = re.compile(r"[0-9A-Za-z][0-9A-Za-z._+-]{0,63}")
# A plain file name: no directory part, not hidden, nothing a shell or a URL would need to quote.
_PLAIN_NAME = re.compile(r"[0-9A-Za-z_][0-9A-Za-z._+-]{0,127}")


class ManifestError(ValueError):
    """`manifest.json` is not the proto3 JSON of a ModelManifest (the message says where)."""


@dataclass(frozen=True, slots=True)
class PackageId:
    """A registered version's identity within a tenant."""

    model_id: str
    version: str

    @property
    def name(self) -> str:
        """The resource name, `models/{model_id}/versions/{version}`."""
        return f"models/{self.model_id}/versions/{self.version}"


def is_plain_name(name: str) -> bool:
    """Whether `name` may be a file of a package: a plain name (no directory, not hidden, short)."""
    return _PLAIN_NAME.fullmatch(name) is not None


def parse_manifest(data: bytes) -> model_package_pb2.ModelManifest:
    """The manifest in `data`, read strictly: unknown fields and wrong types are refused."""
    manifest = model_package_pb2.ModelManifest()
    try:
        json_format.Parse(data.decode("utf-8"), manifest, ignore_unknown_fields=False)
    except (json_format.ParseError, UnicodeDecodeError) as error:
        raise ManifestError(str(error)) from error
    return manifest


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def package_digest(digests: Mapping[str, str]) -> str:
    """One SHA-256 for a whole package, from the SHA-256 of each of its files (the manifest included): two
    packages are the same content exactly when their digests are equal."""
    whole = hashlib.sha256()
    for name in sorted(digests):
        whole.update(f"{name}\0{digests[name]}\n".encode())
    return whole.hexdigest()
