"""The state's merge and its snapshot document: merging two persons gives what consuming every event under
the survivor gives (on both states), and a state read back from its JSON document answers like the
original, at every time the state can tell apart (at or after the horizon)."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import pytest

from tests.breadth import seeds
from tests.decision.features.online import event, spec
from tests.decision.features.test_state import NewState, State, new_state  # noqa: F401 - both states
from tests.redis import redis_url  # noqa: F401 - the session's server (the fixture above needs it)
from wayline_decision.features.event_converter import observed_event
from wayline_decision.features.model import ObservedEvent
from wayline_decision.features.spec_compiler import compile_spec
from wayline_decision.features.state import InProcessFeatureState, OutsideRetention

SPEC = compile_spec(spec())
HOUR = 3_600_000_000
NOW = 1_800_000_000 * 1_000_000


def _events(seed: int) -> list[tuple[str, ObservedEvent]]:
    rng = random.Random(seed)
    found = []
    for i in range(120):
        person = rng.choice(["p", "q"])
        received = NOW - (120 - i) * HOUR  # in receipt order, as a sink delivers
        found.append(
            (
                person,
                observed_event(
                    event(
                        person,
                        hours_ago=rng.uniform(0, 24 * 20),
                        received_us=received,
                        price=rng.choice([None, 0.1, 0.2, 3.0, -1.0]),
                        plan=rng.choice([None, "basic", "pro"]),
                        tier=rng.choice([None, None, None, "gold"]),
                    )
                ),
            )
        )
    return found


def _state() -> InProcessFeatureState:
    state = InProcessFeatureState(settle_after_us=6 * HOUR)
    state.register(SPEC)
    return state


def _values(state: State, person: str) -> list[object]:
    found: list[object] = []
    for as_of in range(NOW - 5 * HOUR, NOW + 30 * 24 * HOUR, 37 * HOUR):
        try:
            found.append(state.values(SPEC, person, as_of))
        except OutsideRetention:
            found.append("outside")
    return found


@pytest.mark.parametrize("seed", seeds(1, 2, 3))
def test_a_merge_equals_consuming_every_event_under_the_survivor(
    new_state: NewState,  # noqa: F811 - the fixture imported above
    seed: int,
) -> None:
    """On both states (in process, Redis): settled folds added up, entries joined, one horizon."""
    apart, together = new_state(6 * HOUR), new_state(6 * HOUR)
    for state in (apart, together):
        state.register(SPEC)
    for _, observed in _events(seed):
        apart.observe(observed)
        together.observe(replace(observed, person_id="q"))
    apart.merge("p", "q")
    together.advance(NOW)
    apart.advance(NOW)
    assert _values(apart, "q") == _values(together, "q")
    assert "outside" not in _values(apart, "q")
    assert not apart.holds("p")
    assert apart.holds("q")


@pytest.mark.parametrize("seed", seeds(4, 5))
def test_a_state_read_back_from_its_document_answers_the_same(seed: int) -> None:
    original = _state()
    for _, observed in _events(seed):
        original.observe(observed)
    text = json.dumps(original.to_document())
    restored = _state()
    restored.from_document(json.loads(text))
    for person in ("p", "q", "nobody"):
        assert _values(restored, person) == _values(original, person)
    assert json.dumps(restored.to_document()) == text


@pytest.mark.parametrize("seed", seeds(6, 7))
def test_a_detached_copy_keeps_the_state_as_it_was_while_the_state_goes_on(seed: int) -> None:
    events = _events(seed)
    state = _state()
    for _, observed in events[:80]:
        state.observe(observed)
    before = json.dumps(state.to_document())
    copy = state.detached_copy()
    for _, observed in events[80:]:
        state.observe(observed)
    state.merge("p", "q")
    state.advance(NOW + 40 * 24 * HOUR)
    assert json.dumps(copy.to_document()) == before
    assert json.dumps(state.to_document()) != before
    replayed = _state()  # and the state itself is what it would have been without the copy
    for _, observed in events:
        replayed.observe(observed)
    replayed.merge("p", "q")
    replayed.advance(NOW + 40 * 24 * HOUR)
    assert json.dumps(replayed.to_document()) == json.dumps(state.to_document())
