"""EventMatcher and PropertyFilter compiled to SQL mean what the contract says, checked against a plain-Python
evaluation of the contract's words on random events and random filters (analytics.proto: values compare as
JSON values, negated operators match a missing property)."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.journeys.filter_reference import MISSING, filter_holds, json_at
from wayline.common.server import Server
from wayline_journeys.analytics import EventMatcher, FilterOperator, JsonValue, PropertyFilter
from wayline_journeys.events import EventRecord
from wayline_journeys.store import JourneyStore
from wayline_journeys.store.client import connect_clickhouse
from wayline_journeys.store.matching import matcher_sql
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
    "properties.absent",
    "name",
    "channel",
    "revenue",
]


def random_value(rng: random.Random) -> Any:
    return rng.choice(
        [rng.choice(_WORDS), rng.randint(-3, 3), rng.choice([0.5, 2.5]), rng.choice([True, False]), None]
    )


def random_event(rng: random.Random) -> EventRecord:
    properties: dict[str, Any] = {}
    for key in ("plan", "n", "flag"):
        if rng.random() < 0.7:
            properties[key] = random_value(rng)
    if rng.random() < 0.5:
        properties["cart"] = {"total": rng.randint(0, 5), "coupon": rng.choice(_WORDS)}
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
        values = tuple(
            rng.choice(
                [rng.choice(_WORDS + _NAMES + _CHANNELS), float(rng.randint(-3, 3)), True, False, None]
            )
            for _ in range(rng.randint(1, 3))
        )
    elif operator in (FilterOperator.CONTAINS, FilterOperator.NOT_CONTAINS):
        values = tuple(rng.choice(["pro", "P", "-", "Vie", "ema", "team"]) for _ in range(rng.randint(1, 2)))
    elif operator is FilterOperator.MATCHES_REGEX:
        values = (rng.choice(["^pro", "o$", "^[A-Z]", "e.*d"]),)
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
