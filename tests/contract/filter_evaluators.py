"""The three evaluators of the contract's EventMatcher (analytics.proto), each reading the same
`wayline.event.v1.Event`s through its own service's conversion, as that service's ObserveEvents or WriteEvents
does: journeys' SQL on chDB over the rows WriteEvents stores, decision's compiled matcher over the event its
ObserveEvents converts, the orchestrator's flow runtime over the occurrences its ObserveEvents makes, with the
matcher in the proto3 JSON form flows keep their definitions in (proto field names, flow_converters.py).

Each answers, per event, whether each matcher matches it: one list of booleans per event, in the order of the
matchers. Matchers here read the event alone (no `person.` path): decision's matcher has no person, and the
orchestrator asks journeys for traits."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import json_format

from wayline.common.errors import FieldViolation
from wayline.common.server import Server
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import analytics_pb2, feature_pb2
from wayline_decision.features.event_converter import observed_event
from wayline_decision.features.matcher import compile_matcher
from wayline_decision.features.spec_compiler import compile_spec
from wayline_journeys.analytics_converters import event_matcher
from wayline_journeys.converters import event_to_record
from wayline_journeys.store import JourneyStore
from wayline_journeys.store.client import connect_clickhouse
from wayline_journeys.store.matching import matcher_sql
from wayline_journeys.store.relation import current_events
from wayline_journeys.store.sql import SqlParams
from wayline_orchestrator.flows.runtime.matching import matches
from wayline_orchestrator.person_events import check_events, occurrences

__all__ = ["decision_holds", "journeys_holds", "orchestrator_holds", "store"]

Matchers = list[analytics_pb2.EventMatcher]


@pytest.fixture(scope="module")
def store(journeys_server: Server, chdb_path: Path) -> Iterator[JourneyStore]:
    """A store on a database of its own in the suite's one chDB engine (the journeys server's), for
    `journeys_holds`; a test module binds it (`store = filter_evaluators.store`)."""
    database = f"test_{uuid.uuid4().hex[:8]}"
    store = JourneyStore(lambda: connect_clickhouse("", database, chdb_path))
    store.open()
    yield store
    store.client.command(f"DROP DATABASE IF EXISTS {database}")
    store.close()


def journeys_holds(
    store: JourneyStore, events: list[event_pb2.Event], matchers: Matchers
) -> list[list[bool]]:
    """Journeys' SQL, one statement for every matcher, over the events stored for a tenant of their own."""
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    store.write(tenant, [event_to_record(e) for e in events])
    params, violations = SqlParams(tenant=tenant), list[FieldViolation]()
    converted = [event_matcher(m, f"m{i}", violations) for i, m in enumerate(matchers)]
    assert not violations, violations
    columns = ", ".join(f"toUInt8({matcher_sql(m, params)})" for m in converted)
    sql = f"SELECT toString(event_id), {columns} FROM {current_events(params)}"
    rows = {r[0]: r[1:] for r in store.client.query(sql, parameters=params.values).result_rows}
    return [[bool(x) for x in rows[e.event_id]] for e in events]


def decision_holds(events: list[event_pb2.Event], matchers: Matchers) -> list[list[bool]]:
    """Decision's matchers, compiled from a spec of one COUNT feature per matcher, as a registered spec's."""
    spec = feature_pb2.FeatureSpec(name="s", version="1")
    for i, m in enumerate(matchers):
        spec.features.add(name=f"f{i}", aggregation=feature_pb2.FEATURE_AGGREGATION_COUNT, events=m)
    tests = [compile_matcher(d.events) for d in compile_spec(spec).features]
    return [[test(observed_event(e)) for test in tests] for e in events]


def orchestrator_holds(events: list[event_pb2.Event], matchers: Matchers) -> list[list[bool]]:
    """The flow runtime's `matches`, on the JSON form a flow stores, over ObserveEvents' occurrences."""
    check_events(events)  # as ObserveEvents does first: the events are ones it takes
    stored = [json_format.MessageToDict(m, preserving_proto_field_name=True) for m in matchers]
    return [[matches(o, m) for m in stored] for o in occurrences(events)]
