"""The administrator's operations on profiles: merge by hand, unmerge an identifier, undo a merge, erase.

Each runs inside one transaction on the tenant's graph, logs a merge record with who and why, and produces
person overrides. Unmerges and splits take edges out of the edge log and recompute the profile's components
(components.py); they leave a separation so that later events carrying identifiers of both sides do not
join them again (only MergeProfiles can, and it lifts the separation).
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass

from wayline.common.timestamps import from_micros
from wayline_identity import overrides
from wayline_identity.components import load_profile_graph, reassign
from wayline_identity.errors import (
    LastIdentifier,
    MergeConflict,
    MergeNotFound,
    MergeNotRevertible,
    ProfileNotFound,
)
from wayline_identity.model import Key, MergeKind, MergeRecord, Override
from wayline_identity.resolver import blocked_merge, merge_profiles
from wayline_identity.rules import Rules
from wayline_identity.store.graph import Graph, new_person_id

__all__ = ["Erased", "Separated", "delete_profile", "manual_merge", "split_profile", "unmerge_identifier"]


@dataclass
class Separated:
    """The outcome of an unmerge or a split: the profile cut, the profile made, the record, the overrides."""

    person_id: str
    other_person_id: str
    record: MergeRecord
    overrides: list[Override]


@dataclass
class Erased:
    person_ids: list[str]
    identifiers: list[Key]
    overrides: list[Override]
    erasure_id: str = ""


def existing(g: Graph, person: str) -> str:
    """The canonical person of `person`; ProfileNotFound when there is none."""
    canonical = g.canonical(person)
    if canonical is None:
        raise ProfileNotFound(f"person {person!r} does not exist")
    return canonical


def manual_merge(
    g: Graph, rules: Rules, persons: list[str], actor: str, reason: str
) -> tuple[str, list[MergeRecord], list[Override]]:
    canonicals = list(dict.fromkeys(existing(g, p) for p in persons))
    canonicals.sort(key=g.seq)
    survivor, records, changes = canonicals[0], [], []
    for other in canonicals[1:]:
        _lift_separations(g, g.lineage(survivor), g.lineage(other))  # an administrator's merge overrides them
        why = blocked_merge(g, rules, survivor, Counter(), other)
        if why is not None:
            raise MergeConflict(
                f"cannot merge {other} into {survivor}: {why[1]}", metadata={"identifier_type": why[0]}
            )
        via, anchor = _oldest_identifier(g, other), _oldest_identifier(g, survivor)
        survivor, record, made = merge_profiles(
            g,
            survivor,
            other,
            via=via,
            anchor=anchor,
            event_id="",
            kind=MergeKind.MANUAL,
            actor=actor,
            reason=reason,
        )
        records.append(record)
        changes.extend(made)
    return survivor, records, changes


def unmerge_identifier(
    g: Graph, rules: Rules, person: str, identifier: Key, *, actor: str, reason: str
) -> Separated:
    person = existing(g, person)
    key = rules.normalise(identifier)
    if isinstance(key, tuple) and g.owner(key) == person:
        pass
    elif g.owner(identifier) == person:
        key = identifier
    else:
        raise ProfileNotFound(
            f"person {person!r} does not hold the identifier {identifier[0]}:{identifier[1]!r}"
        )
    assert isinstance(key, tuple)
    graph = load_profile_graph(g, person)
    stored = set(g.lineage(person))
    if len(graph.origins) == 1:
        raise LastIdentifier("the identifier is the profile's only one; delete the profile instead")
    moved = new_person_id()
    record = MergeRecord(
        uuid.uuid4().hex,
        MergeKind.UNMERGE,
        moved,
        person,
        key,
        "",
        from_micros(g.now),
        actor=actor,
        reason=reason,
    )
    removed = {edge_id for edge_id, (a, b, _) in graph.edges.items() if key in (a, b)}
    _remove_edges(g, removed, record.merge_id)
    g.record_merge(record, g.now)
    components = reassign(g, graph, removed, {key: moved}, stored)
    kept = next(c.person for c in components if c.person != moved)
    _separate(g, moved, kept, record.merge_id)
    return Separated(kept, moved, record, overrides.after_reassign(g, components, stored, record.merge_id))


def split_profile(g: Graph, person: str, merge_id: str, actor: str, reason: str) -> Separated:
    person = existing(g, person)
    rows = g.tx.execute(
        "SELECT kind, target_person_id, source_person_id, reverted_by_merge_id FROM merges"
        " WHERE tenant = ? AND merge_id = ?",
        (g.tenant, merge_id),
    )
    if not rows:
        raise MergeNotFound(f"merge {merge_id!r} does not exist")
    kind, target, _, reverted_by = rows[0]
    if kind not in (MergeKind.AUTOMATIC.value, MergeKind.MANUAL.value):
        raise MergeNotRevertible(f"record {merge_id!r} is a {kind}, not a merge")
    if reverted_by:
        raise MergeNotRevertible(f"merge {merge_id!r} was already undone by {reverted_by}")
    graph = load_profile_graph(g, person)
    removed = {edge_id for edge_id, (_, _, mid) in graph.edges.items() if mid == merge_id}
    if g.canonical(target) != person or not removed:
        raise MergeNotRevertible(
            f"merge {merge_id!r} is not a merge into {person!r} that still holds (an unmerge may have"
            " undone it)"
        )
    record_id = uuid.uuid4().hex
    stored = set(g.lineage(person))
    _remove_edges(g, removed, record_id)
    components = reassign(g, graph, removed, {}, stored)
    kept, restored = components[0], components[1]
    record = MergeRecord(
        record_id,
        MergeKind.SPLIT,
        restored.person,
        kept.person,
        None,
        "",
        from_micros(g.now),
        actor=actor,
        reason=reason,
        reverted_merge_id=merge_id,
    )
    g.record_merge(record, g.now)
    g.tx.execute(
        "UPDATE merges SET reverted_by_merge_id = ? WHERE tenant = ? AND merge_id = ?",
        (record_id, g.tenant, merge_id),
    )
    _separate(g, restored.person, kept.person, record_id)
    return Separated(
        kept.person, restored.person, record, overrides.after_reassign(g, components, stored, record_id)
    )


def delete_profile(g: Graph, person: str) -> Erased:
    person = existing(g, person)
    lineage = sorted(g.lineage(person))
    t = g.tenant
    keys = [
        (k, v)
        for k, v in g.tx.execute(
            "SELECT type, value FROM identifiers WHERE tenant = ? AND person_id = ?", (t, person)
        )
    ]
    g.tx.executemany(
        "DELETE FROM edges WHERE tenant = ? AND ((a_type = ? AND a_value = ?) OR (b_type = ? AND b_value ="
        " ?))",
        [(t, k, v, k, v) for k, v in keys],
    )
    g.tx.executemany("DELETE FROM edges WHERE tenant = ? AND person_id = ?", [(t, p) for p in lineage])
    g.tx.execute("DELETE FROM identifiers WHERE tenant = ? AND person_id = ?", (t, person))
    g.tx.executemany(
        "DELETE FROM merges WHERE tenant = ? AND (target_person_id = ? OR source_person_id = ?)",
        [(t, p, p) for p in lineage],
    )
    g.tx.executemany(
        "DELETE FROM merges WHERE tenant = ? AND identifier_type = ? AND identifier_value = ?",
        [(t, k, v) for k, v in keys],
    )
    g.tx.executemany(
        "DELETE FROM separations WHERE tenant = ? AND (person_a = ? OR person_b = ?)",
        [(t, p, p) for p in lineage],
    )
    g.tx.executemany(
        "DELETE FROM conflicts WHERE tenant = ? AND (person_id = ? OR other_person_id = ?)",
        [(t, p, p) for p in lineage],
    )
    g.tx.executemany("DELETE FROM profiles WHERE tenant = ? AND person_id = ?", [(t, p) for p in lineage])
    g.forget(keys)
    return Erased(lineage, keys, overrides.erased(g, set(lineage)))


def _oldest_identifier(g: Graph, person: str) -> Key | None:
    rows = g.tx.execute(
        "SELECT type, value FROM identifiers WHERE tenant = ? AND person_id = ? ORDER BY first_seen, type,"
        " value LIMIT 1",
        (g.tenant, person),
    )
    return (str(rows[0][0]), str(rows[0][1])) if rows else None


def _remove_edges(g: Graph, edge_ids: set[str], by: str) -> None:
    g.tx.executemany(
        "UPDATE edges SET removed_by = ? WHERE tenant = ? AND edge_id = ?",
        [(by, g.tenant, e) for e in sorted(edge_ids)],
    )


def _separate(g: Graph, a: str, b: str, merge_id: str) -> None:
    g.tx.execute(
        "INSERT INTO separations (tenant, person_a, person_b, merge_id) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (tenant, person_a, person_b) DO NOTHING",
        (g.tenant, min(a, b), max(a, b), merge_id),
    )


def _lift_separations(g: Graph, left: set[str], right: set[str]) -> None:
    g.tx.executemany(
        "DELETE FROM separations WHERE tenant = ? AND person_a = ? AND person_b = ?",
        [(g.tenant, min(a, b), max(a, b)) for a in sorted(left) for b in sorted(right)],
    )
