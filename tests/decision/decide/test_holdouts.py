"""Holdouts: a stable assignment by SHA-256 of salt and person in basis points, a split within ±2 points of
the target over many persons, groups that apply by model and placement in order, both treatments through
the pipeline (nothing, or a uniformly random eligible action with its probability), and the store on both
engines with etags and field violations."""

from __future__ import annotations

import collections
import dataclasses
import hashlib
from pathlib import Path

import pytest

from tests.decision.decide.support import ACTIONS, TENANT, ask, ids, rig
from wayline.common.sql import Database
from wayline_decision.decide.model import Outcome
from wayline_decision.errors import HoldoutConfigInvalid, HoldoutEtagMismatch
from wayline_decision.holdouts import (
    HoldoutConfig,
    HoldoutGroup,
    Holdouts,
    HoldoutStore,
    Treatment,
    bucket,
    holdout_for,
)
from wayline_decision.serving.loaded import ServingModel

GROUP = HoldoutGroup("control", enabled=True, percent=10.0, salt="2026-q1")


def test_assignment_is_a_stable_hash_in_basis_points() -> None:
    # The documented formula, recomputed here: SHA-256("2026-q1\0person-1")[:8] as big-endian, mod 10,000.
    digest = hashlib.sha256(b"2026-q1\x00person-1").digest()
    assert bucket("2026-q1", "person-1") == int.from_bytes(digest[:8], "big") % 10_000
    assert bucket("2026-q1", "person-1") == bucket("2026-q1", "person-1")
    assert bucket("2026-q2", "person-1") != bucket("2026-q1", "person-1")  # a new salt reshuffles


@pytest.mark.parametrize("percent", [10.0, 33.3, 50.0])
def test_the_split_is_within_two_points_of_the_target(percent: float) -> None:
    config = HoldoutConfig((dataclasses.replace(GROUP, percent=percent),))
    persons = 20_000
    held = sum(holdout_for(config, f"person-{i}", "offers", "home_hero") is not None for i in range(persons))
    assert abs(100 * held / persons - percent) <= 2.0


def test_groups_apply_in_order_by_model_and_placement() -> None:
    everyone = dataclasses.replace(GROUP, group_id="everyone", percent=50.0, salt="s")
    only_cart = dataclasses.replace(everyone, group_id="cart", placements=("cart_upsell",))
    other_model = dataclasses.replace(everyone, group_id="other", models=("models/other",))
    disabled = dataclasses.replace(everyone, group_id="off", enabled=False)
    person = next(f"p{i}" for i in range(100) if bucket("s", f"p{i}") < 5_000)
    outside = next(f"p{i}" for i in range(100) if bucket("s", f"p{i}") >= 5_000)
    config = HoldoutConfig((disabled, other_model, only_cart, everyone))
    chosen = holdout_for(config, person, "offers", "cart_upsell")
    assert chosen is not None
    assert chosen.group_id == "cart"
    chosen = holdout_for(config, person, "offers", "home_hero")
    assert chosen is not None
    assert chosen.group_id == "everyone"
    assert holdout_for(config, outside, "offers", "home_hero") is None
    assert holdout_for(HoldoutConfig((disabled,)), person, "offers", "home_hero") is None


def _held_person(salt: str, percent: float) -> str:
    return next(f"p{i}" for i in range(1_000) if bucket(salt, f"p{i}") < percent * 100)


def test_decide_for_a_no_action_holdout_returns_nothing_and_traces_what_would_have_been(
    tmp_path: Path, model: ServingModel
) -> None:
    r = rig(tmp_path, model)
    r.hold_out(HoldoutConfig((dataclasses.replace(GROUP, percent=20.0),)))
    person = _held_person("2026-q1", 20.0)
    held = r.decider.decide(TENANT, ask(*ACTIONS, person_id=person, max_actions=2))
    assert held.holdout is not None
    assert held.holdout.group_id == "control"
    assert held.returned == []
    assert held.chosen_action_id == ""
    assert held.chosen_probability == 0.0
    assert [c.outcome for c in held.candidates] == [Outcome.NOT_RETURNED] * 4
    assert [c.rank for c in held.candidates] == [1, 2, 3, 4]
    assert all(c.factors is not None for c in held.candidates)
    free = next(f"p{i}" for i in range(1_000) if bucket("2026-q1", f"p{i}") >= 2_000)
    served = r.decider.decide(TENANT, ask(*ACTIONS, person_id=free, max_actions=2))
    assert served.holdout is None
    assert len(served.returned) == 2
    assert ids(served.candidates) == ids(held.candidates)  # the same ranking, held back


def test_decide_for_a_random_holdout_draws_one_eligible_action_uniformly(
    tmp_path: Path, model: ServingModel
) -> None:
    r = rig(tmp_path, model)
    random_group = dataclasses.replace(GROUP, percent=50.0, treatment=Treatment.RANDOM_ACTION)
    r.hold_out(HoldoutConfig((random_group,)))
    person = _held_person("2026-q1", 50.0)
    draws: collections.Counter[str] = collections.Counter()
    rounds = 2_000
    for _ in range(rounds):
        decision = r.decider.decide(TENANT, ask(*ACTIONS, person_id=person, max_actions=3))
        assert len(decision.returned) == 1
        assert decision.chosen_probability == pytest.approx(1 / 4)
        draws[decision.chosen_action_id] += 1
        chosen = [c for c in decision.candidates if c.outcome is Outcome.CHOSEN]
        assert ids(chosen) == [decision.chosen_action_id]
    assert set(draws) == set(ACTIONS)
    # Each of 4 actions: 500 expected, standard deviation ~19; ±100 is over 5 sigma.
    assert all(abs(count - rounds / 4) < 100 for count in draws.values()), draws


def test_decide_random_holdout_with_nothing_eligible_returns_nothing(
    tmp_path: Path, model: ServingModel
) -> None:
    r = rig(tmp_path, model)
    r.hold_out(HoldoutConfig((dataclasses.replace(GROUP, percent=50.0, treatment=Treatment.RANDOM_ACTION),)))
    decision = r.decider.decide(TENANT, ask("not_in_model", person_id=_held_person("2026-q1", 50.0)))
    assert decision.returned == []
    assert decision.chosen_probability == 0.0
    assert decision.holdout is not None


@pytest.fixture
def holdouts(database: Database) -> Holdouts:
    store = HoldoutStore(database)
    store.migrate()
    return Holdouts(store, cache_seconds=60.0)


def test_holdout_store_updates_conditionally_per_tenant(holdouts: Holdouts) -> None:
    assert holdouts.get(TENANT) == HoldoutConfig()
    assert holdouts.get(TENANT).etag == "0"
    config = HoldoutConfig(
        (GROUP, dataclasses.replace(GROUP, group_id="chance", treatment=Treatment.RANDOM_ACTION))
    )
    stored = holdouts.update(TENANT, config, ["groups"], "0")
    assert (stored.groups, stored.etag) == (config.groups, "1")
    assert holdouts.get(TENANT).groups == config.groups
    assert holdouts.get("other").groups == ()
    assert holdouts.update(TENANT, config, [], "1") == stored  # no change: no new version
    with pytest.raises(HoldoutEtagMismatch):
        holdouts.update(TENANT, HoldoutConfig(), [], "0")
    emptied = holdouts.update(TENANT, HoldoutConfig(), [], "")
    assert (emptied.groups, emptied.etag) == ((), "2")
    assert holdouts.current(TENANT).groups == ()


def test_holdout_config_violations_name_their_fields(holdouts: Holdouts) -> None:
    bad = HoldoutConfig(
        (
            dataclasses.replace(GROUP, group_id="Bad_Id"),
            dataclasses.replace(GROUP, percent=50.5, salt=""),
            dataclasses.replace(GROUP, models=("offers",), placements=("Home",)),
        )
    )
    with pytest.raises(HoldoutConfigInvalid) as refused:
        holdouts.update(TENANT, bad, [], "")
    assert [v.field for v in refused.value.violations] == [
        "holdout_config.groups[0].group_id",
        "holdout_config.groups[1].percent",
        "holdout_config.groups[1].salt",
        "holdout_config.groups[2].group_id",
        "holdout_config.groups[2].models[0]",
        "holdout_config.groups[2].placements[0]",
    ]
    with pytest.raises(HoldoutConfigInvalid) as unknown:
        holdouts.update(TENANT, HoldoutConfig(), ["groups", "etag"], "")
    assert [v.field for v in unknown.value.violations] == ["update_mask.paths[1]"]
    too_many = HoldoutConfig(tuple(dataclasses.replace(GROUP, group_id=f"g{i}") for i in range(21)))
    with pytest.raises(HoldoutConfigInvalid):
        holdouts.update(TENANT, too_many, [], "")
