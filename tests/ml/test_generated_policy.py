"""The generator's decisions as a training table: features only from what happened before each decision, and
a learned policy that beats random and the best single action on held-out decisions, judged against the
generator's ground truth (every action's true expected value for every decision)."""

from __future__ import annotations

from dataclasses import fields, replace

import numpy as np
import pytest

from wayline_ml.evaluate import evaluate
from wayline_ml.generator import GeneratorConfig, Kind, Population, generate
from wayline_ml.generator.training import FEATURES, training_table, true_policy_values
from wayline_ml.train import train

# The margins the learned policy must clear on held-out decisions, in true expected value per decision.
OVER_BEST_SINGLE_ACTION = 1.05
OVER_RANDOM = 1.20


@pytest.fixture(scope="module")
def population() -> Population:
    return generate(GeneratorConfig(people=6000, days=120, seed=3))


def _with_event(population: Population, like: int, person: int, time_us: int, kind: Kind) -> Population:
    """The population with one more event: a copy of event `like`, for `person` at `time_us`, of `kind`."""
    events = population.events
    grown = {
        f.name: np.concatenate([getattr(events, f.name), getattr(events, f.name)[like : like + 1]])
        for f in fields(events)
    }
    grown["person"][-1], grown["time_us"][-1], grown["kind"][-1] = person, time_us, kind
    grown["revenue"][-1] = 500.0
    return replace(population, events=replace(events, **grown))


def test_a_planted_future_event_never_reaches_an_earlier_decisions_features(population: Population) -> None:
    decisions = population.decisions
    row = int(np.argsort(decisions.time_us, kind="stable")[len(decisions.time_us) // 2])
    person, at = int(decisions.person[row]), int(decisions.time_us[row])
    an_order = int(np.flatnonzero(population.events.kind == Kind.ORDER)[0])
    before = training_table(population)
    position = int(np.flatnonzero((before.decision_time_us == at) & (before.person_id == f"g3-p{person}"))[0])
    after = training_table(_with_event(population, an_order, person, at + 1, Kind.ORDER))
    np.testing.assert_array_equal(after.features[position], before.features[position])
    earlier = training_table(_with_event(population, an_order, person, at - 1, Kind.ORDER))
    orders = FEATURES.names.index("orders")
    assert earlier.features[position, orders] == before.features[position, orders] + 1
    assert earlier.features[position, FEATURES.names.index("days_since_order")] < 1e-6


def test_the_learned_policy_beats_random_and_the_best_single_action(population: Population) -> None:
    table = training_table(population)
    table.validate()
    models = train(table)
    values = true_policy_values(population, models, table)
    assert values.learned >= OVER_BEST_SINGLE_ACTION * values.best_single, values
    assert values.learned >= OVER_RANDOM * values.random, values
    assert values.learned <= values.oracle
    # The logged-data estimate (IPW over the generator's propensities) agrees on the direction.
    assert evaluate(models, table, bootstrap_rounds=50).policy.lift_vs_random > 0
