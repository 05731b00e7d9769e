"""Segment and schedule triggers against a real journeys server (chDB, its segment evaluator) and an
orchestrator on each engine: a person entering a segment enters its segment-triggered flows once (a
replayed feed page and a restart enter nobody twice), `include_existing_members` enters the members at
publication, leaving a segment ends the entries of flows that exit on it, re-entry follows the entry rules,
a schedule enters the segment's members at its occurrence once (a firing redone enters nobody twice; missed
occurrences fire once), and tenants never see each other's segments or entries.

The segment `pinged` holds the persons who performed `Pinged` exactly once or exactly three times, so each
event moves a person in, out and in again."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.journeys.conftest import Journeys
from tests.journeys.segments_support import count, delete_all_segments, event, wait_ready
from tests.orchestrator.conftest import as_tenant
from tests.orchestrator.helpers import Auth, Stub
from tests.orchestrator.running import ENGINES, Running, run_per_engine
from tests.orchestrator.runtime_calls import eventually, publish, send, track
from wayline.common.server import Server
from wayline.journeys.v1 import condition_pb2
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline.orchestrator.v1 import orchestrator_service_pb2_grpc as pb_grpc
from wayline_journeys.store.client import connect_clickhouse
from wayline_orchestrator.flows.runtime import Entry
from wayline_orchestrator.flows.runtime.segment_store import NEVER, SegmentStore

SEGMENT = "segments/pinged"
DAY = 86_400
HOUR_US = 3_600_000_000


@pytest.fixture(scope="module", params=ENGINES)
def running(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, journeys_server: Server
) -> Iterator[Running]:
    """An orchestrator following the suite's journeys server."""
    yield from run_per_engine(
        request,
        tmp_path_factory,
        timer_lease_seconds=2,
        segment_poll_seconds=0.1,
        segment_page_size=1,  # every page of changes and of members is one: paging is exercised
        journeys_address=journeys_server.address,
    )


def segment_store(running: Running) -> SegmentStore:
    return SegmentStore(running.db)


def entries(running: Running, auth: Auth, flow_id: str) -> list[Entry]:
    return running.store.entries(dict(auth)["x-wayline-tenant"], flow_id)


def statuses(running: Running, auth: Auth, flow_id: str) -> list[tuple[str, int, str, str]]:
    return [(e.person_id, e.number, e.status.value, e.reason) for e in entries(running, auth, flow_id)]


@pytest.fixture(scope="module")
def journeys_channel(journeys_server: Server) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(journeys_server.address) as channel:
        yield channel


@pytest.fixture
def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def auth(tenant: str) -> Auth:
    return as_tenant(tenant)


@pytest.fixture
def journeys(journeys_channel: grpc.Channel, tenant: str) -> Iterator[Journeys]:
    """The test's tenant in journeys, with the `pinged` segment built; its segments deleted afterwards, so the
    session's evaluator stops evaluating them."""
    found = Journeys(journeys_channel, tenant)
    create_pinged(found)
    yield found
    delete_all_segments(found)


def create_pinged(journeys: Journeys) -> None:
    once, thrice = (count("Pinged", n, comparison=condition_pb2.COMPARISON_OPERATOR_EQUAL) for n in (1, 3))
    either = condition_pb2.PersonCondition(
        group=condition_pb2.ConditionGroup(
            operator=condition_pb2.LOGICAL_OPERATOR_OR, conditions=[once, thrice]
        )
    )
    wait_ready(journeys, journeys.create_segment(either, "pinged").name)


@pytest.fixture
def stub(running: Running) -> Iterator[Stub]:
    """A channel per test: a test may restart the server, on a new port."""
    with grpc.insecure_channel(running.server.address) as channel:
        yield pb_grpc.OrchestratorServiceStub(channel)


def person() -> str:
    return f"p-{uuid.uuid4().hex[:8]}"


def members(journeys: Journeys) -> set[str]:
    return set(journeys.segment_members(SEGMENT)[0])


def ping(journeys: Journeys, who: str, *, inside: bool) -> None:
    """`who` performs Pinged; wait until journeys has them inside (or outside) the segment."""
    journeys.write(event(who, "Pinged"))
    eventually(lambda: (who in members(journeys)) == inside)


def waiting_flow(trigger: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """Enter by `trigger`, then wait a day and leave: entries stay live for the test's duration."""
    return {
        "trigger": trigger,
        "entry_step_id": "wait",
        "steps": [
            {"id": "wait", "wait": {"duration": f"{DAY}s", "next_step_id": "done"}},
            {"id": "done", "exit": {"reason": "finished"}},
        ],
        **fields,
    }


def by_segment(include_existing: bool = False) -> dict[str, Any]:
    return {"segment_entry": {"segment": SEGMENT, "include_existing_members": include_existing}}


AFTER_EXIT = {"entry_rules": {"reentry": "REENTRY_POLICY_AFTER_EXIT"}}


def cursor_reached(running: Running, tenant: str) -> int:
    return segment_store(running).cursor(tenant, SEGMENT)


def passing_flow(trigger: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """Enter by `trigger` and leave at once, free to enter again: only an entry's key keeps it once."""
    return {
        "trigger": trigger,
        "entry_step_id": "done",
        "steps": [{"id": "done", "exit": {"reason": "finished"}}],
        **AFTER_EXIT,
        **fields,
    }


def test_a_person_entering_the_segment_enters_the_flow_once_even_when_the_feed_is_read_again(
    running: Running, stub: Stub, auth: Auth, tenant: str, journeys: Journeys
) -> None:
    publish(stub, auth, "welcome", passing_flow(by_segment()))
    who = person()

    ping(journeys, who, inside=True)
    eventually(lambda: len(entries(running, auth, "welcome")) == 1)
    [entry] = entries(running, auth, "welcome")
    assert (entry.person_id, entry.status.value, entry.reason, entry.number) == (who, "EXITED", "finished", 1)
    assert entry.trigger_event_id.startswith(f"segment:{SEGMENT}:")
    assert entry.trigger == {}  # no trigger event: trigger_property conditions do not hold
    reached = int(entry.trigger_event_id.rsplit(":", 1)[1])
    # The poller moves its cursor once the page's entries are written, in a transaction of its own.
    eventually(lambda: cursor_reached(running, tenant) == reached)

    # The feed read again from its oldest change: the same change enters nobody again, although the
    # re-entry rule would let the person in.
    segment_store(running).move_cursor(tenant, SEGMENT, 0, back=True)
    eventually(lambda: cursor_reached(running, tenant) >= reached)
    assert statuses(running, auth, "welcome") == [(who, 1, "EXITED", "finished")]


def test_a_segment_entry_has_no_trigger_event_for_its_conditions(
    running: Running, stub: Stub, auth: Auth, journeys: Journeys
) -> None:
    named = {"trigger_property": {"property": "name", "operator": "FILTER_OPERATOR_IS_SET"}}
    definition = {
        "trigger": by_segment(),
        "entry_step_id": "branch",
        "steps": [
            {
                "id": "branch",
                "branch": {
                    "branches": [{"label": "evented", "condition": named, "next_step_id": "evented"}],
                    "default_step_id": "plain",
                },
            },
            {"id": "evented", "exit": {"reason": "had_a_trigger_event"}},
            {"id": "plain", "exit": {"reason": "no_trigger_event"}},
        ],
    }
    publish(stub, auth, "conditions", definition)
    who = person()

    ping(journeys, who, inside=True)
    eventually(lambda: statuses(running, auth, "conditions") == [(who, 1, "EXITED", "no_trigger_event")])


def test_a_segment_entry_follows_the_flows_audience(
    running: Running, stub: Stub, auth: Auth, journeys: Journeys
) -> None:
    vip = {"event_count": {"event": {"event_name": "Became VIP"}, "count": 1}}
    publish(stub, auth, "vips", waiting_flow(by_segment(), entry_rules={"audience": vip}))
    outsider, insider = person(), person()
    journeys.write(event(insider, "Became VIP"))

    ping(journeys, outsider, inside=True)
    ping(journeys, insider, inside=True)  # after the outsider in the feed: read after them
    eventually(lambda: len(entries(running, auth, "vips")) == 1)
    assert [e.person_id for e in entries(running, auth, "vips")] == [insider]


def test_a_restart_neither_enters_again_nor_misses_the_changes_made_while_down(
    running: Running, stub: Stub, auth: Auth, tenant: str, journeys: Journeys
) -> None:
    existing, first, second = person(), person(), person()
    ping(journeys, existing, inside=True)
    publish(stub, auth, "restart", passing_flow(by_segment(include_existing=True)))
    eventually(lambda: [e.person_id for e in entries(running, auth, "restart")] == [existing])
    eventually(
        lambda: segment_store(running).backfill(tenant, "restart", 1, SEGMENT) is None
    )  # recorded done
    ping(journeys, first, inside=True)
    eventually(lambda: {e.person_id for e in entries(running, auth, "restart")} == {existing, first})

    running.restart(while_down=lambda: ping(journeys, second, inside=True))

    eventually(lambda: len(entries(running, auth, "restart")) == 3)
    assert sorted(statuses(running, auth, "restart")) == sorted(
        (who, 1, "EXITED", "finished") for who in (existing, first, second)
    )


def test_an_expired_cursor_resynchronises_from_the_members_and_the_oldest_change_kept(
    running: Running, stub: Stub, auth: Auth, tenant: str, journeys: Journeys, chdb_path: Path
) -> None:
    publish(stub, auth, "resync", waiting_flow(by_segment(include_existing=True)))
    publish(stub, auth, "plain", waiting_flow(by_segment()))
    early, lost, kept = person(), person(), person()
    ping(journeys, early, inside=True)
    for flow_id in ("resync", "plain"):
        eventually(waiting(running, auth, flow_id, early))

    def while_down() -> None:
        ping(journeys, lost, inside=True)
        ping(journeys, kept, inside=True)
        # The feed's retention passes over `lost`'s entry: the orchestrator's cursor is now too old.
        lost_at = next(
            c.sequence for c in journeys.segment_changes(segment=SEGMENT)[0] if c.person_id == lost
        )
        expire_changes(chdb_path, tenant, up_to=lost_at)

    running.restart(while_down)

    eventually(lambda: len(entries(running, auth, "resync")) == 3)
    eventually(lambda: len(entries(running, auth, "plain")) == 2)
    assert {e.person_id for e in entries(running, auth, "resync")} == {early, lost, kept}
    # Without include_existing_members, who entered during the gap is missed; the changes kept are read.
    assert {e.person_id for e in entries(running, auth, "plain")} == {early, kept}
    resynced = {e.person_id: e.trigger_event_id for e in entries(running, auth, "resync")}
    assert resynced[lost].startswith(f"segment:{SEGMENT}:resync")


def expire_changes(chdb_path: Path, tenant: str, up_to: int) -> None:
    """Delete the tenant's feed changes up to a sequence from journeys' store, as its 30-day TTL would."""
    client = connect_clickhouse("", "wayline", chdb_path)
    try:
        client.command(
            "DELETE FROM segment_membership_changes WHERE tenant_id = {tenant:String}"
            " AND sequence <= {up_to:UInt64}",
            parameters={"tenant": tenant, "up_to": up_to},
        )
    finally:
        client.close()


def test_include_existing_members_enters_the_members_at_publication_and_only_that_flow(
    running: Running, stub: Stub, auth: Auth, journeys: Journeys
) -> None:
    existing, later = person(), person()
    ping(journeys, existing, inside=True)

    publish(stub, auth, "with-existing", waiting_flow(by_segment(include_existing=True)))
    publish(stub, auth, "later-only", waiting_flow(by_segment(include_existing=False)))
    eventually(lambda: len(entries(running, auth, "with-existing")) == 1)
    [entry] = entries(running, auth, "with-existing")
    assert (entry.person_id, entry.trigger_event_id) == (existing, f"segment:{SEGMENT}:v1:{existing}")

    ping(journeys, later, inside=True)
    eventually(lambda: len(entries(running, auth, "later-only")) == 1)
    eventually(lambda: len(entries(running, auth, "with-existing")) == 2)
    assert [e.person_id for e in entries(running, auth, "later-only")] == [later]
    assert sorted(e.person_id for e in entries(running, auth, "with-existing")) == sorted([existing, later])


def test_leaving_the_segment_ends_the_entries_that_exit_on_it_and_re_entry_follows_the_rules(
    running: Running, stub: Stub, auth: Auth, journeys: Journeys
) -> None:
    exits = {"time_exits": [{"segment_exit": {"segment": SEGMENT}, "reason": "left_pinged"}]}
    publish(stub, auth, "again", waiting_flow(by_segment(), **exits, **AFTER_EXIT))
    publish(
        stub, auth, "once", waiting_flow(by_segment(), time_exits=[{"segment_exit": {"segment": SEGMENT}}])
    )
    publish(stub, auth, "stays", waiting_flow(by_segment()))  # no segment exit
    by_event = waiting_flow({"event": {"event": {"event_name": "Signed Up"}}}, **exits)
    publish(stub, auth, "by-event", by_event)
    who = person()

    ping(journeys, who, inside=True)
    send(stub, auth, track(who, "Signed Up", running.clock()))
    for flow_id in ("again", "once", "stays", "by-event"):
        eventually(waiting(running, auth, flow_id, who))

    ping(journeys, who, inside=False)
    eventually(lambda: statuses(running, auth, "again") == [(who, 1, "EXITED", "left_pinged")])
    eventually(lambda: statuses(running, auth, "once") == [(who, 1, "EXITED", "segment_exit")])
    eventually(lambda: statuses(running, auth, "by-event") == [(who, 1, "EXITED", "left_pinged")])

    ping(journeys, who, inside=True)
    eventually(lambda: len(entries(running, auth, "again")) == 2)
    assert statuses(running, auth, "again") == [(who, 1, "EXITED", "left_pinged"), (who, 2, "WAITING", "")]
    assert statuses(running, auth, "once") == [(who, 1, "EXITED", "segment_exit")]  # REENTRY_POLICY_NEVER
    assert statuses(running, auth, "stays") == [(who, 1, "WAITING", "")]

    # The feed read again: its old exit is older than the second entry and does not end it.
    reached = cursor_reached(running, dict(auth)["x-wayline-tenant"])
    segment_store(running).move_cursor(dict(auth)["x-wayline-tenant"], SEGMENT, 0, back=True)
    eventually(lambda: cursor_reached(running, dict(auth)["x-wayline-tenant"]) >= reached)
    assert statuses(running, auth, "again") == [(who, 1, "EXITED", "left_pinged"), (who, 2, "WAITING", "")]


def waiting(running: Running, auth: Auth, flow_id: str, who: str) -> Callable[[], bool]:
    return lambda: statuses(running, auth, flow_id) == [(who, 1, "WAITING", "")]


def scheduled(cron: str, **fields: Any) -> dict[str, Any]:
    """Enter the segment's members on the schedule, and leave at once (so re-entry is up to the rules)."""
    return {
        "trigger": {"schedule": {"segment": SEGMENT, "cron": cron, "time_zone": "Europe/Paris"}},
        "entry_step_id": "done",
        "steps": [{"id": "done", "exit": {"reason": "finished"}}],
        **fields,
    }


def test_a_schedule_enters_the_members_at_its_occurrence_once(
    running: Running, stub: Stub, auth: Auth, tenant: str, journeys: Journeys
) -> None:
    first, second, outside = person(), person(), person()
    for who in (first, second):
        ping(journeys, who, inside=True)
    journeys.write(event(outside, "Browsed"))

    publish(stub, auth, "daily", scheduled("0 9 * * *", **AFTER_EXIT))  # 09:00 in Paris, 08:00 UTC in March
    eventually(lambda: len(segment_store(running).schedules(tenant)) == 1)
    [row] = segment_store(running).schedules(tenant)
    assert row.due_time > running.clock()
    assert row.due_time - running.clock() <= DAY * 1_000_000
    assert datetime.fromtimestamp(row.due_time / 1e6, UTC).strftime("%H:%M") == "08:00"
    assert entries(running, auth, "daily") == []

    running.clock.advance((row.due_time - running.clock()) / 1e6 + 60)
    eventually(lambda: len(entries(running, auth, "daily")) == 2)
    eventually(lambda: segment_store(running).schedules(tenant)[0].due_time == row.due_time + DAY * 1_000_000)
    keys = sorted(e.trigger_event_id for e in entries(running, auth, "daily"))
    assert keys == sorted(f"schedule:{row.due_time}:{p}" for p in (first, second))

    # The same occurrence fired again, as after a replica died in the middle of it: nobody enters twice.
    with running.db.transaction() as tx:
        tx.execute(
            "UPDATE flow_schedules SET occurrence = ?, page_token = '', due_time = ?, lease_until = 0"
            " WHERE tenant_id = ?",
            (row.due_time, row.due_time, tenant),
        )
    eventually(lambda: segment_store(running).schedules(tenant)[0].due_time == row.due_time + DAY * 1_000_000)
    assert len(entries(running, auth, "daily")) == 2

    # Three days later (two occurrences missed): the latest missed one fires, once.
    running.clock.advance(3 * DAY)
    eventually(lambda: len(entries(running, auth, "daily")) == 4)
    eventually(
        lambda: segment_store(running).schedules(tenant)[0].due_time == row.due_time + 4 * DAY * 1_000_000
    )
    assert sorted((e.person_id, e.number) for e in entries(running, auth, "daily")) == sorted(
        [(first, 1), (first, 2), (second, 1), (second, 2)]
    )
    latest = row.due_time + 3 * DAY * 1_000_000
    assert {e.trigger_event_id for e in entries(running, auth, "daily") if e.number == 2} == {
        f"schedule:{latest}:{p}" for p in (first, second)
    }


def test_a_schedule_enters_nobody_again_under_reentry_never(
    running: Running, stub: Stub, auth: Auth, tenant: str, journeys: Journeys
) -> None:
    who = person()
    ping(journeys, who, inside=True)
    publish(stub, auth, "never", scheduled("30 * * * *"))
    eventually(lambda: len(segment_store(running).schedules(tenant)) == 1)
    first_due = segment_store(running).schedules(tenant)[0].due_time

    running.clock.advance((first_due - running.clock()) / 1e6 + 1)
    eventually(lambda: len(entries(running, auth, "never")) == 1)
    running.clock.advance(3600)
    eventually(
        lambda: segment_store(running).schedules(tenant)[0].due_time == first_due + 2 * 3600 * 1_000_000
    )
    assert statuses(running, auth, "never") == [(who, 1, "EXITED", "finished")]


def test_an_interval_schedule_skips_occurrences_while_paused_and_a_new_version_retires_the_old(
    running: Running, stub: Stub, auth: Auth, tenant: str, journeys: Journeys
) -> None:
    who = person()
    ping(journeys, who, inside=True)
    every_2h = passing_flow({"schedule": {"segment": SEGMENT, "interval": "7200s"}})
    publish(stub, auth, "every", every_2h)
    # No start_time: counted from the moment the version is first seen, which is the first occurrence.
    eventually(lambda: len(entries(running, auth, "every")) == 1)
    eventually(lambda: segment_store(running).schedules(tenant)[0].occurrence == 0)
    [first] = segment_store(running).schedules(tenant)
    anchor = first.anchor_time
    assert first.due_time == anchor + 2 * HOUR_US

    stub.PauseFlow(pb.PauseFlowRequest(name="flows/every"), metadata=auth, timeout=10)
    running.clock.advance(2 * 3600 + 1)
    eventually(lambda: segment_store(running).schedules(tenant)[0].due_time == anchor + 4 * HOUR_US)
    assert len(entries(running, auth, "every")) == 1  # the paused occurrence passed without entries

    assert publish(stub, auth, "every", every_2h) == 1  # resumed, same version
    running.clock.advance(2 * 3600)
    eventually(lambda: len(entries(running, auth, "every")) == 2)

    assert (
        publish(stub, auth, "every", passing_flow({"schedule": {"segment": SEGMENT, "interval": "10800s"}}))
        == 2
    )
    eventually(lambda: len(entries(running, auth, "every")) == 3)
    assert [e.version for e in entries(running, auth, "every")] == [1, 1, 2]
    running.clock.advance(2 * 3600)  # version 1's next occurrence: it retires instead of firing
    eventually(lambda: segment_store(running).schedules(tenant)[0].due_time == NEVER)
    assert [(r.version, r.due_time > running.clock()) for r in segment_store(running).schedules(tenant)] == [
        (1, True),
        (2, True),
    ]
    assert len(entries(running, auth, "every")) == 3


def test_tenants_follow_their_own_segments_only(
    running: Running, stub: Stub, journeys_channel: grpc.Channel
) -> None:
    tenants = [f"t-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    sides = [Journeys(journeys_channel, t) for t in tenants]
    try:
        for side in sides:
            create_pinged(side)
        for tenant in tenants:
            publish(stub, as_tenant(tenant), "welcome", waiting_flow(by_segment()))
        who = person()

        ping(sides[0], who, inside=True)
        eventually(lambda: len(entries(running, as_tenant(tenants[0]), "welcome")) == 1)
        other = person()
        ping(sides[1], other, inside=True)
        eventually(lambda: len(entries(running, as_tenant(tenants[1]), "welcome")) == 1)

        assert [e.person_id for e in entries(running, as_tenant(tenants[0]), "welcome")] == [who]
        assert [e.person_id for e in entries(running, as_tenant(tenants[1]), "welcome")] == [other]
    finally:
        for side in sides:
            delete_all_segments(side)
