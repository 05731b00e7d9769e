"""Exact TreeSHAP over real exported graphs: contributions and base value sum to the margin the graph
computes (ONNX Runtime's), and equal XGBoost's own path-dependent TreeSHAP (`pred_contribs`) on the same
booster, missing values included."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import xgboost as xgb
from onnx import helper, numpy_helper

from tests.decision.explain.boosters import WIDTH, Exported, classifier, regressor, rows
from wayline_decision.explain.covers import CoversInvalid, read_covers
from wayline_decision.explain.ensemble import EnsembleUnsupported, read_ensemble
from wayline_decision.explain.treeshap import TreeShap


def _ort_margin(graph: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = session.run(None, {"features": x})
    if len(outputs) == 1:  # the value graph: the output is the margin
        return np.asarray(outputs[0], dtype=np.float64)[:, 0]
    p = np.asarray(outputs[1], dtype=np.float64)[:, 1]
    return np.log(p / (1 - p))


@pytest.mark.parametrize("exported", [classifier, regressor], ids=["response", "value"])
def test_contributions_sum_to_the_graphs_margin_on_many_rows_with_nans(exported: object) -> None:
    model: Exported = exported()  # type: ignore[operator]
    explainer = model.explainer()
    x = rows(400, seed=11)
    explanations = [explainer.explain(row) for row in x]
    total = np.array([e.base_value + e.contributions.sum() for e in explanations])
    walked = np.array([e.margin for e in explanations])
    np.testing.assert_allclose(total, walked, rtol=0, atol=1e-9)
    # ONNX Runtime sums float32 leaves: ~1e-6 of the margin's scale apart from our float64 sum.
    scale = max(1.0, float(np.abs(walked).mean()))
    np.testing.assert_allclose(walked, _ort_margin(model.graph, x), rtol=0, atol=1e-4 * scale)
    assert all(e.contributions.shape == (WIDTH,) for e in explanations)
    assert len({e.base_value for e in explanations}) == 1


@pytest.mark.parametrize("exported", [classifier, regressor], ids=["response", "value"])
def test_contributions_equal_xgboosts_pred_contribs_on_the_same_booster(exported: object) -> None:
    model: Exported = exported()  # type: ignore[operator]
    explainer = model.explainer()
    x = rows(300, seed=12)
    ours = np.array([np.append(e.contributions, e.base_value) for e in map(explainer.explain, x)])
    theirs = model.booster.predict(xgb.DMatrix(x), pred_contribs=True).astype(np.float64)
    scale = max(1.0, float(np.abs(theirs).max()))
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5 * scale)  # XGBoost answers in float32
    # Not a vacuous agreement: every feature contributes somewhere, and NaN rows differ from filled ones.
    assert (np.abs(ours[:, :WIDTH]) > 1e-3).any(axis=0).all()


def test_a_missing_value_follows_the_trees_default_direction() -> None:
    explainer = classifier().explainer()
    row = rows(50, seed=13)[10]
    row[0] = np.nan
    missing = explainer.explain(row)
    expected = classifier().booster.predict(xgb.DMatrix(row[None, :]), pred_contribs=True)[0]
    np.testing.assert_allclose(missing.contributions, expected[:WIDTH], atol=1e-5)
    filled = row.copy()
    filled[0] = 0.0  # the fill the training data's NaN most resembles is still another path
    assert explainer.explain(filled).margin != pytest.approx(missing.margin, abs=1e-6)


def _as_tensor_form(graph: onnx.ModelProto) -> onnx.ModelProto:
    """The same ensemble as ai.onnx.ml opset 3 may write it: thresholds, weights and base values as tensors
    (`*_as_tensor`; float, the type ONNX Runtime requires for a float input)."""
    changed = onnx.ModelProto()
    changed.CopyFrom(graph)
    node = changed.graph.node[0]
    kept = []
    for attribute in node.attribute:
        if attribute.name in ("nodes_values", "class_weights", "target_weights", "base_values"):
            values = np.array(attribute.floats, dtype=np.float32)
            tensor = numpy_helper.from_array(values, name=attribute.name)
            kept.append(helper.make_attribute(f"{attribute.name}_as_tensor", tensor))
        else:
            kept.append(attribute)
    del node.attribute[:]
    node.attribute.extend(kept)
    for opset in changed.opset_import:
        if opset.domain == "ai.onnx.ml":
            opset.version = 3
    return changed


@pytest.mark.parametrize("exported", [classifier, regressor], ids=["response", "value"])
def test_the_as_tensor_attribute_forms_explain_the_same(exported: object) -> None:
    model: Exported = exported()  # type: ignore[operator]
    tensor_graph = _as_tensor_form(model.graph)
    ensemble = read_ensemble(tensor_graph.SerializeToString(), WIDTH)
    explainer = TreeShap(ensemble, read_covers(model.covers, ensemble))
    x = rows(100, seed=14)
    for row in x:
        a, b = explainer.explain(row), model.explainer().explain(row)
        np.testing.assert_allclose(a.contributions, b.contributions, atol=1e-6)
    walked = np.array([explainer.explain(row).margin for row in x])
    scale = max(1.0, float(np.abs(walked).mean()))
    np.testing.assert_allclose(walked, _ort_margin(tensor_graph, x), atol=1e-4 * scale)


def test_covers_of_another_graph_are_refused() -> None:
    ensemble = read_ensemble(classifier().graph.SerializeToString(), WIDTH)
    with pytest.raises(CoversInvalid):
        read_covers(regressor().covers, ensemble)


def test_an_edited_cover_is_refused_with_the_node_it_breaks() -> None:
    ensemble = read_ensemble(classifier().graph.SerializeToString(), WIDTH)
    document = json.loads(classifier().covers)
    document["trees"][4][0] *= 1.5
    with pytest.raises(CoversInvalid, match=r"trees\[4\].*node 0"):
        read_covers(json.dumps(document).encode(), ensemble)
    document["trees"][4][0] = None
    with pytest.raises(CoversInvalid, match="no positive cover"):
        read_covers(json.dumps(document).encode(), ensemble)


def test_a_graph_that_is_not_one_tree_ensemble_is_refused() -> None:
    graph = helper.make_model(
        helper.make_graph(
            [helper.make_node("Identity", ["features"], ["out"])],
            "identity",
            [helper.make_tensor_value_info("features", onnx.TensorProto.FLOAT, [None, WIDTH])],
            [helper.make_tensor_value_info("out", onnx.TensorProto.FLOAT, [None, WIDTH])],
        )
    )
    with pytest.raises(EnsembleUnsupported, match=r"ai\.onnx\.Identity"):
        read_ensemble(graph.SerializeToString(), WIDTH)
    with pytest.raises(EnsembleUnsupported, match="outside the input"):
        read_ensemble(classifier().graph.SerializeToString(), 2)
