"""Person overrides: what a merge, an unmerge, a split or an erasure tells every store keyed by person.

Events (and every other state) are written with the person id known at the time; an override remaps them
afterwards (see person_override.proto for the lookup rule). Identity keeps the overrides flat (a target is
never itself overridden), so each change re-points the overrides that targeted a person that stopped being
canonical. Each written override takes the next tenant-wide version, which orders the feed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from wayline.common.timestamps import from_micros
from wayline_identity.model import Key, Override
from wayline_identity.store.graph import Graph

__all__ = ["Component", "after_merge", "after_reassign", "erased", "write_overrides"]

_UPSERT = (
    "INSERT INTO person_overrides (tenant, person_id, identifier_type, identifier_value, override_person_id,"
    " version, create_time, merge_id, erased) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (tenant, person_id, identifier_type, identifier_value) DO UPDATE SET"
    " override_person_id = excluded.override_person_id, version = excluded.version,"
    " create_time = excluded.create_time, merge_id = excluded.merge_id, erased = excluded.erased"
)

# (stored person, identifier or None) → target person
Change = tuple[str, Key | None, str]


class Component:
    """One profile after a reassignment: its canonical person, its identifiers and its lineage."""

    def __init__(self, person: str, identifiers: set[Key], lineage: set[str]) -> None:
        self.person = person
        self.identifiers = identifiers
        self.lineage = lineage


def write_overrides(
    g: Graph, changes: Iterable[Change], merge_id: str, erase: bool = False
) -> list[Override]:
    """Store `changes` with fresh versions, in order; the overrides as written."""
    unique = list(dict.fromkeys(changes))
    if not unique:
        return []
    first = g.next_versions(len(unique))
    at: datetime = from_micros(g.now)
    written = [
        Override(person, key, target, first + i, at, merge_id, erase)
        for i, (person, key, target) in enumerate(unique)
    ]
    g.tx.executemany(
        _UPSERT,
        [
            (
                g.tenant,
                o.person_id,
                *(o.identifier or ("", "")),
                o.override_person_id,
                o.version,
                g.now,
                merge_id,
                int(erase),
            )
            for o in written
        ],
    )
    return written


_OverrideRow = tuple[str, str, str, str]  # person_id, identifier type, identifier value, target


def _overrides_where(g: Graph, column: str, persons: set[str]) -> list[_OverrideRow]:
    """The live overrides whose `column` (person_id or override_person_id) is one of `persons`."""
    found: list[_OverrideRow] = []
    ordered = sorted(persons)
    for start in range(0, len(ordered), 400):
        chunk = ordered[start : start + 400]
        marks = ", ".join("?" for _ in chunk)
        found.extend(
            (str(a), str(b), str(c), str(d))
            for a, b, c, d in g.tx.execute(
                "SELECT person_id, identifier_type, identifier_value, override_person_id"  # noqa: S608 - a constant column and marks
                f" FROM person_overrides WHERE tenant = ? AND erased = 0 AND {column} IN ({marks})",
                (g.tenant, *chunk),
            )
        )
    return found


def _targeting(g: Graph, persons: set[str]) -> list[_OverrideRow]:
    """The stored overrides whose target is one of `persons`."""
    return _overrides_where(g, "override_person_id", persons)


def _keyed_by(g: Graph, persons: set[str]) -> dict[tuple[str, Key | None], str]:
    """The stored overrides keyed by one of `persons`: {(person, identifier or None): target}."""
    return {
        (person, (kind, value) if kind else None): target
        for person, kind, value, target in _overrides_where(g, "person_id", persons)
    }


def after_merge(g: Graph, moved: set[str], target: str, merge_id: str) -> list[Override]:
    """`moved` (a profile's lineage) now belongs to `target`: every person of it maps to target, and every
    override that pointed into it points to target instead."""
    changes: list[Change] = [(person, None, target) for person in sorted(moved)]
    for person, kind, value, _ in _targeting(g, moved):
        changes.append((person, (kind, value) if kind else None, target))
    return write_overrides(g, changes, merge_id)


def after_reassign(g: Graph, components: list[Component], stored: set[str], merge_id: str) -> list[Override]:
    """A profile was cut into `components` (an unmerge or a split). Events stored with a person of a
    component's lineage follow that component; events stored with any person of the old profile that carry
    an identifier of a component follow the identifier (an identifier-scoped override), so that the events
    of an unmerged identifier, or of the restored side of a split, move with it. `stored` is the old
    profile's lineage: the persons events may be stored with."""
    everyone = stored.union(*(c.lineage for c in components))
    current = _keyed_by(g, everyone)
    # Overrides from outside the old profile that point into it (earlier unmerges) follow their identifier.
    outside = [row for row in _targeting(g, everyone) if row[0] not in everyone]

    def effective(person: str, key: Key | None) -> str:
        if key is not None and (person, key) in current:
            return current[(person, key)]
        return current.get((person, None), person)

    changes: list[Change] = []
    for component in components:
        for person in sorted(component.lineage):
            if current.get((person, None), person) != component.person:
                changes.append((person, None, component.person))
        for key in sorted(component.identifiers):
            for person in sorted(stored - component.lineage):
                if effective(person, key) != component.person:
                    changes.append((person, key, component.person))
            for person in sorted(component.lineage):
                if (person, key) in current and current[(person, key)] != component.person:
                    changes.append((person, key, component.person))
    owner_of = {key: c.person for c in components for key in c.identifiers}
    for person, kind, value, target in outside:
        moved_to = owner_of.get((kind, value)) if kind else None
        if moved_to is not None and moved_to != target:
            changes.append((person, (kind, value), moved_to))
    return write_overrides(g, changes, merge_id)


def erased(g: Graph, persons: set[str]) -> list[Override]:
    """Every override keyed by or pointing to `persons` is dropped, and one `erased` marker per person tells
    the feed's consumers to delete what they keep for it."""
    for chunk_start in range(0, len(persons), 400):
        chunk = sorted(persons)[chunk_start : chunk_start + 400]
        marks = ", ".join("?" for _ in chunk)
        g.tx.execute(
            f"DELETE FROM person_overrides WHERE tenant = ? AND (person_id IN ({marks})"  # noqa: S608 - only placeholders are interpolated
            f" OR override_person_id IN ({marks}))",
            (g.tenant, *chunk, *chunk),
        )
    return write_overrides(g, [(p, None, p) for p in sorted(persons)], "", erase=True)
