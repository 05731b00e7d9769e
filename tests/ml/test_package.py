"""The model package: it validates; a corrupted, re-labelled or re-shaped one fails naming the problem; it is
immutable; the per-tenant directory registry puts, gets and lists versions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx
import pytest
from google.protobuf import json_format

from wayline.decision.v1 import model_package_pb2 as mpb
from wayline.journeys.v1 import feature_pb2 as fpb
from wayline_ml.evaluate import Evaluation
from wayline_ml.export import ExportedModels, to_onnx
from wayline_ml.manifest import MANIFEST_FILE
from wayline_ml.package import PackageExists, write_package
from wayline_ml.registry import DirectoryRegistry, RegistryError
from wayline_ml.train import TrainedModels
from wayline_ml.validation import PackageError, sha256_file, validate


def _copy(package: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "package"
    shutil.copytree(package, copy)
    for file in copy.iterdir():
        file.chmod(0o644)
    return copy


def _edit_manifest(package: Path, edit: dict[str, object]) -> None:
    manifest = json.loads((package / MANIFEST_FILE).read_text())
    manifest.update(edit)
    (package / MANIFEST_FILE).write_text(json.dumps(manifest))


def _edit_spec(package: Path, features: list[dict[str, object]]) -> None:
    spec = json.loads((package / MANIFEST_FILE).read_text())["featureSpec"]
    _edit_manifest(package, {"featureSpec": spec | {"features": features}})


def _relist(package: Path, file: str) -> None:
    """List `file`'s new digest in the manifest (an edit that keeps the sha256 check quiet)."""
    files = json.loads((package / MANIFEST_FILE).read_text())["files"]
    _edit_manifest(package, {"files": files | {file: sha256_file(package / file)}})


def test_package_validates_and_its_manifest_describes_it(package: Path, models: TrainedModels) -> None:
    manifest = validate(package)
    assert (manifest.model_id, manifest.version) == ("nba", "1.0.0")
    assert manifest.feature_spec == models.schema.spec
    assert [f.name for f in manifest.feature_spec.features] == list(models.schema.names)
    assert {f.value_type for f in manifest.feature_spec.features} == {
        fpb.FEATURE_VALUE_TYPE_FLOAT,
        fpb.FEATURE_VALUE_TYPE_INT,
        fpb.FEATURE_VALUE_TYPE_BOOL,
        fpb.FEATURE_VALUE_TYPE_CATEGORY,
    }
    assert list(manifest.action_ids) == list(models.actions)
    assert set(manifest.files) == {
        "response.onnx",
        "value.onnx",
        "response_parity.json",
        "value_parity.json",
        "response_covers.json",
        "value_covers.json",
        "model_card.md",
    }
    assert [m.cover_file for m in manifest.models] == ["response_covers.json", "value_covers.json"]
    assert all(sha256_file(package / name) == digest for name, digest in manifest.files.items())
    assert list(manifest.models[0].outputs[1].shape) == [-1, 2]
    window = manifest.training_window
    assert window.train_end_time.ToMicroseconds() < window.holdout_start_time.ToMicroseconds()
    assert manifest.metrics["lift_vs_best_single"] > 0
    assert manifest.onnx_opsets["ai.onnx.ml"] >= 1
    assert "xgboost-cpu" in manifest.libraries
    assert "Offline policy value" in (package / "model_card.md").read_text()
    # The manifest is the contract's message: the decision service parses the same file strictly.
    parsed = json_format.Parse((package / MANIFEST_FILE).read_text(), mpb.ModelManifest())
    assert parsed == manifest


def test_flipped_byte_fails_naming_the_file_and_the_sha256(package: Path, tmp_path: Path) -> None:
    copy = _copy(package, tmp_path)
    data = bytearray((copy / "value.onnx").read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / "value.onnx").write_bytes(bytes(data))
    with pytest.raises(PackageError, match=r"^value\.onnx: sha256 mismatch: the manifest lists [0-9a-f]{64}"):
        validate(copy)


def test_reordered_features_fail_as_a_spec_mismatch(package: Path, tmp_path: Path) -> None:
    copy = _copy(package, tmp_path)
    features = json.loads((copy / MANIFEST_FILE).read_text())["featureSpec"]["features"]
    features[0], features[2] = features[2], features[0]
    _edit_spec(copy, features)
    with pytest.raises(
        PackageError,
        match=r"response\.onnx: feature spec mismatch at input column 0: the model was trained on "
        r"price_sensitivity \(person_property, float\), the manifest declares app_affinity",
    ):
        validate(copy)


def test_changed_feature_type_fails_as_a_spec_mismatch(package: Path, tmp_path: Path) -> None:
    copy = _copy(package, tmp_path)
    features = json.loads((copy / MANIFEST_FILE).read_text())["featureSpec"]["features"]
    features[4]["valueType"] = "FEATURE_VALUE_TYPE_FLOAT"  # sessions_30d was an int
    _edit_spec(copy, features)
    with pytest.raises(
        PackageError,
        match=r"column 4: the model was trained on sessions_30d \(person_property, int\), "
        r"the manifest declares sessions_30d \(person_property, float\)",
    ):
        validate(copy)


def test_onnx_input_of_another_width_fails(package: Path, tmp_path: Path, models: TrainedModels) -> None:
    copy = _copy(package, tmp_path)
    original = onnx.load(copy / "response.onnx")
    wider = to_onnx(models.response, models.n_inputs + 1)
    onnx.helper.set_model_props(wider, {p.key: p.value for p in original.metadata_props})
    onnx.save(wider, copy / "response.onnx")
    _relist(copy, "response.onnx")
    with pytest.raises(
        PackageError,
        match=rf"response\.onnx: input 'features' has \[{models.n_inputs + 1}\] "
        rf"columns, the manifest's features and actions give {models.n_inputs}",
    ):
        validate(copy)


def test_a_parity_sample_the_graph_does_not_reproduce_fails(package: Path, tmp_path: Path) -> None:
    copy = _copy(package, tmp_path)
    sample = json.loads((copy / "value_parity.json").read_text())
    sample["expected"][0][0] += 1.0
    (copy / "value_parity.json").write_text(json.dumps(sample))
    _relist(copy, "value_parity.json")
    with pytest.raises(
        PackageError,
        match=r"value\.onnx: parity sample value_parity\.json: differs from the training library",
    ):
        validate(copy)


def test_malformed_manifest_fails_naming_the_field(package: Path, tmp_path: Path) -> None:
    copy = _copy(package, tmp_path)
    features = json.loads((copy / MANIFEST_FILE).read_text())["featureSpec"]["features"]
    features[2]["valueType"] = "FEATURE_VALUE_TYPE_DOUBLE"
    _edit_spec(copy, features)
    with pytest.raises(PackageError, match=r"manifest\.json: .*FEATURE_VALUE_TYPE_DOUBLE"):
        validate(copy)
    other = _copy(package, tmp_path / "other")
    _edit_manifest(other, {"actionIds": ["only_one"]})
    with pytest.raises(PackageError, match=r"manifest\.json: action_ids: at least two distinct actions"):
        validate(other)
    newline = _copy(package, tmp_path / "newline")
    _edit_manifest(newline, {"version": "1.0.0\n"})
    with pytest.raises(PackageError, match=r"version: '1\.0\.0\\n' does not match"):
        validate(newline)


def test_unlisted_file_fails(package: Path, tmp_path: Path) -> None:
    copy = _copy(package, tmp_path)
    (copy / "notes.txt").write_text("hello")
    with pytest.raises(PackageError, match=r"notes\.txt: in the package but not listed"):
        validate(copy)


def test_writing_the_same_version_twice_fails(
    package: Path, models: TrainedModels, evaluation: Evaluation, exported: ExportedModels
) -> None:
    before = sha256_file(package / "response.onnx")
    with pytest.raises(PackageExists, match="packages are immutable"):
        write_package(
            package, name="nba", version="1.0.0", models=models, evaluation=evaluation, exported=exported
        )
    assert sha256_file(package / "response.onnx") == before
    assert [p.name for p in package.parent.iterdir()] == ["1.0.0"]  # no staging directory left behind


def test_registry_puts_gets_and_lists_versions_per_tenant(package: Path, tmp_path: Path) -> None:
    registry = DirectoryRegistry(tmp_path / "models")
    stored = registry.put("acme", package)
    assert stored.path == tmp_path / "models" / "acme" / "nba" / "1.0.0"
    assert registry.get("acme", "nba", "1.0.0").manifest == stored.manifest
    assert registry.versions("acme", "nba") == ["1.0.0"]
    assert registry.versions("globex", "nba") == []
    with pytest.raises(PackageExists):
        registry.put("acme", package)
    with pytest.raises(RegistryError, match="no such package"):
        registry.get("globex", "nba", "1.0.0")
    with pytest.raises(RegistryError, match=r"tenant '\.\./acme'"):
        registry.path("../acme", "nba", "1.0.0")
    # `$` matched before a trailing newline: a directory `nba\n` the decision service would refuse.
    for tenant, name, version in [("acme\n", "nba", "1"), ("acme", "nba\n", "1"), ("acme", "nba", "1\n")]:
        with pytest.raises(RegistryError, match="does not match"):
            registry.path(tenant, name, version)


def test_registry_refuses_an_invalid_package(package: Path, tmp_path: Path) -> None:
    copy = _copy(package, tmp_path)
    (copy / "model_card.md").write_text("edited")
    registry = DirectoryRegistry(tmp_path / "models")
    with pytest.raises(PackageError, match=r"model_card\.md: sha256 mismatch"):
        registry.put("acme", copy)
    assert not (tmp_path / "models" / "acme" / "nba").exists()


def test_covers_are_the_boosters_matched_to_the_graphs_node_ids(package: Path, models: TrainedModels) -> None:
    """onnxmltools renumbers nodes; the cover file follows the graph's numbering, not XGBoost's, so every
    graph node has a cover and every branch's is its two children's sum."""
    covers = json.loads((package / "response_covers.json").read_text())["trees"]
    assert len(covers) == models.rounds["response"]
    (node,) = onnx.load(package / "response.onnx").graph.node
    a = {attribute.name: onnx.helper.get_attribute_value(attribute) for attribute in node.attribute}
    dump = json.loads(models.response.get_dump(dump_format="json", with_stats=True)[0])
    assert covers[0][0] == pytest.approx(dump["cover"])
    branches = 0
    for i, (tree, node_id) in enumerate(zip(a["nodes_treeids"], a["nodes_nodeids"], strict=True)):
        assert covers[tree][node_id] > 0
        if a["nodes_modes"][i] != b"LEAF":
            children = covers[tree][a["nodes_truenodeids"][i]] + covers[tree][a["nodes_falsenodeids"][i]]
            assert children == pytest.approx(covers[tree][node_id], rel=1e-4)
            branches += 1
    assert branches > len(covers)
