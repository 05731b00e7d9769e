"""`validate_package(directory)`: whether a model package may be registered, or every reason it may not.

Each problem is a field violation naming the file, and the place in it, and what is wrong
(`manifest.json:feature_spec.features[2].name`, `response.onnx:input`, `value.onnx:parity`), gathered in one
`PackageInvalid`. In order, each step only when the one before it leaves something to check:
1. `manifest.json` parses strictly as a ModelManifest;
2. its own fields (`manifest_checks.py`);
3. the directory holds exactly the files the manifest lists, each with its SHA-256 (hidden files, such as
   the registry's own record, are no part of a package and are not looked at);
4. each graph loads in ONNX Runtime and agrees with the manifest and with its parity sample (`graphs.py`);
5. each graph's cover file, when the manifest names one, describes that graph's trees (`explain/covers.py`),
   so a package that claims explanations can give them.
"""

from __future__ import annotations

import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from wayline.common.errors import FieldViolation
from wayline.decision.v1 import model_package_pb2 as mp
from wayline_decision.errors import PackageInvalid
from wayline_decision.explain.covers import CoversInvalid, read_covers
from wayline_decision.explain.ensemble import EnsembleUnsupported, read_ensemble
from wayline_decision.graphs import graph_violations
from wayline_decision.manifest_checks import ValidationLimits, manifest_violations
from wayline_decision.packages import (
    MANIFEST_FILE,
    ManifestError,
    is_plain_name,
    package_digest,
    parse_manifest,
    sha256_file,
)

__all__ = ["ValidPackage", "ValidationLimits", "read_manifest", "validate_package"]


@dataclass(frozen=True, slots=True)
class ValidPackage:
    """A package that passed validation."""

    manifest: mp.ModelManifest
    digests: dict[str, str]  # every file, the manifest included → its SHA-256
    digest: str  # the whole package's (packages.package_digest)


def read_manifest(directory: Path) -> mp.ModelManifest:
    """The package's manifest; PackageInvalid when it is missing or does not parse."""
    path = directory / MANIFEST_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PackageInvalid(
            [FieldViolation(MANIFEST_FILE, "the package has no manifest.json", "MISSING")]
        ) from None
    try:
        return parse_manifest(data)
    except ManifestError as error:
        raise PackageInvalid(
            [FieldViolation(MANIFEST_FILE, f"not the proto3 JSON of a ModelManifest: {error}", "UNPARSABLE")]
        ) from None


def validate_package(
    directory: Path,
    limits: ValidationLimits,
    *,
    digests: Mapping[str, str] | None = None,
    manifest: mp.ModelManifest | None = None,
    stored: bool = False,
) -> ValidPackage:
    """Check the package in `directory`; PackageInvalid with every problem found. `digests` (file → SHA-256,
    computed as the files were written) saves reading the files again; `manifest`, one already read.
    `stored` for a registered package checked again as it loads: its spec keeps what the checks of its
    upload accepted then (manifest_checks, ADR 78)."""
    manifest = manifest if manifest is not None else read_manifest(directory)
    violations = manifest_violations(manifest, limits, stored=stored)
    found = dict(digests) if digests is not None else _digests(directory)
    violations += _file_violations(directory, manifest, found)
    if violations:  # a graph is loaded only from a package that is whole and consistent
        raise PackageInvalid(violations)
    for model in manifest.models:
        violations += graph_violations(directory, model, manifest)
    if violations:
        raise PackageInvalid(violations)
    for model in manifest.models:
        violations += _cover_violations(directory, model, manifest)
    if violations:
        raise PackageInvalid(violations)
    return ValidPackage(manifest, found, package_digest(found))


def _digests(directory: Path) -> dict[str, str]:
    return {
        entry.name: sha256_file(entry)
        for entry in directory.iterdir()
        if entry.is_file() and not entry.is_symlink() and is_plain_name(entry.name)
    }


def _file_violations(
    directory: Path, manifest: mp.ModelManifest, digests: Mapping[str, str]
) -> list[FieldViolation]:
    violations = []
    present = set()
    for entry in sorted(directory.iterdir()):
        if entry.name == MANIFEST_FILE or entry.name.startswith("."):  # hidden: never part of a package
            continue
        mode = entry.lstat().st_mode
        if not stat.S_ISREG(mode) or not is_plain_name(entry.name):
            violations.append(FieldViolation(entry.name, "a package holds only plain files", "UNEXPECTED"))
        elif entry.name not in manifest.files:
            violations.append(
                FieldViolation(entry.name, "in the package but not listed in manifest.json", "UNLISTED")
            )
        present.add(entry.name)
    for name, expected in sorted(manifest.files.items()):
        if name not in present:
            violations.append(
                FieldViolation(name, "listed in manifest.json but missing from the package", "MISSING")
            )
        elif digests.get(name) != expected:
            violations.append(
                FieldViolation(
                    name,
                    f"SHA-256 mismatch: manifest.json lists {expected}, the file has {digests.get(name)}",
                    "SHA256_MISMATCH",
                )
            )
    return violations


def _cover_violations(
    directory: Path, model: mp.ModelFile, manifest: mp.ModelManifest
) -> list[FieldViolation]:
    if not model.cover_file:
        return []
    width = len(manifest.feature_spec.features) + len(manifest.action_ids)
    try:
        ensemble = read_ensemble((directory / model.file).read_bytes(), width)
    except EnsembleUnsupported as error:
        return [
            FieldViolation(
                f"{model.file}:cover_file", f"covers are given but the graph cannot be explained: {error}"
            )
        ]
    try:
        read_covers((directory / model.cover_file).read_bytes(), ensemble)
    except CoversInvalid as error:
        return [FieldViolation(model.cover_file, str(error), "COVERS_INVALID")]
    return []
