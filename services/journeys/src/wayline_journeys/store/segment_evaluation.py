"""The segment evaluator's SQL (segment_evaluator.py has the logic): which persons to evaluate again, how
their memberships differ from the stored ones, and the writes of changes, memberships and statuses.

Finding persons is one statement for every tenant: the stored persons stamped in `segment_dirty` since each
tenant's last pass (events and overrides written since), plus, when windows are due, the stored persons with
an event whose timestamp crossed a window boundary since the last check, each with every person an override
of theirs points to (a merged-away person loses events, its target gains them).

Evaluating is one statement per group of segments: the conditions compiled by store/conditions.py into one
row per person with one boolean per segment, for the given persons (their events found through the
person_anchors lookup) or for everyone, FULL JOINed with the stored members, so only the differences leave
ClickHouse: (segment uid, person, entered).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from clickhouse_connect.driver.exceptions import ClickHouseError

from wayline.common.timestamps import to_micros
from wayline_journeys.conditions import Condition
from wayline_journeys.lifecycle import LifecycleModel
from wayline_journeys.segments import ChangeType, SegmentDefinition
from wayline_journeys.store.client import ReadModel, insert_rows, store_error
from wayline_journeys.store.conditions import ConditionCompiler
from wayline_journeys.store.segment_tables import CHANGE_COLUMNS, MEMBERSHIP_COLUMNS, STATUS_COLUMNS, names
from wayline_journeys.store.segments import DEFINITION_SELECT, definition_from_row
from wayline_journeys.store.sql import SqlParams, person_anchors

__all__ = ["ClickHouseSegmentEvaluation", "StatusRow", "StoredChange"]

_TIME = "fromUnixTimestamp64Micro({}, 'UTC')"


@dataclass(frozen=True)
class StoredChange:
    sequence: int
    segment_uid: str
    segment_id: str
    person_id: str
    change_type: ChangeType
    change_time: datetime


@dataclass(frozen=True)
class StatusRow:
    tenant: str
    segment_uid: str
    condition_revision: int
    state: int
    data_as_of: datetime | None
    windows_as_of: datetime | None
    full_evaluation_time: datetime | None
    error_message: str
    recorded_at: datetime


class ClickHouseSegmentEvaluation(ReadModel):
    """Thread-safe as the client it is given."""

    def _insert(self, table: str, rows: list[list[Any]], columns: Sequence[str], action: str) -> None:
        if rows:
            insert_rows(self._client(), table, rows, columns, action)

    def live_definitions(self) -> list[SegmentDefinition]:
        """Every tenant's live segments."""
        rows = self._rows(
            f"SELECT {DEFINITION_SELECT} FROM segments FINAL WHERE deleted = 0",
            SqlParams(),
            "loading segments",
        )
        return [definition_from_row(r) for r in rows]

    def sequence_heads(self, tenants: Sequence[str]) -> dict[str, int]:
        """The highest change sequence each tenant has used (memberships keep it after the feed expires)."""
        params = SqlParams()
        bound = params.bind(list(tenants), "Array(String)")
        rows = self._rows(
            "SELECT tenant_id, max(sequence) FROM (SELECT tenant_id, sequence "
            f"FROM segment_membership_changes WHERE tenant_id IN {bound} UNION ALL "
            f"SELECT tenant_id, sequence FROM segment_memberships WHERE tenant_id IN {bound}) "
            "GROUP BY tenant_id",
            params,
            "reading the change feed's head",
        )
        return {str(t): int(s) for t, s in rows}

    def members_outside(self, live_uids: Sequence[str]) -> list[tuple[str, str, str, str]]:
        """(tenant, uid, segment id, person) of every current member of a segment lifetime that is not live
        (a deleted segment whose members have not exited yet)."""
        params = SqlParams()
        rows = self._rows(
            "SELECT tenant_id, segment_uid, argMax(segment_id, sequence), person_id FROM segment_memberships "
            f"WHERE segment_uid NOT IN {params.bind(list(live_uids), 'Array(String)')} "
            "GROUP BY tenant_id, segment_uid, person_id HAVING argMax(member, sequence) = 1",
            params,
            "finding members of deleted segments",
        )
        return [(str(t), str(u), str(s), str(p)) for t, u, s, p in rows]

    def dirty(
        self, since: Mapping[str, datetime], crossings: Mapping[str, Sequence[tuple[datetime, datetime]]]
    ) -> dict[str, set[str]]:
        """Per tenant of `since`, the persons to evaluate again: stamped since its time, or (for the tenants
        of `crossings`) with an event whose timestamp falls in one of its [start, end) ranges; each with the
        persons their overrides point to."""
        if not since and not crossings:
            return {}
        params = SqlParams()
        stamped = " OR ".join(
            f"(tenant_id = {params.bind(t, 'String')} AND stamped_at >= "
            f"{_TIME.format(params.bind(to_micros(at), 'Int64'))})"
            for t, at in since.items()
        )
        parts = [f"SELECT tenant_id, person_id FROM segment_dirty WHERE {stamped or 'false'}"]
        crossed = []
        for tenant, ranges in crossings.items():
            spans = " OR ".join(
                f"(timestamp >= {_TIME.format(params.bind(to_micros(a), 'Int64'))} AND "
                f"timestamp < {_TIME.format(params.bind(to_micros(b), 'Int64'))})"
                for a, b in ranges
            )
            if spans:
                crossed.append(f"(tenant_id = {params.bind(tenant, 'String')} AND ({spans}))")
        if crossed:
            parts.append(f"SELECT DISTINCT tenant_id, person_id FROM events WHERE {' OR '.join(crossed)}")
        tenants = params.bind(sorted({*since, *crossings}), "Array(String)")
        sql = (
            "SELECT DISTINCT tenant_id, person_id FROM (SELECT s.tenant_id AS tenant_id, "
            "arrayJoin([s.person_id, o.override_person_id]) AS person_id "
            f"FROM ({' UNION ALL '.join(parts)}) AS s LEFT JOIN (SELECT DISTINCT tenant_id, person_id, "
            f"override_person_id FROM person_overrides WHERE tenant_id IN {tenants}) AS o "
            "ON o.tenant_id = s.tenant_id AND o.person_id = s.person_id) WHERE person_id != '' "
            "SETTINGS join_use_nulls = 0"
        )
        found: dict[str, set[str]] = {}
        for tenant, person in self._rows(sql, params, "finding persons to evaluate"):
            found.setdefault(str(tenant), set()).add(str(person))
        return found

    def differences(
        self,
        tenant: str,
        conditions: Mapping[str, Condition],
        lifecycle: LifecycleModel | None,
        at: datetime,
        persons: Sequence[str] | None,
    ) -> list[tuple[str, str, bool]]:
        """(segment uid, person, entered) of every person whose membership of a segment of `conditions`
        (uid → condition) at `at` differs from the stored one: among `persons`, or everyone when None."""
        params = SqlParams(tenant=tenant)
        compiler = ConditionCompiler(params, lifecycle, as_of=at)
        columns = [f"toUInt8({compiler.condition(c)})" for c in conditions.values()]
        uids = params.bind(list(conditions), "Array(String)")
        where, current, stored = "true", "true", ""
        if persons is not None:
            bound = params.bind(list(persons), "Array(String)")
            # The stored persons whose events may read as one of `persons`: themselves and their sources.
            sources = (
                f"(SELECT arrayJoin({bound}) UNION ALL SELECT person_id FROM person_overrides "
                f"WHERE tenant_id = {{tenant:String}} AND override_person_id IN {bound})"
            )
            where = f"person_id IN {sources} AND {person_anchors(f'person_id IN {sources}')}"
            current, stored = f"person_id IN {bound}", f"AND person_id IN {bound} "
        evaluated = compiler.query(
            [f"[{', '.join(columns)}] AS holds"],
            times=params.bind([to_micros(at)], "Array(Int64)"),
            where=where,
            persons=current,
        )
        now = (
            f"SELECT h.1 AS segment_uid, person_id FROM ({evaluated}) "
            f"ARRAY JOIN arrayZip({uids}, holds) AS h WHERE h.2 = 1"
        )
        was = (
            "SELECT segment_uid, person_id FROM segment_memberships WHERE tenant_id = {tenant:String} "
            f"AND segment_uid IN {uids} {stored}"
            "GROUP BY segment_uid, person_id HAVING argMax(member, sequence) = 1"
        )
        sql = (
            "SELECT if(n.segment_uid != '', n.segment_uid, w.segment_uid), "
            "if(n.segment_uid != '', n.person_id, w.person_id), n.segment_uid != '' "
            f"FROM ({now}) AS n FULL OUTER JOIN ({was}) AS w "
            "ON n.segment_uid = w.segment_uid AND n.person_id = w.person_id "
            "WHERE n.segment_uid = '' OR w.segment_uid = '' SETTINGS join_use_nulls = 0"
        )
        rows = self._rows(sql, params, "evaluating segments")
        return [(str(uid), str(person), bool(entered)) for uid, person, entered in rows]

    def write(self, tenant: str, changes: Sequence[StoredChange]) -> None:
        """The changes into the feed, then the memberships they leave (so a failure between the two repeats a
        change rather than losing it)."""
        self._insert(
            "segment_membership_changes",
            [
                [
                    tenant,
                    c.sequence,
                    c.segment_uid,
                    c.segment_id,
                    c.person_id,
                    int(c.change_type),
                    c.change_time,
                ]
                for c in changes
            ],
            names(CHANGE_COLUMNS),
            "writing segment membership changes",
        )
        self._insert(
            "segment_memberships",
            [
                [
                    tenant,
                    c.segment_uid,
                    c.segment_id,
                    c.person_id,
                    int(c.change_type is ChangeType.ENTERED),
                    c.change_time,
                    c.sequence,
                ]
                for c in changes
            ],
            names(MEMBERSHIP_COLUMNS),
            "writing segment memberships",
        )

    def write_status(self, rows: Sequence[StatusRow]) -> None:
        self._insert(
            "segment_status",
            [
                [
                    r.tenant,
                    r.segment_uid,
                    r.condition_revision,
                    r.state,
                    r.data_as_of,
                    r.windows_as_of,
                    r.full_evaluation_time,
                    r.error_message,
                    r.recorded_at,
                ]
                for r in rows
            ],
            names(STATUS_COLUMNS),
            "writing segment statuses",
        )

    def mark_dirty(self, tenant: str, persons: Sequence[str]) -> None:
        """Have the persons evaluated again at the next pass (after an erasure, which writes no event)."""
        params = SqlParams(tenant=tenant)
        try:
            self._client().command(
                "INSERT INTO segment_dirty (tenant_id, person_id, stamped_at) SELECT {tenant:String}, "
                f"arrayJoin({params.bind(list(persons), 'Array(String)')}), now64(6)",
                parameters=params.values,
            )
        except ClickHouseError as exc:
            raise store_error(exc, "marking persons for evaluation") from exc
