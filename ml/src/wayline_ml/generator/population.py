"""`generate`: a whole population's journeys and decisions, round by round.

Round k walks every person's k-th session at once (sessions.walk), then applies what the round changed to
the people's state: who has logged in (and on which devices), how many orders they have, their lifecycle
stage (awareness → acquisition on logging in → engagement → retention at two orders → advocacy once they
review or share). Between the entry to a session and its walk come the touchpoints that brought the person
(an ad, a post, an email, a push) and, on a device they have not used since logging in, an identify that
joins the device to the person; after it, decisions (decisions.py) for sessions that engaged without buying.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.random import PCG64, SeedSequence
from numpy.typing import NDArray

from wayline_ml.generator.catalogue import Catalogue, draw_catalogue
from wayline_ml.generator.config import GeneratorConfig
from wayline_ml.generator.decisions import Decisions, decide
from wayline_ml.generator.events import Events, EventSink
from wayline_ml.generator.journey_state import JourneyState
from wayline_ml.generator.people import People, draw_people
from wayline_ml.generator.schedule import Schedule, draw_schedule
from wayline_ml.generator.sessions import walk
from wayline_ml.generator.touchpoints import Entry, emit_actions, emit_advocacy, emit_entries, open_sessions

__all__ = ["Population", "Progress", "generate"]

Progress = Callable[[int, int], None]
"""Called with (rounds done, rounds in all) after each round."""
DECISION_DELAY_US = 300_000_000  # decisions are taken five minutes after the session ends


@dataclass(frozen=True)
class Population:
    config: GeneratorConfig
    people: People
    catalogue: Catalogue
    schedule: Schedule
    events: Events
    decisions: Decisions
    final_stage: NDArray[np.int8]
    """Each person's latent lifecycle stage at the end of the period (vocabulary.Stage)."""


def _streams(seed: int) -> dict[str, np.random.Generator]:
    # Independent streams per part, so a change in how sessions are walked does not move the people.
    names = ("people", "catalogue", "schedule", "sessions", "decisions", "ids")
    children = SeedSequence(seed).spawn(len(names))
    return {name: np.random.Generator(PCG64(child)) for name, child in zip(names, children, strict=True)}


def generate(config: GeneratorConfig, progress: Progress | None = None) -> Population:
    """Generate `config.people` persons' journeys over `config.days`; one config, one result."""
    rng = _streams(config.seed)
    people = draw_people(config, rng["people"])
    catalogue = draw_catalogue(rng["catalogue"])
    schedule = draw_schedule(config, people, rng["schedule"])
    state = JourneyState.empty(people)
    sink = EventSink()
    empty = np.zeros(0, dtype=np.int64)
    logs = [decide(people, empty, empty, empty, np.zeros(0), rng["decisions"], config.logging_epsilon)]
    decided = 0
    rounds = int(schedule.count.max())
    for k in range(rounds):
        persons, sessions = schedule.round(k)
        visits, entry = open_sessions(k, persons, sessions, schedule, people, state, rng["sessions"])
        emit_entries(visits, entry, people, catalogue, state, rng["sessions"], sink)
        outcome = walk(visits, people, catalogue, rng["sessions"], sink, config.max_session_steps)
        state.after_walk(visits, outcome.orders + (entry == Entry.STORE))
        emit_advocacy(visits, outcome.end_us, people, state, rng["sessions"], sink)
        asks = np.flatnonzero(outcome.engaged & ~outcome.ordered & visits.logged)
        log = decide(
            people,
            visits.person[asks],
            outcome.end_us[asks] + DECISION_DELAY_US,
            visits.session[asks],
            outcome.open_cart[asks],
            rng["decisions"],
            config.logging_epsilon,
        )
        emit_actions(log, decided, state, rng["decisions"], sink)
        state.orders[log.person] += log.converted
        state.advance_stages(persons, k)
        logs.append(log)
        decided += len(log)
        if progress is not None:
            progress(k + 1, rounds)
    return Population(
        config=config,
        people=people,
        catalogue=catalogue,
        schedule=schedule,
        events=sink.build(rng["ids"]),
        decisions=Decisions.concatenate(logs),
        final_stage=state.stage,
    )
