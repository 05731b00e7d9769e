"""Node covers: what exact path-dependent TreeSHAP needs and an ONNX tree ensemble does not carry.

A node's cover is XGBoost's sum of the hessians of the training rows that reached it (for squared error, the
row count). Path-dependent TreeSHAP weighs the branch a feature outside the coalition would take by its
share of its parent's cover, so explaining a graph exactly as XGBoost's `pred_contribs` does needs them.

onnxmltools renumbers each tree's nodes (depth first) rather than keeping XGBoost's node ids, so the covers
are matched to the exported graph by walking each XGBoost tree and its ONNX tree together from the root
(ONNX's true branch is XGBoost's `yes`, x < split), checking at every node that both split the same feature
at the same threshold, and written by the graph's own tree and node ids, in a file the manifest names
(`ModelFile.cover_file`) and lists with its SHA-256.

The file is JSON `{"trees": [[c0, c1, ...], ...]}`: one list per tree in the graph's tree-id order, indexed
by the graph's node id, null where the tree does not use an id.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import xgboost as xgb

__all__ = ["CoverMismatch", "graph_covers", "write_covers"]


class CoverMismatch(AssertionError):
    """The booster and its ONNX graph do not have the same trees."""


def graph_covers(booster: xgb.Booster, graph: onnx.ModelProto) -> list[list[float | None]]:
    """The booster's node covers by the graph's tree id and node id."""
    dumps = [json.loads(d) for d in booster.get_dump(dump_format="json", with_stats=True)]
    nodes = _graph_nodes(graph)
    if len(nodes) != len(dumps):
        raise CoverMismatch(f"the graph has {len(nodes)} trees, the booster {len(dumps)}")
    trees: list[list[float | None]] = []
    for tree_id, (dump, onnx_nodes) in enumerate(zip(dumps, nodes, strict=True)):
        covers: dict[int, float] = {}
        children = {child for node in onnx_nodes.values() for child in node[2:4] if child >= 0}
        roots = [n for n in onnx_nodes if n not in children]
        stack: list[tuple[dict[str, Any], int]] = [(dump, roots[0])]
        while stack:
            xgb_node, onnx_id = stack.pop()
            covers[onnx_id] = float(xgb_node["cover"])
            feature, threshold, true_id, false_id = onnx_nodes[onnx_id]
            if "children" not in xgb_node:
                if true_id >= 0:
                    raise CoverMismatch(f"tree {tree_id}: graph node {onnx_id} is a branch, XGBoost's a leaf")
                continue
            same_split = feature == int(str(xgb_node["split"]).lstrip("f")) and np.float32(
                threshold
            ) == np.float32(xgb_node["split_condition"])
            if true_id < 0 or not same_split:
                raise CoverMismatch(
                    f"tree {tree_id}: graph node {onnx_id} and XGBoost's {xgb_node['nodeid']} differ"
                )
            by_id = {int(child["nodeid"]): child for child in xgb_node["children"]}
            stack += [(by_id[int(xgb_node["yes"])], true_id), (by_id[int(xgb_node["no"])], false_id)]
        trees.append([covers.get(node) for node in range(max(onnx_nodes) + 1)])
    return trees


def write_covers(file: Path, booster: xgb.Booster, graph: onnx.ModelProto) -> None:
    document = {"trees": graph_covers(booster, graph)}
    file.write_text(json.dumps(document, separators=(",", ":")) + "\n", encoding="utf-8")


def _graph_nodes(graph: onnx.ModelProto) -> list[dict[int, tuple[int, float, int, int]]]:
    """Per tree (in tree-id order): node id → (feature, threshold, true child, false child), -1 children for
    a leaf."""
    (node,) = [n for n in graph.graph.node if n.op_type.startswith("TreeEnsemble")]
    attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    trees: dict[int, dict[int, tuple[int, float, int, int]]] = {}
    for tree, nid, feature, threshold, mode, true_id, false_id in zip(
        attributes["nodes_treeids"],
        attributes["nodes_nodeids"],
        attributes["nodes_featureids"],
        attributes["nodes_values"],
        attributes["nodes_modes"],
        attributes["nodes_truenodeids"],
        attributes["nodes_falsenodeids"],
        strict=True,
    ):
        leaf = mode == b"LEAF"
        trees.setdefault(int(tree), {})[int(nid)] = (
            int(feature),
            float(threshold),
            -1 if leaf else int(true_id),
            -1 if leaf else int(false_id),
        )
    return [trees[tree] for tree in sorted(trees)]
