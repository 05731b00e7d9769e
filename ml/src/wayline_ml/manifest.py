"""The model package's manifest, `manifest.json`: the proto3 JSON form of the contract's
`wayline.decision.v1.ModelManifest`, so the package the ML side writes is the one the decision service reads,
field for field.

It tells a loader everything it needs without reading the ONNX files: the feature spec in input order (with
each feature's type and encoding), the action list and how actions enter the input (a one-hot after the
features), each graph with its input, outputs and the parity it passed (with a sample to check it again), the
training window, the evaluation's metrics, the sha256 of every other file, the ONNX opsets and the library
versions that produced it. `read_manifest` parses strictly (an unknown or mistyped field fails, named) and
checks what the schema alone cannot (patterns, consistency between fields).
"""

from __future__ import annotations

import re
from pathlib import Path

from google.protobuf import json_format

from wayline.decision.v1 import model_package_pb2 as mpb

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "NAME_PATTERN",
    "VERSION_PATTERN",
    "ManifestError",
    "input_width",
    "manifest_json",
    "read_manifest",
]

MANIFEST_FILE = "manifest.json"
FORMAT_VERSION = 1
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
VERSION_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z._+-]{0,63}$"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ManifestError(ValueError):
    """The manifest does not parse or its fields disagree; the message names the field."""


def input_width(manifest: mpb.ModelManifest) -> int:
    """Columns of every graph's input: the features, then one per action."""
    return len(manifest.feature_spec.features) + len(manifest.action_ids)


def manifest_json(manifest: mpb.ModelManifest) -> str:
    """The manifest as written to `manifest.json` (indented, field order fixed by the contract)."""
    return json_format.MessageToJson(manifest, indent=2) + "\n"


def read_manifest(path: Path) -> mpb.ModelManifest:
    """Parse and check `path` (a `manifest.json`)."""
    try:
        manifest = json_format.Parse(path.read_text(encoding="utf-8"), mpb.ModelManifest())
    except json_format.ParseError as error:
        raise ManifestError(f"{MANIFEST_FILE}: {error}") from error
    problem = _first_problem(manifest)
    if problem:
        raise ManifestError(f"{MANIFEST_FILE}: {problem}")
    return manifest


def _first_problem(manifest: mpb.ModelManifest) -> str | None:  # noqa: PLR0912 - a check per rule
    if manifest.format_version != FORMAT_VERSION:
        return f"format_version: {manifest.format_version} is not {FORMAT_VERSION}"
    if not re.fullmatch(NAME_PATTERN, manifest.model_id):  # `$` alone lets a trailing newline through
        return f"model_id: {manifest.model_id!r} does not match {NAME_PATTERN}"
    if not re.fullmatch(VERSION_PATTERN, manifest.version):
        return f"version: {manifest.version!r} does not match {VERSION_PATTERN}"
    names = [feature.name for feature in manifest.feature_spec.features]
    if not names or len(set(names)) != len(names):
        return f"feature_spec.features: names must be present and distinct, got {names}"
    actions = list(manifest.action_ids)
    if len(actions) < 2 or len(set(actions)) != len(actions):
        return f"action_ids: at least two distinct actions, got {actions}"
    if manifest.action_encoding != mpb.ACTION_ENCODING_ONE_HOT_AFTER_FEATURES:
        return "action_encoding: only ACTION_ENCODING_ONE_HOT_AFTER_FEATURES is defined"
    roles = sorted(mpb.ModelRole.Name(entry.role) for entry in manifest.models)
    if roles != ["MODEL_ROLE_RESPONSE", "MODEL_ROLE_VALUE"]:
        return f"models: one MODEL_ROLE_RESPONSE and one MODEL_ROLE_VALUE graph, got {roles}"
    width = input_width(manifest)
    for index, entry in enumerate(manifest.models):
        for file in (entry.file, entry.parity.sample_file):
            if file not in manifest.files:
                return f"models[{index}]: {file!r} is not listed in files"
        if list(entry.input.shape) != [-1, width]:
            return (
                f"models[{index}].input.shape: {list(entry.input.shape)} is not [-1, {width}] "
                f"({len(names)} features + {len(actions)} actions)"
            )
    for file, digest in manifest.files.items():
        if not _SHA256.match(digest):
            return f"files[{file}]: {digest!r} is not a lower-case hex sha256"
    return None
