"""ResolveIdentities' rules, one behaviour per test, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from tests.identity.conftest import T0, Events, partition
from wayline.common.sql import Database
from wayline.common.timestamps import to_micros
from wayline_identity.identity import Identity
from wayline_identity.model import IgnoreReason, ResolutionInput
from wayline_identity.rules import DEFAULT_RULES, TypeRule

ANON_A, ANON_B = ("anonymous_id", "a-1"), ("anonymous_id", "b-1")
USER_1, USER_2 = ("user_id", "u-1"), ("user_id", "u-2")


def test_resolve_identities_creates_one_profile_per_new_identifier_set(
    identity: Identity, events: Events
) -> None:
    outcome = identity.resolve("t", [events(ANON_A), events(ANON_B), events(ANON_A)])
    first, second, third = outcome.resolutions
    assert first.person_created
    assert second.person_created
    assert not third.person_created
    assert first.person_id == third.person_id != second.person_id
    assert outcome.merges == []


def test_resolve_identities_merges_two_devices_into_the_oldest_profile(
    identity: Identity, events: Events
) -> None:
    older = identity.resolve("t", [events(ANON_A)]).resolutions[0].person_id
    newer = identity.resolve("t", [events(ANON_B)]).resolutions[0].person_id
    outcome = identity.resolve("t", [events(USER_1, ANON_B), events(USER_1, ANON_A)])
    assert outcome.resolutions[1].person_id == older
    [merge] = outcome.merges
    assert (merge.target_person_id, merge.source_person_id, merge.event_id) == (older, newer, "e4")
    [override] = outcome.overrides
    assert (override.person_id, override.override_person_id, override.identifier) == (newer, older, None)
    assert partition(identity, "t") == {frozenset({USER_1, ANON_A, ANON_B})}
    assert identity.get_profile("t", newer).person_id == older  # an absorbed id answers with the survivor


def test_resolve_identities_never_merges_two_values_of_a_limit_one_type(
    identity: Identity, events: Events
) -> None:
    """A shared family device: each parent keeps their own profile; the device joins the first only."""
    device = ("device_id", "family-ipad")
    mum = identity.resolve("t", [events(USER_1, device)]).resolutions[0]
    dad = identity.resolve("t", [events(USER_2, device)]).resolutions[0]
    assert dad.person_id != mum.person_id
    assert dad.person_created
    assert [(i.identifier, i.reason) for i in dad.ignored] == [(device, IgnoreReason.MERGE_BLOCKED)]
    assert partition(identity, "t") == {frozenset({USER_1, device}), frozenset({USER_2})}
    [conflict] = identity.get_profile("t", mum.person_id).conflicts  # recorded durably, on both profiles
    assert (conflict.other_person_id, conflict.identifier_type, conflict.last_event_id) == (
        dad.person_id,
        "user_id",
        "e2",
    )
    assert identity.get_profile("t", dad.person_id).conflicts[0].other_person_id == mum.person_id


def test_resolve_identities_ignores_blocked_and_invalid_values(identity: Identity, events: Events) -> None:
    outcome = identity.resolve(
        "t", [events(("user_id", "undefined"), ("email", "  NULL "), ("phone", "not a phone"), ANON_A)]
    )
    [resolution] = outcome.resolutions
    assert resolution.identifiers == [ANON_A]
    assert sorted((i.identifier[0], i.reason) for i in resolution.ignored) == [
        ("email", IgnoreReason.BLOCKED_VALUE),
        ("phone", IgnoreReason.INVALID_VALUE),
        ("user_id", IgnoreReason.BLOCKED_VALUE),
    ]


def test_resolve_identities_without_a_usable_identifier_gives_no_person(
    identity: Identity, events: Events
) -> None:
    [resolution] = identity.resolve("t", [events(("anonymous_id", "null"))]).resolutions
    assert resolution.person_id == ""
    assert not resolution.person_created
    assert partition(identity, "t") == set()


def test_resolve_identities_normalises_emails_and_phones(identity: Identity, events: Events) -> None:
    outcome = identity.resolve(
        "t",
        [
            events(("email", " Ada@Example.COM "), ("phone", "+33 6 12 34 56 78")),
            events(("email", "ada@example.com")),
            events(("phone", "+33612345678")),
        ],
    )
    persons = {r.person_id for r in outcome.resolutions}
    assert len(persons) == 1
    assert outcome.resolutions[0].identifiers == [("email", "ada@example.com"), ("phone", "+33612345678")]


def test_resolve_identities_stops_at_a_types_limit(identity: Identity, events: Events) -> None:
    six = [("email", f"e{i}@x.io") for i in range(6)]
    [resolution] = identity.resolve("t", [events(USER_1, *six)]).resolutions
    assert len([k for k in resolution.identifiers if k[0] == "email"]) == 5
    assert [i.reason for i in resolution.ignored] == [IgnoreReason.LIMIT_REACHED]


def test_resolve_identities_alias_links_two_user_ids(identity: Identity, events: Events) -> None:
    old = identity.resolve("t", [events(USER_1)]).resolutions[0].person_id
    identity.resolve("t", [events(USER_2)])
    outcome = identity.resolve("t", [events(USER_2, event_type="alias", previous=(USER_1,))])
    assert outcome.resolutions[0].person_id == old
    assert len(outcome.merges) == 1
    assert partition(identity, "t") == {frozenset({USER_1, USER_2})}
    # A third user id still cannot join: the alias made an exception for its pair only.
    third = identity.resolve("t", [events(("user_id", "u-3"), USER_1)]).resolutions[0]
    assert [(i.identifier, i.reason) for i in third.ignored] == [
        (("user_id", "u-3"), IgnoreReason.LIMIT_REACHED)
    ]
    assert partition(identity, "t") == {frozenset({USER_1, USER_2})}


def test_resolve_identities_is_safe_to_retry(identity: Identity, events: Events) -> None:
    batch = [events(ANON_A), events(ANON_B), events(USER_1, ANON_A, ANON_B)]
    first = identity.resolve("t", batch)
    again = identity.resolve("t", batch)
    survivor = first.resolutions[2].person_id
    assert [r.person_id for r in again.resolutions] == [survivor] * 3
    assert again.merges == []
    assert again.overrides == []


def test_resolve_identities_non_linking_events_only_look_up(identity: Identity, events: Events) -> None:
    proposed = replace(DEFAULT_RULES, linking_event_types=("identify",))
    identity.update_rules("t", proposed, ["linking_event_types"], "")
    a = identity.resolve("t", [events(ANON_A)]).resolutions[0].person_id
    identity.resolve("t", [events(ANON_B)])
    [looked_up] = identity.resolve("t", [events(ANON_A, ANON_B, event_type="track")]).resolutions
    assert looked_up.person_id == a
    assert [i.reason for i in looked_up.ignored] == [IgnoreReason.NON_LINKING_EVENT]
    assert len(partition(identity, "t")) == 2
    identity.resolve("t", [events(ANON_A, ANON_B, event_type="identify")])
    assert len(partition(identity, "t")) == 1


def test_resolve_identities_non_linking_type_is_kept_but_never_merges(
    identity: Identity, events: Events
) -> None:
    types = tuple(
        TypeRule(r.type, r.priority, r.max_per_profile, r.blocked_values, r.normalizations, non_linking=True)
        if r.type == "device_id"
        else r
        for r in DEFAULT_RULES.identifier_types
    )
    identity.update_rules("t", replace(DEFAULT_RULES, identifier_types=types), ["identifier_types"], "")
    device = ("device_id", "kiosk")
    first = identity.resolve("t", [events(ANON_A, device)]).resolutions[0].person_id
    second = identity.resolve("t", [events(ANON_B, device)]).resolutions[0]
    assert second.person_id != first
    assert [i.reason for i in second.ignored] == [IgnoreReason.MERGE_BLOCKED]
    assert identity.person_of("t", identifier=device) == first


def test_resolve_identities_keeps_tenants_apart(identity: Identity, events: Events) -> None:
    mine = identity.resolve("t1", [events(USER_1)]).resolutions[0].person_id
    theirs = identity.resolve("t2", [events(USER_1)]).resolutions[0]
    assert theirs.person_created
    assert theirs.person_id != mine
    assert partition(identity, "t2") == {frozenset({USER_1})}


def test_resolve_identities_keeps_seen_times_to_the_granularity(database: Database) -> None:
    identity = Identity(database, seen_granularity_seconds=3600)
    identity.migrate()
    at = [to_micros(T0 + timedelta(minutes=m)) for m in (0, 1, 120, -30)]
    for n, when in enumerate(at):
        identity.resolve("t", [ResolutionInput(f"e{n}", when, "track", (ANON_A,))])
        [seen] = identity.get_profile("t", identifier=ANON_A).identifiers
        if n == 1:  # a minute later: within the hour, nothing written
            assert to_micros(seen.last_seen) == at[0]
    profile = identity.get_profile("t", identifier=ANON_A)
    [seen] = profile.identifiers
    assert (to_micros(seen.first_seen), to_micros(seen.last_seen)) == (at[3], at[2])  # earlier always widens
    assert (to_micros(profile.first_seen), to_micros(profile.last_seen)) == (at[3], at[2])
