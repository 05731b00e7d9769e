"""The catalogue's SQL store on both engines: every field round-trips through the JSON body, the id is taken
once per tenant, writes are conditional on the version read, and every query stays in its tenant."""

from __future__ import annotations

import dataclasses

import pytest

from wayline.common.sql import Database
from wayline_decision.actions import Action, ActionCatalogue, ActionState, ActionStore, Eligibility
from wayline_decision.errors import ActionNotFound, EtagMismatch

FULL = Action(
    action_id="winback_10",
    display_name="10% off",
    description="Win-back.",
    channel="CHANNEL_EMAIL",
    placements=("newsletter_slot", "footer"),
    value=12.5,
    value_currency="EUR",
    lever=1.5,
    start_time=1_700_000_000_000_000,
    end_time=1_900_000_000_000_000,
    eligibility=Eligibility(
        required_segments=("segments/lapsing",),
        excluded_segments=("segments/vip",),
        lifecycle_stages=("LIFECYCLE_STAGE_RETENTION",),
        required_consent="CONTACT_PURPOSE_MARKETING",
        required_reachable_channel="CHANNEL_EMAIL",
    ),
    counts_as_contact=True,
    purpose="CONTACT_PURPOSE_MARKETING",
    version=1,
    create_time=5,
    update_time=5,
)


@pytest.fixture
def store(database: Database) -> ActionStore:
    store = ActionStore(database)
    store.migrate()
    return store


def test_store_round_trips_every_field_per_tenant(store: ActionStore) -> None:
    assert store.insert("acme", FULL)
    assert not store.insert("acme", dataclasses.replace(FULL, display_name="again"))
    assert store.get("acme", "winback_10") == FULL
    assert store.get("globex", "winback_10") is None
    assert store.page("globex", "", 10) == ([], 0)
    bare = Action(action_id="bare", channel="CHANNEL_WEB", version=1)
    assert store.insert("acme", bare)
    assert store.get("acme", "bare") == bare


def test_store_writes_only_over_the_version_read(store: ActionStore) -> None:
    store.insert("acme", FULL)
    changed = dataclasses.replace(FULL, lever=2.0, version=2)
    assert not store.replace("globex", changed, 1)  # another tenant's id is not this row
    assert store.replace("acme", changed, 1)
    assert not store.replace("acme", dataclasses.replace(changed, version=3), 1)  # a stale read
    assert store.get("acme", "winback_10") == changed


def test_store_pages_by_id_with_filters(store: ActionStore) -> None:
    for action_id, channel in (("c", "CHANNEL_WEB"), ("a", "CHANNEL_EMAIL"), ("b", "CHANNEL_WEB")):
        store.insert("acme", Action(action_id=action_id, channel=channel, version=1))
    store.insert("globex", Action(action_id="z", channel="CHANNEL_WEB", version=1))
    first, total = store.page("acme", "", 2)
    assert ([a.action_id for a in first], total) == (["a", "b"], 3)
    assert [a.action_id for a in store.page("acme", "b", 2)[0]] == ["c"]
    assert [a.action_id for a in store.page("acme", "", 9, channel="CHANNEL_WEB")[0]] == ["b", "c"]
    assert store.page("acme", "", 9, state="ARCHIVED") == ([], 0)


def test_catalogue_updates_conditionally_and_archives_once(store: ActionStore) -> None:
    clock = iter(range(100, 200))
    catalogue = ActionCatalogue(store, clock=lambda: next(clock))
    created = catalogue.create("acme", "offer", dataclasses.replace(FULL, action_id=""))
    assert (created.version, created.state, created.create_time) == (1, ActionState.ACTIVE, 100)
    same = catalogue.update("acme", dataclasses.replace(created, lever=1.5), ["lever"], created.etag)
    assert same == created  # nothing changed: no new version
    updated = catalogue.update("acme", dataclasses.replace(created, lever=4.0), ["lever"], created.etag)
    assert (updated.lever, updated.version) == (4.0, 2)
    with pytest.raises(EtagMismatch):
        catalogue.update("acme", dataclasses.replace(created, lever=5.0), ["lever"], created.etag)
    archived = catalogue.archive("acme", "offer", "")
    assert catalogue.archive("acme", "offer", "") == archived
    assert not archived.valid_at(1_800_000_000_000_000)
    assert updated.valid_at(1_800_000_000_000_000)
    assert not updated.valid_at(1_900_000_000_000_000)  # the end is exclusive
    with pytest.raises(ActionNotFound):
        catalogue.get("globex", "offer")
