"""`validate_package` on real packages (tiny XGBoost boosters exported with onnxmltools), each broken in one
way: every refusal is a PackageInvalid whose field violation names the file at fault and the problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.decision.model_packages import (
    build_package,
    edit_manifest,
    feature_spec,
    graphs,
    read_manifest,
    replace_file,
    stamp,
)
from wayline.decision.v1 import model_package_pb2 as mp
from wayline.journeys.v1 import feature_pb2
from wayline_decision.errors import PackageInvalid
from wayline_decision.packages import package_digest, sha256_file
from wayline_decision.validation import ValidationLimits, validate_package

LIMITS = ValidationLimits()


@pytest.fixture
def package(tmp_path: Path) -> Path:
    return build_package(tmp_path / "package")


def refusal(directory: Path, limits: ValidationLimits = LIMITS) -> dict[str, tuple[str, str]]:
    """field → (reason, description) of each violation validating `directory` raises."""
    with pytest.raises(PackageInvalid) as refused:
        validate_package(directory, limits)
    assert refused.value.reason == "PACKAGE_INVALID"
    return {v.field: (v.reason, v.description) for v in refused.value.violations}


def test_a_valid_package_passes_with_its_manifest_and_digest(package: Path) -> None:
    valid = validate_package(package, LIMITS)
    assert valid.manifest.model_id == "next-best-offer"
    assert set(valid.digests) == {p.name for p in package.iterdir()}
    assert valid.digests["response.onnx"] == sha256_file(package / "response.onnx")
    assert valid.digest == package_digest(valid.digests)


def test_a_corrupted_file_fails_its_sha256(package: Path) -> None:
    data = bytearray((package / "value.onnx").read_bytes())
    data[-1] ^= 0xFF
    replace_file(package, "value.onnx", bytes(data), relist=False)
    found = refusal(package)
    assert list(found) == ["value.onnx"]
    assert found["value.onnx"][0] == "SHA256_MISMATCH"


def test_the_directory_must_hold_exactly_the_listed_files(package: Path) -> None:
    (package / "notes.txt").write_text("not listed")
    (package / "model_card.md").unlink()
    found = refusal(package)
    assert found["notes.txt"][0] == "UNLISTED"
    assert found["model_card.md"][0] == "MISSING"


def test_the_manifest_is_read_strictly(package: Path) -> None:
    manifest = json.loads((package / "manifest.json").read_text())
    (package / "manifest.json").write_text(json.dumps({**manifest, "extra": 1}))
    assert refusal(package)["manifest.json"][0] == "UNPARSABLE"
    # Python's JSON reads `1e999` as infinity, which no enum holds.
    text = json.dumps({**manifest, "actionEncoding": 0})
    text = text.replace('"actionEncoding": 0', '"actionEncoding": 1e999')
    (package / "manifest.json").write_text(text)
    assert refusal(package)["manifest.json"][0] == "UNPARSABLE"
    (package / "manifest.json").unlink()
    assert refusal(package)["manifest.json"][0] == "MISSING"


def test_manifest_fields_are_checked(package: Path) -> None:
    def change(m: mp.ModelManifest) -> None:
        m.format_version = 2
        m.model_id = "Not An Id"
        m.action_ids[:] = ["only", "only"]
        m.feature_spec.features[1].name = "orders_30d"
        m.feature_spec.features[0].value_type = feature_pb2.FEATURE_VALUE_TYPE_CATEGORY
        m.models[1].role = mp.MODEL_ROLE_RESPONSE
        m.models[0].parity.tolerance = 0.5

    edit_manifest(package, change)
    found = refusal(package)
    for field in (
        "manifest.json:format_version",
        "manifest.json:model_id",
        "manifest.json:action_ids",
        "manifest.json:action_ids[1]",
        "manifest.json:feature_spec.features[1].name",
        "manifest.json:feature_spec.features[0].value_type",
        "manifest.json:models",
        "manifest.json:models[0].parity.tolerance",
    ):
        assert field in found, (field, found)


def test_features_reordered_in_the_manifest_do_not_match_the_graphs(package: Path) -> None:
    """The input tensor cannot tell one float column from another; the spec stamped in each graph can."""
    edit_manifest(package, lambda m: m.feature_spec.features.reverse())
    found = refusal(package)
    reason, description = found["response.onnx:metadata.wayline.feature_spec"]
    assert reason == "SCHEMA_MISMATCH"
    assert "input column 0 = feature 'orders_30d'" in description
    assert "value.onnx:metadata.wayline.feature_spec" in found


def test_actions_reordered_in_the_manifest_do_not_match_the_graphs(package: Path) -> None:
    edit_manifest(package, lambda m: m.action_ids.reverse())
    assert refusal(package)["response.onnx:metadata.wayline.actions"][0] == "SCHEMA_MISMATCH"


def test_a_graph_of_the_wrong_input_width_is_refused(package: Path) -> None:
    """A manifest and stamps that agree on four features, over graphs that read three."""
    spec = feature_spec()
    spec.features.add(name="sessions_7d", aggregation=feature_pb2.FEATURE_AGGREGATION_COUNT)
    manifest = read_manifest(package)
    actions = tuple(manifest.action_ids)
    for file, graph in (("response.onnx", graphs().response), ("value.onnx", graphs().value)):
        replace_file(package, file, stamp(graph, spec, actions))

    def widen(m: mp.ModelManifest) -> None:
        m.feature_spec.CopyFrom(spec)
        for model in m.models:
            model.input.shape[:] = [-1, 7]

    edit_manifest(package, widen)
    found = refusal(package)
    assert found["response.onnx:input"][0] == "SCHEMA_MISMATCH"
    assert "[-1, 6]" in found["response.onnx:input"][1]
    assert "value.onnx:input" in found


def test_a_failing_parity_sample_names_the_graph(package: Path) -> None:
    sample = json.loads((package / "response_parity.json").read_text())
    sample["expected"][3][1] += 0.01
    replace_file(package, "response_parity.json", json.dumps(sample).encode())
    reason, description = refusal(package)["response.onnx:parity"]
    assert reason == "PARITY_FAILED"
    assert "row 3 column 1" in description


def test_relative_to_mean_scales_the_tolerance_by_the_mean_magnitude(package: Path) -> None:
    """Values average about 20: 1e-4 is within 1e-5 times 20 relative to the mean, and not absolutely."""
    sample = json.loads((package / "value_parity.json").read_text())
    assert sum(abs(row[0]) for row in sample["expected"]) / len(sample["expected"]) > 10
    sample["expected"][0][0] += 1e-4
    replace_file(package, "value_parity.json", json.dumps(sample).encode())
    validate_package(package, LIMITS)

    def absolute(m: mp.ModelManifest) -> None:
        m.models[1].parity.rule = mp.PARITY_RULE_ABSOLUTE

    edit_manifest(package, absolute)
    assert refusal(package)["value.onnx:parity"][0] == "PARITY_FAILED"


def test_a_malformed_parity_sample_names_the_sample(package: Path) -> None:
    replace_file(package, "value_parity.json", b'{"inputs": [[1, 2]], "expected": [[1]]}')
    assert "value_parity.json" in refusal(package)


def test_a_file_that_is_not_onnx_does_not_load(package: Path) -> None:
    replace_file(package, "value.onnx", b"not a graph")
    assert refusal(package)["value.onnx"][0] == "LOAD_FAILED"


def test_a_graph_without_the_declared_output_is_refused(package: Path) -> None:
    def rename(m: mp.ModelManifest) -> None:
        m.models[1].outputs[0].name = "prediction"
        m.models[1].parity.output = "prediction"

    edit_manifest(package, rename)
    assert "value.onnx:outputs[0]" in refusal(package)


def test_the_response_role_needs_its_probability_output(package: Path) -> None:
    edit_manifest(package, lambda m: m.models[0].outputs[1].shape.__setitem__(1, 3))
    assert "manifest.json:models[0].outputs" in refusal(package)


def test_the_service_caps_the_parity_tolerance(package: Path) -> None:
    assert "manifest.json:models[0].parity.tolerance" in refusal(
        package, ValidationLimits(max_parity_tolerance=1e-6)
    )


def test_the_package_digest_differs_with_any_file(tmp_path: Path) -> None:
    one = validate_package(build_package(tmp_path / "a"), LIMITS)
    other = validate_package(build_package(tmp_path / "b", card=" Changed."), LIMITS)
    assert one.digests["response.onnx"] == other.digests["response.onnx"]
    assert one.digest != other.digest
