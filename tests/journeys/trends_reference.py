"""A plain-Python trend, written from the contract (QueryTrendsRequest, TrendMath), to hold the ClickHouse one
to, and a random log of purchases in two currencies, support contacts with sentiment, and identify calls."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from google.protobuf import struct_pb2

from tests.journeys.event_log import latest_plans
from tests.journeys.paths_reference import text_of
from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2

__all__ = ["Measured", "Series", "TEv", "TQuery", "reference_trend", "to_pb", "trend_log"]

CHANNELS = ("web", "mobile_app", "email", "call_center")


@dataclass(frozen=True)
class TEv:
    person: str
    at: datetime
    event_id: str
    type: str
    name: str
    channel: str
    properties: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    revenue: tuple[Decimal, str] | None = None  # amount, currency
    sentiment: float | None = None


@dataclass(frozen=True)
class Series:
    names: tuple[str, ...] = ()  # any of these names; () matches every event
    math: str = "total"  # a TrendMath name in lower case
    property: str = ""  # revenue, sentiment_score or properties.<key>
    currency: str = ""
    channels: tuple[str, ...] = ()  # on every matcher


@dataclass(frozen=True)
class TQuery:
    series: tuple[Series, ...]
    start: datetime
    end: datetime
    period: str = "week"  # hour, day, week, month
    zone: str = "UTC"
    breakdown: str = ""  # "", "channel", "properties.<key>", "person.plan" or "segment"
    segments: tuple[tuple[str, frozenset[str]], ...] = ()
    limit: int = 10
    population_plan: str = ""


@dataclass(frozen=True)
class Measured:
    """One result as plain values: per period (local start, value, events), then the whole range's."""

    points: tuple[tuple[datetime, float | None, int], ...]
    total: float | None
    events: int


Key = tuple[int, str, bool, bool]  # series index, value, other, missing


def _id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128)))


def trend_log(seed: int, start: datetime, persons: int = 30) -> list[TEv]:
    rng = random.Random(seed)
    log: list[TEv] = []
    for p in range(persons):
        person = f"person-{seed}-{p}"
        at = start + timedelta(days=rng.randint(-5, 40), hours=rng.choice((0, 1, 12, 22, 23)), minutes=p)
        if rng.random() < 0.6:
            plan = rng.choice(("free", "pro"))
            log.append(TEv(person, at - timedelta(days=3), _id(rng), "identify", "", "web", {"plan": plan}))
        for _ in range(rng.randint(1, 14)):
            kind = rng.random()
            channel = rng.choice(CHANNELS)
            properties: dict[str, Any] = {}
            if rng.random() < 0.7:
                properties["source"] = rng.choice(("ads", "seo", "mail"))
            if kind < 0.35:
                currency = rng.choice(("EUR", "EUR", "USD"))
                amount = Decimal(rng.randint(-2_000, 30_000)) / 100
                properties["items"] = rng.choice((1, 2, 3, 2.5, "3", None))
                log.append(
                    TEv(person, at, _id(rng), "track", "Purchased", channel, properties, (amount, currency))
                )
            elif kind < 0.65:
                sentiment = rng.choice((None, round(rng.uniform(-1, 1), 4), 0.0))
                log.append(
                    TEv(
                        person,
                        at,
                        _id(rng),
                        "track",
                        "Call Ended",
                        "call_center",
                        properties,
                        None,
                        sentiment,
                    )
                )
            else:
                name = rng.choice(("Product Viewed", "Signed Up", "Chat Message"))
                sentiment = round(rng.uniform(-1, 1), 4) if name == "Chat Message" else None
                log.append(TEv(person, at, _id(rng), "track", name, channel, properties, None, sentiment))
            at += timedelta(
                days=rng.choice((0, 0, 1, 2, 6, 9)), hours=rng.randint(-2, 5), minutes=rng.randint(1, 59)
            )
    return log


def to_pb(e: TEv) -> event_pb2.Event:
    event = event_pb2.Event(
        event_id=e.event_id,
        type=event_pb2.EventType.Value(f"EVENT_TYPE_{e.type.upper()}"),
        name=e.name,
        channel=event_pb2.Channel.Value(f"CHANNEL_{e.channel.upper()}"),
        timestamp=to_timestamp(e.at),
        received_at=to_timestamp(e.at),
        person_id=e.person,
        identifiers=[event_pb2.Identifier(type="user_id", value=e.person)],
    )
    if e.properties:
        properties = struct_pb2.Struct()
        properties.update(e.properties)
        event.properties.CopyFrom(properties)
    if e.revenue is not None:
        amount, currency = e.revenue
        units = int(amount)
        event.revenue.CopyFrom(
            event_pb2.Money(currency_code=currency, units=units, nanos=int((amount - units) * 1_000_000_000))
        )
    if e.sentiment is not None:
        event.sentiment_score = e.sentiment
    return event


def _matches(e: TEv, s: Series) -> bool:
    if s.names and e.name not in s.names:
        return False
    if s.channels and e.channel not in s.channels:
        return False
    return not s.currency or (e.revenue is not None and e.revenue[1] == s.currency)


def _number(e: TEv, s: Series) -> float | None:
    if s.property == "revenue":
        return float(e.revenue[0]) if e.revenue is not None else None
    if s.property == "sentiment_score":
        return e.sentiment
    value = e.properties.get(s.property.removeprefix("properties."))
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _percentile(values: list[float], level: float) -> float:
    ordered = sorted(values)
    position = level * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


_LEVELS = {"median": 0.5, "p90": 0.9, "p99": 0.99}


def _measure(s: Series, events: list[TEv]) -> float | None:
    persons = {e.person for e in events}
    if s.math == "total":
        return float(len(events))
    if s.math == "unique_persons":
        return float(len(persons))
    if s.math == "events_per_person":
        return len(events) / len(persons) if persons else 0.0
    values = [v for v in (_number(e, s) for e in events) if v is not None]
    if s.math == "sum":
        return sum(values, 0.0)
    if not values:
        return None
    if s.math == "average":
        return sum(values) / len(values)
    if s.math == "minimum":
        return min(values)
    if s.math == "maximum":
        return max(values)
    return _percentile(values, _LEVELS[s.math])


def _floor(local: date, period: str) -> date:
    if period == "week":
        return local - timedelta(days=local.weekday())
    if period == "month":
        return local.replace(day=1)
    return local


def _next(local: date, period: str) -> date:
    if period == "day":
        return local + timedelta(days=1)
    if period == "week":
        return local + timedelta(days=7)
    return (local.replace(day=28) + timedelta(days=4)).replace(day=1)


def hour_log(seed: int, start: datetime, hours: int = 72, persons: int = 12) -> list[TEv]:
    """Events minutes apart over `hours` from `start`: purchases, scored contacts and views."""
    rng = random.Random(seed)
    log: list[TEv] = []
    for p in range(persons):
        person = f"hourly-{seed}-{p}"
        for _ in range(rng.randint(3, 20)):
            at = start + timedelta(minutes=rng.randint(0, hours * 60 - 1), seconds=rng.randint(0, 59))
            name = rng.choice(("Purchased", "Call Ended", "Product Viewed"))
            revenue = (Decimal(rng.randint(100, 9_000)) / 100, "EUR") if name == "Purchased" else None
            sentiment = round(rng.uniform(-1, 1), 3) if name == "Call Ended" else None
            log.append(TEv(person, at, _id(rng), "track", name, rng.choice(CHANNELS), {}, revenue, sentiment))
    return log


def _hour_starts(q: TQuery) -> list[datetime]:
    """The instants the local clock shows a whole hour, from the hour holding the start to the end, found
    minute by minute (the zones tested have offsets of whole minutes)."""
    zone = ZoneInfo(q.zone)
    moment = q.start.replace(second=0, microsecond=0) - timedelta(hours=2)
    found = []
    while moment < q.end:
        if moment.astimezone(zone).minute == 0:
            found.append(moment)
        moment += timedelta(minutes=1)
    first = max(i for i, m in enumerate(found) if m <= q.start)
    return found[first:]


def _hour_of(at: datetime, starts: list[datetime]) -> datetime:
    return max(s for s in starts if s <= at)


def periods(q: TQuery) -> list[date]:
    zone = ZoneInfo(q.zone)
    found = [_floor(q.start.astimezone(zone).date(), q.period)]
    while True:
        following = _next(found[-1], q.period)
        if datetime.combine(following, datetime.min.time(), tzinfo=zone) >= q.end:
            return found
        found.append(following)


def _values(e: TEv, q: TQuery, plans: dict[str, object]) -> list[tuple[str, bool]]:
    """The breakdown values (value, missing) an event counts under: one, or one per segment of its person."""
    if q.breakdown == "channel":
        return [(e.channel, False)]
    if q.breakdown == "segment":
        found = [(name, False) for name, members in q.segments if e.person in members]
        return found or [("", True)]
    if q.breakdown == "person.plan":
        plan = plans.get(e.person)
        return [("", True)] if plan is None else [(text_of(plan), False)]
    if q.breakdown:
        value = e.properties.get(q.breakdown.removeprefix("properties."))
        return [("", True)] if value is None else [(text_of(value), False)]
    return [("", False)]


_WINDOWS = {"weekly_active_persons": 7, "monthly_active_persons": 30}


def _active_days(
    log: list[TEv], q: TQuery, plans: dict[str, object], kept: set[tuple[str, bool]]
) -> dict[Key, set[tuple[str, date]]]:
    """Per rolling series and result key, the (person, local day) of every matching event before the range's
    end, those before its start included."""
    zone = ZoneInfo(q.zone)
    found: dict[Key, set[tuple[str, date]]] = defaultdict(set)
    for e in log:
        if e.at >= q.end or (q.population_plan and plans.get(e.person) != q.population_plan):
            continue
        for index, s in enumerate(q.series):
            if s.math in _WINDOWS and _matches(e, s):
                for value, missing in _values(e, q, plans):
                    key = (
                        (index, value, False, missing)
                        if (value, missing) in kept
                        else (index, "", True, False)
                    )
                    found[key].add((e.person, e.at.astimezone(zone).date()))
    return found


def reference_trend(log: list[TEv], q: TQuery) -> dict[Key, Measured]:
    zone = ZoneInfo(q.zone)
    plans = latest_plans(log)
    cells: dict[tuple[int, str, bool], list[TEv]] = defaultdict(list)
    for e in log:
        if not q.start <= e.at < q.end or (q.population_plan and plans.get(e.person) != q.population_plan):
            continue
        for index, s in enumerate(q.series):
            if _matches(e, s):
                for value, missing in _values(e, q, plans):
                    cells[(index, value, missing)].append(e)
    weight: dict[tuple[str, bool], int] = defaultdict(int)
    for (_, value, missing), events in cells.items():
        weight[(value, missing)] += len(events)
    limit = len(q.segments) + 1 if q.breakdown == "segment" else q.limit
    kept = set(sorted(weight, key=lambda k: (-weight[k], k[0], k[1]))[:limit]) if q.breakdown else set(weight)
    merged: dict[Key, list[TEv]] = defaultdict(list)
    for (index, value, missing), events in cells.items():
        key = (index, value, False, missing) if (value, missing) in kept else (index, "", True, False)
        merged[key].extend(events)
    if not q.breakdown:
        for index in range(len(q.series)):
            merged.setdefault((index, "", False, False), [])
    hourly = q.period == "hour"
    hours = _hour_starts(q) if hourly else []
    starts: list[date] | list[datetime] = hours if hourly else periods(q)
    active = _active_days(log, q, plans, kept)
    found: dict[Key, Measured] = {}
    for key, events in merged.items():
        s = q.series[key[0]]
        window = _WINDOWS.get(s.math)
        if window is not None:  # rolling: a day's persons active that day or in the window's days before
            rolling = tuple(
                (
                    datetime.combine(d, datetime.min.time(), tzinfo=zone).astimezone(UTC),
                    float(len({p for p, day in active[key] if 0 <= (d - day).days < window})),
                    sum(1 for e in events if e.at.astimezone(zone).date() == d),
                )
                for d in periods(q)
            )
            found[key] = Measured(rolling, rolling[-1][1], len(events))
            continue
        by_period: dict[date, list[TEv]] = defaultdict(list)
        for e in events:
            by_period[
                _hour_of(e.at, hours) if hourly else _floor(e.at.astimezone(zone).date(), q.period)
            ].append(e)
        points = tuple(
            (
                d
                if isinstance(d, datetime)
                else datetime.combine(d, datetime.min.time(), tzinfo=zone).astimezone(UTC),
                _measure(s, by_period[d]),
                len(by_period[d]),
            )
            for d in starts
        )
        found[key] = Measured(points, _measure(s, events), len(events))
    return found


def reference_stickiness(log: list[TEv], q: TQuery) -> dict[Key, tuple[int, ...]]:
    """Per series and result key, how many persons performed a matching event in exactly 1, 2, … of the
    range's periods. Values are ranked by their (series, person) pairs; the others are merged into `other`
    person by person, each person's periods of all of them together."""
    zone = ZoneInfo(q.zone)
    plans = latest_plans(log)
    hourly = q.period == "hour"
    hours = _hour_starts(q) if hourly else []
    starts: list[date] | list[datetime] = hours if hourly else periods(q)
    active: dict[tuple[int, str, bool], dict[str, set[object]]] = defaultdict(lambda: defaultdict(set))
    for e in log:
        if not q.start <= e.at < q.end or (q.population_plan and plans.get(e.person) != q.population_plan):
            continue
        period = _hour_of(e.at, hours) if hourly else _floor(e.at.astimezone(zone).date(), q.period)
        for index, s in enumerate(q.series):
            if _matches(e, s):
                for value, missing in _values(e, q, plans):
                    active[(index, value, missing)][e.person].add(period)
    weight: dict[tuple[str, bool], int] = defaultdict(int)
    for (_, value, missing), persons in active.items():
        weight[(value, missing)] += len(persons)
    limit = len(q.segments) + 1 if q.breakdown == "segment" else q.limit
    kept = set(sorted(weight, key=lambda k: (-weight[k], k[0], k[1]))[:limit]) if q.breakdown else set(weight)
    merged: dict[Key, dict[str, set[object]]] = defaultdict(lambda: defaultdict(set))
    for (index, value, missing), persons in active.items():
        key = (index, value, False, missing) if (value, missing) in kept else (index, "", True, False)
        for person, found in persons.items():
            merged[key][person] |= found
    if not q.breakdown:
        for index in range(len(q.series)):
            merged.setdefault((index, "", False, False), defaultdict(set))
    counted: dict[Key, tuple[int, ...]] = {}
    for key, persons in merged.items():
        counts = [0] * len(starts)
        for found in persons.values():
            counts[len(found) - 1] += 1
        counted[key] = tuple(counts)
    return counted


def activity_log(seed: int, start: datetime, end: datetime, persons: int = 40) -> list[TEv]:
    """Persons active on some days from 120 days before `start` to a few days after `end`, each with a
    habit of their own (from daily to a few times a season): purchases (EUR or USD), views and sign-ups on
    any channel, and an identify event with a plan for most of them."""
    rng = random.Random(seed)
    log: list[TEv] = []
    days = (end - start).days + 125
    for p in range(persons):
        person = f"active-{seed}-{p}"
        habit = rng.choice((0.01, 0.03, 0.08, 0.2, 0.5))
        first_day = rng.randint(0, days - 1)
        if rng.random() < 0.8:
            plan = rng.choice(("free", "pro"))
            at = start - timedelta(days=121) + timedelta(days=first_day)
            log.append(TEv(person, at, _id(rng), "identify", "", "web", {"plan": plan}))
        for day in range(first_day, days):
            if rng.random() >= habit:
                continue
            for _ in range(rng.randint(1, 3)):
                at = start - timedelta(days=120, hours=rng.randint(-3, 20)) + timedelta(days=day)
                at += timedelta(minutes=rng.randint(0, 59), seconds=rng.randint(0, 59))
                name = rng.choice(("Purchased", "Product Viewed", "Product Viewed", "Signed Up"))
                amount = Decimal(rng.randint(100, 9_000)) / 100
                revenue = (amount, rng.choice(("EUR", "USD"))) if name == "Purchased" else None
                log.append(TEv(person, at, _id(rng), "track", name, rng.choice(CHANNELS), {}, revenue))
    return log


Lifecycle = tuple[int, int, int, int]  # new, returning, resurrecting, dormant persons of a period
LifecyclePersons = tuple[set[str], set[str], set[str], set[str]]  # the persons of each of the four


def reference_lifecycle(log: list[TEv], q: TQuery) -> dict[int, list[Lifecycle]]:
    """reference_lifecycle_persons' counts."""
    return {
        index: [(len(a), len(b), len(c), len(d)) for a, b, c, d in points]
        for index, points in reference_lifecycle_persons(log, q).items()
    }


def reference_lifecycle_persons(log: list[TEv], q: TQuery) -> dict[int, list[LifecyclePersons]]:
    """Per series, per period of the range: its persons as new (first matching event ever in the period),
    returning (active in the period before too), resurrecting (active before that only) and dormant (active
    in the period before, not in this one). Active in the range's first period means in the range's part of
    it; the period before is read whole."""
    zone = ZoneInfo(q.zone)
    plans = latest_plans(log)
    if q.period == "hour":
        hours = _hour_starts(replace(q, start=q.start - timedelta(hours=3)))
        first = max(h for h in hours if h <= q.start)
        ranged_hours = [h for h in hours if h < first][-1:] + [h for h in hours if h >= first]
        keys: list[object] = list(ranged_hours)
        starts = ranged_hours[:2]

        def period_of(at: datetime) -> object:
            return max((h for h in hours if h <= at), default=None)
    else:
        ranged = periods(q)
        before = _floor(ranged[0] - timedelta(days=1), q.period)
        keys = [before, *ranged]
        starts = [datetime.combine(d, datetime.min.time(), tzinfo=zone) for d in (before, ranged[0])]

        def period_of(at: datetime) -> object:
            return _floor(at.astimezone(zone).date(), q.period)

    since, first_start = starts[0], starts[1]
    found: dict[int, list[LifecyclePersons]] = {}
    for index, s in enumerate(q.series):
        firsts: dict[str, datetime] = {}
        active: dict[str, set[object]] = defaultdict(set)
        for e in log:
            if e.at >= q.end or not _matches(e, s):
                continue
            if q.population_plan and plans.get(e.person) != q.population_plan:
                continue
            firsts[e.person] = min(e.at, firsts.get(e.person, e.at))
            if since <= e.at < first_start or q.start <= e.at:
                active[e.person].add(period_of(e.at))
        points = []
        for n, key in enumerate(keys[1:]):
            statuses: LifecyclePersons = (set(), set(), set(), set())
            for person, periods_active in active.items():
                if key in periods_active:
                    if firsts[person] >= since and period_of(firsts[person]) == key:
                        statuses[0].add(person)
                    elif keys[n] in periods_active:
                        statuses[1].add(person)
                    else:
                        statuses[2].add(person)
                elif keys[n] in periods_active:
                    statuses[3].add(person)
            points.append(statuses)
        found[index] = points
    return found
