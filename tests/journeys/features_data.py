"""Generated event logs and the feature spec of the features tests: each feature defined once, as the
reference's `Feature`, from which its FeatureDefinition is built (so the two cannot drift apart)."""

from __future__ import annotations

import dataclasses
import random
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from google.protobuf import duration_pb2, struct_pb2

from tests.journeys import features_reference as ref
from tests.journeys.conftest import Journeys, override
from wayline.common.timestamps import from_micros, to_micros, to_timestamp
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import analytics_pb2, feature_pb2, training_set_pb2

DAY = ref.DAY_US
HOUR = DAY // 24
NAMES = ("Product Viewed", "Checkout", "Purchased", "Heartbeat")
CHANNELS = {
    "web": event_pb2.CHANNEL_WEB,
    "email": event_pb2.CHANNEL_EMAIL,
    "mobile_app": event_pb2.CHANNEL_MOBILE_APP,
}


def base_us() -> int:
    """60 days ago, so that every generated time is in the past (data_as_of may not be in the future)."""
    return to_micros(datetime.now(UTC) - timedelta(days=60))


def at(us: int) -> Any:
    """A Timestamp for epoch microseconds."""
    return to_timestamp(from_micros(us))


def micros(timestamp: Any) -> int:
    return to_micros(timestamp.ToDatetime(UTC))


def to_pb(e: ref.Ev) -> event_pb2.Event:
    event = event_pb2.Event(
        event_id=e.event_id,
        type=event_pb2.EVENT_TYPE_IDENTIFY if e.type == "identify" else event_pb2.EVENT_TYPE_TRACK,
        name=e.name,
        channel=CHANNELS[e.channel],
        timestamp=at(e.ts),
        received_at=at(e.rs),
        person_id=e.person,
        identifiers=[event_pb2.Identifier(type="user_id", value=e.person)],
    )
    if e.properties:
        event.properties.update(e.properties)
    if e.revenue is not None:
        amount = Decimal(str(e.revenue))
        event.revenue.CopyFrom(
            event_pb2.Money(currency_code="EUR", units=int(amount), nanos=int((amount % 1) * 10**9))
        )
    return event


def _properties(rng: random.Random) -> dict[str, Any]:
    """Numbers (1e21 makes the order of addition matter), non-numbers, nulls, objects and lists."""
    found: dict[str, Any] = {}
    roll = rng.random()
    if roll < 0.6:
        found["amount"] = rng.choice([round(rng.uniform(0, 120), 2), rng.randint(0, 99), 0.1, 1e21])
    elif roll < 0.75:
        found["amount"] = rng.choice(["12", True, None])  # not numbers: skipped
    if rng.random() < 0.6:
        found["plan"] = rng.choice(["free", "pro", 3, 3.0, True, None, "été"])
    if rng.random() < 0.3:
        carts = [{"items": rng.randint(1, 4), "sku": "a-1"}, {"items": [1, 2]}, {"items": None}]
        found["cart"] = rng.choice(carts)
    return found


def _delay(rng: random.Random) -> int:
    """Mostly received at once, sometimes hours or days late, sometimes before the (skewed) timestamp."""
    roll = rng.random()
    if roll < 0.05:
        return rng.randint(2, 10) * DAY  # a late arrival
    if roll < 0.10:
        return -rng.randint(1, 60_000_000)  # a sender's clock ahead: received before its timestamp
    return rng.choice([0, rng.randint(0, 5_000_000), rng.randint(0, 5_000_000), rng.randint(1, 30) * HOUR])


def random_log(rng: random.Random, persons: int, start: int, max_events: int = 30) -> list[ref.Ev]:
    """Events over 50 days from `start`, some at the same instant, identify events setting `tier`."""
    log: list[ref.Ev] = []
    for _ in range(persons):
        person = str(uuid.UUID(int=rng.getrandbits(128)))
        previous = start
        for _ in range(rng.randint(1, max_events)):
            ts = previous if rng.random() < 0.05 else start + rng.randint(0, 50 * DAY)
            previous, rs = ts, ts + _delay(rng)
            event_id = str(uuid.UUID(int=rng.getrandbits(128)))
            channel = rng.choice(list(CHANNELS))
            if rng.random() < 0.12:
                tier = {"tier": rng.choice(["gold", "silver", None])}
                log.append(ref.Ev(person, event_id, "", channel, ts, rs, "identify", tier))
                continue
            name = rng.choice(NAMES)
            revenue = round(rng.uniform(1, 200), 2) if name == "Purchased" else None
            log.append(ref.Ev(person, event_id, name, channel, ts, rs, "track", _properties(rng), revenue))
    return log


def by_person(events: list[ref.Ev]) -> dict[str, list[ref.Ev]]:
    found: dict[str, list[ref.Ev]] = defaultdict(list)
    for e in events:
        found[e.person].append(e)
    return found


def duration(us: int) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=us // 1_000_000, nanos=us % 1_000_000 * 1000)


def value(v: ref.Value) -> struct_pb2.Value:
    if v is None:
        return struct_pb2.Value(null_value=struct_pb2.NULL_VALUE)
    if isinstance(v, bool):
        return struct_pb2.Value(bool_value=v)
    if isinstance(v, str):
        return struct_pb2.Value(string_value=v)
    return struct_pb2.Value(number_value=v)


def python(found: struct_pb2.Value) -> ref.Value:
    kind = found.WhichOneof("kind")
    if kind in (None, "null_value"):
        return None
    result: ref.Value = getattr(found, kind)
    return result


def named(name: str) -> analytics_pb2.EventMatcher:
    return analytics_pb2.EventMatcher(event_name=name)


def is_name(name: str) -> Callable[[ref.Ev], bool]:
    return lambda e: e.name == name


def _big(e: ref.Ev) -> bool:
    amount = e.properties.get("amount")
    return isinstance(amount, int | float) and not isinstance(amount, bool) and amount > 50


BIG = analytics_pb2.EventMatcher(
    property_filters=[
        analytics_pb2.PropertyFilter(
            property="properties.amount",
            operator=analytics_pb2.FILTER_OPERATOR_GREATER_THAN,
            values=[struct_pb2.Value(number_value=50)],
        )
    ]
)
GOLD = analytics_pb2.Population(
    person_filters=[
        analytics_pb2.PropertyFilter(
            property="person.tier", operator=analytics_pb2.FILTER_OPERATOR_EQUALS, values=[value("gold")]
        )
    ]
)


@dataclasses.dataclass(frozen=True)
class Named:
    """A feature; `value_type` and `categories` type it for the model (they do not change its values).
    FIRST_VALUE, LAST_VALUE and PERSON_PROPERTY must name a type."""

    name: str
    reference: ref.Feature
    events: analytics_pb2.EventMatcher | None = None
    value_type: feature_pb2.FeatureValueType.ValueType = feature_pb2.FEATURE_VALUE_TYPE_UNSPECIFIED
    categories: tuple[str, ...] = ()
    unknown_category: feature_pb2.UnknownCategoryEncoding.ValueType = (
        feature_pb2.UNKNOWN_CATEGORY_ENCODING_UNSPECIFIED
    )

    def definition(self) -> feature_pb2.FeatureDefinition:
        kind = feature_pb2.FeatureAggregation.Value(f"FEATURE_AGGREGATION_{self.reference.kind.upper()}")
        found = feature_pb2.FeatureDefinition(
            name=self.name,
            aggregation=kind,
            property=self.reference.path,
            value_type=self.value_type,
            categories=self.categories,
            unknown_category=self.unknown_category,
        )
        if self.events is not None:
            found.events.CopyFrom(self.events)
        if self.reference.window_us is not None:
            found.window.CopyFrom(duration(self.reference.window_us))
        if self.reference.default is not None:
            found.default_value.CopyFrom(value(self.reference.default))
        return found


# Every aggregation, with and without windows, matchers and defaults.
F = ref.Feature
CATEGORY = feature_pb2.FEATURE_VALUE_TYPE_CATEGORY
PLANS = ("free", "pro", "été")
FEATURES = [
    Named("events", F("count")),
    Named("checkouts_7d", F("count", is_name("Checkout"), window_us=7 * DAY, default=0.0), named("Checkout")),
    Named("big_orders", F("count", _big), BIG),
    Named("amount_sum", F("sum", path="properties.amount", default=0.0)),
    Named(
        "web_amount_mean",
        F("average", lambda e: e.channel == "web", "properties.amount"),
        analytics_pb2.EventMatcher(channels=[event_pb2.CHANNEL_WEB]),
    ),
    Named("amount_min", F("min", path="properties.amount")),
    Named("amount_max_14d", F("max", path="properties.amount", window_us=14 * DAY)),
    Named("revenue", F("sum", path="revenue")),
    Named("plans", F("count_distinct", path="properties.plan")),
    Named("first_plan", F("first_value", path="properties.plan"), value_type=CATEGORY, categories=PLANS),
    Named(
        "last_plan_3d",
        F("last_value", path="properties.plan", window_us=3 * DAY, default="none"),
        value_type=CATEGORY,
        categories=("none", *PLANS),
        unknown_category=feature_pb2.UNKNOWN_CATEGORY_ENCODING_OTHER,
    ),
    Named(
        "last_cart",  # an object's value is its compact JSON text, which a category can name
        F("last_value", path="properties.cart"),
        value_type=CATEGORY,
        categories=('{"items":[1,2]}', '{"items":null}'),
    ),
    Named(
        "last_items",
        F("last_value", path="properties.cart.items"),
        value_type=feature_pb2.FEATURE_VALUE_TYPE_INT,
    ),
    Named("tenure_days", F("days_since_first")),
    Named(
        "days_since_purchase", F("days_since_last", is_name("Purchased"), default=-1.0), named("Purchased")
    ),
    Named("active_days_30d", F("active_days", window_us=30 * DAY)),
    Named(
        "tier",
        F("person_property", path="person.tier", default="unknown"),
        value_type=CATEGORY,
        categories=("gold", "silver", "unknown"),
    ),
]
SPEC = feature_pb2.FeatureSpec(name="churn", version="3", features=[f.definition() for f in FEATURES])
# Specs that break one typing rule (wayline.common.feature_encoding.spec_violations), each with the one field
# path (under the request's spec) that says so: both RPCs refuse them alike.
INT = feature_pb2.FEATURE_VALUE_TYPE_INT
COUNT, AVERAGE = feature_pb2.FEATURE_AGGREGATION_COUNT, feature_pb2.FEATURE_AGGREGATION_AVERAGE
FIRST_VALUE, LAST_VALUE = (
    feature_pb2.FEATURE_AGGREGATION_FIRST_VALUE,
    feature_pb2.FEATURE_AGGREGATION_LAST_VALUE,
)
PERSON_PROPERTY = feature_pb2.FEATURE_AGGREGATION_PERSON_PROPERTY
OTHER = feature_pb2.UNKNOWN_CATEGORY_ENCODING_OTHER
_PLAN: dict[str, Any] = {"name": "x", "aggregation": LAST_VALUE, "property": "properties.plan"}


def _one(**fields: Any) -> feature_pb2.FeatureSpec:
    return feature_pb2.FeatureSpec(features=[feature_pb2.FeatureDefinition(**fields)])


BADLY_TYPED = [
    # The value type: required where values may be strings, fitting the aggregation, a known one.
    (_one(**_PLAN), "features[0].value_type"),
    (_one(name="x", aggregation=FIRST_VALUE, property="properties.a"), "features[0].value_type"),
    (_one(name="x", aggregation=PERSON_PROPERTY, property="person.tier"), "features[0].value_type"),
    (
        feature_pb2.FeatureSpec(features=[*SPEC.features[:2], feature_pb2.FeatureDefinition(**_PLAN)]),
        "features[2].value_type",
    ),
    (_one(name="x", aggregation=COUNT, value_type=CATEGORY, categories=["a"]), "features[0].value_type"),
    (_one(name="x", aggregation=AVERAGE, property="properties.a", value_type=INT), "features[0].value_type"),
    (_one(name="x", aggregation=COUNT, value_type=99), "features[0].value_type"),
    # An aggregation this build does not define: named once (the typing rules used to name it with the enum's
    # Name(), which raised ValueError: INTERNAL).
    (_one(name="x", aggregation=99, value_type=INT), "features[0].aggregation"),
    # Category labels and the unknown-category encoding: always and only for CATEGORY.
    (_one(**_PLAN, value_type=CATEGORY), "features[0].categories"),
    (_one(name="x", aggregation=COUNT, categories=["a"]), "features[0].categories"),
    (_one(name="x", aggregation=COUNT, unknown_category=OTHER), "features[0].unknown_category"),
    (_one(**_PLAN, value_type=CATEGORY, categories=["a", "b", "a"]), "features[0].categories[2]"),
    (_one(**_PLAN, value_type=CATEGORY, categories=["a", ""]), "features[0].categories[1]"),
    (_one(**_PLAN, value_type=CATEGORY, categories=[str(i) for i in range(1_001)]), "features[0].categories"),
    (
        _one(**_PLAN, value_type=CATEGORY, categories=["a"], unknown_category=7),
        "features[0].unknown_category",
    ),
]
PURCHASE_7D = training_set_pb2.LabelDefinition(
    kind=training_set_pb2.LABEL_KIND_BINARY, event=named("Purchased"), horizon=duration(7 * DAY)
)


def expected_values(events: list[ref.Ev], person: str, t: int, cut_off: int) -> list[ref.Value]:
    return [ref.feature(f.reference, events, person, t, cut_off) for f in FEATURES]


def assert_same(got: list[ref.Value], want: list[ref.Value], where: object) -> None:
    for f, g, w in zip(FEATURES, got, want, strict=True):
        assert ref.same(g, w), f"{f.name} at {where}: got {g!r}, want {w!r}"


def merged_log(journeys: Journeys, seed: int, persons: int = 16) -> tuple[list[ref.Ev], int]:
    """A random log written through WriteEvents, with the first person merged into the second (the
    reference reads the merged events as the second's), and the start of its time span."""
    start = base_us()
    log = random_log(random.Random(seed), persons, start)
    journeys.write(*(to_pb(e) for e in log))
    first, second = log[0].person, next(e.person for e in log if e.person != log[0].person)
    journeys.apply(override(first, second, 1))
    return [dataclasses.replace(e, person=second) if e.person == first else e for e in log], start
