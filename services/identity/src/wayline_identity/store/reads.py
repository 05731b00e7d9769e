"""Reading profiles, their history and the override feed (no writes here).

A profile's and an identifier's first and last seen times come from the events resolved. Until 2026-12
ResolveIdentities stored any int64 seconds it was sent (an SDK sending milliseconds as seconds dates events in
year ~55,000), times no datetime holds: each is read as the nearest time Timestamp holds, and the person is
logged once (`_stored_time`, ADR 78), so their GetProfile and the ListProfiles pages holding them answer."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

import structlog

from wayline.common.sql import Database, Transaction
from wayline.common.timestamps import MAX_TIMESTAMP_SECONDS, MIN_TIMESTAMP_SECONDS, from_micros, to_micros
from wayline_identity.model import Conflict, Key, MergeKind, MergeRecord, Override, Profile, ProfileIdentifier
from wayline_identity.rules import Rules

__all__ = [
    "MERGE_HISTORY_LIMIT",
    "PROFILE_LIST_LIMIT",
    "identifier_order",
    "list_overrides",
    "list_profiles",
    "max_override_version",
    "override_heads",
    "read_identifiers",
    "read_profile",
]

MERGE_HISTORY_LIMIT = 500
CONFLICT_LIMIT = 100
# Identifiers and merged person ids a profile lists: a shared login gathers tens of thousands of device ids
# (60,000 made a 5.3 MB profile, past what a gRPC client receives by default); the counts say how many.
PROFILE_LIST_LIMIT = 1_000
log = structlog.get_logger("wayline.identity.reads")
# Timestamp's range in microseconds: what a datetime, and so a profile's message, holds.
_FIRST_US = MIN_TIMESTAMP_SECONDS * 1_000_000
_LAST_US = MAX_TIMESTAMP_SECONDS * 1_000_000 + 999_999
_MERGE_COLUMNS = (
    "merge_id, kind, target_person_id, source_person_id, identifier_type, identifier_value, event_id,"
    " create_time, actor, reason, reverted_merge_id, reverted_by_merge_id"
)


@lru_cache(maxsize=4096)
def _logged(tenant: str, person: str) -> None:
    """Log a person whose stored times lie outside Timestamp's range, once while they are remembered."""
    log.warning(
        "identity.profiles.time_out_of_range",
        tenant=tenant,
        person_id=person,
        read_as="the nearest time Timestamp holds (0001-01-01 or 9999-12-31, UTC)",
    )


def _stored_time(us: int, tenant: str, person: str) -> datetime:
    """An event-derived time as stored: past Timestamp's range (stored before ResolveIdentities checked
    times) it reads as the range's nearest end, and the person is logged."""
    if _FIRST_US <= us <= _LAST_US:
        return from_micros(us)
    _logged(tenant, person)
    return from_micros(min(max(us, _FIRST_US), _LAST_US))


def merge_from_row(row: Sequence[Any]) -> MergeRecord:
    merge_id, kind, target, source, id_type, id_value, event_id, at, actor, reason, reverted, reverted_by = (
        row
    )
    return MergeRecord(
        merge_id,
        MergeKind(kind),
        target,
        source,
        (id_type, id_value) if id_type else None,
        event_id,
        from_micros(at),
        actor,
        reason,
        reverted,
        reverted_by,
    )


def identifier_order(rules: Rules, held: ProfileIdentifier) -> tuple[int, int, str, str]:
    """Where an identifier stands in a profile's list: by its type's priority, then first seen (in
    microseconds: the key is also ListProfileIdentifiers' cursor)."""
    return (-rules.priority(held.identifier[0]), to_micros(held.first_seen), *held.identifier)


def read_identifiers(tx: Transaction, tenant: str, person: str, rules: Rules) -> list[ProfileIdentifier]:
    """Every identifier the profile `person` holds, in `identifier_order`."""
    identifiers = [
        ProfileIdentifier(
            (kind, value),
            _stored_time(first, tenant, person),
            _stored_time(last, tenant, person),
            event_id,
            origin,
        )
        for kind, value, first, last, event_id, origin in tx.execute(
            "SELECT type, value, first_seen, last_seen, first_event_id, origin_person_id FROM identifiers"
            " WHERE tenant = ? AND person_id = ?",
            (tenant, person),
        )
    ]
    identifiers.sort(key=lambda held: identifier_order(rules, held))
    return identifiers


def read_profile(
    tx: Transaction, tenant: str, person: str, rules: Rules, *, full: bool = True
) -> Profile | None:
    """The canonical profile `person`, with merge history and conflicts when `full`."""
    rows = tx.execute(
        "SELECT create_time, update_time, first_seen, last_seen FROM profiles"
        " WHERE tenant = ? AND person_id = ? AND merged_into IS NULL",
        (tenant, person),
    )
    if not rows:
        return None
    create_time, update_time, first_seen, last_seen = rows[0]
    identifiers = read_identifiers(tx, tenant, person, rules)
    merged = sorted(
        str(r[0])
        for r in tx.execute(
            "SELECT person_id FROM profiles WHERE tenant = ? AND merged_into = ?", (tenant, person)
        )
    )
    profile = Profile(
        person,
        identifiers[:PROFILE_LIST_LIMIT],
        _stored_time(first_seen, tenant, person),
        _stored_time(last_seen, tenant, person),
        merged[:PROFILE_LIST_LIMIT],
        from_micros(create_time),
        from_micros(update_time),
        last_seen_us=int(last_seen),
        identifier_count=len(identifiers),
        merged_person_count=len(merged),
    )
    if not full:
        return profile
    # The profile and the persons merged into it, as a subquery: their ids as parameters (twice) passed
    # PostgreSQL's bound of 65,535 for a profile that absorbed 33,000 persons.
    lineage = "SELECT person_id FROM profiles WHERE tenant = ? AND (person_id = ? OR merged_into = ?)"
    history = tx.execute(
        f"SELECT {_MERGE_COLUMNS} FROM merges WHERE tenant = ?"  # noqa: S608 - only placeholders are interpolated
        f" AND (target_person_id IN ({lineage}) OR source_person_id IN ({lineage}))"
        " ORDER BY create_time DESC, merge_id LIMIT ?",
        (tenant, tenant, person, person, tenant, person, person, MERGE_HISTORY_LIMIT + 1),
    )
    profile.merge_history.extend(merge_from_row(r) for r in history[:MERGE_HISTORY_LIMIT])
    profile.merge_history_truncated = len(history) > MERGE_HISTORY_LIMIT
    profile.conflicts.extend(
        Conflict(other, kind, why, first_event, last_event, from_micros(first), from_micros(last), int(count))
        for other, kind, why, first_event, last_event, first, last, count in tx.execute(
            "SELECT other_person_id, identifier_type, explanation, first_event_id, last_event_id, first_time,"  # noqa: S608 - only placeholders are interpolated
            f" last_time, event_count FROM conflicts WHERE tenant = ? AND person_id IN ({lineage})"
            " ORDER BY last_time DESC, other_person_id LIMIT ?",
            (tenant, tenant, person, person, CONFLICT_LIMIT),
        )
    )
    return profile


def list_profiles(
    tx: Transaction,
    tenant: str,
    rules: Rules,
    *,
    limit: int,
    after: tuple[int, str] | None,
    identifier: Key | None,
    identifier_type: str,
    last_seen: tuple[int | None, int | None],
    first_seen: tuple[int | None, int | None],
) -> tuple[list[Profile], int]:
    """One page of canonical profiles, the most recently seen first, and how many match."""
    where = ["p.tenant = ?", "p.merged_into IS NULL"]
    params: list[Any] = [tenant]
    if identifier is not None:
        where.append(
            "EXISTS (SELECT 1 FROM identifiers i WHERE i.tenant = p.tenant AND i.person_id = p.person_id"
            " AND i.type = ? AND i.value = ?)"
        )
        params.extend(identifier)
    elif identifier_type:
        where.append(
            "EXISTS (SELECT 1 FROM identifiers i WHERE i.tenant = p.tenant AND i.person_id = p.person_id"
            " AND i.type = ?)"
        )
        params.append(identifier_type)
    for column, (start, end) in (("last_seen", last_seen), ("first_seen", first_seen)):
        if start is not None:
            where.append(f"p.{column} >= ?")
            params.append(start)
        if end is not None:
            where.append(f"p.{column} < ?")
            params.append(end)
    total = int(tx.execute(f"SELECT COUNT(*) FROM profiles p WHERE {' AND '.join(where)}", params)[0][0])  # noqa: S608 - only placeholders are interpolated
    if after is not None:
        where.append("(p.last_seen < ? OR (p.last_seen = ? AND p.person_id > ?))")
        params.extend((after[0], after[0], after[1]))
    rows = tx.execute(
        f"SELECT p.person_id FROM profiles p WHERE {' AND '.join(where)}"  # noqa: S608 - only placeholders are interpolated
        " ORDER BY p.last_seen DESC, p.person_id LIMIT ?",
        (*params, limit),
    )
    profiles = [read_profile(tx, tenant, str(r[0]), rules, full=False) for r in rows]
    return [p for p in profiles if p is not None], total


def max_override_version(tx: Transaction, tenant: str) -> int:
    rows = tx.execute("SELECT override_version FROM tenant_state WHERE tenant = ?", (tenant,))
    return int(rows[0][0]) if rows else 0


_HEADS_PER_STATEMENT = 500  # far below SQLite's 32,766 bound parameters


def override_heads(db: Database, tenants: Sequence[str]) -> dict[str, int]:
    """Each tenant's override version (0 for one without a `tenant_state` row), by primary-key lookups."""
    heads = dict.fromkeys(tenants, 0)
    names = list(heads)
    for start in range(0, len(names), _HEADS_PER_STATEMENT):
        chunk = names[start : start + _HEADS_PER_STATEMENT]
        placeholders = ", ".join("?" * len(chunk))
        for tenant, version in db.read(
            f"SELECT tenant, override_version FROM tenant_state WHERE tenant IN ({placeholders})",  # noqa: S608 - only placeholders are interpolated
            chunk,
        ):
            heads[str(tenant)] = int(version)
    return heads


def list_overrides(tx: Transaction, tenant: str, after_version: int, limit: int) -> list[Override]:
    return [
        Override(
            person,
            (kind, value) if kind else None,
            target,
            int(version),
            from_micros(at),
            merge_id,
            bool(erased),
        )
        for person, kind, value, target, version, at, merge_id, erased in tx.execute(
            "SELECT person_id, identifier_type, identifier_value, override_person_id, version, create_time,"
            " merge_id, erased FROM person_overrides WHERE tenant = ? AND version > ? ORDER BY version"
            " LIMIT ?",
            (tenant, after_version, limit),
        )
    ]
