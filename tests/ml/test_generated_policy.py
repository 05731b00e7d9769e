"""The whole training path on generated journeys: the population's events sent through the real gateway and
ingest, its logged decisions read back from the journey store with the next-best-offer feature spec
(ExportTrainingSet: point in time, outcomes attributed by decision id), and a model trained on them whose
policy beats random and the best single action on held-out decisions, judged against the generator's ground
truth (every action's true expected value for every decision).

Point-in-time correctness of the export itself (a planted future or late event never reaches an earlier
observation's features) is tested where it is computed: tests/journeys/test_export_training_set.py."""

from __future__ import annotations

import random
import uuid

import grpc
import numpy as np
import pytest

from tests.conftest import API_KEY
from wayline.client import Client
from wayline.common.server import Server
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline_decision.features.event_converter import observed_event
from wayline_decision.features.spec_compiler import compile_spec
from wayline_decision.features.state import InProcessFeatureState
from wayline_ml.feature_spec import default_spec
from wayline_ml.generator import ACTIONS, GeneratorConfig, Kind, Population, generate
from wayline_ml.generator.logged import (
    StoredDecisions,
    read_stored_decisions,
    settled_start,
    true_policy_values,
)
from wayline_ml.generator.protos import send
from wayline_ml.train import train

# Sending 192k events through ingest and reading them back takes one to three minutes on 2 shared cores.
pytestmark = [pytest.mark.slow, pytest.mark.long, pytest.mark.timeout(600)]

# The margins the learned policy must clear on held-out decisions, in true expected value per decision.
OVER_BEST_SINGLE_ACTION = 1.05
OVER_RANDOM = 1.20


@pytest.fixture(scope="module")
def population() -> Population:
    config = GeneratorConfig(
        people=3000, days=90, seed=3, start=settled_start(90), namespace=f"p{uuid.uuid4().hex[:8]}"
    )
    return generate(config)


@pytest.fixture(scope="module")
def stored(population: Population, gateway_server: Server) -> StoredDecisions:
    with Client(gateway_server.address, API_KEY, secure=False) as client:
        assert send(population, client, batch_size=1000) == 0
    auth = (("authorization", f"Bearer {API_KEY}"),)
    with grpc.insecure_channel(gateway_server.address) as channel:
        journeys = journeys_grpc.JourneyServiceStub(channel)
        return read_stored_decisions(
            lambda request: journeys.ExportTrainingSet(request, metadata=auth, timeout=300),
            default_spec(),
            population,
            timeout=300,
        )


def test_every_logged_decision_comes_back_with_its_action_propensity_and_outcome(
    population: Population, stored: StoredDecisions
) -> None:
    decisions, table = population.decisions, stored.table
    assert sorted(stored.decision.tolist()) == list(range(len(decisions)))
    rows = stored.decision
    assert table.action.tolist() == [ACTIONS[a] for a in decisions.action[rows]]
    np.testing.assert_allclose(table.propensity, decisions.propensity[rows])
    assert np.array_equal(table.converted.astype(bool), decisions.converted[rows])
    # The label is the revenue of the order that names the decision (what the shop was paid).
    events = population.events
    answered = (events.kind == Kind.ORDER) & (events.decision >= 0)
    paid = np.zeros(len(decisions))
    paid[events.decision[answered]] = events.revenue[answered]
    np.testing.assert_allclose(table.value, paid[rows])
    # At the decision's time, give or take ingest's clock-skew correction (received_at - sent_at of a batch).
    assert np.abs(table.decision_time_us - decisions.time_us[rows]).max() < 1_000_000


def test_the_learned_policy_beats_random_and_the_best_single_action(
    population: Population, stored: StoredDecisions
) -> None:
    models = train(stored.table)
    values = true_policy_values(population, models, stored)
    assert values.learned >= OVER_BEST_SINGLE_ACTION * values.best_single, values
    assert values.learned >= OVER_RANDOM * values.random, values


def _timeline(journeys: journeys_grpc.JourneyServiceStub, person: str) -> list[event_pb2.Event]:
    auth = (("authorization", f"Bearer {API_KEY}"),)
    request = journeys_pb.GetTimelineRequest(person_id=person, page_size=1000)
    events: list[event_pb2.Event] = []
    while True:
        page = journeys.GetTimeline(request, metadata=auth, timeout=30)
        events.extend(page.events)
        if not page.next_page_token:
            return events
        request.page_token = page.next_page_token


def test_serving_would_have_computed_the_training_rows(
    stored: StoredDecisions, gateway_server: Server
) -> None:
    """No training/serving skew on the shipped spec: for sampled persons, the decision service's online
    state, fed their stored events as a live stream would have delivered them (each received when it
    happened, in that order), gives at each of their decisions exactly the float32 row the model was trained
    on (ExportTrainingSet, where these backfilled events count from their timestamps)."""
    spec = compile_spec(default_spec())
    table = stored.table
    persons = sorted(set(table.person_id.tolist()))
    sampled = random.Random(7).sample(persons, 12)
    compared = 0
    with grpc.insecure_channel(gateway_server.address) as channel:
        journeys = journeys_grpc.JourneyServiceStub(channel)
        for person in sampled:
            state = InProcessFeatureState()
            state.register(spec)
            events = []
            for event in _timeline(journeys, person):
                event.received_at.CopyFrom(event.timestamp)  # live: received as it happened
                events.append(observed_event(event))
            events.sort(key=lambda e: (e.timestamp_us, e.event_id))
            fed = 0
            for row in np.flatnonzero(table.person_id == person):
                decided = int(table.decision_time_us[row])
                while fed < len(events) and events[fed].timestamp_us < decided:
                    state.observe(events[fed])
                    fed += 1
                online = np.array(spec.encoder.encode(state.values(spec, person, decided)), dtype=np.float32)
                assert online.tobytes() == table.features[row].tobytes(), (
                    person,
                    decided,
                    online,
                    table.features[row],
                )
                compared += 1
    assert compared >= 12
