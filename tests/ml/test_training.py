"""Training on a time split, its evaluation, and the policy's offline value on a planted effect."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.ml.conftest import SMALL
from tests.ml.synthetic import make_table
from wayline_ml.evaluate import Evaluation
from wayline_ml.policy_value import compare_policies
from wayline_ml.table_io import read_table, write_table
from wayline_ml.train import TrainedModels, train
from wayline_ml.training_table import TrainingTable, TrainingTableError

# The learned policy must beat the best single action in hindsight by at least this much (IPW, held out).
MARGIN_OVER_BEST_SINGLE = 0.10
MARGIN_OVER_RANDOM = 0.30


def test_train_same_seed_gives_identical_predictions(table: TrainingTable, models: TrainedModels) -> None:
    again = train(table, SMALL)
    holdout = models.split.holdout(table).features
    assert np.array_equal(models.score(holdout).expected_value, again.score(holdout).expected_value)
    assert again.rounds == models.rounds


def test_split_holds_out_the_latest_decisions(table: TrainingTable, models: TrainedModels) -> None:
    split = models.split
    assert split.holdout(table).decision_time_us.min() >= split.holdout_from_us
    assert split.fit(table).decision_time_us.max() < split.holdout_from_us
    assert split.validation(table).decision_time_us.max() < split.holdout_from_us
    assert models.training_to_us < split.holdout_from_us
    assert len(split.holdout(table)) == pytest.approx(0.2 * len(table), rel=0.01)


def test_response_model_ranks_and_is_calibrated_on_the_planted_signal(evaluation: Evaluation) -> None:
    response = evaluation.response
    assert response.auc > 0.68
    assert response.log_loss < 0.56  # the base rate alone scores about 0.58
    assert response.expected_calibration_error < 0.04
    assert sum(b.rows for b in response.bins) == evaluation.holdout_rows
    assert evaluation.value_rmse < 0.3 * evaluation.value_mean


def test_learned_policy_beats_random_and_best_single_action(evaluation: Evaluation) -> None:
    policy = evaluation.policy
    assert policy.lift_vs_best_single >= MARGIN_OVER_BEST_SINGLE, policy
    assert policy.lift_vs_random >= MARGIN_OVER_RANDOM, policy
    assert policy.lift_vs_best_single_interval[0] > 0  # the paired bootstrap agrees it is not luck
    assert policy.learned.snips > policy.best_single.snips
    # It is a policy, not one action in disguise: every action wins for some customers.
    assert all(share > 0.05 for share in evaluation.chosen_share.values())


def test_ipw_and_snips_on_a_hand_worked_log() -> None:
    # Two actions, logged at 0.5 / 0.25 / 0.75; the learned policy picks action 1 everywhere.
    logged = np.array([0, 1, 1, 0], dtype=np.int64)
    propensity = np.array([0.5, 0.25, 0.75, 0.5])
    reward = np.array([1.0, 4.0, 0.0, 2.0])
    chosen = np.ones(4, dtype=np.int64)
    result = compare_policies(chosen, logged, propensity, reward, ("a", "b"), rounds=10)
    assert result.learned.ipw == pytest.approx((4 / 0.25 + 0 / 0.75) / 4)
    assert result.learned.snips == pytest.approx((4 / 0.25) / (1 / 0.25 + 1 / 0.75))
    assert result.learned.matched == 2
    assert result.random.ipw == pytest.approx(np.mean(0.5 / propensity * reward))
    assert result.best_single.name == "b"


@pytest.mark.parametrize(
    ("column", "bad", "message"),
    [
        ("propensity", 0.0, "propensity at row 5 is outside"),
        ("action", "teleport", "action at row 5 is not in the action list"),
        ("decision_time_us", 0, "decision_time_us at row 4 decreases"),
        ("converted", 2, "converted at row 5 is not 0 or 1"),
    ],
)
def test_validate_names_the_broken_column(column: str, bad: object, message: str) -> None:
    table = make_table(50)
    values = getattr(table, column).astype(object)
    values[5] = bad
    changes: dict[str, Any] = {column: np.array(list(values))}
    broken = replace(table, **changes)
    with pytest.raises(TrainingTableError, match=message):
        broken.validate()


@pytest.mark.parametrize("suffix", [".npz", ".parquet"])
def test_table_round_trips_through_its_file_format(tmp_path: Path, suffix: str) -> None:
    table = make_table(300, seed=1)
    write_table(table, tmp_path / f"table{suffix}")
    again = read_table(tmp_path / f"table{suffix}")
    assert again.schema == table.schema
    assert again.actions == table.actions
    assert np.array_equal(again.features, table.features, equal_nan=True)
    for column in ("person_id", "decision_time_us", "action", "propensity", "converted", "value"):
        assert np.array_equal(getattr(again, column), getattr(table, column)), column
