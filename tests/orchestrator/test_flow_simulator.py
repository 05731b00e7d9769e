"""The simulation's replay on its own (flows/simulation.py), with the live ledger on a real SQLite database:
the caller's deadline stops it between persons and the throwaway store goes with it; the live policy applies
to a copy of the ledger (the live one records nothing), and timers due at or after the range's end do not
fire."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.orchestrator.running import trial_flow
from wayline.common.errors import DeadlineExceeded
from wayline.common.sql import open_database
from wayline_orchestrator.contacts import (
    ContactFilter,
    ContactLedger,
    ContactPolicy,
    ContactStore,
    FrequencyCap,
)
from wayline_orchestrator.flows.runtime.lookups import Lookups
from wayline_orchestrator.flows.runtime.matching import Occurrence
from wayline_orchestrator.flows.simulation import PersonHistory, Simulation, simulate

HOUR = 3_600_000_000
T0 = 1_772_445_600_000_000


def _history(person: str, *events: tuple[str, int]) -> PersonHistory:
    return PersonHistory(
        person,
        [
            Occurrence(
                f"{person}-{i}", person, name, T0 + at, "EVENT_TYPE_TRACK", "CHANNEL_WEB", {"plan": "free"}
            )
            for i, (name, at) in enumerate(events)
        ],
    )


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[ContactLedger]:
    db = open_database(None, tmp_path / "live.db")
    store = ContactStore(db)
    store.migrate()
    yield ContactLedger(store)
    db.close()


def _simulation(definition: dict[str, object], end: int) -> Simulation:
    return Simulation("t", "trial", "flows/trial", definition, T0, T0 + end)


def test_simulate_stops_at_the_deadline_and_leaves_nothing_behind(
    tmp_path: Path, ledger: ContactLedger
) -> None:
    calls = []

    def keep_going() -> None:
        calls.append(1)
        if len(calls) > 2:
            raise DeadlineExceeded("the caller's deadline passed")

    histories = [_history(f"p{i}", ("Signed Up", i)) for i in range(5)]
    work = tmp_path / "simulations"
    with pytest.raises(DeadlineExceeded):
        simulate(_simulation(trial_flow(), HOUR), histories, ledger, Lookups(), work, keep_going)
    assert len(calls) == 3
    assert list(work.iterdir()) == []


def test_simulate_applies_a_copy_of_the_policy_and_stops_at_the_end(
    tmp_path: Path, ledger: ContactLedger
) -> None:
    definition = trial_flow()
    steps = {s["id"]: s for s in definition["steps"]}
    steps["bought"]["goal"] |= {"timeout": "7200s"}  # due after the range's end: never fires
    day = 86_400_000_000
    cap = FrequencyCap("CHANNEL_EMAIL", max_contacts=1, window_us=day)
    ledger.update_policy("t", ContactPolicy(frequency_caps=(cap,)), ["frequency_caps"], "")
    histories = [_history(f"p{i}", ("Signed Up", i), ("Order Completed", HOUR // 2)) for i in range(2)]
    histories.append(_history("waiting", ("Signed Up", 5)))  # its goal timeout falls after the end
    histories.append(_history("late", ("Signed Up", 2 * HOUR)))  # after the end: never enters
    result = simulate(_simulation(definition, HOUR), histories, ledger, Lookups(), tmp_path, lambda: None)
    stats = result.stats
    assert result.evaluated_persons == 4
    assert (stats.entered, stats.converted, stats.exited, stats.active, stats.suppressed) == (3, 2, 2, 0, 3)
    by_step = {s.step_id: s for s in stats.steps}
    assert (by_step["welcome"].sent, by_step["offer"].suppressed) == (3, 3)  # the cap: one email a day
    live = ledger.contacts("t", ContactFilter(person_id="p0"), None, 10)
    assert live.contacts == []  # the live ledger recorded nothing
    assert {(b.label, b.count) for b in by_step["bought"].branches} == {("next", 2)}
    assert stats.data_as_of == T0 + HOUR


def test_assumed_engagement_teaches_the_ledger_the_learned_preference(
    tmp_path: Path, ledger: ContactLedger
) -> None:
    """An assumed click on a simulated SMS makes SMS the person's learned channel, as a real click would."""
    learned_sms = {
        "channel_preference": {"channels": ["CHANNEL_SMS"], "source": "CHANNEL_PREFERENCE_SOURCE_LEARNED"}
    }
    definition = {
        "trigger": {"event": {"event": {"event_name": "Signed Up"}}},
        "entry_step_id": "text",
        "steps": [
            {"id": "text", "action": {"channel": "CHANNEL_SMS", "action_id": "text", "next_step_id": "seen"}},
            {
                "id": "seen",
                "engagement_branch": {
                    "action_step_id": "text",
                    "engagement": "ENGAGEMENT_TYPE_CLICKED",
                    "window": "3600s",
                    "engaged_step_id": "route",
                    "not_engaged_step_id": "route",
                },
            },
            {
                "id": "route",
                "branch": {"branches": [{"label": "sms", "condition": learned_sms, "next_step_id": ""}]},
            },
        ],
    }

    def routes(rate: float) -> set[tuple[str, int]]:
        simulation = Simulation("t", "texts", "", definition, T0, T0 + HOUR * 2, engagement_rate=rate)
        histories = [_history(f"p{i}", ("Signed Up", i)) for i in range(3)]
        stats = simulate(simulation, histories, ledger, Lookups(), tmp_path, lambda: None).stats
        return {(b.label, b.count) for s in stats.steps if s.step_id == "route" for b in s.branches}

    assert routes(1.0) == {("sms", 3)}
    assert routes(0.0) == {("default", 3)}
