"""The override follower's parts on both engines, without identity: which tenants it follows (a loose index
scan over every table that keeps something for a tenant), the cursor moving with the effects and never
back, a poll that survives an identity nobody answers at, and a timer claimed before a merge and fired after
it (once, for the survivor)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import grpc
import pytest

from tests.orchestrator.runtime_calls import FakeClock
from tools.postgres_server import create_schema
from wayline.common.sql import Database, open_database
from wayline_cli.suite import free_port
from wayline_orchestrator.connectors import ConnectorStore
from wayline_orchestrator.contacts import (
    ConsentStatement,
    Contact,
    ContactLedger,
    ContactPolicy,
    ContactStore,
)
from wayline_orchestrator.flows import FlowCatalogue, FlowStore
from wayline_orchestrator.flows.model import Flow
from wayline_orchestrator.flows.runtime import FlowRuntime, Occurrence, RuntimeStore, Timer
from wayline_orchestrator.flows.runtime.outbox_store import OutboxStore
from wayline_orchestrator.merged_persons import MergedPersons
from wayline_orchestrator.override_cursors import OverrideCursors
from wayline_orchestrator.override_feed import IdentityOverrideFeed, OverrideFollower
from wayline_orchestrator.person_overrides import PersonOverride, PersonStates

HOUR_US = 3600 * 1_000_000


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = create_schema(request.getfixturevalue("postgres_url")) if request.param == "postgresql" else ""
    opened = open_database(url or None, tmp_path / "orchestrator.db")
    for store in (ContactStore(opened), FlowStore(opened), ConnectorStore(opened), RuntimeStore(opened)):
        store.migrate()
    OverrideCursors(opened).migrate()
    MergedPersons(opened).migrate()
    yield opened
    opened.close()


def _states(db: Database) -> PersonStates:
    return PersonStates(
        RuntimeStore(db),
        OutboxStore(db),
        ContactStore(db),
        ConnectorStore(db),
        OverrideCursors(db),
        MergedPersons(db),
        lambda: 7,
    )


def test_tenants_are_those_with_anything_kept_each_once(db: Database) -> None:
    contacts = ContactStore(db)
    with contacts.transaction() as tx:
        for person in ("p1", "p2", "p3"):
            contacts.insert(
                tx, "with-contacts", Contact(f"c-{person}", person, "CHANNEL_EMAIL", contact_time=1)
            )
    contacts.observe("with-consent", [ConsentStatement("p1", "ALL", "ALL", True, 1, "e1")], [])
    contacts.put_policy("with-policy", ContactPolicy(revision=1), 0)
    OverrideCursors(db).remember("only-observed")
    assert OverrideCursors(db).tenants() == ["only-observed", "with-consent", "with-contacts", "with-policy"]


def test_apply_moves_the_cursor_with_each_override_and_never_back(db: Database) -> None:
    states = _states(db)
    contacts = ContactStore(db)
    with contacts.transaction() as tx:
        contacts.insert(tx, "acme", Contact("c1", "absorbed", "CHANNEL_EMAIL", contact_time=1))
    merge = PersonOverride("absorbed", "survivor", version=5)
    unmerge = PersonOverride("absorbed", "other", version=9, scoped=True)
    assert states.apply("acme", [unmerge, merge]) == 9
    with contacts.transaction() as tx:
        assert contacts.contact(tx, "acme", "c1") == Contact(
            "c1", "survivor", "CHANNEL_EMAIL", contact_time=1
        )
    assert states.apply("acme", [PersonOverride("survivor", "third", version=3)]) == 9  # below: skipped
    with contacts.transaction() as tx:
        found = contacts.contact(tx, "acme", "c1")
    assert found is not None
    assert found.person_id == "survivor"
    assert states.cursor("elsewhere") == 0


def test_a_poll_against_an_identity_nobody_answers_fails_softly_and_stops(db: Database) -> None:
    OverrideCursors(db).remember("acme")
    channel = grpc.insecure_channel(f"127.0.0.1:{free_port()}")
    follower = OverrideFollower(IdentityOverrideFeed(channel, timeout_s=0.5), _states(db), poll_seconds=0.05)
    assert follower.poll() is False  # UNAVAILABLE: logged, retried later with a longer wait
    assert OverrideCursors(db).cursor("acme") == 0
    follower.start()
    follower.stop(timeout=5)


class _MergedAfterClaim(RuntimeStore):
    """The runtime's store, with identity's merge applied (by the follower's thread, in its own transaction)
    right after the timer loop claimed its batch and before it fires it."""

    def __init__(self, db: Database, merge: PersonOverride) -> None:
        super().__init__(db)
        self.merge = merge
        self.db = db

    def claim_due(self, now: int, limit: int, lease_us: int) -> list[tuple[str, Timer]]:
        claimed = super().claim_due(now, limit, lease_us)
        if claimed:
            _states(self.db).apply("acme", [self.merge])
        return claimed


def test_a_timer_claimed_before_a_merge_fires_once_for_the_survivor(db: Database) -> None:
    clock = FakeClock()
    flows = FlowCatalogue(FlowStore(db), clock)
    definition = {
        "trigger": {"event": {"event": {"event_name": "Signed Up"}}},
        "entry_step_id": "pause",
        "steps": [
            {"id": "pause", "wait": {"duration": "3600s", "next_step_id": "hello"}},
            {"id": "hello", "action": {"channel": "CHANNEL_EMAIL", "action_id": "hello"}},
        ],
    }
    created = flows.create("acme", "welcome", Flow("welcome", definition=definition))
    flows.publish("acme", "welcome", created.etag)
    store = _MergedAfterClaim(db, PersonOverride("absorbed", "survivor", version=1))
    runtime = FlowRuntime(
        store, FlowStore(db), ContactLedger(ContactStore(db), clock), clock, lease_us=HOUR_US
    )
    runtime.observe("acme", [Occurrence("e1", "absorbed", "Signed Up", clock())])
    clock.advance(3601)

    assert runtime.fire_due(10) == 1  # the wait's timer, claimed as the absorbed person's: stale once fired
    assert [(t.person_id, t.key) for t in store.timers("acme") if t.step_id == "pause"] == [
        ("survivor", "welcome/1/absorbed/1/pause")
    ]
    runtime.fire_due(10)  # the merge freed its claim: claimed again, and fired for the survivor
    assert [(e.person_id, e.status.value) for e in store.entries("acme", "welcome")] == [
        ("survivor", "EXITED")
    ]
    assert [(m.person_id, m.idempotency_key) for m in store.messages("acme")] == [
        ("survivor", "welcome/1/absorbed/1/hello")
    ]


class _Feed:
    """Identity's feed per tenant, each read in one page, with the heads GetOverrideFeedHeads gives."""

    def __init__(self) -> None:
        self.overrides: dict[str, list[PersonOverride]] = {}
        self.pages: list[tuple[str, int]] = []
        self.acknowledged: list[tuple[str, int]] = []
        self.heads_down = False

    def heads(self, tenants: Sequence[str]) -> dict[str, int]:
        if self.heads_down:
            raise _Unavailable()
        return {t: max((o.version for o in self.overrides.get(t, [])), default=0) for t in tenants}

    def page(self, tenant: str, after_version: int, page_token: str) -> tuple[list[PersonOverride], str]:
        self.pages.append((tenant, after_version))
        return [o for o in self.overrides.get(tenant, []) if o.version > after_version], ""

    def acknowledge(self, tenant: str, applied_version: int) -> None:
        self.acknowledged.append((tenant, applied_version))

    def close(self) -> None:
        pass


class _Unavailable(grpc.RpcError):
    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE


def test_a_poll_reads_only_the_feeds_whose_head_moved(db: Database) -> None:
    cursors, feed = OverrideCursors(db), _Feed()
    for tenant in ("acme", "globex", "initech"):
        cursors.remember(tenant)
    feed.overrides["acme"] = [PersonOverride("absorbed", "survivor", version=3)]
    follower = OverrideFollower(feed, _states(db), poll_seconds=60)

    assert follower.poll() is True  # each feed read once, to learn where it stands
    assert feed.pages == [("acme", 0), ("globex", 0), ("initech", 0)]
    assert feed.acknowledged == [("acme", 3)]
    feed.pages.clear()
    assert follower.poll() is True
    assert feed.pages == []  # idle: the heads told so in one call

    feed.overrides["initech"] = [PersonOverride("a", "b", version=7)]
    assert follower.poll() is True
    assert feed.pages == [("initech", 0)]
    assert cursors.cursor("initech") == 7
    assert feed.acknowledged[-1] == ("initech", 7)

    feed.heads_down = True
    feed.overrides["acme"].append(PersonOverride("x", "y", version=4))
    assert follower.poll() is False  # identity down: nothing read, the wait grows
    assert feed.pages == [("initech", 0)]
    feed.heads_down = False
    assert follower.poll() is True
    assert feed.pages[-1] == ("acme", 3)
