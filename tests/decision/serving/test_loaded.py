"""A registered version loads for serving and scores like its graphs do on their own."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from tests.decision.ml_package import ml_package
from wayline_decision.errors import PackageInvalid
from wayline_decision.packages import PackageId
from wayline_decision.registry import RegisteredVersion
from wayline_decision.serving.loaded import load_version
from wayline_decision.validation import ValidationLimits, read_manifest

LIMITS = ValidationLimits(max_parity_tolerance=1e-3)


def _registered(directory: Path) -> RegisteredVersion:
    manifest = read_manifest(directory)
    return RegisteredVersion(
        PackageId(manifest.model_id, manifest.version), manifest, "digest", datetime.now(UTC), str(directory)
    )


def test_scores_equal_the_bare_graphs_for_any_subset_of_actions(tmp_path: Path) -> None:
    directory = ml_package(tmp_path / "p", model_id="offers", version="1")
    model = load_version("acme", _registered(directory), directory, LIMITS)
    generator = np.random.default_rng(3)
    features = generator.normal(size=len(model.feature_names)).astype(np.float32)
    features[0] = np.nan  # a missing feature travels as NaN
    indexes = [3, 0, 2] if len(model.action_ids) > 3 else [1, 0]
    scores = model.score(features, indexes)

    bare = ort.InferenceSession(str(directory / "response.onnx"), providers=["CPUExecutionProvider"])
    rows = np.zeros((len(indexes), model.width), dtype=np.float32)
    rows[:, : len(features)] = features
    for row, index in enumerate(indexes):
        rows[row, len(features) + index] = 1.0
    expected = bare.run(["probabilities"], {bare.get_inputs()[0].name: rows})[0][:, 1]
    np.testing.assert_allclose(scores.propensity, expected, rtol=0, atol=1e-7)
    value = ort.InferenceSession(str(directory / "value.onnx"), providers=["CPUExecutionProvider"])
    expected_value = value.run(None, {value.get_inputs()[0].name: rows})[0][:, 0]
    np.testing.assert_allclose(scores.value, expected_value, rtol=1e-6)
    assert model.score(features, []).propensity.shape == (0,)


def test_a_package_damaged_after_registration_does_not_load(tmp_path: Path) -> None:
    directory = ml_package(tmp_path / "p", model_id="offers", version="1")
    registered = _registered(directory)
    graph = directory / "response.onnx"
    graph.write_bytes(graph.read_bytes()[:-10])
    with pytest.raises(PackageInvalid) as refused:
        load_version("acme", registered, directory, LIMITS)
    assert "SHA-256 mismatch" in str(refused.value.violations)
