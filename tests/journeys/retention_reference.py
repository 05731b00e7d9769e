"""A plain-Python retention table, written from the contract (QueryRetentionRequest, RetentionType), to hold
the ClickHouse one to, and a random log that spans months and a DST change."""

from __future__ import annotations

import random
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from tests.journeys.event_log import CHANNELS, Ev, latest_plans
from tests.journeys.paths_reference import text_of

__all__ = ["Cohort", "RetQuery", "reference_retention", "retention_log"]


@dataclass(frozen=True)
class RetQuery:
    cohort_name: str = ""  # "" means the first event of any kind
    return_name: str = ""  # "" means any event
    period: str = "week"  # day, week, month
    count: int = 8
    unbounded: bool = False
    start: datetime | None = None
    end: datetime | None = None
    zone: str = "UTC"
    breakdown: str = ""  # "", "channel", "properties.<key>", "person.<trait>" or "segment"
    segments: tuple[tuple[str, frozenset[str]], ...] = ()  # for "segment": (name, its current members)
    limit: int = 10
    population_plan: str = ""  # persons whose person.plan equals this


@dataclass
class Cohort:
    size: int = 0
    retained: Counter[int] = field(default_factory=Counter)


Table = dict[tuple[str, bool, bool], dict[datetime, Cohort]]  # series → cohort period start (UTC) → counts


def retention_log(seed: int, start: datetime, persons: int = 40) -> list[Ev]:
    rng = random.Random(seed)
    log: list[Ev] = []
    for p in range(persons):
        person = f"person-{seed}-{p}"
        at = start + timedelta(
            days=rng.randint(0, 70), hours=rng.choice((21, 22, 23, 0, 1, 12)), minutes=rng.randint(0, 59)
        )
        if rng.random() < 0.5:
            plan = rng.choice(("free", "pro"))
            log.append(
                Ev(person, at - timedelta(days=1), _id(rng), "identify", "", "web", "", {"plan": plan})
            )
        for _ in range(rng.randint(1, 12)):
            name = rng.choice(("Signed Up", "Purchased", "Product Viewed", "Purchased"))
            properties = {"source": rng.choice(("ads", "seo"))} if rng.random() < 0.7 else {}
            log.append(Ev(person, at, _id(rng), "track", name, rng.choice(CHANNELS), "", properties))
            at += timedelta(
                days=rng.choice((0, 0, 1, 2, 6, 7, 8, 13, 30)),
                hours=rng.randint(-3, 3),
                minutes=rng.randint(0, 59),
            )
    return log


def _id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128)))


def _period_start(local: date, period: str) -> date:
    if period == "day":
        return local
    if period == "week":
        return local - timedelta(days=local.weekday())
    return local.replace(day=1)


def _index(first: date, later: date, period: str) -> int:
    if period == "day":
        return (later - first).days
    if period == "week":
        return (_period_start(later, "week") - _period_start(first, "week")).days // 7
    return (later.year - first.year) * 12 + later.month - first.month


def reference_retention(log: list[Ev], q: RetQuery) -> Table:
    zone = ZoneInfo(q.zone)
    plans = latest_plans(log)
    by_person: dict[str, list[Ev]] = defaultdict(list)
    for e in log:
        if not q.population_plan or plans.get(e.person) == q.population_plan:
            by_person[e.person].append(e)
    entries: list[tuple[tuple[str, bool], datetime, set[int]]] = []
    for events in by_person.values():
        events.sort(key=lambda e: (e.at, e.event_id))
        entry = next((e for e in events if not q.cohort_name or e.name == q.cohort_name), None)
        if entry is None or (q.start and entry.at < q.start) or (q.end and entry.at >= q.end):
            continue
        first = entry.at.astimezone(zone).date()
        indexes = {
            _index(first, e.at.astimezone(zone).date(), q.period)
            for e in events
            if e.at >= entry.at and (not q.return_name or e.name == q.return_name)
        }
        if q.unbounded:
            retained = set(range(min(max(indexes), q.count) + 1)) if indexes else set()
        else:
            retained = {i for i in indexes if i <= q.count}
        cohort = datetime.combine(
            _period_start(first, q.period), datetime.min.time(), tzinfo=zone
        ).astimezone(UTC)
        entries.extend((key, cohort, retained) for key in _series_values(entry, plans, q))
    sizes = Counter(key for key, _, _ in entries)
    limit = len(q.segments) + 1 if q.breakdown == "segment" else q.limit
    kept = set(sorted(sizes, key=lambda k: (-sizes[k], k[0], k[1]))[:limit])
    table: Table = defaultdict(lambda: defaultdict(Cohort))
    for (value, missing), cohort, retained in entries:
        counts = table[(value, False, missing) if (value, missing) in kept else ("", True, False)][cohort]
        counts.size += 1
        counts.retained.update(retained)
    return {key: dict(cohorts) for key, cohorts in table.items()}


def _series_values(entry: Ev, plans: dict[str, object], q: RetQuery) -> list[tuple[str, bool]]:
    """The series a person entering with `entry` counts in: one, or one per segment they are in."""
    if q.breakdown == "segment":
        return [(name, False) for name, members in q.segments if entry.person in members] or [("", True)]
    return [_series_value(entry, plans, q)]


def _series_value(entry: Ev, plans: dict[str, object], q: RetQuery) -> tuple[str, bool]:
    if q.breakdown == "channel":
        return (entry.channel, False)
    if q.breakdown.startswith("person."):
        value = plans.get(entry.person)
    elif q.breakdown:
        value = entry.properties.get(q.breakdown.removeprefix("properties."))
    else:
        return ("", False)
    return ("", True) if value is None else (text_of(value), False)
