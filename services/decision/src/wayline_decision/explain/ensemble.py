"""A package graph's tree ensemble, read from its ONNX node into plain trees (no ONNX Runtime involved).

onnxmltools converts an XGBoost booster into a graph of one node of the `ai.onnx.ml` domain (opset 1 here,
onnxmltools' default): `TreeEnsembleClassifier` for the response graph (binary, LOGISTIC post-transform,
every leaf weight on class id 0, the booster's base margin in `base_values`) and `TreeEnsembleRegressor`
for the value graph (one target, SUM, post-transform NONE). Both describe nodes as parallel lists
(`nodes_treeids`, `nodes_nodeids`, `nodes_featureids`, `nodes_modes`, `nodes_values`, `nodes_truenodeids`,
`nodes_falsenodeids`, `nodes_missing_value_tracks_true`) and leaves as weight triples (`class_*` or
`target_*`). Opset 3 may carry thresholds, weights and base values as tensors instead (`*_as_tensor`, in
double); both forms are read. A row goes to the true branch when `x MODE threshold` holds, or when x is NaN
and the node's missing value tracks true, which is how ONNX Runtime walks them.

Only what the package format produces is accepted, so that an explanation never silently means something
other than the graph's margin: one tree-ensemble node, one class or target, SUM aggregation, a post-
transform of NONE (regressor) or LOGISTIC (binary classifier). Anything else is `EnsembleUnsupported`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import numpy_helper

__all__ = ["MODES", "EnsembleUnsupported", "Tree", "TreeEnsemble", "read_ensemble"]

# The comparison each branch mode makes; its code is the index (LEAF is not a branch).
MODES = ("BRANCH_LT", "BRANCH_LEQ", "BRANCH_GT", "BRANCH_GTE", "BRANCH_EQ", "BRANCH_NEQ")
_ML = "ai.onnx.ml"
_KINDS = {"TreeEnsembleClassifier": "classifier", "TreeEnsembleRegressor": "regressor"}
_POST_TRANSFORM = {"classifier": "LOGISTIC", "regressor": "NONE"}


class EnsembleUnsupported(ValueError):
    """The graph is not a tree ensemble this explainer reads; the message says what it is instead."""


@dataclass(frozen=True, slots=True)
class Tree:
    """One tree as node arrays indexed by ONNX node id (ids unused by the tree hold -1 children)."""

    tree_id: int
    root: int
    feature: npt.NDArray[np.int64]
    mode: npt.NDArray[np.int64]  # index into MODES; -1 for a leaf
    threshold: npt.NDArray[np.float64]
    true_child: npt.NDArray[np.int64]
    false_child: npt.NDArray[np.int64]
    missing_true: npt.NDArray[np.bool_]
    leaf_value: npt.NDArray[np.float64]  # the summed weights on a leaf; 0 elsewhere

    def is_leaf(self, node: int) -> bool:
        return bool(self.mode[node] < 0)


@dataclass(frozen=True, slots=True)
class TreeEnsemble:
    """The trees and how their sum becomes the graph's output: output = post_transform(base + Σ leaves)."""

    kind: str  # "classifier" (margin in log-odds, LOGISTIC) or "regressor" (NONE)
    width: int  # the input's columns
    base_value: float
    trees: tuple[Tree, ...]


def read_ensemble(graph: bytes, width: int) -> TreeEnsemble:
    """The ensemble of a serialised ONNX graph with a float input of `width` columns."""
    try:
        model = onnx.load_model_from_string(graph)
    except Exception as error:  # noqa: BLE001 - onnx raises protobuf's untyped DecodeError
        raise EnsembleUnsupported(f"not an ONNX model: {error}") from None
    nodes = list(model.graph.node)
    if len(nodes) != 1 or nodes[0].domain != _ML or nodes[0].op_type not in _KINDS:
        found = ", ".join(f"{n.domain or 'ai.onnx'}.{n.op_type}" for n in nodes)
        raise EnsembleUnsupported(
            f"the graph is [{found}]; explanations need exactly one ai.onnx.ml TreeEnsembleClassifier or "
            "TreeEnsembleRegressor node (what onnxmltools makes of an XGBoost booster)"
        )
    node = nodes[0]
    kind = _KINDS[node.op_type]
    attributes = {a.name: a for a in node.attribute}
    _check_output_rules(kind, attributes)
    prefix = "class" if kind == "classifier" else "target"
    base = _floats(attributes, "base_values")
    if len(base) > 1:
        raise EnsembleUnsupported(f"{len(base)} base values; one class or target is explained")
    trees = _trees(attributes, prefix, width)
    return TreeEnsemble(kind, width, float(base[0]) if len(base) else 0.0, trees)


def _check_output_rules(kind: str, attributes: dict[str, onnx.AttributeProto]) -> None:
    post = _string(attributes, "post_transform", "NONE")
    if post != _POST_TRANSFORM[kind]:
        raise EnsembleUnsupported(
            f"post_transform {post}; a {kind} is explained with {_POST_TRANSFORM[kind]}"
        )
    if kind == "regressor":
        if _string(attributes, "aggregate_function", "SUM") != "SUM":
            raise EnsembleUnsupported("only SUM aggregation is explained")
        if _ints(attributes, "n_targets", [1]) != [1]:
            raise EnsembleUnsupported("only one target is explained")
    elif (
        len(_ints(attributes, "classlabels_int64s", [])) + len(_strings(attributes, "classlabels_strings"))
        != 2
    ):
        raise EnsembleUnsupported("only a binary classifier is explained")


def _trees(attributes: dict[str, onnx.AttributeProto], prefix: str, width: int) -> tuple[Tree, ...]:
    tree_ids = np.asarray(_ints(attributes, "nodes_treeids", []), dtype=np.int64)
    node_ids = np.asarray(_ints(attributes, "nodes_nodeids", []), dtype=np.int64)
    features = np.asarray(_ints(attributes, "nodes_featureids", []), dtype=np.int64)
    thresholds = np.asarray(_floats(attributes, "nodes_values"), dtype=np.float64)
    trues = np.asarray(_ints(attributes, "nodes_truenodeids", []), dtype=np.int64)
    falses = np.asarray(_ints(attributes, "nodes_falsenodeids", []), dtype=np.int64)
    modes = _strings(attributes, "nodes_modes")
    n = len(node_ids)
    missing = np.asarray(_ints(attributes, "nodes_missing_value_tracks_true", [0] * n), dtype=bool)
    if not n or any(len(a) != n for a in (tree_ids, features, thresholds, trues, falses, modes, missing)):
        raise EnsembleUnsupported("the node attributes are empty or of different lengths")
    codes = np.array([MODES.index(m) if m in MODES else (-1 if m == "LEAF" else -2) for m in modes])
    if (codes == -2).any():
        raise EnsembleUnsupported(f"unknown node mode {modes[int(np.argmax(codes == -2))]!r}")
    branch = codes >= 0
    if branch.any() and (features[branch].min() < 0 or features[branch].max() >= width):
        raise EnsembleUnsupported(f"a node reads a feature outside the input's {width} columns")
    weight_trees = _ints(attributes, f"{prefix}_treeids", [])
    weight_nodes = _ints(attributes, f"{prefix}_nodeids", [])
    weight_ids = set(_ints(attributes, f"{prefix}_ids", []))
    weights = _floats(attributes, f"{prefix}_weights")
    if len(weight_ids) > 1:
        raise EnsembleUnsupported(f"leaf weights for {len(weight_ids)} {prefix} ids; one is explained")
    leaf_sums: dict[tuple[int, int], float] = {}
    for tree, node, weight in zip(weight_trees, weight_nodes, weights, strict=True):
        leaf_sums[(tree, node)] = leaf_sums.get((tree, node), 0.0) + float(weight)
    trees = []
    for tree_id in np.unique(tree_ids):
        at = np.flatnonzero(tree_ids == tree_id)
        trees.append(
            _tree(
                tree_id=int(tree_id),
                ids=node_ids[at],
                features=features[at],
                codes=codes[at],
                thresholds=thresholds[at],
                trues=trues[at],
                falses=falses[at],
                missing=missing[at],
                leaf_sums=leaf_sums,
            )
        )
    return tuple(trees)


def _tree(
    *,
    tree_id: int,
    ids: npt.NDArray[np.int64],
    features: npt.NDArray[np.int64],
    codes: npt.NDArray[np.int64],
    thresholds: npt.NDArray[np.float64],
    trues: npt.NDArray[np.int64],
    falses: npt.NDArray[np.int64],
    missing: npt.NDArray[np.bool_],
    leaf_sums: dict[tuple[int, int], float],
) -> Tree:
    size = int(ids.max()) + 1
    if ids.min() < 0 or len(np.unique(ids)) != len(ids):
        raise EnsembleUnsupported(f"tree {tree_id}: node ids are negative or repeated")

    def column(values: npt.NDArray[Any], fill: Any, dtype: Any) -> npt.NDArray[Any]:
        out = np.full(size, fill, dtype=dtype)
        out[ids] = values
        return out

    branch = codes >= 0
    true_child = column(np.where(branch, trues, -1), -1, np.int64)
    false_child = column(np.where(branch, falses, -1), -1, np.int64)
    mode = column(codes, -1, np.int64)
    children = np.concatenate([true_child[true_child >= 0], false_child[false_child >= 0]])
    if (
        (children >= size).any()
        or not np.isin(children, ids).all()
        or len(np.unique(children)) != len(children)
    ):
        raise EnsembleUnsupported(f"tree {tree_id}: a branch points at a missing or shared node")
    roots = np.setdiff1d(ids, children)
    if len(roots) != 1:
        raise EnsembleUnsupported(f"tree {tree_id}: {len(roots)} roots; a tree has one")
    leaf_value = np.zeros(size)
    for node in ids[~branch]:
        leaf_value[node] = leaf_sums.get((tree_id, int(node)), 0.0)
    return Tree(
        tree_id=tree_id,
        root=int(roots[0]),
        feature=column(features, 0, np.int64),
        mode=mode,
        threshold=column(thresholds, 0.0, np.float64),
        true_child=true_child,
        false_child=false_child,
        missing_true=column(missing, False, bool),
        leaf_value=leaf_value,
    )


def _floats(attributes: dict[str, onnx.AttributeProto], name: str) -> list[float]:
    """A float list attribute or its `_as_tensor` form (opset 3, possibly double)."""
    if name in attributes:
        return [float(v) for v in attributes[name].floats]
    tensor = attributes.get(f"{name}_as_tensor")
    if tensor is None:
        return []
    return [float(v) for v in numpy_helper.to_array(tensor.t).ravel()]


def _ints(attributes: dict[str, onnx.AttributeProto], name: str, default: Sequence[int]) -> list[int]:
    if name not in attributes:
        return list(default)
    attribute = attributes[name]
    return (
        [int(attribute.i)] if attribute.type == onnx.AttributeProto.INT else [int(v) for v in attribute.ints]
    )


def _strings(attributes: dict[str, onnx.AttributeProto], name: str) -> list[str]:
    return [v.decode() for v in attributes[name].strings] if name in attributes else []


def _string(attributes: dict[str, onnx.AttributeProto], name: str, default: str) -> str:
    return attributes[name].s.decode() if name in attributes else default
