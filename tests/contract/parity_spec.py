"""The feature spec of the parity test: every aggregation, windowed and not, filters of every operator on
every kind of path, every value type (CATEGORY with both unknown-category encodings), defaults of each kind;
plus COUNT features over randomly drawn filters (random_filters.py), and LIFECYCLE_STAGE features: the
built-in default model and random models of event counts (random filters, windows, every comparison) and
person properties (random trait filters), in nested groups, negated at random."""

from __future__ import annotations

import random
from typing import Any

from google.protobuf import duration_pb2, struct_pb2

from tests.contract.feature_log import DAY
from tests.contract.random_filters import random_filter, random_person_filter
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import analytics_pb2, condition_pb2, feature_pb2, lifecycle_pb2
from wayline_journeys.lifecycle_converters import BUILT_IN_MODEL

__all__ = ["parity_spec"]

A = feature_pb2.FeatureAggregation
T = feature_pb2.FeatureValueType
Op = analytics_pb2.FilterOperator


def _value(v: Any) -> struct_pb2.Value:
    found = struct_pb2.Value()
    if v is None:
        found.null_value = struct_pb2.NULL_VALUE
    elif isinstance(v, bool):
        found.bool_value = v
    elif isinstance(v, str):
        found.string_value = v
    else:
        found.number_value = v
    return found


def where(path: str, operator: Op.ValueType, *values: Any) -> analytics_pb2.PropertyFilter:
    return analytics_pb2.PropertyFilter(property=path, operator=operator, values=[_value(v) for v in values])


def matching(
    name: str = "",
    kind: event_pb2.EventType.ValueType = event_pb2.EVENT_TYPE_UNSPECIFIED,
    channels: tuple[event_pb2.Channel.ValueType, ...] = (),
    *filters: analytics_pb2.PropertyFilter,
) -> analytics_pb2.EventMatcher:
    return analytics_pb2.EventMatcher(
        event_name=name, event_type=kind, channels=channels, property_filters=filters
    )


def feature(
    name: str,
    aggregation: A.ValueType,
    path: str = "",
    *,
    events: analytics_pb2.EventMatcher | None = None,
    days: float | None = None,
    default: Any = None,
    kind: T.ValueType = T.FEATURE_VALUE_TYPE_UNSPECIFIED,
    categories: tuple[str, ...] = (),
    other: bool = False,
) -> feature_pb2.FeatureDefinition:
    found = feature_pb2.FeatureDefinition(
        name=name,
        aggregation=aggregation,
        property=path,
        value_type=kind,
        categories=categories,
    )
    if events is not None:
        found.events.CopyFrom(events)
    if days is not None:
        us = int(days * DAY)
        found.window.CopyFrom(duration_pb2.Duration(seconds=us // 1_000_000, nanos=us % 1_000_000 * 1000))
    if default is not None:
        found.default_value.CopyFrom(_value(default))
    if categories:
        found.unknown_category = (
            feature_pb2.UNKNOWN_CATEGORY_ENCODING_OTHER
            if other
            else feature_pb2.UNKNOWN_CATEGORY_ENCODING_MISSING
        )
    return found


CART = '{"items":2,"sku":"a-1"}'  # a canonical object text: sorted keys, 2.0 read back as 2
WEB = event_pb2.CHANNEL_WEB
CATEGORY, FLOAT, INT, BOOL = (
    T.FEATURE_VALUE_TYPE_CATEGORY,
    T.FEATURE_VALUE_TYPE_FLOAT,
    T.FEATURE_VALUE_TYPE_INT,
    T.FEATURE_VALUE_TYPE_BOOL,
)

FIXED = [
    feature("events", A.FEATURE_AGGREGATION_COUNT, kind=INT),
    feature("checkouts_7d", A.FEATURE_AGGREGATION_COUNT, events=matching("Checkout"), days=7, default=0.0),
    feature(
        "big_amounts",
        A.FEATURE_AGGREGATION_COUNT,
        events=matching(
            "",
            event_pb2.EVENT_TYPE_UNSPECIFIED,
            (),
            where("properties.amount", Op.FILTER_OPERATOR_GREATER_THAN, 50),
        ),
    ),
    feature("amount_sum", A.FEATURE_AGGREGATION_SUM, "properties.amount", default=0.0),
    feature("amount_sum_2d", A.FEATURE_AGGREGATION_SUM, "properties.amount", days=2),
    feature(
        "web_amount_avg",
        A.FEATURE_AGGREGATION_AVERAGE,
        "properties.amount",
        events=matching("", event_pb2.EVENT_TYPE_UNSPECIFIED, (WEB,)),
    ),
    feature("amount_min_3d", A.FEATURE_AGGREGATION_MIN, "properties.amount", days=3),
    feature("amount_max", A.FEATURE_AGGREGATION_MAX, "properties.amount", default=-1.0),
    feature("revenue_30d", A.FEATURE_AGGREGATION_SUM, "revenue", days=30),
    feature("revenue_avg", A.FEATURE_AGGREGATION_AVERAGE, "revenue"),
    feature(
        "refunds",
        A.FEATURE_AGGREGATION_SUM,
        "revenue",
        events=matching(
            "", event_pb2.EVENT_TYPE_UNSPECIFIED, (), where("revenue", Op.FILTER_OPERATOR_LESS_THAN, 0)
        ),
    ),
    feature("sentiment_min", A.FEATURE_AGGREGATION_MIN, "sentiment_score"),
    feature("sentiment_avg_10d", A.FEATURE_AGGREGATION_AVERAGE, "sentiment_score", days=10),
    feature("plans", A.FEATURE_AGGREGATION_COUNT_DISTINCT, "properties.plan"),
    feature("carts", A.FEATURE_AGGREGATION_COUNT_DISTINCT, "properties.cart", days=20),
    feature("names", A.FEATURE_AGGREGATION_COUNT_DISTINCT, "name", kind=INT),
    feature(
        "first_plan",
        A.FEATURE_AGGREGATION_FIRST_VALUE,
        "properties.plan",
        kind=CATEGORY,
        categories=("free", "pro", "été"),
    ),
    feature(
        "last_plan_5d",
        A.FEATURE_AGGREGATION_LAST_VALUE,
        "properties.plan",
        days=5,
        default="none",
        kind=CATEGORY,
        categories=("free", "pro", "none"),
        other=True,
    ),
    feature(
        "last_cart",
        A.FEATURE_AGGREGATION_LAST_VALUE,
        "properties.cart",
        kind=CATEGORY,
        categories=(CART,),
        other=True,
    ),
    feature("last_items", A.FEATURE_AGGREGATION_LAST_VALUE, "properties.cart.items", kind=FLOAT),
    feature("last_flag", A.FEATURE_AGGREGATION_LAST_VALUE, "properties.flag", kind=BOOL, default=False),
    feature(
        "first_level", A.FEATURE_AGGREGATION_FIRST_VALUE, "properties.meta.depth.level", kind=INT, days=15
    ),
    feature(
        "last_tags",
        A.FEATURE_AGGREGATION_LAST_VALUE,
        "properties.tags",
        kind=CATEGORY,
        categories=('["a"]', "[]"),
    ),
    feature(
        "first_source",
        A.FEATURE_AGGREGATION_FIRST_VALUE,
        "context.campaign.source",
        kind=CATEGORY,
        categories=("newsletter", "google"),
    ),
    feature("last_width", A.FEATURE_AGGREGATION_LAST_VALUE, "context.device.display_width", kind=FLOAT),
    feature(
        "last_device",
        A.FEATURE_AGGREGATION_LAST_VALUE,
        "context.device.type",
        kind=CATEGORY,
        categories=("DEVICE_TYPE_MOBILE",),
        other=True,
    ),
    feature(
        "last_group",
        A.FEATURE_AGGREGATION_LAST_VALUE,
        "group_id",
        kind=CATEGORY,
        categories=("acme", "globex"),
        other=True,
    ),
    feature(
        "first_channel_7d",
        A.FEATURE_AGGREGATION_FIRST_VALUE,
        "channel",
        days=7,
        kind=CATEGORY,
        categories=("web", "email"),
    ),
    feature("tenure", A.FEATURE_AGGREGATION_DAYS_SINCE_FIRST),
    feature(
        "since_purchase", A.FEATURE_AGGREGATION_DAYS_SINCE_LAST, events=matching("Purchased"), default=-1.0
    ),
    feature(
        "since_identify_9d",
        A.FEATURE_AGGREGATION_DAYS_SINCE_LAST,
        events=matching("", event_pb2.EVENT_TYPE_IDENTIFY),
        days=9,
    ),
    feature("active_days", A.FEATURE_AGGREGATION_ACTIVE_DAYS, kind=INT),
    feature("active_days_14d", A.FEATURE_AGGREGATION_ACTIVE_DAYS, days=14, kind=INT, default=0.0),
    feature(
        "tier",
        A.FEATURE_AGGREGATION_PERSON_PROPERTY,
        "person.tier",
        default="unknown",
        kind=CATEGORY,
        categories=("gold", "silver", "unknown"),
    ),
    feature(
        "tier_missing",
        A.FEATURE_AGGREGATION_PERSON_PROPERTY,
        "person.tier",
        kind=CATEGORY,
        categories=("gold",),
    ),
    feature("vip", A.FEATURE_AGGREGATION_PERSON_PROPERTY, "person.vip", kind=BOOL),
    feature("score", A.FEATURE_AGGREGATION_PERSON_PROPERTY, "person.score", kind=FLOAT, default=0.0),
    feature(
        "prefs",
        A.FEATURE_AGGREGATION_PERSON_PROPERTY,
        "person.prefs",
        kind=CATEGORY,
        categories=(CART,),
        other=True,
    ),
]


def _stage_condition(rng: random.Random, depth: int = 1) -> condition_pb2.PersonCondition:
    found = condition_pb2.PersonCondition(negate=rng.random() < 0.2)
    kind = rng.choice(["person", "count", "count", *(["group"] * (2 if depth < 3 else 0))])
    if kind == "group":
        found.group.operator = rng.choice(
            (condition_pb2.LOGICAL_OPERATOR_AND, condition_pb2.LOGICAL_OPERATOR_OR)
        )
        found.group.conditions.extend(_stage_condition(rng, depth + 1) for _ in range(rng.randint(1, 3)))
    elif kind == "person":
        found.person_property.CopyFrom(random_person_filter(rng, where))
    else:
        count = found.event_count
        count.event.CopyFrom(
            matching(
                rng.choice(["", "", "Purchased", "Product Viewed"]),
                rng.choice([event_pb2.EVENT_TYPE_UNSPECIFIED] * 3 + [event_pb2.EVENT_TYPE_IDENTIFY]),
                tuple(rng.sample(CHANNELS, rng.choice([0, 0, 1, 2]))),
                *[random_filter(rng, where) for _ in range(rng.choice([0, 0, 1]))],
            )
        )
        count.comparison = rng.randint(0, 6)  # type: ignore[assignment]
        count.count = rng.randint(0, 4)
        days = rng.choice([None, None, 1, 4.5])
        if days is not None:
            count.window.CopyFrom(duration_pb2.Duration(seconds=int(days * DAY) // 1_000_000))
    return found


def _stage_model(rng: random.Random) -> lifecycle_pb2.LifecycleModel:
    """A random lifecycle model of the conditions a lifecycle-stage feature accepts."""
    stages = [s for s in range(1, 7) if rng.random() < 0.7] or [rng.randint(1, 6)]  # a model has a stage
    rng.shuffle(stages)
    return lifecycle_pb2.LifecycleModel(
        stages=[
            lifecycle_pb2.LifecycleStageDefinition(stage=s, condition=_stage_condition(rng))  # type: ignore[arg-type]
            for s in stages
        ]
    )


CHANNELS = (event_pb2.CHANNEL_WEB, event_pb2.CHANNEL_MOBILE_APP, event_pb2.CHANNEL_EMAIL)


def _stage_feature(
    name: str, model: lifecycle_pb2.LifecycleModel, default: Any = None
) -> feature_pb2.FeatureDefinition:
    found = feature_pb2.FeatureDefinition(
        name=name, aggregation=A.FEATURE_AGGREGATION_LIFECYCLE_STAGE, lifecycle_model=model
    )
    if default is not None:
        found.default_value.CopyFrom(_value(default))
    return found


def parity_spec(seed: int, random_features: int, stage_features: int = 4) -> feature_pb2.FeatureSpec:
    rng = random.Random(seed)
    drawn = []
    for i in range(random_features):
        filters = [random_filter(rng, where) for _ in range(rng.choice([1, 1, 2]))]
        days = rng.choice([None, None, 4.5])
        drawn.append(
            feature(
                f"filtered_{i}",
                A.FEATURE_AGGREGATION_COUNT,
                events=matching("", event_pb2.EVENT_TYPE_UNSPECIFIED, (), *filters),
                days=days,
            )
        )
    stages = [_stage_feature("stage_built_in", BUILT_IN_MODEL, default=0.0)]
    stages += [_stage_feature(f"stage_{i}", _stage_model(rng)) for i in range(stage_features)]
    return feature_pb2.FeatureSpec(name="parity", version=str(seed), features=[*FIXED, *drawn, *stages])
