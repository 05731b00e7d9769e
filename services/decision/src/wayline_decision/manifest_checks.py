"""The manifest's own fields, checked without reading any other file of the package: format version 1, the
id and version patterns, a valid feature spec (the kit's typing rules, lower_snake_case names used once, 1 to
500 features; then the spec compiled as a loaded version compiles it, `features/spec_compiler.py`, so a
filter or a lifecycle model it refuses is refused at upload, not at the first load), two or more distinct
action ids, one RESPONSE and one VALUE graph each declaring the signature its role needs, and a parity check
with a sample, a rule and a tolerance the service accepts.

Each problem is a field violation on `manifest.json:<path>`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from wayline.common.errors import FieldViolation, InvalidArgument
from wayline.common.feature_encoding import spec_violations
from wayline.decision.v1 import model_package_pb2 as mp
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import feature_pb2
from wayline_decision.features.spec_compiler import compile_spec
from wayline_decision.packages import (
    FORMAT_VERSION,
    MANIFEST_FILE,
    MAX_FEATURES,
    MODEL_ID_PATTERN,
    VERSION_PATTERN,
    is_plain_name,
)

__all__ = ["ValidationLimits", "manifest_violations"]

_FEATURE_NAME = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
_FLOAT32 = mp.TENSOR_DATA_TYPE_FLOAT32
# The one float32 output each role is read through: its name is the manifest's, its shape fixed.
_ROLE_OUTPUT = {mp.MODEL_ROLE_RESPONSE: [-1, 2], mp.MODEL_ROLE_VALUE: [-1, 1]}


@dataclass(frozen=True, slots=True)
class ValidationLimits:
    """What the service allows beyond the format itself."""

    max_parity_tolerance: float = 1e-3


def _at(path: str) -> str:
    return f"{MANIFEST_FILE}:{path}"


def manifest_violations(
    manifest: mp.ModelManifest, limits: ValidationLimits, *, stored: bool = False
) -> list[FieldViolation]:
    """What is wrong with the manifest's own fields, without reading any other file. `stored`: the manifest
    of a registered version, loading (its spec compiled as `compile_spec(..., stored=True)` does)."""
    violations: list[FieldViolation] = []
    if manifest.format_version != FORMAT_VERSION:
        violations.append(
            FieldViolation(
                _at("format_version"), f"is {manifest.format_version}; this service reads format 1"
            )
        )
    if not MODEL_ID_PATTERN.fullmatch(manifest.model_id):
        violations.append(
            FieldViolation(
                _at("model_id"), f"{manifest.model_id!r} does not match {MODEL_ID_PATTERN.pattern}"
            )
        )
    if not VERSION_PATTERN.fullmatch(manifest.version):
        violations.append(
            FieldViolation(_at("version"), f"{manifest.version!r} does not match {VERSION_PATTERN.pattern}")
        )
    violations += _spec_violations(manifest.feature_spec, stored)
    violations += _action_violations(manifest)
    violations += _files_map_violations(manifest.files)
    violations += _models_violations(manifest, limits)
    for i, channel in enumerate(manifest.channels):
        if channel == event_pb2.CHANNEL_UNSPECIFIED or channel not in event_pb2.Channel.values():
            violations.append(FieldViolation(_at(f"channels[{i}]"), f"{channel} is not a channel"))
    for i, placement in enumerate(manifest.placements):
        if not placement:
            violations.append(FieldViolation(_at(f"placements[{i}]"), "a placement must not be empty"))
    return violations


def _spec_violations(spec: feature_pb2.FeatureSpec, stored: bool) -> list[FieldViolation]:
    violations = [
        FieldViolation(_at(v.field), v.description, v.reason)
        for v in spec_violations(spec, prefix="feature_spec.")
    ]
    if not 0 < len(spec.features) <= MAX_FEATURES:
        violations.append(
            FieldViolation(
                _at("feature_spec.features"), f"{len(spec.features)} features; 1 to {MAX_FEATURES}"
            )
        )
    seen: set[str] = set()
    for i, feature in enumerate(spec.features):
        path = _at(f"feature_spec.features[{i}]")
        if not _FEATURE_NAME.fullmatch(feature.name):
            violations.append(FieldViolation(f"{path}.name", f"{feature.name!r} is not lower_snake_case"))
        elif feature.name in seen:
            violations.append(FieldViolation(f"{path}.name", f"{feature.name!r} is used twice", "DUPLICATE"))
        seen.add(feature.name)
        if feature.aggregation not in feature_pb2.FeatureAggregation.values() or not feature.aggregation:
            violations.append(FieldViolation(f"{path}.aggregation", "choose an aggregation"))
    if violations:
        return violations
    # What the checks above let through, compiled as a loaded version compiles it (every filter's property
    # path, operator, values and MATCHES_REGEX pattern, windows, lifecycle models): refused here, before
    # anything is registered, rather than when the version is first loaded (MODEL_LOAD_FAILED). A version
    # registered before a check existed loads as it was accepted then (`stored`: a MATCHES_REGEX pattern only
    # Python's `re` took holds for no event, ADR 78), rather than serving nothing once a replica restarts.
    try:
        compile_spec(spec, "feature_spec.", stored=stored)
    except InvalidArgument as error:
        return [FieldViolation(_at(v.field), v.description, v.reason) for v in error.violations]
    return []


def _action_violations(manifest: mp.ModelManifest) -> list[FieldViolation]:
    violations = []
    actions = list(manifest.action_ids)
    if len(set(actions)) < 2:
        violations.append(
            FieldViolation(
                _at("action_ids"), f"{len(set(actions))} distinct actions; a model scores at least 2"
            )
        )
    seen: set[str] = set()
    for i, action in enumerate(actions):
        if not action:
            violations.append(FieldViolation(_at(f"action_ids[{i}]"), "an action id must not be empty"))
        elif action in seen:
            violations.append(
                FieldViolation(_at(f"action_ids[{i}]"), f"{action!r} is listed twice", "DUPLICATE")
            )
        seen.add(action)
    if manifest.action_encoding != mp.ACTION_ENCODING_ONE_HOT_AFTER_FEATURES:
        violations.append(
            FieldViolation(
                _at("action_encoding"), "this service reads ACTION_ENCODING_ONE_HOT_AFTER_FEATURES"
            )
        )
    return violations


def _files_map_violations(files: Mapping[str, str]) -> list[FieldViolation]:
    violations = []
    for name, digest in sorted(files.items()):
        if name == MANIFEST_FILE or not is_plain_name(name):
            violations.append(
                FieldViolation(
                    _at(f"files[{name!r}]"), "not a plain file name of the package besides the manifest"
                )
            )
        if not _HEX_DIGEST.fullmatch(digest):
            violations.append(
                FieldViolation(_at(f"files[{name!r}]"), f"{digest!r} is not a lower-case hex SHA-256")
            )
    return violations


def _models_violations(manifest: mp.ModelManifest, limits: ValidationLimits) -> list[FieldViolation]:
    roles = [model.role for model in manifest.models]
    violations = [
        FieldViolation(
            _at("models"), f"{roles.count(role)} {mp.ModelRole.Name(role)} graphs; a package has one"
        )
        for role in _ROLE_OUTPUT
        if roles.count(role) != 1
    ]
    width = len(manifest.feature_spec.features) + len(manifest.action_ids)
    graph_files: set[str] = set()
    for i, model in enumerate(manifest.models):
        path = f"models[{i}]"
        if model.role not in _ROLE_OUTPUT:
            violations.append(FieldViolation(_at(f"{path}.role"), "RESPONSE or VALUE"))
        if model.file not in manifest.files:
            violations.append(FieldViolation(_at(f"{path}.file"), f"{model.file!r} is not listed in files"))
        elif model.file in graph_files:
            violations.append(FieldViolation(_at(f"{path}.file"), f"{model.file!r} is another graph's file"))
        graph_files.add(model.file)
        if not model.input.name:
            violations.append(FieldViolation(_at(f"{path}.input.name"), "the graph's input name is required"))
        if model.input.data_type != _FLOAT32 or list(model.input.shape) != [-1, width]:
            violations.append(
                FieldViolation(
                    _at(f"{path}.input"),
                    f"must be float32 of shape [-1, {width}] ({len(manifest.feature_spec.features)} "
                    f"features + {len(manifest.action_ids)} actions)",
                )
            )
        violations += _output_violations(model, path)
        violations += _parity_violations(model, path, manifest, limits)
        if model.cover_file and (
            model.cover_file not in manifest.files
            or model.cover_file in (model.file, model.parity.sample_file)
        ):
            violations.append(
                FieldViolation(_at(f"{path}.cover_file"), f"{model.cover_file!r} is not a listed cover file")
            )
    return violations


def _output_violations(model: mp.ModelFile, path: str) -> list[FieldViolation]:
    shape = _ROLE_OUTPUT.get(model.role)
    names = [output.name for output in model.outputs]
    violations = [
        FieldViolation(_at(f"{path}.outputs[{j}].name"), f"{name!r} is empty or listed twice")
        for j, name in enumerate(names)
        if not name or names.count(name) > 1
    ]
    if shape is None:
        return violations
    matching = [o for o in model.outputs if o.data_type == _FLOAT32 and list(o.shape) == shape]
    if len(matching) != 1:
        violations.append(
            FieldViolation(
                _at(f"{path}.outputs"),
                f"a {mp.ModelRole.Name(model.role)} graph declares exactly one float32 output of shape "
                f"{shape} ({len(matching)} here)",
            )
        )
    return violations


def _parity_violations(
    model: mp.ModelFile, path: str, manifest: mp.ModelManifest, limits: ValidationLimits
) -> list[FieldViolation]:
    parity = model.parity
    violations = []
    if parity.output not in {output.name for output in model.outputs}:
        violations.append(
            FieldViolation(
                _at(f"{path}.parity.output"), f"{parity.output!r} is not one of the graph's outputs"
            )
        )
    if not 0 < parity.tolerance <= limits.max_parity_tolerance:
        violations.append(
            FieldViolation(
                _at(f"{path}.parity.tolerance"),
                f"{parity.tolerance!r}; this service accepts above 0 and up to {limits.max_parity_tolerance}",
            )
        )
    if parity.rule not in (mp.PARITY_RULE_ABSOLUTE, mp.PARITY_RULE_RELATIVE_TO_MEAN):
        violations.append(FieldViolation(_at(f"{path}.parity.rule"), "ABSOLUTE or RELATIVE_TO_MEAN"))
    if parity.sample_file not in manifest.files or parity.sample_file == model.file:
        violations.append(
            FieldViolation(
                _at(f"{path}.parity.sample_file"), f"{parity.sample_file!r} is not a listed sample file"
            )
        )
    return violations
