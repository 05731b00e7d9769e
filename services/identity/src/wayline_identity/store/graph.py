"""The identifier graph of one tenant, read and changed inside one transaction.

The resolver and the manual operations ask this class questions (who holds this identifier, how many
values of a type does a profile hold, are two profiles kept apart) and tell it what to change (add an
identifier, join two profiles). It caches what it read for the length of the transaction and keeps those
caches true as it writes, so a batch of a thousand events reads each identifier once. All SQL is
parameterised and scoped by tenant.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from wayline.common.sql import Transaction
from wayline_identity.model import Key, MergeRecord
from wayline_identity.store.cache import OwnerCache, Pending

__all__ = ["Graph", "IdentifierRow", "new_person_id"]

_CHUNK = 400  # identifiers per lookup statement (well under SQLite's 32,766 parameters)
_SEQ_BLOCK = 64  # profile creation numbers reserved at once


def new_person_id() -> str:
    return str(uuid.uuid4())


@dataclass(slots=True)
class IdentifierRow:
    person_id: str
    origin_person_id: str
    first_seen: int
    last_seen: int


class Graph:
    def __init__(self, tx: Transaction, tenant: str, now: int, cache: OwnerCache | None = None) -> None:
        self.tx = tx
        self.tenant = tenant
        self.now = now
        self._cache = cache
        self._moves: list[tuple[str, str]] = []
        self._forgotten: set[Key] = set()
        self._owners: dict[Key, IdentifierRow | None] = {}
        self._counts: dict[str, Counter[str]] = {}
        self._lineage: dict[str, set[str]] = {}
        self._seq: dict[str, int] = {}
        # Rows added but not written yet (see flush).
        self._new_profiles: list[tuple[object, ...]] = []
        self._new_identifiers: list[tuple[object, ...]] = []
        self._new_edges: list[tuple[object, ...]] = []
        self._seqs: list[int] = []

    # --- reads -------------------------------------------------------------------------------------------
    def preload(self, keys: Iterable[Key]) -> None:
        """Read the owners of `keys` in a few statements (the batch's identifiers, before resolving)."""
        wanted = [key for key in dict.fromkeys(keys) if key not in self._owners]
        if self._cache is not None:
            for key, (person, origin, first, last) in self._cache.lookup(self.tenant, wanted).items():
                self._owners[key] = IdentifierRow(person, origin, first, last)
        by_type: dict[str, list[str]] = {}
        for key in wanted:
            if key not in self._owners:
                self._owners[key] = None
                by_type.setdefault(key[0], []).append(key[1])
        # `(type = ? AND value IN (...)) OR ...`: index seeks on the primary key on both engines (a row-value
        # IN list makes SQLite scan the tenant), every type in one statement (one round trip per call).
        groups = [
            (kind, values[i : i + _CHUNK])
            for kind, values in by_type.items()
            for i in range(0, len(values), _CHUNK)
        ]
        while groups:
            statement: list[tuple[str, list[str]]] = []
            size = 0
            while groups and size + len(groups[0][1]) <= _CHUNK:
                statement.append(groups.pop(0))
                size += len(statement[-1][1])
            condition = " OR ".join(
                f"(type = ? AND value IN ({', '.join('?' for _ in values)}))" for _, values in statement
            )
            rows = self.tx.execute(
                "SELECT type, value, person_id, origin_person_id, first_seen, last_seen FROM identifiers"  # noqa: S608 - only placeholders are interpolated
                f" WHERE tenant = ? AND ({condition})",
                (self.tenant, *(p for kind, values in statement for p in (kind, *values))),
            )
            for kind, value, person, origin, first, last in rows:
                self._owners[(kind, value)] = IdentifierRow(person, origin, int(first), int(last))

    def owner(self, key: Key) -> str | None:
        try:
            row = self._owners[key]
        except KeyError:
            self.preload([key])
            row = self._owners[key]
        return row.person_id if row is not None else None

    def origin(self, key: Key) -> str:
        if key not in self._owners:
            self.preload([key])
        row = self._owners[key]
        assert row is not None, key
        return row.origin_person_id

    def prefetch_counts(self, persons: Iterable[str]) -> None:
        """Read the identifier type counts of many profiles in a few statements (those a batch may merge)."""
        wanted = sorted({p for p in persons if p not in self._counts})
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            for person in chunk:
                self._counts[person] = Counter()
            for person, kind in self.tx.execute(
                "SELECT person_id, type FROM identifiers"  # noqa: S608 - only placeholders are interpolated
                f" WHERE tenant = ? AND person_id IN ({', '.join('?' for _ in chunk)})",
                (self.tenant, *chunk),
            ):
                self._counts[person][kind] += 1

    def type_counts(self, person: str) -> Counter[str]:
        """How many identifiers of each type the profile holds."""
        counts = self._counts.get(person)
        if counts is None:
            # Counted here: with GROUP BY, SQLite prefers walking the primary key (type order) over the
            # person index, which reads the whole tenant.
            rows = self.tx.execute(
                "SELECT type FROM identifiers WHERE tenant = ? AND person_id = ?", (self.tenant, person)
            )
            counts = Counter(str(kind) for (kind,) in rows)
            self._counts[person] = counts
        return counts

    def lineage(self, person: str) -> set[str]:
        """The person and every person merged into it."""
        found = self._lineage.get(person)
        if found is None:
            rows = self.tx.execute(
                "SELECT person_id FROM profiles WHERE tenant = ? AND merged_into = ?", (self.tenant, person)
            )
            found = {person, *(r[0] for r in rows)}
            self._lineage[person] = found
        return found

    def seq(self, person: str) -> int:
        """The profile's creation order: the smaller is the older."""
        found = self._seq.get(person)
        if found is None:
            rows = self.tx.execute(
                "SELECT seq FROM profiles WHERE tenant = ? AND person_id = ?", (self.tenant, person)
            )
            found = int(rows[0][0])
            self._seq[person] = found
        return found

    def separated(self, left: set[str], right: set[str]) -> bool:
        """Whether an unmerge or a split keeps any person of `left` apart from any of `right`. The
        separations of the smaller side are read (by either column's index) and matched against the other:
        asking for every pair made each merge into a profile of n persons cost n pairs, and a shared login
        joining 40,000 visitors' profiles took 726 s."""
        small, large = (left, right) if len(left) <= len(right) else (right, left)
        persons = sorted(small)
        for start in range(0, len(persons), _CHUNK):
            chunk = persons[start : start + _CHUNK]
            marks = ", ".join("?" for _ in chunk)
            rows = self.tx.execute(
                "SELECT person_a, person_b FROM separations"  # noqa: S608 - only placeholders are interpolated
                f" WHERE tenant = ? AND person_a IN ({marks})"
                " UNION ALL SELECT person_a, person_b FROM separations"
                f" WHERE tenant = ? AND person_b IN ({marks})",
                (self.tenant, *chunk, self.tenant, *chunk),
            )
            for a, b in rows:
                if (a in small and b in large) or (b in small and a in large):
                    return True
        return False

    def canonical(self, person: str) -> str | None:
        """The surviving person of `person` (itself when not merged); None when it does not exist."""
        self.flush()
        rows = self.tx.execute(
            "SELECT merged_into FROM profiles WHERE tenant = ? AND person_id = ?", (self.tenant, person)
        )
        if not rows:
            return None
        return str(rows[0][0] or person)

    # --- writes ------------------------------------------------------------------------------------------
    def _take(self, column: str, count: int) -> int:
        """Reserve `count` values of a tenant counter; returns the first. The tenant's row is made on first
        use, so that transactions which change nothing write nothing."""
        statement = f"UPDATE tenant_state SET {column} = {column} + ? WHERE tenant = ? RETURNING {column}"  # noqa: S608 - a constant column name
        rows = self.tx.execute(statement, (count, self.tenant))
        if not rows:
            self.tx.execute(
                "INSERT INTO tenant_state (tenant, next_seq, override_version) VALUES (?, 0, 0)"
                " ON CONFLICT (tenant) DO NOTHING",
                (self.tenant,),
            )
            rows = self.tx.execute(statement, (count, self.tenant))
        return int(rows[0][0]) - count + 1

    def next_versions(self, count: int) -> int:
        return self._take("override_version", count)

    def _next_seq(self) -> int:
        """The next profile creation number; reserved from the tenant counter in blocks (gaps are fine: only
        the order matters)."""
        if not self._seqs:
            first = self._take("next_seq", _SEQ_BLOCK)
            self._seqs = list(range(first + _SEQ_BLOCK - 1, first - 1, -1))
        return self._seqs.pop()

    def create_profile(self, first_seen: int, person: str | None = None) -> str:
        person = person or new_person_id()
        seq = self._next_seq()
        self._new_profiles.append((self.tenant, person, seq, self.now, self.now, first_seen, first_seen))
        self._seq[person] = seq
        self._counts[person] = Counter()
        self._lineage[person] = {person}
        return person

    def add_identifier(self, key: Key, person: str, origin: str, seen: int, event_id: str) -> None:
        self._new_identifiers.append((self.tenant, key[0], key[1], person, origin, seen, seen, event_id))
        self._owners[key] = IdentifierRow(person, origin, seen, seen)
        self.type_counts(person)[key[0]] += 1

    def add_edge(self, a: Key, b: Key, person: str, event_id: str, merge_id: str = "") -> None:
        self._new_edges.append((self.tenant, uuid.uuid4().hex, *a, *b, person, event_id, merge_id, self.now))

    def pending(self) -> Pending:
        """This transaction's changes, for the read cache (applied just before the commit)."""
        rows = {
            key: (row.person_id, row.origin_person_id, row.first_seen, row.last_seen)
            for key, row in self._owners.items()
            if row is not None
        }
        return Pending(self._moves, {k for k in self._forgotten if k not in rows}, rows)

    def flush(self) -> None:
        """Write the profiles, identifiers and edges added since the last flush (one statement each): before
        any statement that reads or updates those tables."""
        if self._new_profiles:
            self.tx.executemany(
                "INSERT INTO profiles (tenant, person_id, seq, merged_into, create_time, update_time,"
                " first_seen, last_seen) VALUES (?, ?, ?, NULL, ?, ?, ?, ?)",
                self._new_profiles,
            )
            self._new_profiles = []
        if self._new_identifiers:
            self.tx.executemany(
                "INSERT INTO identifiers (tenant, type, value, person_id, origin_person_id, first_seen,"
                " last_seen, first_event_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                self._new_identifiers,
            )
            self._new_identifiers = []
        if self._new_edges:
            self.tx.executemany(
                "INSERT INTO edges (tenant, edge_id, a_type, a_value, b_type, b_value, person_id, event_id,"
                " merge_id, create_time, removed_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                self._new_edges,
            )
            self._new_edges = []

    def record_merge(self, record: MergeRecord, times: int) -> None:
        kind, value = record.identifier or ("", "")
        self.tx.execute(
            "INSERT INTO merges (tenant, merge_id, kind, target_person_id, source_person_id, identifier_type,"
            " identifier_value, event_id, create_time, actor, reason, reverted_merge_id,"
            " reverted_by_merge_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self.tenant,
                record.merge_id,
                record.kind.value,
                record.target_person_id,
                record.source_person_id,
                kind,
                value,
                record.event_id,
                times,
                record.actor,
                record.reason,
                record.reverted_merge_id,
                record.reverted_by_merge_id,
            ),
        )

    def absorb(self, source: str, target: str) -> set[str]:
        """Move every identifier, edge and merged person of `source` into `target` (a merge); returns the
        persons that moved (source's lineage)."""
        self.flush()
        moved = self.lineage(source)
        t = self.tenant
        self.tx.execute(
            "UPDATE identifiers SET person_id = ? WHERE tenant = ? AND person_id = ?", (target, t, source)
        )
        self.tx.execute(
            "UPDATE edges SET person_id = ? WHERE tenant = ? AND person_id = ?", (target, t, source)
        )
        self.tx.execute(
            "UPDATE profiles SET merged_into = ? WHERE tenant = ? AND (person_id = ? OR merged_into = ?)",
            (target, t, source, source),
        )
        self.tx.execute(
            "UPDATE profiles SET update_time = ?,"
            " first_seen = (SELECT MIN(first_seen) FROM profiles WHERE tenant = ? AND person_id IN (?, ?)),"
            " last_seen = (SELECT MAX(last_seen) FROM profiles WHERE tenant = ? AND person_id IN (?, ?))"
            " WHERE tenant = ? AND person_id = ?",
            (self.now, t, source, target, t, source, target, t, target),
        )
        for row in self._owners.values():
            if row is not None and row.person_id == source:
                row.person_id = target
        self._moves.append((source, target))
        self.type_counts(target).update(self.type_counts(source))
        self.lineage(target).update(moved)
        self._counts.pop(source, None)
        self._lineage.pop(source, None)
        return moved

    def record_conflict(
        self, person: str, other: str, kind: str, explanation: str, *, event_id: str, at: int
    ) -> None:
        """Keep a refused merge on both profiles (one row per pair and type, counting the events)."""
        for mine, theirs in ((person, other), (other, person)):
            self.tx.execute(
                "INSERT INTO conflicts (tenant, person_id, other_person_id, identifier_type, explanation,"
                " first_event_id, last_event_id, first_time, last_time, event_count)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1)"
                " ON CONFLICT (tenant, person_id, other_person_id, identifier_type) DO UPDATE SET"
                " last_event_id = excluded.last_event_id, last_time = excluded.last_time,"
                " explanation = excluded.explanation, event_count = conflicts.event_count + 1",
                (self.tenant, mine, theirs, kind, explanation, event_id, event_id, at, at),
            )

    def touch(self, seen: dict[Key, tuple[int, int]], granularity: int) -> None:
        """Widen first and last seen times with `{key: (earliest, latest)}` seen in a batch, for identifiers
        and their profiles. A later time is written only once it is `granularity` past the stored one: the
        times are kept to that precision so that resolving known identifiers writes nothing (a write per
        event dirties a page per identifier, which costs more than the whole resolution)."""
        self.flush()
        changed: list[tuple[str, str, int, int]] = []
        persons: dict[str, tuple[int, int]] = {}  # one update per profile, however many of its ids moved
        owners = self._owners
        for key, (first, last) in seen.items():
            row = owners.get(key)
            if row is None or not (last >= row.last_seen + granularity or first < row.first_seen):
                continue
            row.first_seen, row.last_seen = min(first, row.first_seen), max(last, row.last_seen)
            changed.append((key[0], key[1], row.first_seen, row.last_seen))
            span = persons.get(row.person_id)
            persons[row.person_id] = (
                (row.first_seen, row.last_seen)
                if span is None
                else (min(span[0], row.first_seen), max(span[1], row.last_seen))
            )
        if not changed:
            return
        widen = (
            " first_seen = CASE WHEN first_seen > ? THEN ? ELSE first_seen END,"
            " last_seen = CASE WHEN last_seen < ? THEN ? ELSE last_seen END"
        )
        t = self.tenant
        # In key order: consecutive updates then meet the pages the previous ones just read.
        changed.sort()
        self.tx.executemany(
            f"UPDATE identifiers SET{widen} WHERE tenant = ? AND type = ? AND value = ?",
            [(first, first, last, last, t, kind, value) for kind, value, first, last in changed],
        )
        self.tx.executemany(
            f"UPDATE profiles SET{widen} WHERE tenant = ? AND person_id = ?",
            [(first, first, last, last, t, person) for person, (first, last) in sorted(persons.items())],
        )

    def forget(self, keys: Sequence[Key]) -> None:
        """Drop cached owners (after a reassignment rewrote them in SQL)."""
        for key in keys:
            self._owners.pop(key, None)
            self._forgotten.add(key)
        self._counts.clear()
        self._lineage.clear()
