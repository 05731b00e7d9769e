"""Property-based tests: random sequences of identify / alias / merge / unmerge / split / delete.

After every step the profiles must equal the connected components of the edge log's active edges (read
straight from the tables, not through the code under test), no profile may hold two user ids unless an alias
joined them, and an erased person must leave nothing behind. Separately: with only limitless identifiers the
profiles equal the connected components of the events' identifier sets (an independent model), and splitting
a merge restores the partition from before it exactly.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.breadth import examples
from tests.identity.conftest import Events, partition
from wayline.common.sql import open_database
from wayline_identity.errors import LastIdentifier, MergeConflict, MergeNotRevertible
from wayline_identity.identity import Identity
from wayline_identity.model import Key, MergeKind

TENANT = "prop"
ANONYMOUS = st.sampled_from([("anonymous_id", f"a{i}") for i in range(8)])
EMAILS = st.sampled_from([("email", f"p{i}@x.io") for i in range(4)])
USERS = st.sampled_from([("user_id", f"u{i}") for i in range(4)])
IDENTIFIER = st.one_of(ANONYMOUS, EMAILS, USERS)
IDENTIFIER_SET = st.lists(IDENTIFIER, min_size=1, max_size=4)
SETTINGS = settings(max_examples=examples(100), deadline=None, suppress_health_check=list(HealthCheck))


@contextlib.contextmanager
def fresh_identity() -> Iterator[Identity]:
    """An identity store of its own on SQLite, removed afterwards."""
    # Named with uuid4 (os.urandom), not tempfile.mkdtemp: hypothesis forbids touching `random` in a test.
    scratch = Path(tempfile.gettempdir()) / f"wayline-identity-property-{uuid.uuid4().hex}"
    db = open_database(None, scratch / "identity.db")
    try:
        identity = Identity(db)
        identity.migrate()
        yield identity
    finally:
        db.close()
        shutil.rmtree(scratch, ignore_errors=True)


def edge_components(identity: Identity, tenant: str) -> set[frozenset[Key]]:
    """The connected components of the active edges, read from the tables."""
    with identity._db.transaction() as tx:
        nodes = [
            (k, v) for k, v in tx.execute("SELECT type, value FROM identifiers WHERE tenant = ?", (tenant,))
        ]
        edges = tx.execute(
            "SELECT a_type, a_value, b_type, b_value FROM edges WHERE tenant = ? AND removed_by IS NULL",
            (tenant,),
        )
    parent: dict[Key, Key] = {n: n for n in nodes}

    def find(key: Key) -> Key:
        while parent[key] != key:
            key = parent[key]
        return key

    for a_type, a_value, b_type, b_value in edges:
        parent[find((a_type, a_value))] = find((b_type, b_value))
    groups: dict[Key, set[Key]] = {}
    for node in nodes:
        groups.setdefault(find(node), set()).add(node)
    return {frozenset(g) for g in groups.values()}


def rows_mentioning(identity: Identity, needles: set[str]) -> list[tuple[str, Any]]:
    """Every row of every identity table holding one of `needles` in any column."""
    found = []
    with identity._db.transaction() as tx:
        for table in (
            "profiles",
            "identifiers",
            "edges",
            "merges",
            "separations",
            "conflicts",
            "person_overrides",
        ):
            for row in tx.execute(f"SELECT * FROM {table}"):
                if needles & {str(v) for v in row}:
                    found.append((table, row))
    return found


class IdentityMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._store = fresh_identity()
        self.identity = self._store.__enter__()
        self.events = Events()
        self.aliased = False
        self.erased: set[str] = set()

    def persons(self) -> list[str]:
        profiles, _ = self.identity.list_profiles(
            TENANT,
            limit=1000,
            after=None,
            identifier=None,
            identifier_type="",
            last_seen=(None, None),
            first_seen=(None, None),
        )
        # Ordered by content, not by the random person ids, so that hypothesis replays draw the same profile.
        return [p.person_id for p in sorted(profiles, key=lambda p: min(i.identifier for i in p.identifiers))]

    @rule(identifiers=IDENTIFIER_SET)
    def identify(self, identifiers: list[Key]) -> None:
        self.identity.resolve(TENANT, [self.events(*identifiers, event_type="identify")])

    @rule(identifiers=IDENTIFIER_SET, previous=IDENTIFIER)
    def alias(self, identifiers: list[Key], previous: Key) -> None:
        self.aliased = True
        self.identity.resolve(TENANT, [self.events(*identifiers, event_type="alias", previous=(previous,))])

    @precondition(lambda self: len(self.persons()) >= 2)
    @rule(data=st.data())
    def merge(self, data: st.DataObject) -> None:
        persons = data.draw(st.lists(st.sampled_from(self.persons()), min_size=2, max_size=3, unique=True))
        with contextlib.suppress(MergeConflict):
            self.identity.merge(TENANT, persons, actor="", reason="property test")

    @precondition(lambda self: bool(self.persons()))
    @rule(data=st.data())
    def unmerge(self, data: st.DataObject) -> None:
        person = data.draw(st.sampled_from(self.persons()))
        profile = self.identity.get_profile(TENANT, person)
        key = data.draw(st.sampled_from(sorted(i.identifier for i in profile.identifiers)))
        before = edge_components(self.identity, TENANT)
        try:
            _, moved, _ = self.identity.unmerge(TENANT, person, key, actor="", reason="property test")
        except LastIdentifier:
            return
        assert [i.identifier for i in moved.identifiers] == [key]
        # The rest is what the edge log gives without the identifier's edges: never more than that.
        (old,) = [c for c in before if key in c]
        assert all(c <= old - {key} for c in edge_components(self.identity, TENANT) if c & (old - {key}))

    @precondition(lambda self: bool(self.persons()))
    @rule(data=st.data())
    def split(self, data: st.DataObject) -> None:
        person = data.draw(st.sampled_from(self.persons()))
        merges = sorted(
            (
                m
                for m in self.identity.get_profile(TENANT, person).merge_history
                if m.kind in (MergeKind.AUTOMATIC, MergeKind.MANUAL) and not m.reverted_by_merge_id
            ),
            key=lambda m: (m.event_id, m.identifier or ("", "")),
        )
        if not merges:
            return
        merge = data.draw(st.sampled_from(merges))
        before = len(partition(self.identity, TENANT))
        try:
            self.identity.split(TENANT, person, merge.merge_id, actor="", reason="property test")
        except MergeNotRevertible:
            return
        assert len(partition(self.identity, TENANT)) == before + 1

    @precondition(lambda self: bool(self.persons()))
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        person = data.draw(st.sampled_from(self.persons()))
        profile = self.identity.get_profile(TENANT, person)
        values = {i.identifier[1] for i in profile.identifiers}
        erased = self.identity.delete(TENANT, person)
        self.erased.update(erased.person_ids)
        leftovers = rows_mentioning(self.identity, set(erased.person_ids) | values)
        # Only the erasure markers of the feed may name the person (no identifier at all).
        assert all(table == "person_overrides" and row[-1] == 1 for table, row in leftovers), leftovers

    @rule()
    def seen_times_span_identifiers(self) -> None:
        # Each profile spans exactly its identifiers' seen times, whatever merges, unmerges and splits moved
        # them, and nothing came back for an erased person.
        assert self.erased.isdisjoint(self.persons())
        for person in self.persons():
            profile = self.identity.get_profile(TENANT, person)
            ids = profile.identifiers
            assert (profile.first_seen, profile.last_seen) == (
                min(i.first_seen for i in ids),
                max(i.last_seen for i in ids),
            ), profile

    def teardown(self) -> None:
        self._store.__exit__(None, None, None)

    @invariant()
    def profiles_are_the_components_of_the_edge_log(self) -> None:
        assert partition(self.identity, TENANT) == edge_components(self.identity, TENANT)

    @invariant()
    def no_profile_holds_two_user_ids(self) -> None:
        if self.aliased:
            return  # an alias may join two user ids on purpose
        for group in partition(self.identity, TENANT):
            assert len([k for k in group if k[0] == "user_id"]) <= 1, group


IdentityMachine.TestCase.settings = settings(
    max_examples=examples(60), stateful_step_count=20, deadline=None, suppress_health_check=list(HealthCheck)
)
TestIdentitySequences = IdentityMachine.TestCase


@SETTINGS
@given(st.lists(st.lists(ANONYMOUS, min_size=1, max_size=3), min_size=1, max_size=25))
def test_profiles_are_the_components_of_the_events_without_limits(event_sets: list[list[Key]]) -> None:
    with fresh_identity() as identity:
        events = Events()
        identity.resolve(TENANT, [events(*s) for s in event_sets])
        parent: dict[Key, Key] = {}

        def find(key: Key) -> Key:
            parent.setdefault(key, key)
            while parent[key] != key:
                key = parent[key]
            return key

        for identifiers in event_sets:
            for key in identifiers[1:]:
                parent[find(key)] = find(identifiers[0])
            find(identifiers[0])
        expected: dict[Key, set[Key]] = {}
        for key in parent:
            expected.setdefault(find(key), set()).add(key)
        assert partition(identity, TENANT) == {frozenset(g) for g in expected.values()}


@SETTINGS
@given(st.lists(IDENTIFIER_SET, min_size=2, max_size=12), st.data())
def test_split_restores_the_partition_from_before_the_merge(
    history: list[list[Key]], data: st.DataObject
) -> None:
    with fresh_identity() as identity:
        events = Events()
        identity.resolve(TENANT, [events(*s) for s in history])
        before = partition(identity, TENANT)
        groups = sorted(before, key=sorted)
        if len(groups) < 2:
            return
        left, right = data.draw(st.lists(st.sampled_from(groups), min_size=2, max_size=2, unique=True))
        outcome = identity.resolve(TENANT, [events(min(left), min(right))])
        if not outcome.merges:
            return  # the rules refused the link (two user ids): nothing to undo
        [merge] = outcome.merges
        identity.split(TENANT, merge.target_person_id, merge.merge_id, actor="", reason="undo")
        assert partition(identity, TENANT) == before
