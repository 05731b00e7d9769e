"""Person overrides in ClickHouse: recording them, loading the live ones a read needs, forgetting them.

One row per recorded version in `person_overrides` (ReplacingMergeTree(version)); every read takes the newest
version of each key with argMax, so it is exact whether or not the background merges have run. A version is
written only when it is newer than what the key holds, which makes applying idempotent and order-independent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from wayline_journeys.events import TimelineQuery
from wayline_journeys.overrides import OverrideKey, OverrideMapping, PersonOverride, newest_per_key
from wayline_journeys.store.client import SHORT_READ, query_rows, store_error
from wayline_journeys.store.named_persons import NamedPersons
from wayline_journeys.store.person_sql import IDENTIFIER_MATCH
from wayline_journeys.store.schema import PERSON_OVERRIDE_COLUMNS
from wayline_journeys.store.sql import identifier_anchors

__all__ = ["PersonOverrideStore"]

_T = TypeVar("_T")

_COLUMN_NAMES = tuple(name for name, _ in PERSON_OVERRIDE_COLUMNS)

# The live override of every key whose person matches {persons}: the newest version, unless it cancels.
_LIVE = """
SELECT person_id, identifier_type, identifier_value, argMax(override_person_id, version) AS target,
       max(version) AS newest
FROM person_overrides
WHERE tenant_id = {{tenant:String}} AND ({persons})
GROUP BY person_id, identifier_type, identifier_value
HAVING target != person_id
"""

# Persons whose events may read as {person}: itself, and every person with an override row pointing to it
# (older versions included; the live ones are sorted out by _LIVE).
# One IN set rather than `person_id = P OR person_id IN (...)`, so that both person_overrides and
# person_anchors (sorted by person) find the rows by their primary key.
_PERSON_AND_SOURCES = (
    "person_id IN (SELECT {person:String} UNION ALL SELECT person_id FROM person_overrides "
    "WHERE tenant_id = {tenant:String} AND override_person_id = {person:String})"
)

# The same for each of {persons}.
_PERSONS_AND_SOURCES = (
    "person_id IN (SELECT arrayJoin({persons:Array(String)}) UNION ALL SELECT person_id "
    "FROM person_overrides WHERE tenant_id = {tenant:String} "
    "AND override_person_id IN {persons:Array(String)})"
)

# Persons stored on events that carry the identifier.
_PERSONS_OF_IDENTIFIER = (
    "person_id IN (SELECT person_id FROM events WHERE tenant_id = {tenant:String} AND "
    + identifier_anchors(
        "identifier_value = {identifier_value:String} AND identifier_type = {identifier_type:String}"
    )
    + f" AND {IDENTIFIER_MATCH})"
)


# The anchors holding the events of the persons {persons} (person_anchors is keyed by stored person), or of
# the identifier (identifier_anchors).
_PERSON_ANCHORS = (
    "SELECT DISTINCT anchor FROM person_anchors WHERE tenant_id = {{tenant:String}} AND ({persons})"
)
_IDENTIFIER_ANCHORS = (
    "SELECT anchor FROM identifier_anchors WHERE tenant_id = {{tenant:String}} AND "
    "identifier_value = {{identifier_value:String}} AND identifier_type = {{identifier_type:String}}"
)


def _mapping(rows: Sequence[Sequence[Any]]) -> OverrideMapping:
    return OverrideMapping(
        tuple(
            PersonOverride(
                person_id=person,
                identifier_type=type_,
                identifier_value=value,
                override_person_id=target,
                version=int(version),
            )
            for person, type_, value, target, version in rows
        )
    )


class PersonOverrideStore:
    """Thread-safe; shares the event store's client. Applying and forgetting hold one lock, so within a
    replica `applied_count` is exact under concurrent calls (across replicas the stored state still converges,
    only the counts may overlap)."""

    def __init__(
        self,
        client: Callable[[], Client],
        on_masked: Callable[[Iterable[str]], None],
        named: NamedPersons | None = None,
    ) -> None:
        """`on_masked` is told that an erasure masked overrides (purge.py applies the mask); `named` the
        persons of every override this store records (the timeline's hint)."""
        self._client = client
        self._lock = threading.Lock()
        self.named = named if named is not None else NamedPersons()
        self._on_masked = on_masked

    def apply(self, tenant: str, overrides: Sequence[PersonOverride]) -> tuple[int, int]:
        """Record `overrides`; return how many changed the stored state, and the tenant's highest version."""
        newest = newest_per_key(overrides)
        with self._lock:
            stored = self._stored_versions(tenant, sorted({o.person_id for o in newest}))
            fresh = [o for o in newest if o.version > stored.get(o.key, 0)]
            if fresh:
                now = datetime.now(UTC)
                rows = [
                    [tenant, o.person_id, o.identifier_type, o.identifier_value, o.override_person_id,
                     o.version, o.merge_id, o.create_time, now]
                    for o in fresh
                ]  # fmt: skip
                self._run(lambda: self._client().insert("person_overrides", rows, column_names=_COLUMN_NAMES))
                self.named.note(tenant, {p for o in fresh for p in (o.person_id, o.override_person_id)})
            max_version = self.max_version(tenant)
        return len(fresh), max_version

    def max_version(self, tenant: str) -> int:
        """The tenant's highest recorded version (0 when none). It goes down when an erasure forgets the
        overrides that held it, so it is no position in identity's feed (see store/feed.py for that)."""
        rows = self._query(
            "SELECT max(version) FROM person_overrides WHERE tenant_id = {tenant:String}", {"tenant": tenant}
        )
        return int(rows[0][0])

    def _stored_versions(self, tenant: str, persons: list[str]) -> dict[OverrideKey, int]:
        if not persons:
            return {}
        rows = self._query(
            "SELECT person_id, identifier_type, identifier_value, max(version) FROM person_overrides "
            "WHERE tenant_id = {tenant:String} AND person_id IN {persons:Array(String)} "
            "GROUP BY person_id, identifier_type, identifier_value",
            {"tenant": tenant, "persons": persons},
        )
        return {(person, type_, value): int(version) for person, type_, value, version in rows}

    def timeline_subject(self, query: TimelineQuery) -> tuple[OverrideMapping, list[int]]:
        """What a timeline read needs, in one statement: the live overrides that decide who its events belong
        to (as `mapping_for_person` gives them, or those of every person stored on an event carrying the
        identifier), and the anchors that hold its events (the person's and their sources', or the
        identifier's; see schema.py)."""
        if query.identifier is not None:
            persons, anchors = _PERSONS_OF_IDENTIFIER, _IDENTIFIER_ANCHORS
            identifier_type, identifier_value = query.identifier
            parameters = {
                "tenant": query.tenant,
                "identifier_type": identifier_type,
                "identifier_value": identifier_value,
            }
        else:
            persons, anchors = _PERSON_AND_SOURCES, _PERSON_ANCHORS
            parameters = {"tenant": query.tenant, "person": query.person_id}
        rows = self._query(
            f"SELECT 0, person_id, identifier_type, identifier_value, target, newest, toUInt64(0) "
            f"FROM ({_LIVE.format(persons=persons)}) "
            "UNION ALL SELECT 1, '', '', '', '', toUInt64(0), anchor "
            f"FROM ({anchors.format(persons=persons)})",
            parameters,
            SHORT_READ,  # an identifier's persons are read from its events
        )
        mapping = _mapping([row[1:6] for row in rows if row[0] == 0])
        return mapping, sorted({int(row[6]) for row in rows if row[0] == 1})

    def mapping_for_person(self, tenant: str, person_id: str) -> OverrideMapping:
        """The live overrides of `person_id` and of every person with an override pointing to it: enough to
        tell which stored events read as `person_id` and which of its own were mapped away."""
        return self._live(_PERSON_AND_SOURCES, {"tenant": tenant, "person": person_id})

    def mapping_for_persons(self, tenant: str, person_ids: Sequence[str]) -> OverrideMapping:
        """`mapping_for_person` for several persons at once: the live overrides of each and of every person
        with an override pointing to one of them."""
        return self._live(_PERSONS_AND_SOURCES, {"tenant": tenant, "persons": list(person_ids)})

    def _live(self, persons: str, parameters: dict[str, Any]) -> OverrideMapping:
        return _mapping(self._query(_LIVE.format(persons=persons), parameters))

    def forget_pointing_to(self, tenant: str, person_ids: Collection[str], mapping: OverrideMapping) -> int:
        """Erase the live overrides of `mapping` that point to one of `person_ids` (every version of their
        keys up to the one seen, so a newer version recorded meanwhile survives); how many keys."""
        doomed = [o for o in mapping.overrides if o.override_person_id in person_ids]
        if not doomed:
            return 0
        with self._lock:
            # Lightweight DELETE: the rows stop counting at once; see store/erasure.py for why, and
            # store/purge.py for the mask that then removes them from disk.
            self._run(
                lambda: self._client().command(
                    "DELETE FROM person_overrides WHERE tenant_id = {tenant:String} "
                    "AND person_id IN {sources:Array(String)} AND arrayExists(k -> "
                    "{sources:Array(String)}[k] = person_id AND {types:Array(String)}[k] = identifier_type "
                    "AND {values:Array(String)}[k] = identifier_value "
                    "AND version <= {versions:Array(UInt64)}[k], arrayEnumerate({sources:Array(String)}))",
                    parameters={
                        "tenant": tenant,
                        "sources": [o.person_id for o in doomed],
                        "types": [o.identifier_type for o in doomed],
                        "values": [o.identifier_value for o in doomed],
                        "versions": [o.version for o in doomed],
                    },
                )
            )
        self._on_masked(["person_overrides"])
        return len(doomed)

    def _query(
        self, sql: str, parameters: dict[str, Any], settings: dict[str, Any] | None = None
    ) -> Sequence[Sequence[Any]]:
        return query_rows(self._client(), sql, parameters, "reading or recording person overrides", settings)

    def _run(self, call: Callable[[], _T]) -> _T:
        try:
            return call()
        except ClickHouseError as exc:
            raise store_error(exc, "reading or recording person overrides") from exc
