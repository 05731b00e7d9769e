"""MergeProfiles, UnmergeIdentifier, SplitProfile and DeleteProfile, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.identity.conftest import Events, partition
from wayline_identity.errors import LastIdentifier, MergeConflict, MergeNotRevertible, ProfileNotFound
from wayline_identity.identity import Identity
from wayline_identity.model import MergeKind

A, B, C = ("anonymous_id", "a"), ("anonymous_id", "b"), ("anonymous_id", "c")
U1, U2 = ("user_id", "u1"), ("user_id", "u2")
EMAIL = ("email", "ada@example.com")


def test_split_profile_restores_the_absorbed_profile_and_its_events(
    identity: Identity, events: Events
) -> None:
    older = identity.resolve("t", [events(A), events(U1, A)]).resolutions[0].person_id
    newer = identity.resolve("t", [events(B)]).resolutions[0].person_id
    outcome = identity.resolve("t", [events(B, A)])
    [merge] = outcome.merges
    identity.resolve("t", [events(B, EMAIL)])  # an identifier joining after the merge, next to B
    kept, restored, done = identity.split(
        "t", older, merge.merge_id, actor="tenants/t/apiKeys/k", reason="wrong device"
    )
    assert (kept.person_id, restored.person_id) == (older, newer)
    assert partition(identity, "t") == {frozenset({A, U1}), frozenset({B, EMAIL})}
    assert done.record.kind is MergeKind.SPLIT
    assert done.record.reverted_merge_id == merge.merge_id
    assert done.record.actor == "tenants/t/apiKeys/k"
    # Events stored with the restored person map back to it; events stored with the survivor that carry the
    # restored side's identifiers follow them.
    mapped = {(o.person_id, o.identifier): o.override_person_id for o in done.overrides}
    assert mapped[(newer, None)] == newer
    assert mapped[(older, EMAIL)] == newer
    assert mapped[(older, B)] == newer
    # The separation holds: the same link does not merge them again.
    again = identity.resolve("t", [events(B, A)])
    assert again.merges == []
    assert len(partition(identity, "t")) == 2
    with pytest.raises(MergeNotRevertible):
        identity.split("t", older, merge.merge_id, actor="", reason="twice")


def test_unmerge_identifier_moves_it_and_its_events_to_a_new_profile(
    identity: Identity, events: Events
) -> None:
    person = identity.resolve("t", [events(U1, A), events(U1, B)]).resolutions[0].person_id
    kept, moved, done = identity.unmerge("t", person, B, actor="", reason="shared laptop")
    assert kept.person_id == person
    assert moved.person_id != person
    assert [i.identifier for i in moved.identifiers] == [B]
    assert partition(identity, "t") == {frozenset({U1, A}), frozenset({B})}
    assert {(o.person_id, o.identifier, o.override_person_id) for o in done.overrides} == {
        (person, B, moved.person_id)
    }
    # Remembered: an event carrying both does not link them again.
    again = identity.resolve("t", [events(U1, B)]).resolutions[0]
    assert again.person_id == person
    assert partition(identity, "t") == {frozenset({U1, A}), frozenset({B})}


def test_unmerge_identifier_refuses_the_last_identifier(identity: Identity, events: Events) -> None:
    person = identity.resolve("t", [events(A)]).resolutions[0].person_id
    with pytest.raises(LastIdentifier):
        identity.unmerge("t", person, A, actor="", reason="why")
    with pytest.raises(ProfileNotFound):
        identity.unmerge("t", person, B, actor="", reason="not held")


def test_merge_profiles_refuses_two_user_ids_and_lifts_a_separation(
    identity: Identity, events: Events
) -> None:
    first = identity.resolve("t", [events(U1)]).resolutions[0].person_id
    second = identity.resolve("t", [events(U2)]).resolutions[0].person_id
    with pytest.raises(MergeConflict, match="user_id"):
        identity.merge("t", [first, second], actor="", reason="same person")
    third = identity.resolve("t", [events(A)]).resolutions[0].person_id
    profile, records, overrides = identity.merge(
        "t", [third, first], actor="admin", reason="support ticket 42"
    )
    assert profile.person_id == first
    assert records[0].kind is MergeKind.MANUAL
    assert records[0].reason
    assert [(o.person_id, o.override_person_id) for o in overrides] == [(third, first)]
    kept, moved, _ = identity.unmerge("t", first, A, actor="", reason="oops")
    # Only an administrator's merge joins separated profiles again.
    identity.merge("t", [kept.person_id, moved.person_id], actor="", reason="it was right")
    assert partition(identity, "t") == {frozenset({U1, A}), frozenset({U2})}


def test_merge_profiles_validate_only_changes_nothing(identity: Identity, events: Events) -> None:
    a, b = (identity.resolve("t", [events(x)]).resolutions[0].person_id for x in (A, B))
    profile, _, _ = identity.merge("t", [a, b], actor="", reason="check", validate_only=True)
    assert {i.identifier for i in profile.identifiers} == {A, B}
    assert len(partition(identity, "t")) == 2
    assert identity.overrides("t", 0, 100) == ([], 0)


def test_delete_profile_erases_the_person_and_everything_merged_into_it(
    identity: Identity, events: Events
) -> None:
    survivor = identity.resolve("t", [events(A)]).resolutions[0].person_id
    absorbed = identity.resolve("t", [events(B)]).resolutions[0].person_id
    identity.resolve("t", [events(U1, A, B, EMAIL)])
    erased = identity.delete("t", absorbed)  # naming an absorbed id erases the person it belongs to
    assert sorted(erased.person_ids) == sorted([survivor, absorbed])
    assert len(erased.identifiers) == 4
    assert {(o.person_id, o.erased) for o in erased.overrides} == {(survivor, True), (absorbed, True)}
    assert partition(identity, "t") == set()
    with pytest.raises(ProfileNotFound):
        identity.get_profile("t", identifier=EMAIL)
    fresh = identity.resolve("t", [events(EMAIL)]).resolutions[0]
    assert fresh.person_created
    assert fresh.person_id not in erased.person_ids


def test_override_feed_is_ordered_and_flat(identity: Identity, events: Events) -> None:
    """When the survivor of a merge is merged again, the overrides pointing to it are re-issued (flat)."""
    p1, p2, p3 = (identity.resolve("t", [events(x)]).resolutions[0].person_id for x in (A, B, C))
    identity.resolve("t", [events(B, C)])  # p3 → p2
    identity.resolve("t", [events(A, B)])  # p2 (with p3) → p1
    feed, max_version = identity.overrides("t", 0, 100)
    versions = [o.version for o in feed]
    assert versions == sorted(versions)
    assert max_version == versions[-1]
    latest = {(o.person_id, o.identifier): o.override_person_id for o in feed}
    assert latest == {(p2, None): p1, (p3, None): p1}


def test_split_gives_each_profile_exactly_its_identifiers_seen_times(
    identity: Identity, events: Events
) -> None:
    """Hypothesis's shrunk case: a split wrote one component before the other's identifiers had left it, so
    that profile's span kept their seen times."""
    a0, a1, a2 = ("anonymous_id", "a0"), ("anonymous_id", "a1"), ("anonymous_id", "a2")
    identity.resolve("t", [events(a1, event_type="identify")])
    alone = identity.resolve("t", [events(a0, event_type="alias", previous=(a0,))]).resolutions[0].person_id
    joined = (
        identity.resolve("t", [events(a2, event_type="alias", previous=(EMAIL,))]).resolutions[0].person_id
    )
    survivor, [merge], _ = identity.merge("t", [alone, joined], actor="", reason="test")
    identity.split("t", survivor.person_id, merge.merge_id, actor="", reason="test")
    assert partition(identity, "t") == {frozenset({a1}), frozenset({a0}), frozenset({a2, EMAIL})}
    for group in partition(identity, "t"):
        profile = identity.get_profile("t", identifier=min(group))
        assert (profile.first_seen, profile.last_seen) == (
            min(i.first_seen for i in profile.identifiers),
            max(i.last_seen for i in profile.identifiers),
        ), profile


def test_override_heads_follow_each_tenants_feed_on_both_engines(identity: Identity, events: Events) -> None:
    identity.resolve("a", [events(("anonymous_id", "x")), events(("anonymous_id", "y"))])
    identity.resolve("a", [events(("anonymous_id", "x"), ("anonymous_id", "y"))])
    identity.resolve("b", [events(("anonymous_id", "x"))])
    _, head_a = identity.overrides("a", 0, 10)
    assert head_a > 0
    # More tenants than one statement asks for, in any order: each its own head, 0 without overrides.
    names = [f"n{i}" for i in range(1_200)] + ["b", "a"]
    heads = identity.override_heads(names)
    assert list(heads) == names
    assert heads["a"] == head_a
    assert heads["b"] == 0
    assert set(heads.values()) == {0, head_a}


def test_a_separation_holds_between_profiles_that_absorbed_others_whichever_side_is_larger(
    identity: Identity, events: Events
) -> None:
    """The separation is looked up from the smaller profile's persons (asking for every pair of the two
    profiles' persons made each merge into a large profile cost its size): it must hold from either side."""
    older = identity.resolve("t", [events(A), events(U1, A)]).resolutions[0].person_id
    newer = identity.resolve("t", [events(B)]).resolutions[0].person_id
    [merge] = identity.resolve("t", [events(B, A)]).merges
    identity.split("t", older, merge.merge_id, actor="", reason="wrong device")

    def absorb(into: tuple[str, str], *others: tuple[str, str]) -> None:
        for other in others:
            identity.resolve("t", [events(other)])  # a profile of its own first
            assert identity.resolve("t", [events(into, other)]).merges  # then merged in

    visitors = [("anonymous_id", f"visitor-{i}") for i in range(6)]
    absorb(B, *visitors[:2])  # newer: 3 persons, older: 1
    assert identity.resolve("t", [events(A, visitors[0])]).merges == []
    absorb(A, *visitors[2:])  # older: 5 persons, newer: 3
    assert identity.resolve("t", [events(visitors[5], visitors[1])]).merges == []
    assert len(partition(identity, "t")) == 2
    sides = [identity.get_profile("t", identifier=key) for key in (A, B)]
    assert [(p.person_id, p.merged_person_count) for p in sides] == [(older, 4), (newer, 2)]
