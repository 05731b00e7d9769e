"""Recomputing a profile from its edge log after an edge is taken out (an unmerge or a split).

The active edges of a profile form a tree (each edge joined two components when it was recorded), so taking
edges out cuts it into components, found here with a union-find. Each component is a profile again. Person
ids follow the identifiers: an identifier keeps the person it was first recorded under (its origin, inherited
along the edges that added it), and a component takes the oldest origin among its identifiers that no other
component took, so a split gives the absorbed profile back its own id. A component left without a free
origin gets a new person id, and its identifiers take it as their origin.
"""

from __future__ import annotations

from wayline_identity.model import Key
from wayline_identity.overrides import Component
from wayline_identity.store.graph import Graph

__all__ = ["ProfileGraph", "components_of", "load_profile_graph", "reassign"]


class ProfileGraph:
    def __init__(self, person: str) -> None:
        self.person = person
        self.origins: dict[Key, str] = {}
        self.first_seen: dict[Key, int] = {}
        self.edges: dict[str, tuple[Key, Key, str]] = {}  # edge id → (a, b, merge id), active only


def load_profile_graph(g: Graph, person: str) -> ProfileGraph:
    graph = ProfileGraph(person)
    for kind, value, origin, first_seen in g.tx.execute(
        "SELECT type, value, origin_person_id, first_seen FROM identifiers WHERE tenant = ? AND person_id"
        " = ?",
        (g.tenant, person),
    ):
        graph.origins[(kind, value)] = origin
        graph.first_seen[(kind, value)] = int(first_seen)
    for edge_id, a_type, a_value, b_type, b_value, merge_id in g.tx.execute(
        "SELECT edge_id, a_type, a_value, b_type, b_value, merge_id FROM edges"
        " WHERE tenant = ? AND person_id = ? AND removed_by IS NULL",
        (g.tenant, person),
    ):
        graph.edges[edge_id] = ((a_type, a_value), (b_type, b_value), merge_id)
    return graph


def components_of(graph: ProfileGraph) -> list[set[Key]]:
    parent = {key: key for key in graph.origins}

    def find(key: Key) -> Key:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for a, b, _ in graph.edges.values():
        if a in parent and b in parent:
            parent[find(a)] = find(b)
    groups: dict[Key, set[Key]] = {}
    for key in graph.origins:
        groups.setdefault(find(key), set()).add(key)
    return sorted(groups.values(), key=min)


def reassign(
    g: Graph, graph: ProfileGraph, removed: set[str], forced: dict[Key, str], lineage: set[str]
) -> list[Component]:
    """Take the edges `removed` out of `graph` and make each remaining component a profile. `forced` gives
    identifiers a new person of their own (an unmerge), created here. `lineage` is the profile's persons
    before: one left without an identifier (all of its own were moved out) follows the oldest remaining
    component, so that its id and its events still resolve. Returns the components, the one holding the
    graph's person first."""
    for edge_id in removed:
        graph.edges.pop(edge_id, None)
    groups = components_of(graph)
    origins = set(graph.origins.values())
    seqs = {person: g.seq(person) for person in origins}
    claimed: set[str] = set()
    assigned: list[tuple[set[Key], str]] = []
    for keys in groups:
        forced_person = next((forced[k] for k in keys if k in forced), None)
        if forced_person is not None:
            g.create_profile(min(graph.first_seen[k] for k in keys), forced_person)
            assigned.append((keys, forced_person))
            claimed.add(forced_person)
    free_groups = [keys for keys in groups if not any(k in forced for k in keys)]
    free_groups.sort(key=lambda keys: min(seqs[graph.origins[k]] for k in keys))
    for keys in free_groups:
        mine = sorted({graph.origins[k] for k in keys} - claimed, key=seqs.__getitem__)
        person = mine[0] if mine else g.create_profile(min(graph.first_seen[k] for k in keys))
        claimed.add(person)
        assigned.append((keys, person))
    components: list[Component] = []
    for keys, person in assigned:
        for key in keys:
            if key in forced or (graph.origins[key] in claimed and graph.origins[key] != person):
                graph.origins[key] = person  # its origin went to another component
        components.append(Component(person, set(keys), {graph.origins[k] for k in keys} | {person}))
    orphans = lineage - set().union(*(c.lineage for c in components))
    heir = next((c for c in components if c.person not in forced.values()), None)
    if heir is not None:
        heir.lineage |= orphans
    for component in components:
        _write(g, graph, component.identifiers, component.person, component.lineage)
    for component in components:  # once every identifier has its component's person, not before
        _recompute_seen(g, component.person)
    g.forget(list(graph.origins))
    components.sort(key=lambda c: graph.person not in c.lineage)
    return components


def _write(g: Graph, graph: ProfileGraph, keys: set[Key], person: str, lineage: set[str]) -> None:
    g.flush()  # profiles created for the components must exist before they are updated
    t = g.tenant
    g.tx.executemany(
        "UPDATE identifiers SET person_id = ?, origin_person_id = ? WHERE tenant = ? AND type = ? AND"
        " value = ?",
        [(person, graph.origins[k], t, k[0], k[1]) for k in sorted(keys)],
    )
    g.tx.executemany(
        "UPDATE edges SET person_id = ? WHERE tenant = ? AND edge_id = ?",
        [(person, t, edge_id) for edge_id, (a, _, _) in graph.edges.items() if a in keys],
    )
    g.tx.execute(
        "UPDATE profiles SET merged_into = NULL, update_time = ? WHERE tenant = ? AND person_id = ?",
        (g.now, t, person),
    )
    g.tx.executemany(
        "UPDATE profiles SET merged_into = ? WHERE tenant = ? AND person_id = ?",
        [(person, t, other) for other in sorted(lineage - {person})],
    )


def _recompute_seen(g: Graph, person: str) -> None:
    """The profile's seen times from its identifiers'."""
    t = g.tenant
    g.tx.execute(
        "UPDATE profiles SET"
        " first_seen = (SELECT MIN(first_seen) FROM identifiers WHERE tenant = ? AND person_id = ?),"
        " last_seen = (SELECT MAX(last_seen) FROM identifiers WHERE tenant = ? AND person_id = ?)"
        " WHERE tenant = ? AND person_id = ?",
        (t, person, t, person, t, person),
    )
