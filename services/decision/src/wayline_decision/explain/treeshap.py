"""Exact path-dependent TreeSHAP (Lundberg et al. 2020, "From local explanations to global understanding
with explainable AI for trees", Algorithm 2's quantity) of a package graph's tree ensemble, in margin space.

The game explained is Algorithm 2's: v(S) = Σ over leaves of value x Π over the leaf's path of (the row's
branch indicator where the split's feature is in S, else the branch's share of its parent's cover). Grouping a
path's splits by feature, leaf l contributes v_l x Π_{j in S} o_j x Π_{j not in S} z_j, with o_j = 1 when the
row satisfies every split on feature j along the path and z_j the product of those splits' cover shares. Its
Shapley values have a closed form (the one GPUTreeShap computes): for feature i on the path,

    φ_i += v_l (o_i - z_i) Σ_k k!(D-1-k)!/D! [t^k] Π_{j != i} (z_j + o_j t)

with D the path's distinct features. Rather than Algorithm 2's recursion (extend/unwind per node, one path at
a time: slow in Python), every leaf's path is laid out once as arrays padded to the deepest path's features
(padding is a null player, z = o = 1, which leaves the others' values unchanged) and a row is explained by a
few numpy operations over all leaves: the o's, the polynomial Π_j (z_j + o_j t), one synthetic division per
feature, a dot with the Shapley weights and a scatter-add into the input's columns. The result is the same
number as Algorithm 2's (and as XGBoost's `pred_contribs`), exact up to float64 rounding.

Missing values follow the tree's default direction, as the graph walks them: NaN goes to the true branch
when the split's missing value tracks true. The base value is v(∅) plus the graph's base margin, so
base + Σ φ is the margin the graph computes for the row (log-odds for the response graph, the value itself
for the value graph).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import factorial

import numpy as np
import numpy.typing as npt

from wayline_decision.explain.ensemble import MODES, Tree, TreeEnsemble

__all__ = ["Explanation", "TreeShap"]

Float64Array = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Explanation:
    """One row's contributions, one per input column; base_value + Σ contributions == margin."""

    base_value: float
    contributions: Float64Array
    margin: float


@dataclass(frozen=True, slots=True)
class _Edge:
    feature: int
    mode: int
    threshold: float
    went_true: bool
    missing_true: bool
    share: float  # the child's cover over its parent's


class TreeShap:
    """An ensemble's leaf paths as arrays, built once; `explain(row)` for any number of rows, thread-safe
    (it only reads)."""

    def __init__(self, ensemble: TreeEnsemble, covers: tuple[Float64Array, ...]) -> None:
        paths: list[list[_Edge]] = []
        values: list[float] = []
        for tree, cover in zip(ensemble.trees, covers, strict=True):
            for path, value in _leaf_paths(tree, cover):
                paths.append(path)
                values.append(value)
        self.width = ensemble.width
        leaves = len(paths)
        edges = max(1, *(len(p) for p in paths))
        slots = max(1, *(len({e.feature for e in p}) for p in paths))
        self._value = np.array(values, dtype=np.float64)
        self._edge_feature = np.zeros((leaves, edges), dtype=np.int64)
        self._edge_mode = np.zeros((leaves, edges), dtype=np.int64)
        self._edge_threshold = np.zeros((leaves, edges), dtype=np.float64)
        self._edge_true = np.zeros((leaves, edges), dtype=bool)
        self._edge_missing_true = np.zeros((leaves, edges), dtype=bool)
        self._edge_real = np.zeros((leaves, edges), dtype=bool)
        self._edge_slot = np.zeros((leaves, edges), dtype=np.int64)
        self._slot_feature = np.zeros((leaves, slots), dtype=np.int64)
        self._zero = np.ones((leaves, slots), dtype=np.float64)  # z: padding slots are null players
        for leaf, path in enumerate(paths):
            slot_of: dict[int, int] = {}
            for e, edge in enumerate(path):
                slot = slot_of.setdefault(edge.feature, len(slot_of))
                self._edge_feature[leaf, e] = edge.feature
                self._edge_mode[leaf, e] = edge.mode
                self._edge_threshold[leaf, e] = edge.threshold
                self._edge_true[leaf, e] = edge.went_true
                self._edge_missing_true[leaf, e] = edge.missing_true
                self._edge_real[leaf, e] = True
                self._edge_slot[leaf, e] = slot
                self._slot_feature[leaf, slot] = edge.feature
                self._zero[leaf, slot] *= edge.share
        self._rows = np.arange(leaves)
        self._modes_used = sorted(set(self._edge_mode[self._edge_real].tolist()))
        self._weights = np.array(
            [factorial(k) * factorial(slots - 1 - k) / factorial(slots) for k in range(slots)]
        )
        self._slots = slots
        self._base_margin = ensemble.base_value
        self.base_value = float(ensemble.base_value + self._value @ self._zero.prod(axis=1))

    def explain(self, row: npt.NDArray[np.floating]) -> Explanation:
        """The contributions of `row` (one input row of the graph's width, NaN for missing)."""
        x = np.asarray(row, dtype=np.float32).astype(np.float64)
        if x.shape != (self.width,):
            raise ValueError(f"a row of {self.width} values is explained, not shape {x.shape}")
        one = self._ones(x)
        zero = self._zero
        # P(t) = Π_j (z_j + o_j t), coefficients by degree, for every leaf at once.
        poly = np.zeros((len(self._value), self._slots + 1))
        poly[:, 0] = 1.0
        for j in range(self._slots):
            poly[:, 1:] = poly[:, 1:] * zero[:, j, None] + poly[:, :-1] * one[:, j, None]
            poly[:, 0] *= zero[:, j]
        # Q_i = P / (z_i + o_i t): where o_i = 1 by synthetic division from the top (z_i <= 1, stable),
        # where o_i = 0 by z_i (> 0: every used node has a positive cover).
        quotient = np.zeros((len(self._value), self._slots, self._slots))
        carry = np.broadcast_to(poly[:, self._slots, None], zero.shape).copy()
        for k in range(self._slots - 1, -1, -1):
            quotient[:, :, k] = carry
            carry = poly[:, k, None] - zero * carry
        by_zero = poly[:, None, : self._slots] / zero[:, :, None]
        quotient = np.where(one[:, :, None] > 0, quotient, by_zero)
        phi = self._value[:, None] * (one - zero) * (quotient @ self._weights)
        contributions = np.bincount(self._slot_feature.ravel(), phi.ravel(), minlength=self.width).astype(
            np.float64
        )
        # The margin by walking the trees (the leaves whose every split the row satisfies), independently of
        # the Shapley sum, so that base + Σ φ == margin is a check and not a tautology.
        margin = self._base_margin + float(self._value[one.all(axis=1)].sum())
        return Explanation(self.base_value, contributions, margin)

    def _ones(self, x: Float64Array) -> Float64Array:
        """o: 1 where the row satisfies every split of a slot's feature along a leaf's path."""
        value = x[self._edge_feature]
        threshold = self._edge_threshold
        went = np.zeros(value.shape, dtype=bool)
        with np.errstate(invalid="ignore"):
            for mode in self._modes_used:
                compare = _COMPARE[MODES[mode]](value, threshold)
                went |= (self._edge_mode == mode) & compare
        went |= np.isnan(value) & self._edge_missing_true
        unsatisfied = (went != self._edge_true) & self._edge_real
        one = np.ones(self._zero.shape, dtype=np.float64)
        for e in range(unsatisfied.shape[1]):
            broken = unsatisfied[:, e]
            one[self._rows[broken], self._edge_slot[broken, e]] = 0.0
        return one


_COMPARE = {
    "BRANCH_LT": np.less,
    "BRANCH_LEQ": np.less_equal,
    "BRANCH_GT": np.greater,
    "BRANCH_GTE": np.greater_equal,
    "BRANCH_EQ": np.equal,
    "BRANCH_NEQ": np.not_equal,
}


def _leaf_paths(tree: Tree, cover: Float64Array) -> list[tuple[list[_Edge], float]]:
    """Every leaf of `tree` with the splits on its path, root first."""
    found: list[tuple[list[_Edge], float]] = []
    stack: list[tuple[int, list[_Edge]]] = [(tree.root, [])]
    while stack:
        node, path = stack.pop()
        if tree.is_leaf(node):
            found.append((path, float(tree.leaf_value[node])))
            continue
        for child, went_true in ((int(tree.true_child[node]), True), (int(tree.false_child[node]), False)):
            edge = _Edge(
                feature=int(tree.feature[node]),
                mode=int(tree.mode[node]),
                threshold=float(tree.threshold[node]),
                went_true=went_true,
                missing_true=bool(tree.missing_true[node]),
                share=float(cover[child] / cover[node]),
            )
            stack.append((child, [*path, edge]))
    return found
