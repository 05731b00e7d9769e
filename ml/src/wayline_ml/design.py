"""The model's input: the feature columns followed by a one-hot of the action, in the action list's order.

Training sees each row with its logged action; scoring sees each row once per candidate action, so the
policy can compare them. Both come from here, so the column layout the manifest promises (features in schema
order, then `action=<name>` indicators) is written down once.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["action_columns", "candidate_matrix", "design_matrix"]


def action_columns(actions: tuple[str, ...]) -> tuple[str, ...]:
    """The names of the indicator columns that follow the features."""
    return tuple(f"action={action}" for action in actions)


def design_matrix(
    features: npt.NDArray[np.float32], action_index: npt.NDArray[np.int64], n_actions: int
) -> npt.NDArray[np.float32]:
    """Each row's features with the one-hot of its own action appended: (rows, features + actions)."""
    rows = features.shape[0]
    one_hot = np.zeros((rows, n_actions), dtype=np.float32)
    one_hot[np.arange(rows), action_index] = 1.0
    return np.hstack([features, one_hot])


def candidate_matrix(features: npt.NDArray[np.float32], n_actions: int) -> npt.NDArray[np.float32]:
    """Every row under every action, row-major: row i with action a is at i * n_actions + a."""
    rows = features.shape[0]
    repeated = np.repeat(features, n_actions, axis=0)
    actions = np.tile(np.arange(n_actions, dtype=np.int64), rows)
    return design_matrix(repeated, actions, n_actions)
