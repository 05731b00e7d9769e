"""The baseline of the journeys benchmark: the same rows in a second chDB engine, queried with the plain SQL a
ClickHouse user would write for the same questions, without Wayline in between.

The copy lives in the bench's own process (chDB allows one engine path per process; the server holds its
own), and its tables come from the journey store's own migrations, so it has the same DDL as the server's,
lookup tables and materialized views included: a raw insert pays for what the service's insert pays for.

The queries read `events` directly, without FINAL and without person overrides: the generated rows hold no
duplicate and no merge, so they answer the same question as the service, at the cost a user would pay on
this data. What the service adds over them (deduplication, overrides, its fuller results, gRPC and the
conversions) is what the ratio shows.

Once `merge_persons` has merged some persons into others (the same person-wide overrides the bench applies
to the server), the analytics queries read `events` through the join a user would write for that: each
event's person replaced by its override's target, the newest version of each override winning.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from bench.journeys_data import END, START, TENANT
from bench.journeys_vocabulary import FUNNEL
from wayline_journeys.store.client import JourneyDatabase, connect_clickhouse
from wayline_journeys.store.columns import READ_COLUMN_NAMES

__all__ = ["BREAKDOWN_SEGMENTS", "PATH_START", "RawCopy"]

FUNNEL_WINDOW_DAYS = 7
# The segments of the funnel by segment: (segment id, "did this event at least once"). They overlap, and many
# persons are in neither.
BREAKDOWN_SEGMENTS = (("bench-email-clickers", "Email Clicked"), ("bench-callers", "Call Started"))
PATH_START, PATH_DEPTH, SESSION_GAP_MINUTES = "Product Viewed", 5, 30
RETENTION_WEEKS = 8
_RANGE = "timestamp >= {start:DateTime64(6, 'UTC')} AND timestamp < {end:DateTime64(6, 'UTC')}"
# Where the analytics queries read their events from: the table, or the table through the overrides.
_EVENTS = "__events__"
_MERGED_EVENTS = """(
    SELECT e.tenant_id AS tenant_id, e.name AS name, e.channel AS channel, e.timestamp AS timestamp,
           e.revenue AS revenue, e.revenue_currency AS revenue_currency,
           if(o.target != '', o.target, e.person_id) AS person_id
    FROM events AS e
    LEFT ANY JOIN (
        SELECT person_id, argMax(override_person_id, version) AS target FROM person_overrides
        WHERE tenant_id = {tenant:String} AND identifier_type = '' GROUP BY person_id
    ) AS o ON o.person_id = e.person_id
)"""
_TIMELINE = (
    f"SELECT {', '.join(READ_COLUMN_NAMES)} FROM events "
    "WHERE tenant_id = {tenant:String} AND person_id = {person:String} "
)
_PAGE = "ORDER BY timestamp, event_id LIMIT 100"
# Through the lookup the store keeps (schema.py), as a user who knows the DDL would.
_PERSON_ANCHORS = (
    "AND anchor IN (SELECT anchor FROM person_anchors WHERE tenant_id = {tenant:String} "
    "AND person_id = {person:String}) "
)

# The copy keyed by person that the service's first read takes (store/person_timelines.py, ADR 99): its
# columns as they are, no payload decoded, no copies collapsed (the generated rows hold none).
_PERSON_TIMELINE = (
    "SELECT timestamp, event_id, received_at, payload FROM person_timelines "
    "WHERE tenant_id = {tenant:String} AND person_id = {person:String} " + _PAGE
)

# A merged person's timeline by hand: the events stored under the person or under a person merged into them
# (the raw copy's person-wide overrides), found through the anchors of those persons.
_MERGED_PERSONS = (
    "(SELECT {person:String} UNION ALL SELECT person_id FROM person_overrides "
    "WHERE tenant_id = {tenant:String} AND identifier_type = '' AND override_person_id = {person:String})"
)
_MERGED_TIMELINE = (
    f"SELECT {', '.join(READ_COLUMN_NAMES)} FROM events "
    f"WHERE tenant_id = {{tenant:String}} AND person_id IN {_MERGED_PERSONS} "
    "AND anchor IN (SELECT anchor FROM person_anchors WHERE tenant_id = {tenant:String} "
    f"AND person_id IN {_MERGED_PERSONS}) "
) + _PAGE

# What the bench's EvaluatePersonConditions asks (journeys.py), as one hand-written statement on the events
# stored under the person through their anchors: no overrides (the raw copy has none).
_PERSON_CONDITIONS = (
    "SELECT countIf(name = 'Order Completed') >= 1, countIf(revenue > 0 AND revenue_currency = 'EUR') >= 3, "
    "countIf(revenue > 0 AND revenue_currency = 'EUR' AND timestamp >= now64() - INTERVAL 180 DAY) >= 2 "
    "FROM events FINAL WHERE tenant_id = {tenant:String} AND person_id = {person:String} "
) + _PERSON_ANCHORS

# The same facts for a page of persons: a row per person with events.
_PAGE_CONDITIONS = (
    "SELECT person_id, countIf(name = 'Order Completed') >= 1, "
    "countIf(revenue > 0 AND revenue_currency = 'EUR') >= 3, "
    "countIf(revenue > 0 AND revenue_currency = 'EUR' AND timestamp >= now64() - INTERVAL 180 DAY) >= 2 "
    "FROM events FINAL WHERE tenant_id = {tenant:String} AND person_id IN {persons:Array(String)} "
    "AND anchor IN (SELECT anchor FROM person_anchors WHERE tenant_id = {tenant:String} "
    "AND person_id IN {persons:Array(String)}) GROUP BY person_id"
)

# The latest value of each trait asked of a page of persons' identify events, by hand (what a flow's
# personalised sends read): the events stored under the persons, through their anchors.
_PERSON_TRAITS = (
    "SELECT person_id, trait.1 AS key, argMax(trait.2, (timestamp, event_id)) FROM events FINAL "
    "ARRAY JOIN JSONExtractKeysAndValuesRaw(properties) AS trait "
    "WHERE tenant_id = {tenant:String} AND type = 'identify' AND person_id IN {persons:Array(String)} "
    "AND anchor IN (SELECT anchor FROM person_anchors WHERE tenant_id = {tenant:String} "
    "AND person_id IN {persons:Array(String)}) AND key IN {keys:Array(String)} GROUP BY person_id, key"
)

# Each person's furthest step of the 4-step funnel (7-day window, started in the range), and `first_channel`,
# the channel of their first step.
_FUNNEL_LEVELS = f"""
SELECT person_id,
       argMinIf(channel, timestamp, name = {{s1:String}} AND timestamp < {{end:DateTime64(6, 'UTC')}})
           AS first_channel,
       windowFunnel({{window:UInt64}})(toDateTime(timestamp),
           name = {{s1:String}} AND timestamp < {{end:DateTime64(6, 'UTC')}},
           name = {{s2:String}}, name = {{s3:String}}, name = {{s4:String}}) AS level
FROM {_EVENTS}
WHERE tenant_id = {{tenant:String}} AND name IN {{steps:Array(String)}}
  AND timestamp >= {{start:DateTime64(6, 'UTC')}}
  AND timestamp < {{end:DateTime64(6, 'UTC')}} + INTERVAL {FUNNEL_WINDOW_DAYS} DAY
GROUP BY person_id
"""
# The funnel broken down by the channel of the first step.
_FUNNEL = f"""
SELECT first_channel AS breakdown, level, count() AS persons
FROM ({_FUNNEL_LEVELS})
WHERE level > 0
GROUP BY breakdown, level
"""
# The same funnel by segment: each person's level joined to the segments the service listed them in (a row per
# membership; none, the missing series).
_FUNNEL_BY_SEGMENT = f"""
SELECT m.segment AS breakdown, f.level AS level, count() AS persons
FROM ({_FUNNEL_LEVELS}) AS f
LEFT JOIN bench_segment_members AS m ON m.person_id = f.person_id
WHERE f.level > 0
GROUP BY breakdown, level
"""

# The same funnel week by week (UTC weeks from Monday): per person and week in which they viewed a product
# in the range, the furthest step from a start in that week (each event joined to each of its person's
# start weeks).
_FUNNEL_TREND = f"""
SELECT week, level, count() AS persons
FROM (
    SELECT e.person_id AS person_id, s.week AS week,
           windowFunnel({{window:UInt64}})(toDateTime(e.timestamp),
               e.name = {{s1:String}} AND toMonday(e.timestamp) = s.week
                   AND e.timestamp < {{end:DateTime64(6, 'UTC')}},
               e.name = {{s2:String}}, e.name = {{s3:String}}, e.name = {{s4:String}}) AS level
    FROM {_EVENTS} AS e
    INNER JOIN (
        SELECT DISTINCT person_id, toMonday(timestamp) AS week FROM {_EVENTS}
        WHERE tenant_id = {{tenant:String}} AND name = {{s1:String}} AND {_RANGE}
    ) AS s ON s.person_id = e.person_id
    WHERE e.tenant_id = {{tenant:String}} AND e.name IN {{steps:Array(String)}}
      AND e.timestamp >= {{start:DateTime64(6, 'UTC')}}
      AND e.timestamp < {{end:DateTime64(6, 'UTC')}} + INTERVAL {FUNNEL_WINDOW_DAYS} DAY
    GROUP BY person_id, week
)
WHERE level > 0
GROUP BY week, level
"""

# The top paths of 5 steps from the first Product Viewed of each session (sessions split by 30 minutes).
_PATHS = f"""
SELECT path, paths, sum(paths) OVER () AS total
FROM (
    SELECT arraySlice(arrayMap(x -> x.2, session), first, {PATH_DEPTH}) AS path, count() AS paths
    FROM (
        SELECT session, arrayFirstIndex(x -> x.2 = {{start_name:String}}, session) AS first
        FROM (
            SELECT person_id, arraySort(groupArray((toUnixTimestamp64Micro(timestamp), name))) AS events
            FROM {_EVENTS} WHERE tenant_id = {{tenant:String}} AND {_RANGE}
            GROUP BY person_id
        )
        ARRAY JOIN arraySplit((x, i) -> i > 1 AND x.1 - events[i - 1].1 > {SESSION_GAP_MINUTES * 60_000_000},
                              events, arrayEnumerate(events)) AS session
        WHERE first > 0
    )
    GROUP BY path
)
ORDER BY paths DESC
LIMIT 20
"""

# Weekly cohorts by first event, and how many of each come back in each of the next 8 weeks.
_RETENTION = f"""
SELECT cohort, dateDiff('week', cohort, week) AS period, count() AS persons
FROM (
    SELECT person_id, groupUniqArray(toMonday(timestamp)) AS weeks, arrayMin(weeks) AS cohort
    FROM {_EVENTS} WHERE tenant_id = {{tenant:String}} AND {_RANGE}
    GROUP BY person_id
)
ARRAY JOIN weeks AS week
WHERE period <= {RETENTION_WEEKS}
GROUP BY cohort, period
"""

# Every purchaser in EUR with their historic value and RFM quintiles.
_RFM_SCORED = f"""
SELECT person_id, value, purchases, recency_days,
       ntile(5) OVER (ORDER BY recency_days DESC) AS r,
       ntile(5) OVER (ORDER BY purchases) AS f,
       ntile(5) OVER (ORDER BY value) AS m,
       count() OVER () AS total
FROM (
    SELECT person_id, sum(revenue) AS value, countIf(revenue > 0) AS purchases,
           dateDiff('day', maxIf(timestamp, revenue > 0), {{end:DateTime64(6, 'UTC')}}) AS recency_days
    FROM {_EVENTS}
    WHERE tenant_id = {{tenant:String}} AND revenue_currency = 'EUR' AND revenue IS NOT NULL AND {_RANGE}
    GROUP BY person_id
    HAVING purchases > 0
)
"""
# ...the 1,000 most valuable first (bulk GetCustomerValue's first page).
_RFM = f"{_RFM_SCORED} ORDER BY value DESC LIMIT 1000"
# ...summarised: per cell of the R x FM grid (FM = (F + M + 1) / 2), the persons and their value, and over
# everything, the quantiles of their value (what GetCustomerValueSummary answers).
_RFM_SUMMARY = f"""
SELECT r, intDiv(f + m + 1, 2) AS fm, count(), sum(value), max(total),
       quantilesExact(0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0)(value)
FROM ({_RFM_SCORED})
GROUP BY GROUPING SETS ((r, fm), ())
"""

# The trend row: per channel and week and over the range, events, persons with an order, and the sum and
# the median of revenue in EUR.
_TREND_REVENUE = "revenue_currency = 'EUR' AND revenue IS NOT NULL"
_TRENDS = f"""
SELECT channel, toMonday(timestamp) AS week, grouping(week) = 1 AS whole, count(),
       uniqExactIf(person_id, name = {{order:String}}), sumIf(toFloat64(revenue), {_TREND_REVENUE}),
       quantileExactInclusiveIf(0.5)(toFloat64(revenue), {_TREND_REVENUE})
FROM {_EVENTS} WHERE tenant_id = {{tenant:String}} AND {_RANGE}
GROUP BY GROUPING SETS ((channel, week), (channel))
"""

# The rolling-MAU row: for each day of the range the persons active that day or in the 29 days before, as a
# hand-written query counts them: each person's active days (from 30 days before the range) counted for
# themselves and the 29 days after, then distinct persons per day.
_ROLLING_MAU = f"""
SELECT day, uniqExact(person_id) FROM (
    SELECT person_id, addDays(active, k) AS day FROM (
        SELECT DISTINCT person_id, toDate(timestamp) AS active FROM {_EVENTS}
        WHERE tenant_id = {{tenant:String}} AND timestamp >= {{since:DateTime64(6, 'UTC')}}
          AND timestamp < {{end:DateTime64(6, 'UTC')}}
    ) ARRAY JOIN range(30) AS k
)
WHERE day >= toDate({{start:DateTime64(6, 'UTC')}}) AND day < toDate({{end:DateTime64(6, 'UTC')}})
GROUP BY day
"""

# The stickiness row: persons by how many weeks (from Monday, UTC) of the range they had an event in.
_STICKINESS = f"""
SELECT n, count() FROM (
    SELECT person_id, uniqExact(toMonday(timestamp)) AS n FROM {_EVENTS}
    WHERE tenant_id = {{tenant:String}} AND {_RANGE}
    GROUP BY person_id
)
GROUP BY n
"""

# The activity lifecycle row: each week's persons who ordered, by status, as a hand-written query sorts them
# with window functions over each person's distinct weeks (all history before the range's end): new in their
# first week, returning when the week before has an order too, resurrecting otherwise; dormant the week after
# a week with orders that has none.
_ORDER_WEEKS = f"""
SELECT week, min(week) OVER w AS first, lagInFrame(week) OVER w AS previous,
       leadInFrame(week) OVER w AS following
FROM (
    SELECT DISTINCT person_id, toMonday(timestamp) AS week FROM {_EVENTS}
    WHERE tenant_id = {{tenant:String}} AND name = {{order:String}}
      AND timestamp < {{end:DateTime64(6, 'UTC')}}
)
WINDOW w AS (PARTITION BY person_id ORDER BY week ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
"""
_LIFECYCLE = f"""
SELECT week, status, count() FROM (
    SELECT week, multiIf(week = first, 'new', previous = week - 7, 'returning', 'resurrecting') AS status
    FROM ({_ORDER_WEEKS})
    UNION ALL
    SELECT week + 7 AS week, 'dormant' AS status FROM ({_ORDER_WEEKS}) WHERE following != week + 7
)
WHERE week >= toMonday({{start:DateTime64(6, 'UTC')}}) AND week < {{end:DateTime64(6, 'UTC')}}
GROUP BY week, status
"""


class RawCopy:
    """The baseline's chDB engine at `path`, with the journey store's schema."""

    def __init__(self, path: Path) -> None:
        self._db = JourneyDatabase(lambda: connect_clickhouse("", "wayline", path))
        self._db.open()
        self.client = self._db.client
        tables = self._rows("SELECT name FROM system.tables WHERE database = currentDatabase()", {})
        self.has_person_anchors = ("person_anchors",) in {tuple(t) for t in tables}
        self.has_person_timelines = ("person_timelines",) in {tuple(t) for t in tables}
        self._events = "events"

    def close(self) -> None:
        self._db.close()

    def _rows(self, sql: str, parameters: dict[str, Any]) -> Sequence[Sequence[Any]]:
        return self.client.query(sql, parameters=parameters).result_rows

    def insert(self, table: pa.Table) -> None:
        self.client.insert_arrow("events", table)

    def busy(self) -> bool:
        """Whether background merges or mutations are running (measure reads only once they are done)."""
        return bool(self._rows("SELECT count() FROM system.merges", {})[0][0])

    def timeline(self, person: str, anchored: bool = False) -> Sequence[Sequence[Any]]:
        sql = _TIMELINE + (_PERSON_ANCHORS if anchored else "") + _PAGE
        return self._rows(sql, {"tenant": TENANT, "person": person})

    def person_timeline(self, person: str) -> Sequence[Sequence[Any]]:
        """The first page of a person's timeline from `person_timelines`, by hand."""
        return self._rows(_PERSON_TIMELINE, {"tenant": TENANT, "person": person})

    def merged_timeline(self, person: str) -> Sequence[Sequence[Any]]:
        """The first page of the timeline of a person others were merged into (`merge_persons`), by hand."""
        return self._rows(_MERGED_TIMELINE, {"tenant": TENANT, "person": person})

    def person_conditions(self, person: str) -> Sequence[Sequence[Any]]:
        """A flow branch's question about one person, by hand: orders, purchases in EUR, and the retention
        rule of the built-in lifecycle model (two purchases in 180 days), from their stored events."""
        return self._rows(_PERSON_CONDITIONS, {"tenant": TENANT, "person": person})

    def page_conditions(self, persons: list[str]) -> Sequence[Sequence[Any]]:
        """`person_conditions` for a page of persons, by hand."""
        return self._rows(_PAGE_CONDITIONS, {"tenant": TENANT, "persons": persons})

    def person_traits(self, persons: list[str], keys: list[str]) -> Sequence[Sequence[Any]]:
        """The latest value of each of `keys` among the persons' traits, by hand: a row per (person, key)."""
        return self._rows(_PERSON_TRAITS, {"tenant": TENANT, "persons": persons, "keys": keys})

    def merge_persons(self, every: int) -> list[tuple[str, str, int, str]]:
        """Merges every `every`-th person of the tenant (in order of id) into the person before it, with
        person-wide overrides in `person_overrides`; the analytics queries read through them from now on.
        Returns the overrides written, (merged person, the person it now is, version, merge id), for the
        server to be given the same."""
        rows = self._rows(
            "SELECT p, q FROM (SELECT p, lagInFrame(p) OVER (ORDER BY p ROWS BETWEEN 1 PRECEDING AND CURRENT "
            "ROW) AS q, row_number() OVER (ORDER BY p) AS n FROM (SELECT DISTINCT person_id AS p FROM events "
            "WHERE tenant_id = {tenant:String})) WHERE n % {every:UInt32} = 0 ORDER BY p",
            {"tenant": TENANT, "every": every},
        )
        written = [
            (str(merged), str(into), version, f"bench-{version}")
            for version, (merged, into) in enumerate(rows, start=1)
        ]
        overrides = pa.table(
            {
                "tenant_id": [TENANT] * len(written),
                "person_id": [row[0] for row in written],
                "identifier_type": [""] * len(written),
                "identifier_value": [""] * len(written),
                "override_person_id": [row[1] for row in written],
                "version": [row[2] for row in written],
                "merge_id": [row[3] for row in written],
            }
        )
        self.client.insert_arrow("person_overrides", overrides)
        self._events = _MERGED_EVENTS
        return written

    def _analytics(self, sql: str, parameters: dict[str, Any]) -> Sequence[Sequence[Any]]:
        return self._rows(sql.replace(_EVENTS, self._events), parameters)

    def funnel(self) -> int:
        """Runs the funnel; returns the persons who completed it (over all breakdown values)."""
        return self._funnel(_FUNNEL)

    def funnel_by_segment(self) -> int:
        """Runs the funnel by segment (members as `set_segment_members` last stored them); returns the persons
        who completed it, once per series they are in."""
        return self._funnel(_FUNNEL_BY_SEGMENT)

    def funnel_trend(self) -> int:
        """Runs the funnel week by week; returns the persons who completed it, once per week they started."""
        return self._funnel(_FUNNEL_TREND)

    def _funnel(self, sql: str) -> int:
        steps = dict(zip(("s1", "s2", "s3", "s4"), FUNNEL, strict=True))
        rows = self._analytics(
            sql, {**self._range(), **steps, "steps": list(FUNNEL), "window": FUNNEL_WINDOW_DAYS * 86_400}
        )
        return sum(count for _, level, count in rows if level == len(FUNNEL))

    def set_segment_members(self, members: dict[str, list[str]]) -> None:
        """Store each segment's members (as the service listed them) for `funnel_by_segment`."""
        self.client.command(
            "CREATE TABLE IF NOT EXISTS bench_segment_members (segment String, person_id String) "
            "ENGINE = MergeTree ORDER BY (person_id, segment)"
        )
        self.client.command("TRUNCATE TABLE bench_segment_members")
        rows = [[segment, person] for segment, persons in members.items() for person in persons]
        if rows:
            self.client.insert("bench_segment_members", rows, column_names=["segment", "person_id"])

    def paths(self) -> int:
        """Runs the path query; returns how many paths start at PATH_START."""
        rows = self._analytics(_PATHS, {**self._range(), "start_name": PATH_START})
        return int(rows[0][2]) if rows else 0

    def retention(self) -> int:
        """Runs the retention query; returns the persons in all cohorts."""
        return sum(count for _, period, count in self._analytics(_RETENTION, self._range()) if period == 0)

    def rfm(self) -> int:
        """Runs the RFM query; returns the number of purchasers."""
        rows = self._analytics(_RFM, self._range())
        return int(rows[0][-1]) if rows else 0

    def rfm_summary(self) -> int:
        """Runs the RFM summary; returns the number of purchasers."""
        rows = self._analytics(_RFM_SUMMARY, self._range())
        return max((int(row[4]) for row in rows), default=0)

    def trends(self) -> int:
        """Runs the trend; returns the events in the range (the whole range's rows)."""
        rows = self._analytics(_TRENDS, {**self._range(), "order": FUNNEL[-1]})
        return sum(int(row[3]) for row in rows if row[2])

    def rolling_mau(self) -> int:
        """Runs the rolling MAU by day; returns the persons active on the range's last day."""
        rows = self._analytics(_ROLLING_MAU, {**self._range(), "since": START - timedelta(days=30)})
        return int(max(rows, key=lambda row: row[0])[1]) if rows else 0

    def stickiness(self) -> int:
        """Runs the stickiness; returns the persons with an event in the range."""
        return sum(int(row[1]) for row in self._analytics(_STICKINESS, self._range()))

    def activity_lifecycle(self) -> int:
        """Runs the activity lifecycle of orders by week; returns the new persons over the range."""
        rows = self._analytics(_LIFECYCLE, {**self._range(), "order": FUNNEL[-1]})
        return sum(int(count) for _, status, count in rows if status == "new")

    @staticmethod
    def _range() -> dict[str, Any]:
        return {"tenant": TENANT, "start": START, "end": END}

    def persons(self, count: int, seed: int) -> list[str]:
        """`count` distinct persons with events, drawn at random (deterministically for a seed)."""
        rows = self._rows(
            "SELECT person_id FROM (SELECT DISTINCT person_id FROM events WHERE tenant_id = {tenant:String}) "
            "ORDER BY cityHash64(person_id, {seed:UInt64}) LIMIT {count:UInt32}",
            {"tenant": TENANT, "seed": seed, "count": count},
        )
        return [person for (person,) in rows]
