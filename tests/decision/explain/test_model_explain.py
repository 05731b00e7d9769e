"""`ServingModel.explain` on packages written by `wayline_ml`: the response graph's log-odds explained per
candidate, built on first use and kept; packages without covers still serve but cannot explain; a package
whose covers do not describe its graphs is refused at validation."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from tests.decision.ml_package import ml_package
from tests.decision.model_packages import build_package, replace_file
from wayline.decision.v1 import model_package_pb2 as mp
from wayline_decision.errors import ExplanationUnavailable, PackageInvalid
from wayline_decision.packages import PackageId
from wayline_decision.registry import RegisteredVersion
from wayline_decision.serving.loaded import ServingModel, load_version
from wayline_decision.validation import ValidationLimits, read_manifest, validate_package

LIMITS = ValidationLimits(max_parity_tolerance=1e-3)


def _load(directory: Path) -> ServingModel:
    manifest = read_manifest(directory)
    registered = RegisteredVersion(
        PackageId(manifest.model_id, manifest.version), manifest, "digest", datetime.now(UTC), str(directory)
    )
    return load_version("acme", registered, directory, LIMITS)


def test_explain_sums_to_the_log_odds_of_the_served_propensity(tmp_path: Path) -> None:
    model = _load(ml_package(tmp_path / "p", model_id="offers", version="1"))
    generator = np.random.default_rng(8)
    for trial in range(40):
        features = generator.normal(size=len(model.feature_names)).astype(np.float32)
        features[generator.uniform(size=features.shape) < 0.2] = np.nan
        action = trial % len(model.action_ids)
        explanation = model.explain(features, action)
        p = float(model.score(features, [action]).propensity[0])
        assert explanation.contributions.shape == (model.width,)
        assert explanation.base_value + explanation.contributions.sum() == pytest.approx(explanation.margin)
        assert explanation.margin == pytest.approx(np.log(p / (1 - p)), abs=1e-4)
        # Only the candidate's own one-hot column is 1; the others still carry what being 0 is worth.
        value = model.explain(features, action, mp.MODEL_ROLE_VALUE)
        assert value.margin == pytest.approx(float(model.score(features, [action]).value[0]), rel=1e-5)


def test_the_explainer_is_built_once_on_first_use_by_concurrent_callers(tmp_path: Path) -> None:
    model = _load(ml_package(tmp_path / "p", model_id="offers", version="1"))
    explainers = model._explainers  # the cache is what this test is about
    assert explainers._built == {}  # loading and scoring build nothing
    features = np.zeros(len(model.feature_names), dtype=np.float32)
    seen: list[object] = []
    barrier = threading.Barrier(8)

    def explain() -> None:
        barrier.wait()
        model.explain(features, 0)
        seen.append(explainers.get(mp.MODEL_ROLE_RESPONSE))

    threads = [threading.Thread(target=explain) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(seen) == 8
    assert len({id(e) for e in seen}) == 1
    assert set(explainers._built) == {mp.MODEL_ROLE_RESPONSE}  # the value graph: not asked


def test_a_package_without_covers_serves_but_cannot_explain(tmp_path: Path) -> None:
    directory = build_package(tmp_path / "p")
    model = _load(directory)
    features = np.zeros(len(model.feature_names), dtype=np.float32)
    assert model.score(features, [0, 1]).propensity.shape == (2,)
    with pytest.raises(ExplanationUnavailable) as refused:
        model.explain(features, 0)
    assert refused.value.reason == "EXPLANATION_UNAVAILABLE"
    assert "cover_file" in refused.value.message


def test_a_package_whose_covers_do_not_fit_its_graph_is_refused(tmp_path: Path) -> None:
    directory = ml_package(tmp_path / "p", model_id="offers", version="1")
    covers = json.loads((directory / "response_covers.json").read_bytes())
    covers["trees"][0][0] *= 2  # the root's cover no longer the sum of its children's
    replace_file(directory, "response_covers.json", json.dumps(covers).encode())
    with pytest.raises(PackageInvalid) as refused:
        validate_package(directory, LIMITS)
    (violation,) = refused.value.violations
    assert (violation.field, violation.reason) == ("response_covers.json", "COVERS_INVALID")
    assert "node 0" in violation.description


def test_a_cover_file_the_manifest_does_not_list_is_refused(tmp_path: Path) -> None:
    directory = ml_package(tmp_path / "p", model_id="offers", version="1")
    manifest = json.loads((directory / "manifest.json").read_bytes())
    manifest["models"][0]["coverFile"] = "elsewhere.json"
    replace_file(directory, "manifest.json", json.dumps(manifest).encode(), relist=False)
    with pytest.raises(PackageInvalid) as refused:
        validate_package(directory, LIMITS)
    assert any(v.field.endswith("models[0].cover_file") for v in refused.value.violations)
