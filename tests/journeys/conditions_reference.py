"""A plain-Python reference for PersonCondition trees and lifecycle stages, written from the contract's words
(condition.proto, lifecycle.proto, analytics.proto) and not from the SQL, plus generators of event logs and of
condition trees (as protobuf, so the converters are exercised too) from a seeded `random.Random`."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from google.protobuf import struct_pb2

from tests.journeys.filter_reference import MISSING, filter_holds
from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import analytics_pb2, condition_pb2, lifecycle_pb2, lifecycle_stage_pb2
from wayline_journeys.analytics import EventMatcher, PropertyFilter
from wayline_journeys.conditions import (
    Aggregation,
    Condition,
    EventAggregate,
    EventCount,
    Group,
    HasIdentifierType,
    InLifecycleStage,
    LifecycleStage,
    Logical,
    Not,
    PersonProperty,
)
from wayline_journeys.conditions import (
    Sequence as SequenceCondition,
)
from wayline_journeys.events import EventRecord
from wayline_journeys.lifecycle import LifecycleModel

T0 = datetime(2026, 3, 1, tzinfo=UTC)
NAMES = ("Viewed", "Added", "Purchased", "Review Submitted", "Referral Sent")
CHANNELS = {
    "web": event_pb2.CHANNEL_WEB,
    "mobile_app": event_pb2.CHANNEL_MOBILE_APP,
    "email": event_pb2.CHANNEL_EMAIL,
}
ALL_CHANNELS = {**CHANNELS, "in_store": event_pb2.CHANNEL_IN_STORE}
TYPES = {
    "track": event_pb2.EVENT_TYPE_TRACK,
    "identify": event_pb2.EVENT_TYPE_IDENTIFY,
    "page": event_pb2.EVENT_TYPE_PAGE,
}


@dataclass(frozen=True)
class Event:
    person: str
    at: datetime
    type: str = "track"
    name: str = "Viewed"
    channel: str = "web"
    identifiers: tuple[tuple[str, str], ...] = ()
    properties: dict[str, Any] = field(default_factory=dict)
    revenue: Decimal | None = None
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def message(self) -> event_pb2.Event:
        """As ingest delivers it, stored with `person`."""
        event = event_pb2.Event(
            event_id=self.event_id,
            type=TYPES[self.type],
            name=self.name,
            channel=ALL_CHANNELS[self.channel],
            timestamp=to_timestamp(self.at),
            received_at=to_timestamp(self.at),
            identifiers=[event_pb2.Identifier(type=t, value=v) for t, v in self.identifiers],
            person_id=self.person,
        )
        event.properties.update(self.properties)
        if self.revenue is not None:
            units = int(self.revenue)
            event.revenue.CopyFrom(
                event_pb2.Money(currency_code="EUR", units=units, nanos=int((self.revenue - units) * 10**9))
            )
        return event

    def record(self) -> EventRecord:
        return EventRecord(
            event_id=self.event_id,
            type=self.type,
            name=self.name,
            channel=self.channel,
            timestamp=self.at,
            received_at=self.at,
            identifier_types=tuple(t for t, _ in self.identifiers),
            identifier_values=tuple(v for _, v in self.identifiers),
            person_id=self.person,
            properties_json=json.dumps(self.properties),
            revenue=self.revenue,
            revenue_currency="EUR" if self.revenue is not None else "",
        )


# ---- the reference -------------------------------------------------------------------------------------


def _event_value(event: Event, path: str) -> Any:
    if path in ("name", "type", "channel"):
        return getattr(event, path)
    if path == "revenue":
        return MISSING if event.revenue is None else float(event.revenue)
    _, key = path.split(".", 1)
    return event.properties.get(key, MISSING)


class Person:
    """One person's events before a time T."""

    def __init__(self, events: Sequence[Event], at: datetime) -> None:
        self.events = sorted((e for e in events if e.at < at), key=lambda e: (e.at, e.event_id))
        self.at = at

    def trait(self, key: str) -> Any:
        found = [e for e in self.events if e.type == "identify" and key in e.properties]
        return found[-1].properties[key] if found else MISSING

    def passes(self, f: PropertyFilter) -> bool:
        return filter_holds(f, self.trait(f.path.removeprefix("person.")))

    def matches(self, matcher: EventMatcher, event: Event) -> bool:
        return (
            (not matcher.name or event.name == matcher.name)
            and (not matcher.type or event.type == matcher.type)
            and (not matcher.channels or event.channel in matcher.channels)
            and all(
                self.passes(f) if f.on_person else filter_holds(f, _event_value(event, f.path))
                for f in matcher.filters
            )
        )

    def in_window(self, event: Event, window: timedelta | None) -> bool:
        return window is None or event.at >= self.at - window

    def holds(self, condition: Condition, model: LifecycleModel | None = None) -> bool:
        if isinstance(condition, Not):
            return not self.holds(condition.condition, model)
        if isinstance(condition, Group):
            results = [self.holds(c, model) for c in condition.conditions]
            return all(results) if condition.operator is Logical.AND else any(results)
        if isinstance(condition, PersonProperty):
            return self.passes(condition.filter)
        if isinstance(condition, EventCount):
            count = sum(
                1
                for e in self.events
                if self.matches(condition.event, e) and self.in_window(e, condition.window)
            )
            return condition.comparison.holds(count, condition.count)
        if isinstance(condition, EventAggregate):
            return self._aggregate(condition)
        if isinstance(condition, SequenceCondition):
            return self._sequence(condition)
        if isinstance(condition, HasIdentifierType):
            return any(t == condition.identifier_type for e in self.events for t, _ in e.identifiers)
        if isinstance(condition, InLifecycleStage):
            assert model is not None
            return self.stage(model) in condition.stages
        raise AssertionError(condition)

    def _aggregate(self, condition: EventAggregate) -> bool:
        """The numbers at the property on the matching events in the window (revenue only in the currency:
        every generated revenue is in EUR), summed up; no number: a sum of 0, no other value."""
        numbers = [
            float(value)
            for e in self.events
            if self.matches(condition.event, e) and self.in_window(e, condition.window)
            for value in [_event_value(e, condition.property)]
            if isinstance(value, int | float) and not isinstance(value, bool)
        ]
        if condition.aggregation is Aggregation.SUM:
            return condition.comparison.holds(sum(numbers), condition.threshold)
        if not numbers:
            return False
        found = {
            Aggregation.AVERAGE: sum(numbers) / len(numbers) if numbers else 0.0,
            Aggregation.MINIMUM: min(numbers),
            Aggregation.MAXIMUM: max(numbers),
        }[condition.aggregation]
        return condition.comparison.holds(found, condition.threshold)

    def _sequence(self, condition: SequenceCondition) -> bool:
        """Some start event works: from it, take the earliest event strictly later for each middle step
        (earlier never hurts), then look for a last step within `within` of the start and in the window."""
        steps = condition.steps
        within = condition.within or timedelta(days=10**5)
        for first in (e for e in self.events if self.matches(steps[0], e)):
            previous: datetime | None = first.at
            for step in steps[1:-1]:
                later = [e for e in self.events if e.at > previous and self.matches(step, e)]  # type: ignore[operator]
                previous = later[0].at if later else None
                if previous is None:
                    break
            if previous is None:
                continue
            if any(
                e.at > previous
                and e.at - first.at <= within
                and self.in_window(e, condition.window)
                and self.matches(steps[-1], e)
                for e in self.events
            ):
                return True
        return False

    def stage(self, model: LifecycleModel) -> LifecycleStage:
        if not self.events:
            return LifecycleStage.UNSPECIFIED
        holding = [s for s, c in model.definitions if s > LifecycleStage.AWARENESS and self.holds(c)]
        return max(holding, default=LifecycleStage.AWARENESS)


def persons_of(events: Sequence[Event]) -> dict[str, list[Event]]:
    found: dict[str, list[Event]] = {}
    for e in events:
        found.setdefault(e.person, []).append(e)
    return found


# ---- generators ----------------------------------------------------------------------------------------


def generated_log(rng: random.Random, persons: int = 12, days: int = 200) -> list[Event]:
    """Events of `persons` persons over `days` days, on a coarse clock so that timestamps tie, with traits
    that change (and are sometimes null), purchases and emails."""
    log: list[Event] = []
    for p in range(persons):
        person = str(uuid.uuid4())
        user = ("user_id", f"u{p}-{person[:6]}")
        for _ in range(rng.randint(1, 14)):
            at = T0 + timedelta(days=rng.randint(0, days), hours=rng.choice((0, 0, 6)))
            kind = rng.choice(("track", "track", "track", "page", "identify"))
            identifiers = [user]
            if rng.random() < 0.2:
                identifiers.append(("email", f"{p}@x.io"))
            properties: dict[str, Any] = {}
            if kind == "identify":
                for trait, values in (("country", ("FR", "DE", "US", None)), ("age", (21, 35.5, 60))):
                    if rng.random() < 0.6:
                        properties[trait] = rng.choice(values)
            else:
                if rng.random() < 0.5:
                    properties["plan"] = rng.choice(("free", "pro", "team"))
                if rng.random() < 0.4:
                    properties["amount"] = rng.choice((1, 2.5, 10))
            log.append(
                Event(
                    person=person,
                    at=at,
                    type=kind,
                    name=rng.choice(NAMES),
                    channel=rng.choice(tuple(CHANNELS)),
                    identifiers=tuple(identifiers),
                    properties=properties,
                    revenue=Decimal(rng.choice(("9.5", "30"))) if rng.random() < 0.25 else None,
                )
            )
    return log


def _value(v: Any) -> struct_pb2.Value:
    value = struct_pb2.Value()
    if isinstance(v, str):
        value.string_value = v
    else:
        value.number_value = v
    return value


def _filter(path: str, operator: int, *values: Any) -> analytics_pb2.PropertyFilter:
    return analytics_pb2.PropertyFilter(property=path, operator=operator, values=[_value(v) for v in values])  # type: ignore[arg-type]


def person_filter(rng: random.Random) -> analytics_pb2.PropertyFilter:
    return rng.choice(
        (
            _filter("person.country", analytics_pb2.FILTER_OPERATOR_EQUALS, "FR"),
            _filter("person.country", analytics_pb2.FILTER_OPERATOR_EQUALS, "FR", "DE"),
            _filter("person.country", analytics_pb2.FILTER_OPERATOR_NOT_EQUALS, "US"),
            _filter("person.country", analytics_pb2.FILTER_OPERATOR_IS_SET),
            _filter("person.country", analytics_pb2.FILTER_OPERATOR_IS_NOT_SET),
            _filter("person.country", analytics_pb2.FILTER_OPERATOR_CONTAINS, "E"),
            _filter("person.age", analytics_pb2.FILTER_OPERATOR_GREATER_THAN_OR_EQUAL, 35.5),
            _filter("person.age", analytics_pb2.FILTER_OPERATOR_LESS_THAN, 40),
        )
    )


def event_filter(rng: random.Random) -> analytics_pb2.PropertyFilter:
    return rng.choice(
        (
            _filter("properties.plan", analytics_pb2.FILTER_OPERATOR_EQUALS, "pro", "team"),
            _filter("properties.plan", analytics_pb2.FILTER_OPERATOR_NOT_EQUALS, "free"),
            _filter("properties.plan", analytics_pb2.FILTER_OPERATOR_NOT_CONTAINS, "ea"),
            _filter("properties.plan", analytics_pb2.FILTER_OPERATOR_MATCHES_REGEX, "^(pro|fr)"),
            _filter("properties.plan", analytics_pb2.FILTER_OPERATOR_IS_NOT_SET),
            _filter("properties.amount", analytics_pb2.FILTER_OPERATOR_GREATER_THAN, 2),
            _filter("properties.amount", analytics_pb2.FILTER_OPERATOR_EQUALS, 10),
            _filter("revenue", analytics_pb2.FILTER_OPERATOR_IS_SET),
            _filter("revenue", analytics_pb2.FILTER_OPERATOR_GREATER_THAN_OR_EQUAL, 30),
            _filter("channel", analytics_pb2.FILTER_OPERATOR_EQUALS, "web"),
            _filter("name", analytics_pb2.FILTER_OPERATOR_EQUALS, "Review Submitted", "Referral Sent"),
        )
    )


def matcher(rng: random.Random, person_filters: bool = True) -> analytics_pb2.EventMatcher:
    """A random matcher; `person.` filters (read at the evaluation time) only when `person_filters`."""
    found = analytics_pb2.EventMatcher()
    if rng.random() < 0.5:
        found.event_name = rng.choice(NAMES)
    if rng.random() < 0.2:
        found.event_type = rng.choice(tuple(TYPES.values()))
    if rng.random() < 0.3:
        found.channels.extend(rng.sample(tuple(CHANNELS.values()), rng.randint(1, 2)))
    if rng.random() < 0.3:
        found.property_filters.append(event_filter(rng))
    if person_filters and rng.random() < 0.1:
        found.property_filters.append(person_filter(rng))
    return found


def _days(rng: random.Random, choices: Sequence[float | None]) -> timedelta | None:
    days = rng.choice(choices)
    return None if days is None else timedelta(days=days)


def condition(
    rng: random.Random, depth: int = 1, lifecycle: bool = False, feature: bool = False
) -> condition_pb2.PersonCondition:
    """A random tree, at most 3 deep; lifecycle-stage leaves only when `lifecycle`; with `feature`, only the
    conditions a lifecycle-stage feature's model may use (person properties, event counts without `person.`
    filters, groups)."""
    found = condition_pb2.PersonCondition(negate=rng.random() < 0.2)
    kinds = ["person", "count", "count"] + ([] if feature else ["sequence", "identifier", "aggregate"])
    kinds += ["group"] * (2 if depth < 3 else 0)
    kinds += ["lifecycle"] if lifecycle else []
    kind = rng.choice(kinds)
    if kind == "group":
        found.group.operator = rng.choice(
            (condition_pb2.LOGICAL_OPERATOR_AND, condition_pb2.LOGICAL_OPERATOR_OR)
        )
        found.group.conditions.extend(
            condition(rng, depth + 1, lifecycle, feature) for _ in range(rng.randint(1, 3))
        )
    elif kind == "person":
        found.person_property.CopyFrom(person_filter(rng))
    elif kind == "count":
        found.event_count.event.CopyFrom(matcher(rng, person_filters=not feature))
        found.event_count.comparison = rng.randint(0, 6)  # type: ignore[assignment]
        found.event_count.count = rng.randint(0, 4)
        window = _days(rng, (None, 1, 7, 30, 90.25))
        if window is not None:
            found.event_count.window.FromTimedelta(window)
    elif kind == "sequence":
        found.sequence.steps.extend(matcher(rng) for _ in range(rng.randint(2, 3)))
        within, window = _days(rng, (None, 0.25, 3, 30)), _days(rng, (None, 20, 60))
        if within is not None:
            found.sequence.within.FromTimedelta(within)
        if window is not None:
            found.sequence.window.FromTimedelta(window)
    elif kind == "identifier":
        found.has_identifier_type = rng.choice(("email", "phone"))
    elif kind == "aggregate":
        aggregate = found.event_aggregate
        aggregate.event.CopyFrom(matcher(rng))
        aggregate.aggregation = rng.randint(1, 4)  # type: ignore[assignment]
        aggregate.property = rng.choice(
            ("properties.amount", "revenue", "properties.plan")
        )  # plan: no number
        aggregate.currency_code = "EUR" if aggregate.property == "revenue" else ""
        aggregate.comparison = rng.randint(0, 6)  # type: ignore[assignment]
        aggregate.threshold = rng.choice((0, 2.5, 10, 20))
        window = _days(rng, (None, 7, 30, 90.25))
        if window is not None:
            aggregate.window.FromTimedelta(window)
    else:
        found.lifecycle_stage.stages.extend(
            rng.sample(lifecycle_stage_pb2.LifecycleStage.values()[1:], rng.randint(1, 3))
        )
    return found


def model(rng: random.Random, feature: bool = False) -> lifecycle_pb2.LifecycleModel:
    """Definitions for a random subset of the stages, in a random order (with `feature`, of the conditions a
    lifecycle-stage feature accepts)."""
    stages = [s for s in range(1, 7) if rng.random() < 0.7]
    rng.shuffle(stages)
    return lifecycle_pb2.LifecycleModel(
        stages=[
            lifecycle_pb2.LifecycleStageDefinition(stage=s, condition=condition(rng, feature=feature))  # type: ignore[arg-type]
            for s in stages
        ]
    )
