"""Property filters drawn at random for the parity test's COUNT features: every operator on every kind of
path (event properties of each JSON kind, nested paths, objects, lists, RFC 3339 times, the event fields,
revenue, sentiment, the context), with values of every kind, so the matcher meets many operator/value pairs;
the text operators meet numbers in each of their layouts (`1e21`, `-0`, `1e-7`), booleans, null, objects and
lists too (analytics.proto; ADR 77)."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from tests.contract.feature_log import NAMES
from wayline.common.patterns import pattern_problem
from wayline.journeys.v1 import analytics_pb2

__all__ = ["CONTEXT_POOLS", "random_event_filter", "random_filter", "random_person_filter"]

Op = analytics_pb2.FilterOperator
Where = Callable[..., analytics_pb2.PropertyFilter]

# Paths, with values to compare them with, for the random filters.
_POOLS: dict[str, tuple[Any, ...]] = {
    "properties.amount": (0.1, 12, 55.5, 125, 1e21, -0.0, 1e-7, "12", True, None, "5", "^1", "2$", "e21"),
    "properties.plan": ("free", "pro", "Pro", "été", 3, True, None, "r", "^p", "0", "^-0$", "ru"),
    "properties.coupon": ("SPRING", "spring", "", None, "-10"),
    "properties.flag": (True, False, 0, 2, "yes", "e", "^(true|false)$", "null"),
    "properties.tags": ("a", '"a"', "[", "", None),
    "properties.due": ("2026-10-10T00:00:00Z", "2026-10-20T08:30:00+02:00", "soon", "T12"),
    "properties.cart.items": (1, 2, 2.5, None, "2"),
    "properties.cart": ("sku", "a-1", '"items":2', None),
    "properties.meta.depth.level": (1, 2, "2"),
    "name": (*NAMES, "Product", "^(Pro|Sup)", "ed$"),
    "type": ("track", "page", "identify", "ack"),
    "channel": ("web", "email", "call_center", "_"),
    "text": ("refund", "REFUND", "", "é", "(?i)refund"),
    "group_id": ("acme", "", "glo"),
    "sentiment_score": (0.5, -0.75, 0, 0.125, "0.5", "^-"),
    "revenue": (0, 100, 1e7, "5", "^-", "\\.5"),
    "context.campaign.source": ("newsletter", "google", "news"),
    "context.location.country": ("FR", "DE", "F"),
    "context.device.display_width": (390, 1920, "39"),
    "context.device.type": ("DEVICE_TYPE_MOBILE", "MOBILE"),
}
# Traits (feature_log.py's identify properties) for the person-property conditions of lifecycle models.
_PERSON_POOLS: dict[str, tuple[Any, ...]] = {
    "person.tier": ("gold", "silver", "bronze", 1, None, "^g", "ol"),
    "person.vip": (True, False, "no", None, "tr"),
    "person.score": (0.5, 10, -3.25, "high", None, "^-"),
    "person.prefs": ("sku", "a-1", '"items":2', None),
}
# The rest of the context, for the parity of the evaluators on single events (test_filter_parity.py, whose
# events carry these parts): a Struct's keys as sent (snake_case, camelCase, nested; values of every JSON
# kind), strings, a double and a bool with presence (set at zero or false), a double without it, and a field
# spelled with its JSON name rather than its proto name.
CONTEXT_POOLS: dict[str, tuple[Any, ...]] = {
    "context.extra.coupon_code": ("SPRING", 10, True, None, "^S", "2026-10-10T00:00:00Z", "{"),
    "context.extra.utmTerm": ("shoes", "", None, "sh"),
    "context.extra.nested.level": (1, 2, "2", None),
    "context.traits.tier": ("gold", 1, None, "ol"),
    "context.timezone": ("Europe/Paris", "Paris", "^Europe/"),
    "context.user_agent": ("Mozilla/5.0", "Mozilla", ""),
    "context.page.url": ("https://example.com/a", "example", "^https://"),
    "context.location.latitude": (0, 48.85, -33.9, "0", "^-"),
    "context.device.ad_tracking_enabled": (True, False, "false", None),
    "context.device.display_density": (0, 2, 2.5, "2"),
    "context.device.displayWidth": (390, 1920, "39"),
    "context.campaign": ("newsletter", None, "{"),
}
_OPERATORS = (
    Op.FILTER_OPERATOR_EQUALS,
    Op.FILTER_OPERATOR_NOT_EQUALS,
    Op.FILTER_OPERATOR_CONTAINS,
    Op.FILTER_OPERATOR_NOT_CONTAINS,
    Op.FILTER_OPERATOR_MATCHES_REGEX,
    Op.FILTER_OPERATOR_GREATER_THAN,
    Op.FILTER_OPERATOR_GREATER_THAN_OR_EQUAL,
    Op.FILTER_OPERATOR_LESS_THAN,
    Op.FILTER_OPERATOR_LESS_THAN_OR_EQUAL,
    Op.FILTER_OPERATOR_IS_SET,
    Op.FILTER_OPERATOR_IS_NOT_SET,
)
_ORDERING = (
    Op.FILTER_OPERATOR_GREATER_THAN,
    Op.FILTER_OPERATOR_GREATER_THAN_OR_EQUAL,
    Op.FILTER_OPERATOR_LESS_THAN,
    Op.FILTER_OPERATOR_LESS_THAN_OR_EQUAL,
)


def random_filter(rng: random.Random, where: Where) -> analytics_pb2.PropertyFilter:
    """One filter on an event path; `where(path, operator, *values)` builds it."""
    return _drawn(rng, where, _POOLS)


def random_event_filter(rng: random.Random, where: Where) -> analytics_pb2.PropertyFilter:
    """One filter on an event path, the rest of the context (CONTEXT_POOLS) included."""
    return _drawn(rng, where, {**_POOLS, **CONTEXT_POOLS})


def random_person_filter(rng: random.Random, where: Where) -> analytics_pb2.PropertyFilter:
    """One filter on a `person.` trait path."""
    return _drawn(rng, where, _PERSON_POOLS)


def _drawn(
    rng: random.Random, where: Where, pools: dict[str, tuple[Any, ...]]
) -> analytics_pb2.PropertyFilter:
    path = rng.choice(list(pools))
    pool = pools[path]
    operator = rng.choice(_OPERATORS)
    if operator in (Op.FILTER_OPERATOR_IS_SET, Op.FILTER_OPERATOR_IS_NOT_SET):
        return where(path, operator)
    if operator in _ORDERING:
        numbers = [float(v) for v in pool if isinstance(v, int | float) and not isinstance(v, bool)]
        times = [v for v in pool if isinstance(v, str) and v.startswith("2026-")]
        return where(path, operator, rng.choice([*numbers, *times] or [0.5]))
    if operator == Op.FILTER_OPERATOR_MATCHES_REGEX:
        # A value that is no RE2 pattern ("[") is refused with its field's path, not evaluated: not drawn.
        patterns = [str(v) for v in pool if pattern_problem(str(v)) is None]
        return where(path, operator, rng.choice(patterns))
    values = rng.sample(pool, rng.randint(1, min(3, len(pool))))
    return where(
        path, operator, *(float(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in values)
    )
