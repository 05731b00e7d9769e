"""Segments in ClickHouse, as the RPCs read and write them (segment_tables.py has the tables; the evaluator's
SQL is store/segment_evaluation.py), and `segment_members_sql`, the membership predicate every read model
shares (populations, segment-membership conditions).

Every read of a membership takes the newest row of each (segment lifetime, person) with argMax(..., sequence)
and joins the live definition (`segments` FINAL, not deleted), so a deleted segment has no members the moment
its deletion is stored, before the evaluator writes the exits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from wayline.common.timestamps import from_micros
from wayline_journeys.retention import RetentionPeriod
from wayline_journeys.segments import (
    ChangeType,
    Member,
    MemberPage,
    Membership,
    MembershipChange,
    SegmentDefinition,
    SegmentState,
    SegmentStatus,
)
from wayline_journeys.store.client import ReadModel, insert_rows
from wayline_journeys.store.periods import period_start
from wayline_journeys.store.segment_tables import SEGMENT_COLUMNS, names
from wayline_journeys.store.sql import SqlParams

__all__ = [
    "DEFINITION_SELECT",
    "ClickHouseSegments",
    "definition_from_row",
    "segment_members_sql",
    "segment_memberships_sql",
]

_DATETIME = "DateTime64(6, 'UTC')"
_LIVE_UID = (
    "SELECT uid FROM segments FINAL WHERE tenant_id = {tenant} AND segment_id = {segment} AND deleted = 0"
)


def segment_members_sql(segment_id: str, params: SqlParams, tenant: str = "{tenant:String}") -> str:
    """The predicate on `person_id` (the current person) that the person is a current member of
    `segments/{segment_id}`; it holds for no one when the segment does not exist or is deleted. `tenant` is
    the placeholder of the bound tenant."""
    live = _LIVE_UID.format(tenant=tenant, segment=params.bind(segment_id, "String"))
    return (
        f"person_id IN (SELECT person_id FROM segment_memberships WHERE tenant_id = {tenant} "
        f"AND segment_uid IN ({live}) GROUP BY person_id HAVING argMax(member, sequence) = 1)"
    )


def segment_memberships_sql(
    segments: Sequence[str], params: SqlParams, tenant: str = "{tenant:String}"
) -> str:
    """A query of (person_id, raw): a row for each current membership of a person in one of `segments`
    (`segments/{id}`), `raw` the segment's name as a JSON string (a breakdown value, see
    store/breakdown.py). A name that is no live segment has no rows, as in `segment_members_sql`."""
    ids = params.bind([n.removeprefix("segments/") for n in segments], "Array(String)")
    live = (
        f"SELECT uid, segment_id FROM segments FINAL "
        f"WHERE tenant_id = {tenant} AND segment_id IN {ids} AND deleted = 0"
    )
    members = (
        f"SELECT segment_uid, person_id FROM segment_memberships WHERE tenant_id = {tenant} "
        f"AND segment_uid IN (SELECT uid FROM ({live})) GROUP BY segment_uid, person_id "
        f"HAVING argMax(member, sequence) = 1"
    )
    return (
        f"SELECT m.person_id AS person_id, toJSONString(concat('segments/', l.segment_id)) AS raw "
        f"FROM ({members}) AS m INNER JOIN ({live}) AS l ON l.uid = m.segment_uid"
    )


_COLUMNS = names(SEGMENT_COLUMNS)
DEFINITION_SELECT = ", ".join(f"toUnixTimestamp64Micro({c})" if c.endswith("_time") else c for c in _COLUMNS)
"""The definition columns in SEGMENT_COLUMNS order, times as epoch microseconds (`definition_from_row`)."""


def definition_from_row(row: Sequence[Any]) -> SegmentDefinition:
    values = dict(zip(_COLUMNS, row, strict=True))
    return SegmentDefinition(
        tenant=values["tenant_id"],
        segment_id=values["segment_id"],
        uid=values["uid"],
        version=int(values["version"]),
        revision=int(values["revision"]),
        condition_revision=int(values["condition_revision"]),
        display_name=values["display_name"],
        description=values["description"],
        condition=values["condition"],
        refers=tuple(values["refers"]),
        create_time=from_micros(values["create_time"]),
        update_time=from_micros(values["update_time"]),
        deleted=bool(values["deleted"]),
    )


def _row(definition: SegmentDefinition) -> list[Any]:
    return [
        definition.tenant, definition.segment_id, definition.uid, definition.version, definition.revision,
        definition.condition_revision, definition.display_name, definition.description, definition.condition,
        list(definition.refers), definition.create_time, definition.update_time, int(definition.deleted),
    ]  # fmt: skip


# The current members of the segment lifetimes {uids}: one row per (uid, person).
_MEMBERS = (
    "SELECT segment_uid, person_id, argMax(enter_time, sequence) AS entered FROM segment_memberships "
    "WHERE tenant_id = {{tenant:String}} AND segment_uid IN {uids} {persons}"
    "GROUP BY segment_uid, person_id HAVING argMax(member, sequence) = 1"
)
_STATUS = (
    "SELECT segment_uid, argMax(condition_revision, recorded_at), argMax(state, recorded_at), "
    "toUnixTimestamp64Micro(argMax(data_as_of, recorded_at)), "
    "toUnixTimestamp64Micro(argMax(windows_as_of, recorded_at)), "
    "toUnixTimestamp64Micro(argMax(full_evaluation_time, recorded_at)), argMax(error_message, recorded_at) "
    "FROM segment_status WHERE tenant_id = {{tenant:String}} AND segment_uid IN {uids} GROUP BY segment_uid"
)


_STATES = {s.value for s in SegmentState}


def _latest(*times: datetime | None) -> datetime | None:
    return max((t for t in times if t is not None), default=None)


def _time(micros: int | None) -> datetime | None:
    return from_micros(int(micros)) if micros is not None else None


class ClickHouseSegments(ReadModel):
    """Implements segments.SegmentStore; thread-safe as the client it is given."""

    def latest(self, tenant: str, segment_id: str) -> SegmentDefinition | None:
        params = SqlParams(tenant=tenant)
        rows = self._rows(
            f"SELECT {DEFINITION_SELECT} FROM segments FINAL WHERE tenant_id = {{tenant:String}} "
            f"AND segment_id = {params.bind(segment_id, 'String')}",
            params,
            "reading a segment",
        )
        return definition_from_row(rows[0]) if rows else None

    def definition(self, tenant: str, segment_id: str) -> SegmentDefinition | None:
        found = self.latest(tenant, segment_id)
        return found if found is not None and not found.deleted else None

    def definitions(
        self, tenant: str, after: str = "", limit: int | None = None
    ) -> tuple[list[SegmentDefinition], int]:
        params = SqlParams(tenant=tenant)
        limited = "" if limit is None else f" LIMIT {params.bind(limit, 'UInt32')}"
        rows = self._rows(
            f"SELECT * FROM (SELECT {DEFINITION_SELECT}, count() OVER () FROM segments FINAL "
            "WHERE tenant_id = {tenant:String} AND deleted = 0) "
            f"WHERE segment_id > {params.bind(after, 'String')} ORDER BY segment_id{limited}",
            params,
            "listing segments",
        )
        if rows or not after:
            return [definition_from_row(r[:-1]) for r in rows], int(rows[0][-1]) if rows else 0
        total = self._rows(
            "SELECT count() FROM segments FINAL WHERE tenant_id = {tenant:String} AND deleted = 0",
            params,
            "counting segments",
        )
        return [], int(total[0][0])

    def put(self, definition: SegmentDefinition) -> None:
        insert_rows(self._client(), "segments", [_row(definition)], _COLUMNS, "storing a segment")

    def statuses(self, tenant: str, definitions: Sequence[SegmentDefinition]) -> dict[str, SegmentStatus]:
        """The segments' rows, and the tenant's (segment uid ''), whose freshness its ready segments share."""
        if not definitions:
            return {}
        params = SqlParams(tenant=tenant)
        uids = params.bind([d.uid for d in definitions], "Array(String)")
        rows = self._rows(_STATUS.format(uids=f"arrayPushBack({uids}, '')"), params, "reading statuses")
        stored = {row[0]: row[1:] for row in rows}
        _, _, data_as_of, windows_as_of, _, _ = stored.get("", (0, 0, None, None, None, ""))
        counts: dict[str, int] = dict(
            self._rows(  # type: ignore[arg-type]
                f"SELECT segment_uid, count() FROM ({_MEMBERS.format(uids=uids, persons='')}) "
                "GROUP BY segment_uid",
                params,
                "counting members",
            )
        )
        found = {}
        for d in definitions:
            revision, state, _, _, full, error = stored.get(d.uid, (0, 0, None, None, None, ""))
            current = int(revision) == d.condition_revision and int(state) in _STATES
            ready = current and int(state) == SegmentState.READY
            full_at = _time(full)
            found[d.segment_id] = SegmentStatus(
                state=SegmentState(state) if current else SegmentState.BUILDING,
                member_count=int(counts.get(d.uid, 0)),
                data_as_of=_time(data_as_of) if ready else None,
                windows_as_of=_latest(_time(windows_as_of), full_at) if ready else None,
                last_full_evaluation_time=full_at,
                error_message=str(error) if current else "",
            )
        return found

    def members(self, tenant: str, uid: str, after: str, limit: int) -> MemberPage:
        params = SqlParams(tenant=tenant)
        members = _MEMBERS.format(uids=params.bind([uid], "Array(String)"), persons="")
        rows = self._rows(
            "SELECT person_id, toUnixTimestamp64Micro(entered), total FROM "
            f"(SELECT *, count() OVER () AS total FROM ({members})) "
            f"WHERE person_id > {params.bind(after, 'String')} ORDER BY person_id "
            f"LIMIT {params.bind(limit + 1, 'UInt32')}",
            params,
            "listing segment members",
        )
        if rows:
            total = int(rows[0][2])
        else:
            total = int(self._rows(f"SELECT count() FROM ({members})", params, "counting members")[0][0])
        page = [Member(person, from_micros(int(entered))) for person, entered, _ in rows[:limit]]
        return MemberPage(page, total, len(rows) > limit)

    def memberships(self, tenant: str, person_id: str, uids: Mapping[str, str]) -> list[Membership]:
        if not uids:
            return []
        params = SqlParams(tenant=tenant)
        persons = f"AND person_id = {params.bind(person_id, 'String')} "
        members = _MEMBERS.format(uids=params.bind(sorted(uids), "Array(String)"), persons=persons)
        rows = self._rows(
            f"SELECT segment_uid, toUnixTimestamp64Micro(entered) FROM ({members})",
            params,
            "reading memberships",
        )
        found = [Membership(uids[uid], from_micros(int(entered))) for uid, entered in rows]
        return sorted(found, key=lambda m: m.segment_id)

    def changes(
        self, tenant: str, after: int, segment_id: str, limit: int
    ) -> tuple[list[MembershipChange], int]:
        params = SqlParams(tenant=tenant)
        only = f"AND segment_id = {params.bind(segment_id, 'String')} " if segment_id else ""
        rows = self._rows(
            "SELECT sequence, segment_id, person_id, change_type, toUnixTimestamp64Micro(change_time), "
            "(SELECT min(sequence) FROM segment_membership_changes WHERE tenant_id = {tenant:String}) "
            "FROM segment_membership_changes WHERE tenant_id = {tenant:String} "
            f"AND sequence > {params.bind(after, 'UInt64')} {only}"
            f"ORDER BY sequence LIMIT {params.bind(limit, 'UInt32')}",
            params,
            "reading segment membership changes",
        )
        if rows:
            oldest = int(rows[0][5])
        else:
            oldest = int(
                self._rows(
                    "SELECT min(sequence) FROM segment_membership_changes WHERE tenant_id = {tenant:String}",
                    params,
                    "reading segment membership changes",
                )[0][0]
            )
        changes = [
            MembershipChange(int(seq), seg, person, ChangeType(kind), from_micros(int(at)))
            for seq, seg, person, kind, at, _ in rows
        ]
        return changes, oldest

    def change_counts(
        self,
        tenant: str,
        segment_id: str,
        *,
        start: datetime,
        end: datetime,
        period: RetentionPeriod,
        zone: str,
    ) -> dict[date, tuple[int, int]]:
        params = SqlParams(tenant=tenant)
        local = period_start(period, "change_time", params.bind(zone, "String"))
        rows = self._rows(
            f"SELECT {local} AS period, countIf(change_type = {int(ChangeType.ENTERED)}), "
            f"countIf(change_type = {int(ChangeType.EXITED)}) FROM segment_membership_changes "
            f"WHERE tenant_id = {{tenant:String}} AND segment_id = {params.bind(segment_id, 'String')} "
            f"AND change_time >= {params.bind(start, _DATETIME)} "
            f"AND change_time < {params.bind(end, _DATETIME)} "
            "GROUP BY period",
            params,
            "counting segment membership changes",
        )
        return {period_date: (int(entered), int(exited)) for period_date, entered, exited in rows}
