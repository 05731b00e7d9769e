"""EventMatcher and PropertyFilter compiled to SQL mean what the contract says, checked against a plain-Python
evaluation of the contract's words on random events and random filters (analytics.proto: values compare as
JSON values, negated operators match a missing property)."""

from __future__ import annotations

import json
import math
import random
import struct
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from tests.journeys.conftest import T0, stored_event, stored_record
from tests.journeys.filter_reference import MISSING, filter_holds, json_at
from tests.text_operators import CASES, case_event, filter_message
from wayline.common.errors import FieldViolation
from wayline.common.json_text import number_text
from wayline.common.server import Server
from wayline.journeys.v1 import analytics_pb2
from wayline_journeys.analytics import (
    Breakdown,
    BreakdownDimension,
    EventMatcher,
    FilterOperator,
    JsonValue,
    Population,
    PropertyFilter,
)
from wayline_journeys.analytics_converters import event_matcher, population
from wayline_journeys.converters import event_to_record
from wayline_journeys.events import EventRecord
from wayline_journeys.store import JourneyStore
from wayline_journeys.store.breakdown import person_breakdown
from wayline_journeys.store.client import connect_clickhouse
from wayline_journeys.store.matching import event_property_raw, matcher_sql, population_sql
from wayline_journeys.store.person_conditions import ClickHousePersonConditions
from wayline_journeys.store.relation import current_events
from wayline_journeys.store.sql import SqlParams

TENANT = "acme"
_WORDS = ["pro", "free", "Pro", "team", "pro-max", ""]
_NAMES = ["Viewed", "Added", "Order Completed", "Signed Up"]
_CHANNELS = ["web", "email", "sms"]
_PATHS = [
    "properties.plan",
    "properties.n",
    "properties.flag",
    "properties.cart.total",
    "properties.cart.coupon",
    "properties.cart",
    "properties.tags",
    "properties.absent",
    "name",
    "channel",
    "revenue",
]


# Numbers whose text ClickHouse lays out its own way (`1e21`, `-0`, `1e-7`, `0.000015`): text operators.
_LAYOUTS = [1e21, -1e22, 1e20, -0.0, 0.1, 1e-7, 1.5e-5, 123456789012345678901234567890.0]


def random_value(rng: random.Random) -> Any:
    return rng.choice(
        [
            rng.choice(_WORDS),
            rng.randint(-3, 3),
            rng.choice([0.5, 2.5, *_LAYOUTS]),
            rng.choice([True, False]),
            None,
        ]
    )


def random_event(rng: random.Random) -> EventRecord:
    properties: dict[str, Any] = {}
    for key in ("plan", "n", "flag"):
        if rng.random() < 0.7:
            properties[key] = random_value(rng)
    if rng.random() < 0.5:
        properties["cart"] = {"total": rng.randint(0, 5), "coupon": rng.choice(_WORDS)}
    if rng.random() < 0.3:
        properties["tags"] = rng.sample(_WORDS, rng.randint(0, 2))
    revenue = Decimal(rng.randint(-2, 9)) if rng.random() < 0.4 else None
    return EventRecord(
        event_id=str(uuid.uuid4()),
        type=rng.choice(["track", "page"]),
        name=rng.choice(_NAMES),
        channel=rng.choice(_CHANNELS),
        timestamp=datetime(2026, 1, 1, tzinfo=UTC),
        received_at=datetime(2026, 1, 1, tzinfo=UTC),
        identifier_types=("user_id",),
        identifier_values=(f"u{rng.randint(0, 9)}",),
        person_id=f"p{rng.randint(0, 9)}",
        properties_json=json.dumps(properties),
        revenue=revenue,
        revenue_currency="EUR" if revenue is not None else "",
    )


def lookup(event: EventRecord, path: str) -> Any:
    if path in ("name", "type", "channel", "text", "group_id"):
        return getattr(event, path)
    if path == "revenue":
        return MISSING if event.revenue is None else float(event.revenue)
    return json_at(json.loads(event.properties_json), path.removeprefix("properties."))


def holds(event: EventRecord, f: PropertyFilter) -> bool:
    return filter_holds(f, lookup(event, f.path))


def random_filter(rng: random.Random) -> PropertyFilter:
    path = rng.choice(_PATHS)
    operator = rng.choice(list(FilterOperator))
    values: tuple[JsonValue, ...]
    if operator in (FilterOperator.IS_SET, FilterOperator.IS_NOT_SET):
        values = ()
    elif operator in (FilterOperator.EQUALS, FilterOperator.NOT_EQUALS):
        # Up to four values: several strings or several numbers are one IN in SQL (-0 and 0 included).
        values = tuple(
            rng.choice(
                [
                    rng.choice(_WORDS + _NAMES + _CHANNELS),
                    float(rng.randint(-3, 3)),
                    rng.choice([0.0, *_LAYOUTS]),
                    True,
                    False,
                    None,
                ]
            )
            for _ in range(rng.randint(1, 4))
        )
    elif operator in (FilterOperator.CONTAINS, FilterOperator.NOT_CONTAINS):
        # Strings, and values of every other kind, which are looked for as their text (analytics.proto).
        needles: list[JsonValue] = ["pro", "P", "-", "Vie", "ema", "team", "e", "0", ".", "tr", "null", '"']
        needles += [2.0, 0.5, -0.0, 1e21, 1e-7, True, False, None]
        values = tuple(rng.choice(needles) for _ in range(rng.randint(1, 2)))
    elif operator is FilterOperator.MATCHES_REGEX:
        patterns = ["^pro", "o$", "^[A-Z]", "e.*d", "^-", "^[0-9]+$", "e-?[0-9]+$", r"\.", "^(true|false)$"]
        values = (rng.choice([*patterns, "^null$", r"^\{", r"^\[", "^$"]),)
    else:
        values = (float(rng.randint(-3, 5)),)
    return PropertyFilter(path, operator, values)


@pytest.fixture(scope="module")
def seeded(
    journeys_server: Server, chdb_path: Path
) -> Iterator[tuple[Callable[[EventMatcher], set[str]], list[EventRecord]]]:
    # The suite's one chDB engine (the journeys server's), in a database of this module's own.
    database = f"test_{uuid.uuid4().hex[:8]}"
    store = JourneyStore(lambda: connect_clickhouse("", database, chdb_path))
    store.open()
    rng = random.Random(8)
    events = [random_event(rng) for _ in range(400)]
    store.write(TENANT, events)

    def matching(matcher: EventMatcher) -> set[str]:
        params = SqlParams(tenant=TENANT)
        sql = f"SELECT toString(event_id) FROM {current_events(params)} WHERE {matcher_sql(matcher, params)}"
        return {r[0] for r in store.client.query(sql, parameters=params.values).result_rows}

    yield matching, events
    store.client.command(f"DROP DATABASE IF EXISTS {database}")
    store.close()


def test_every_filter_means_what_the_contract_says(seeded: Any) -> None:
    matching, events = seeded
    rng = random.Random(2)
    for _ in range(120):
        f = random_filter(rng)
        expected = {e.event_id for e in events if holds(e, f)}
        assert matching(EventMatcher(filters=(f,))) == expected, f


def test_matcher_fields_combine_with_and(seeded: Any) -> None:
    matching, events = seeded
    rng = random.Random(3)
    for _ in range(30):
        filters = (random_filter(rng), random_filter(rng))
        matcher = EventMatcher(
            name=rng.choice(["", *_NAMES]), channels=tuple(rng.sample(_CHANNELS, 2)), filters=filters
        )
        expected = {
            e.event_id
            for e in events
            if (not matcher.name or e.name == matcher.name)
            and e.channel in matcher.channels
            and all(holds(e, f) for f in filters)
        }
        assert matching(matcher) == expected, matcher


# Numbers of 2^64 and beyond, and one between 2^63 and 2^64: JSON numbers like the others, whose raw text
# ClickHouse writes without an exponent (1e+20 as 100000000000000000000).
_HUGE: list[JsonValue] = [1e20, -1e20, 1.5e19, 3.0]
# Times, and strings that look like times: only RFC 3339 date-times (offset optional) and dates compare with a
# time (analytics.STORED_TIME_PATTERN).
_TIMES: list[JsonValue] = [
    "2026-10-01T09:00:00Z",
    "2026-10-01t09:30:00.250z",
    "2026-10-01 11:00:00+02:00",
    "2026-12-31T23:59:59.999999-05:00",
    "3",
    "2026",
    "1700000000",
    "10/01/2026",
    "2026-10-01",
    "2026-02-30T00:00:00Z",
    "2026-10-01T24:00:00Z",
    "2026-10-01T09:00:00",
    "100000000000000000000",
]
_BOUNDS: list[JsonValue] = [
    "2026-10-01T09:00:00Z",
    "2026-10-01T09:00:00.1+00:00",
    "2027-01-01T00:00:00Z",
    "2000-01-01T00:00:00Z",
]
_COMPARING = [
    FilterOperator.EQUALS,
    FilterOperator.NOT_EQUALS,
    FilterOperator.GREATER_THAN,
    FilterOperator.GREATER_THAN_OR_EQUAL,
    FilterOperator.LESS_THAN,
    FilterOperator.LESS_THAN_OR_EQUAL,
    FilterOperator.IS_SET,
]


def test_a_list_of_values_equals_as_each_value_does(seeded: Any) -> None:
    """EQUALS and NOT_EQUALS with many values of each kind (one IN per kind in SQL), -0 and 0 among them:
    the same events as the reference, which compares each value on its own."""
    matching, events = seeded
    rng = random.Random(11)
    kinds: list[list[JsonValue]] = [
        [*_WORDS, *_NAMES, *_CHANNELS, "absent-word"],
        [*(float(n) for n in range(-3, 4)), -0.0, *_LAYOUTS],
        [True, False, None],
    ]
    for _ in range(15):
        values = tuple(
            value for kind in kinds for value in rng.sample(kind, rng.randint(0, min(len(kind), 6)))
        )
        operator = rng.choice([FilterOperator.EQUALS, FilterOperator.NOT_EQUALS])
        for path in ("properties.plan", "properties.n", "properties.flag", "properties.cart.total"):
            f = PropertyFilter(path, operator, values or ("pro",))
            expected = {e.event_id for e in events if holds(e, f)}
            assert matching(EventMatcher(filters=(f,))) == expected, f


def test_times_and_huge_numbers_compare_as_the_contract_says(store: JourneyStore) -> None:
    """Ordering with an RFC 3339 bound meets date-times and dates only (not "3", "2026" or a unix time as
    text, which ClickHouse's best-effort parser reads as times), and numbers beyond 2^64 are numbers (equal to
    themselves, never to their digits as a string); features: test_feature_json_values.py."""
    rng = random.Random(5)
    events = []
    for i in range(120):
        properties = {
            key: rng.choice([*_TIMES, *_HUGE, True, None]) for key in ("when", "big") if rng.random() < 0.8
        }
        events.append(
            EventRecord(
                event_id=str(uuid.uuid4()),
                type="track",
                name="Viewed",
                channel="web",
                timestamp=datetime(2026, 1, 1, tzinfo=UTC),
                received_at=datetime(2026, 1, 1, tzinfo=UTC),
                identifier_types=("user_id",),
                identifier_values=(f"u{i}",),
                person_id=f"p{i}",
                properties_json=json.dumps(properties),
            )
        )
    store.write(TENANT, events)

    def matching(matcher: EventMatcher) -> set[str]:
        params = SqlParams(tenant=TENANT)
        sql = f"SELECT toString(event_id) FROM {current_events(params)} WHERE {matcher_sql(matcher, params)}"
        return {r[0] for r in store.client.query(sql, parameters=params.values).result_rows}

    for _ in range(80):
        operator = rng.choice(_COMPARING)
        values: tuple[JsonValue, ...]
        if operator is FilterOperator.IS_SET:
            values = ()
        elif operator in (FilterOperator.EQUALS, FilterOperator.NOT_EQUALS):
            values = (rng.choice([*_TIMES, *_HUGE]),)
        else:
            values = (rng.choice([*_BOUNDS, *_HUGE, 0.0]),)
        f = PropertyFilter(rng.choice(["properties.when", "properties.big"]), operator, values)
        expected = {e.event_id for e in events if holds(e, f)}
        assert matching(EventMatcher(filters=(f,))) == expected, f


def test_context_paths_name_proto_fields_and_the_senders_keys_as_sent(store: JourneyStore) -> None:
    """`context.<field>...` names the context's fields by their proto names (stored in lowerCamelCase), but
    below `extra` and `traits`, Structs, the keys are the sender's own, stored as sent: `plan_type` stays
    `plan_type`. The reference reads the context rendered with proto field names, so not the store's
    spelling."""
    event = stored_event("p1", ("user_id", "u1"))
    event.context.device.display_width = 390
    event.context.campaign.source = "newsletter"
    event.context.user_agent = "Firefox"
    event.context.extra.update({"plan_type": "pro", "plan": "team", "nested_obj": {"inner_key": 2}})
    event.context.traits.update({"first_name": "Ada", "firstName": "Grace"})
    store.write(TENANT, [event_to_record(event)])
    context = json_format.MessageToDict(event.context, preserving_proto_field_name=True)
    params = SqlParams(tenant=TENANT)
    cases: list[tuple[str, JsonValue]] = [
        ("context.device.display_width", 390.0),
        ("context.campaign.source", "newsletter"),
        ("context.user_agent", "Firefox"),
        ("context.extra.plan_type", "pro"),
        ("context.extra.plan", "team"),
        ("context.extra.nested_obj.inner_key", 2.0),
        ("context.extra.nestedObj.innerKey", 2.0),  # no such key: the sender wrote snake_case
        ("context.traits.first_name", "Ada"),
        ("context.traits.firstName", "Grace"),
        # Not proto field names, though their lowerCamelCase is a stored key: they name no field (ADR 79).
        ("context.device.displayWidth", 390.0),
        ("context.userAgent", "Firefox"),
        ("context.device.display__width", 390.0),
        ("context.user_agent_", "Firefox"),
    ]
    for path, value in cases:
        f = PropertyFilter(path, FilterOperator.EQUALS, (value,))
        where = matcher_sql(EventMatcher(filters=(f,)), params)
        sql = f"SELECT count() FROM {current_events(params)} WHERE {where}"
        found = store.client.query(sql, parameters=params.values).result_rows[0][0]
        assert found == filter_holds(f, json_at(context, path.removeprefix("context."))), path
    assert filter_holds(PropertyFilter("context.extra.plan_type", FilterOperator.EQUALS, ("pro",)), "pro")


def test_a_persons_latest_trait_breaks_ties_on_time_by_event_id_everywhere(store: JourneyStore) -> None:
    """Two identify events at one time setting a trait: every read of the person's properties takes the one
    with the larger event id (EVENT_ORDER): GetPersonProperties, `person.` filters in conditions and in an
    analytics population, and a breakdown by the trait."""
    for k, person in enumerate(("p-a", "p-b")):
        low, high = f"0000000{k}-0000-4000-8000-000000000000", f"fffffff{k}-ffff-4fff-bfff-ffffffffffff"
        for event_id in (low, high) if k == 0 else (high, low):  # written in either order, one at a time
            plan = "new" if event_id == high else "old"
            record = stored_record(person, T0, ("user_id", person), json.dumps({"plan": plan}))
            store.write(TENANT, [replace(record, event_id=event_id, type="identify")])
    persons = {"p-a", "p-b"}
    read = ClickHousePersonConditions(lambda: store.client)
    found = {p: read.properties(TENANT, p, ["plan"])["plan"] for p in persons}
    assert {p: (t.value, t.event_id[:7]) for p, t in found.items()} == {
        p: ("new", "fffffff") for p in persons
    }

    params = SqlParams(tenant=TENANT)
    population = Population(person_filters=(PropertyFilter("person.plan", FilterOperator.EQUALS, ("new",)),))
    sql = (
        f"SELECT DISTINCT person_id FROM {current_events(params)} WHERE {population_sql(population, params)}"
    )
    assert {r[0] for r in store.client.query(sql, parameters=params.values).result_rows} == persons

    params = SqlParams(tenant=TENANT)
    by_plan = Breakdown(BreakdownDimension.PROPERTY, "person.plan")
    traits = person_breakdown(by_plan, params, current_events(params))
    rows = store.client.query(f"SELECT person_id, raw FROM {traits}", parameters=params.values).result_rows
    assert {row[0]: row[1] for row in rows} == {p: '"new"' for p in persons}


def test_text_operators_read_the_contracts_text_of_every_value(store: JourneyStore) -> None:
    """CONTAINS, NOT_CONTAINS and MATCHES_REGEX on numbers (as ClickHouse prints the stored JSON: `1e21`,
    `-0`, `1e-7`), booleans, null, objects and lists (no text), as decision and the orchestrator read them
    (tests/text_operators.py): each case's value written as WriteEvents writes it, read as an event property
    (`properties.v`) and as a person's trait (`person.v`). Before: a number value was looked for in Python's
    layout (1e-7 as `1e-07`, 1e21 as 22 digits, -0 as `0`), and an object or a list was searched as the
    JSON text the store happened to keep (its keys in the order the writer's map gave them)."""
    events = [case_event(case.value, f"p{i}") for i, case in enumerate(CASES)]
    store.write(TENANT, [event_to_record(e) for e in events])
    violations: list[FieldViolation] = []
    found: dict[str, tuple[bool, bool]] = {}
    for i, case in enumerate(CASES):
        params = SqlParams(tenant=TENANT)
        matcher = event_matcher(
            analytics_pb2.EventMatcher(property_filters=[filter_message(case.operator, case.values)]),
            "m",
            violations,
        )
        people = population(
            analytics_pb2.Population(person_filters=[filter_message(case.operator, case.values, "person.v")]),
            "p",
            violations,
        )
        sql = (
            f"SELECT countIf(person_id = {{person:String}} AND {matcher_sql(matcher, params)}), "
            f"countIf(person_id = {{person:String}} AND {population_sql(people, params)}) "
            f"FROM {current_events(params)}"
        )
        rows = store.client.query(sql, parameters={**params.values, "person": f"p{i}"}).result_rows
        found[str(case)] = (rows[0][0] == 1, rows[0][1] == 1)
    assert not violations
    assert found == {str(case): (case.holds, case.holds) for case in CASES}


def _doubles(rng: random.Random, n: int) -> list[float]:
    """Finite doubles of every magnitude (random bit patterns), decimals as senders write them, integers,
    and the neighbours of where the layout changes (1e-7, 1e-6, 1e21)."""
    found: list[float] = []
    while len(found) < n:
        (bits,) = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))
        if math.isfinite(bits):
            found.append(bits)
        found.append(round(rng.uniform(-1000, 1000), rng.randint(0, 6)))
        found.append(float(rng.randint(-(2**60), 2**60)))
    for edge in (1e-7, 1e-6, 1e21, 1e16, 1e-4):
        found += [edge, -edge, math.nextafter(edge, 0), math.nextafter(edge, math.inf)]
    return [*found, 0.0, -0.0]


def test_the_store_prints_every_number_as_the_contracts_text(store: JourneyStore) -> None:
    """The text operators read a number as ClickHouse prints it (JSONExtractRaw of the stored JSON, and
    toJSONString of a number column), and look for a filter's number as `wayline.common.json_text` writes it,
    which decision and the orchestrator read events with: one text, for any double, however it is stored."""
    numbers = _doubles(random.Random(11), 900)
    events = []
    for i, number in enumerate(numbers):
        event = stored_event(f"p{i}", ("user_id", f"u{i}"))
        event.properties.update({"v": number})
        event.sentiment_score = number
        events.append(event)
    store.write(TENANT, [event_to_record(e) for e in events])
    params = SqlParams(tenant=TENANT)
    sql = (
        f"SELECT toString(event_id), {event_property_raw('properties.v', params)}, "
        f"{event_property_raw('sentiment_score', params)} FROM {current_events(params)}"
    )
    rows = {r[0]: r[1:] for r in store.client.query(sql, parameters=params.values).result_rows}
    expected = {e.event_id: (number_text(n), number_text(n)) for e, n in zip(events, numbers, strict=True)}
    assert rows == expected
