"""A graph's node covers (`ModelFile.cover_file`), read and held against its tree ensemble.

The file is JSON `{"trees": [[c0, c1, ...], ...]}`: one list per tree in the graph's tree-id order, indexed by
node id, null where the tree does not use an id (written by `wayline_ml.covers`). A cover is the training
library's sum of hessians of the rows that reached the node, so every node the graph uses needs a finite
positive cover, and a branch's cover is the sum of its children's (up to the float rounding of a sum): a
file written for another booster, or edited by hand, fails that check instead of explaining wrongly.
"""

from __future__ import annotations

import json

import numpy as np
import numpy.typing as npt

from wayline_decision.explain.ensemble import TreeEnsemble

__all__ = ["COVER_TOLERANCE", "CoversInvalid", "read_covers"]

COVER_TOLERANCE = 1e-3  # relative: a branch's cover against its children's sum (float32 sums of hessians)


class CoversInvalid(ValueError):
    """The cover file does not describe the graph's trees; the message says where."""


def read_covers(data: bytes, ensemble: TreeEnsemble) -> tuple[npt.NDArray[np.float64], ...]:
    """Each tree's covers by node id (NaN where the tree has no such node), checked against `ensemble`."""
    try:
        document = json.loads(data)
    except ValueError as error:
        raise CoversInvalid(f"not JSON: {error}") from None
    if (
        not isinstance(document, dict)
        or set(document) != {"trees"}
        or not isinstance(document["trees"], list)
    ):
        raise CoversInvalid('must be a JSON object with exactly "trees", a list of lists')
    listed = document["trees"]
    if len(listed) != len(ensemble.trees):
        raise CoversInvalid(f"{len(listed)} trees listed; the graph has {len(ensemble.trees)}")
    return tuple(_tree_covers(i, covers, ensemble) for i, covers in enumerate(listed))


def _tree_covers(i: int, covers: object, ensemble: TreeEnsemble) -> npt.NDArray[np.float64]:
    tree = ensemble.trees[i]
    where = f"trees[{i}] (graph tree {tree.tree_id})"
    if not isinstance(covers, list) or not all(
        c is None or (isinstance(c, int | float) and not isinstance(c, bool)) for c in covers
    ):
        raise CoversInvalid(f"{where}: must be a list of numbers or nulls")
    size = len(tree.mode)
    if len(covers) < size:
        raise CoversInvalid(f"{where}: {len(covers)} covers; the tree's node ids reach {size - 1}")
    values = np.array([np.nan if c is None else float(c) for c in covers[:size]], dtype=np.float64)
    used = _used_nodes(tree.root, tree.true_child, tree.false_child)
    bad = used[~(np.isfinite(values[used]) & (values[used] > 0))]
    if bad.size:
        raise CoversInvalid(f"{where}: node {int(bad[0])} has no positive cover ({covers[int(bad[0])]!r})")
    branches = used[tree.mode[used] >= 0]
    sums = values[tree.true_child[branches]] + values[tree.false_child[branches]]
    off = np.abs(sums - values[branches]) > COVER_TOLERANCE * values[branches]
    if off.any():
        node = int(branches[np.argmax(off)])
        raise CoversInvalid(
            f"{where}: node {node} covers {values[node]!r} but its children {sums[np.argmax(off)]!r}; "
            "the file was not written for this graph"
        )
    return values


def _used_nodes(
    root: int, true_child: npt.NDArray[np.int64], false_child: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    used, stack = [], [root]
    while stack:
        node = stack.pop()
        used.append(node)
        if true_child[node] >= 0:
            stack += [int(true_child[node]), int(false_child[node])]
    return np.array(sorted(used), dtype=np.int64)
