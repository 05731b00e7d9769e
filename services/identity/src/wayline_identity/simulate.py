"""SimulateIdentityRules: what proposed rules would have done to the links recorded in a time range.

The edge log keeps every link that joined two components (an identifier added to a profile, or two profiles
merged) and the conflicts table keeps every link the rules refused. Replaying both under the proposed rules
tells which merges would not have been made (an identifier now blocked, invalid or non-linking, or a limit now
exceeded by the two sides) and which refused merges would now be made (a limit raised or lifted). Separations
left by unmerges and splits, and merges made by hand, are the administrator's decisions and stay as they are.
The replay judges each link on its own against today's profiles, not in the order the events came, so a rule
change whose effects cascade is reported by its first-order effects; nothing is written.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from wayline_identity.components import components_of, load_profile_graph
from wayline_identity.model import IgnoreReason, Key
from wayline_identity.rules import Rules
from wayline_identity.store.graph import Graph

__all__ = ["SimulatedMerge", "Simulation", "simulate"]


@dataclass(frozen=True)
class SimulatedMerge:
    merge_id: str
    source_person_id: str
    target_person_id: str
    identifier: Key | None
    event_id: str
    explanation: str


@dataclass
class Simulation:
    evaluated_link_count: int = 0
    added: list[SimulatedMerge] = field(default_factory=list)
    undone: list[SimulatedMerge] = field(default_factory=list)
    added_count: int = 0
    undone_count: int = 0
    profile_count_before: int = 0
    profile_count_after: int = 0
    newly_ignored_identifier_count: int = 0


class _Components:
    def __init__(self) -> None:
        self.parent: dict[Key, Key] = {}

    def add(self, key: Key) -> None:
        self.parent.setdefault(key, key)

    def find(self, key: Key) -> Key:
        self.add(key)
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def union(self, a: Key, b: Key) -> None:
        self.parent[self.find(a)] = self.find(b)

    def count(self, nodes: set[Key]) -> int:
        return len({self.find(n) for n in nodes})


def _why_not(current: Rules, proposed: Rules, key: Key) -> str:
    """Why `key`, usable today, would not link under the proposed rules; empty when it would."""
    outcome = proposed.normalise(key)
    if isinstance(outcome, IgnoreReason):
        return f"{key[0]} value {key[1]!r} would be ignored ({outcome.value.replace('_', ' ')})"
    if current.links(key[0]) and not proposed.links(key[0]):
        return f"{key[0]} would no longer link profiles"
    return ""


def _over_limit(proposed: Rules, left: Counter[str], right: Counter[str]) -> str:
    for kind in sorted(set(left) & set(right)):
        limit = proposed.limit(kind)
        if limit and left[kind] + right[kind] > limit:
            total = left[kind] + right[kind]
            return f"the two profiles would hold {total} {kind} values, over the limit of {limit}"
    return ""


def simulate(g: Graph, current: Rules, proposed: Rules, *, start: int, end: int, sample: int) -> Simulation:
    out = Simulation()
    edges = g.tx.execute(
        "SELECT e.a_type, e.a_value, e.b_type, e.b_value, e.event_id, e.merge_id, e.person_id,"
        " COALESCE(m.kind, ''), COALESCE(m.source_person_id, ''), COALESCE(m.target_person_id, '')"
        " FROM edges e LEFT JOIN merges m ON m.tenant = e.tenant AND m.merge_id = e.merge_id"
        " WHERE e.tenant = ? AND e.removed_by IS NULL AND e.create_time >= ? AND e.create_time < ?"
        " ORDER BY e.create_time, e.edge_id",
        (g.tenant, start, end),
    )
    before, after = _Components(), _Components()
    nodes: set[Key] = set()
    ignored_after: set[Key] = set()
    for a_type, a_value, b_type, b_value, event_id, merge_id, person, kind, source, target in edges:
        a, b = (a_type, a_value), (b_type, b_value)
        out.evaluated_link_count += 1
        nodes.update((a, b))
        before.union(a, b)
        for key in (a, b):
            if isinstance(proposed.normalise(key), IgnoreReason):
                ignored_after.add(key)
        why = "" if kind == "manual" else _why_not(current, proposed, b) or _why_not(current, proposed, a)
        if not why and kind == "automatic":
            why = _over_limit(proposed, *_sides(g, person, merge_id, a, b))
        if why and kind == "automatic":
            out.undone_count += 1
            if len(out.undone) < sample:
                out.undone.append(SimulatedMerge(merge_id, source, target, b, event_id, why))
        if not why:
            after.union(a, b)
    conflicts = g.tx.execute(
        "SELECT person_id, other_person_id, identifier_type, first_event_id FROM conflicts"
        " WHERE tenant = ? AND first_time >= ? AND first_time < ? AND person_id < other_person_id"
        " ORDER BY first_time, person_id",
        (g.tenant, start, end),
    )
    for person, other, kind, event_id in conflicts:
        out.evaluated_link_count += 1
        if g.canonical(person) is None or g.canonical(other) is None:
            continue
        left, right = _side_counts(g, person), _side_counts(g, other)
        separated = g.separated(g.lineage(person), g.lineage(other))
        if separated or not _over_limit(current, left, right) or _over_limit(proposed, left, right):
            continue
        out.added_count += 1
        if len(out.added) < sample:
            explanation = f"the proposed limit of {kind} ({proposed.limit(kind) or 'none'}) allows it"
            out.added.append(SimulatedMerge("", other, person, None, event_id, explanation))
        mine, theirs = _representative(g, person), _representative(g, other)
        if mine is not None and theirs is not None:
            nodes.update((mine, theirs))
            before.add(mine)
            before.add(theirs)
            after.union(mine, theirs)
    out.profile_count_before = before.count(nodes)
    out.profile_count_after = after.count(nodes - ignored_after)
    out.newly_ignored_identifier_count = len(ignored_after)
    return out


def _side_counts(g: Graph, person: str) -> Counter[str]:
    canonical = g.canonical(person)
    return g.type_counts(canonical) if canonical else Counter()


def _sides(g: Graph, person: str, merge_id: str, a: Key, b: Key) -> tuple[Counter[str], Counter[str]]:
    """The identifier types on each side of a merge, as the profile stands today without that merge."""
    graph = load_profile_graph(g, person)
    for edge_id, (_, _, mid) in list(graph.edges.items()):
        if mid == merge_id:
            del graph.edges[edge_id]
    sides = {key: group for group in components_of(graph) for key in group}
    return Counter(k[0] for k in sides.get(a, ())), Counter(k[0] for k in sides.get(b, ()))


def _representative(g: Graph, person: str) -> Key | None:
    canonical = g.canonical(person)
    rows = g.tx.execute(
        "SELECT type, value FROM identifiers WHERE tenant = ? AND person_id = ? ORDER BY type, value LIMIT 1",
        (g.tenant, canonical),
    )
    return (str(rows[0][0]), str(rows[0][1])) if rows else None
