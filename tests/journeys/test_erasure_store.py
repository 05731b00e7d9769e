"""Erasure in the store, on a real chDB store whose statements are seen, one of them changed where a test
needs it. An erasure is done only once a read finds nothing of the person left (store/erasure.py): an event
of the person stored while the erasure runs, or a DELETE whose mask the engine did not keep (the suite once
read an erased decision event back after its DELETE returned), is deleted in another pass. The masked rows
leave the disk by one APPLY DELETED MASK per table for all the erasures of an interval (store/purge.py)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from structlog.testing import capture_logs

from tests.journeys.conftest import T0, new_person, stored_record
from wayline_journeys.erasures import PersonToErase
from wayline_journeys.errors import StoreUnavailable
from wayline_journeys.events import EventRecord
from wayline_journeys.person_changes import PersonChanges
from wayline_journeys.store import JourneyStore
from wayline_journeys.store.decision_tables import DECISION_LOGGED
from wayline_journeys.store.erased_persons import ClickHouseErasedPersons
from wayline_journeys.store.erasure import ERASE_PASSES
from wayline_journeys.store.purge import DeletedRowsPurge

TENANT = "erasure-passes"


# The tables an erasure of a person masks rows in (person_overrides too when overrides name the person).
MASKED_BY_AN_ERASURE = [
    "decision_events",
    "events",
    "identifier_anchors",
    "person_anchors",
    "person_timelines",
]


class SeenStore(JourneyStore):
    """The real store; every command is recorded, those `loses` names are not run (as if the engine had
    dropped them), and `after_first_find` runs once, right after the erasure's first look for the person."""

    def __init__(self, connect: Callable[[], Client], purge_seconds: float = 0.0) -> None:
        super().__init__(connect, purge_seconds=purge_seconds)
        self.commands: list[str] = []
        self.loses: Callable[[str], bool] = lambda sql: False
        self.fails: Callable[[str], bool] = lambda sql: False
        self.after_first_find: Callable[[], object] | None = None
        self.after_command: Callable[[str], object] = lambda sql: None
        self.actions: list[str] = []
        self.mutations_running = 0  # the next looks at system.mutations report one running, this many times

    def rows(
        self, sql: str, parameters: dict[str, Any], action: str, settings: dict[str, Any] | None = None
    ) -> Sequence[Sequence[Any]]:
        self.actions.append(action)
        if action == "waiting for the mutations on the erased tables" and self.mutations_running:
            self.mutations_running -= 1
            return [(1,)]
        found = super().rows(sql, parameters, action, settings)
        if action == "finding persons' events" and self.after_first_find is not None:
            hook, self.after_first_find = self.after_first_find, None
            hook()
        return found

    def command(
        self, sql: str, parameters: dict[str, Any], action: str, settings: dict[str, Any] | None = None
    ) -> None:
        self.commands.append(sql)
        if self.fails(sql):
            raise StoreUnavailable("refused by the test")
        if not self.loses(sql):
            super().command(sql, parameters, action, settings)
        self.after_command(sql)

    def erase(self, person: str) -> int:
        return self.erase_persons(
            TENANT, [PersonToErase(person)], self.overrides.mapping_for_person(TENANT, person)
        )[0]

    def count(self, table: str, person: str, *, on_disk: bool = False) -> int:
        """The person's rows a read returns, or (`on_disk`) also those only masked."""
        rows = self.rows(
            f"SELECT count() FROM {table} {'' if on_disk else 'FINAL'} "
            "WHERE tenant_id = {tenant:String} AND person_id = {p:String} "
            f"SETTINGS apply_deleted_mask = {0 if on_disk else 1}",
            {"tenant": TENANT, "p": person},
            "counting",
        )
        return int(rows[0][0])

    def applied(self) -> list[str]:
        """The tables masks were applied to, in order."""
        return [sql.split()[2] for sql in self.commands if sql.endswith("APPLY DELETED MASK")]


@pytest.fixture
def store(fresh_database: Callable[[], Client]) -> Iterator[SeenStore]:
    """Applies the masks at each erasure (purge_seconds 0)."""
    opened = SeenStore(fresh_database)
    opened.open()
    yield opened
    opened.close()


@pytest.fixture
def hourly(fresh_database: Callable[[], Client]) -> Iterator[SeenStore]:
    """Purges every hour: within a test, only when told to."""
    opened = SeenStore(fresh_database, purge_seconds=3600)
    opened.open()
    yield opened
    opened.close()


def wait_off_disk(store: SeenStore, person: str) -> None:
    """Until the person's masked events are rewritten away (APPLY DELETED MASK runs asynchronously)."""
    deadline = time.monotonic() + 30
    while store.count("events", person, on_disk=True) or store.count(
        "person_timelines", person, on_disk=True
    ):
        assert time.monotonic() < deadline, "the masked events are still on disk"
        time.sleep(0.05)


def wait_mutations_done(store: SeenStore) -> None:
    """Until every mutation of the store's database (a DELETE, an APPLY DELETED MASK) is done."""
    deadline = time.monotonic() + 30
    pending = "SELECT count() FROM system.mutations WHERE database = currentDatabase() AND NOT is_done"
    while store.client.query(pending).result_rows[0][0]:
        assert time.monotonic() < deadline, "the masks are still being applied"
        time.sleep(0.05)


def viewed(person: str, minute: int = 0) -> EventRecord:
    return stored_record(person, T0.replace(minute=minute), ("user_id", f"u-{person}"))


def logged(person: str) -> EventRecord:
    """The decision service's `Decision Logged` event of a new decision (copied into decision_events)."""
    properties = json.dumps({"decision_id": str(uuid.uuid4())})
    return replace(viewed(person), name=DECISION_LOGGED, properties_json=properties)


def deletes(store: SeenStore, table: str) -> int:
    return sum(1 for sql in store.commands if sql.startswith(f"DELETE FROM {table} "))


def test_an_event_of_the_person_stored_while_the_erasure_runs_is_erased_and_counted(store: SeenStore) -> None:
    """Ingest resolved the event to the person just before identity erased them: it lands between the
    erasure's find and its delete."""
    person, bystander = new_person(), new_person()
    store.write(TENANT, [viewed(person), viewed(bystander)])
    store.after_first_find = lambda: store.write(TENANT, [viewed(person, minute=1)])

    with capture_logs() as logged_lines:
        assert store.erase(person) == 2

    assert store.count("events", person) == 0
    assert store.count("events", bystander) == 1
    assert [line["events"] for line in logged_lines if line["event"] == "journeys.erasure_found_more"] == [1]


def test_a_decision_copy_whose_delete_the_engine_lost_is_deleted_in_another_pass(store: SeenStore) -> None:
    person = new_person()
    store.write(TENANT, [logged(person), viewed(person)])
    assert store.count("decision_events", person) == 1
    lost: list[str] = []

    def lose_the_first_decision_delete(sql: str) -> bool:
        if sql.startswith("DELETE FROM decision_events ") and not lost:
            lost.append(sql)
            return True
        return False

    store.loses = lose_the_first_decision_delete

    assert store.erase(person) == 2
    assert lost, "the first decision delete was not made"
    assert store.count("decision_events", person) == 0
    assert store.count("events", person) == 0
    assert deletes(store, "decision_events") == 2


def test_rows_still_read_after_every_pass_fail_the_erasure_and_identitys_retry_completes_it(
    store: SeenStore,
) -> None:
    person = new_person()
    store.write(TENANT, [viewed(person)])
    store.loses = lambda sql: sql.startswith("DELETE FROM events ")

    with pytest.raises(StoreUnavailable, match="still read after"):
        store.erase(person)
    assert deletes(store, "events") == ERASE_PASSES
    assert store.count("events", person) == 1  # nothing claims the erasure done while the event is read

    store.loses = lambda sql: False
    assert store.erase(person) == 1
    assert store.count("events", person) == 0


def test_a_decision_copy_of_an_event_id_rewritten_as_another_event_is_erased(store: SeenStore) -> None:
    """Every copy of an erased event id goes: also the decision copy an older write made while the id was a
    decision event, when its newest copy (what `events` reads) is not one."""
    person = new_person()
    decision = logged(person)
    store.write(TENANT, [decision])
    later = replace(
        viewed(person), event_id=decision.event_id, received_at=decision.received_at.replace(hour=10)
    )
    store.write(TENANT, [later])
    assert store.count("decision_events", person) == 1

    assert store.erase(person) == 1
    assert store.count("decision_events", person) == 0
    assert store.count("events", person) == 0


def test_the_erasures_of_an_interval_share_one_purge_per_table(hourly: SeenStore) -> None:
    persons = [new_person() for _ in range(3)]
    hourly.write(TENANT, [viewed(p) for p in persons])

    for person in persons:
        assert hourly.erase(person) == 1
    assert hourly.applied() == []  # masked: unreadable at once, still on disk
    assert [hourly.count("events", p) for p in persons] == [0, 0, 0]
    assert [hourly.count("events", p, on_disk=True) for p in persons] == [1, 1, 1]
    assert [hourly.count("person_timelines", p) for p in persons] == [0, 0, 0]
    assert [hourly.count("person_timelines", p, on_disk=True) for p in persons] == [1, 1, 1]

    assert hourly.purge.purge() == MASKED_BY_AN_ERASURE
    assert hourly.applied() == MASKED_BY_AN_ERASURE
    for person in persons:
        wait_off_disk(hourly, person)
    assert hourly.purge.purge() == []  # nothing noted since


def test_start_purges_the_masks_a_stopped_process_left_and_no_other_table(hourly: SeenStore) -> None:
    person = new_person()
    hourly.write(TENANT, [logged(person)])
    assert hourly.erase(person) == 1  # masked; noted only by the purge of this "process"
    restarted = DeletedRowsPurge(hourly, 3600)
    hourly.commands.clear()
    restarted.start()
    try:
        assert hourly.applied() == MASKED_BY_AN_ERASURE
        wait_off_disk(hourly, person)
    finally:
        restarted.stop()

    wait_mutations_done(hourly)
    hourly.commands.clear()
    restarted = DeletedRowsPurge(hourly, 3600)
    restarted.start()  # nothing masked is left: no table is written again
    restarted.stop()
    assert hourly.applied() == []


def test_start_purges_nothing_unmasked_and_stop_what_is_still_noted(hourly: SeenStore) -> None:
    hourly.purge.start()
    assert hourly.applied() == []
    person = new_person()
    hourly.write(TENANT, [logged(person)])
    hourly.commands.clear()

    assert hourly.erase(person) == 1
    assert hourly.applied() == []
    hourly.purge.stop()
    assert hourly.applied() == MASKED_BY_AN_ERASURE
    wait_off_disk(hourly, person)


def test_the_purge_thread_takes_the_masked_rows_off_the_disk(fresh_database: Callable[[], Client]) -> None:
    store = SeenStore(fresh_database, purge_seconds=0.2)
    store.open()
    try:
        store.purge.start()
        person = new_person()
        store.write(TENANT, [viewed(person)])
        assert store.erase(person) == 1
        wait_off_disk(store, person)
    finally:
        store.purge.stop()
        store.close()


def test_a_purge_that_fails_is_made_by_the_next(hourly: SeenStore) -> None:
    person = new_person()
    hourly.write(TENANT, [viewed(person)])
    assert hourly.erase(person) == 1
    hourly.fails = lambda sql: sql == "ALTER TABLE events APPLY DELETED MASK"

    with capture_logs() as lines:
        hourly.purge.purge()
    assert [line["table"] for line in lines if line["event"] == "journeys.purge_failed"] == ["events"]
    assert hourly.count("events", person, on_disk=True) == 1

    hourly.fails = lambda sql: False
    hourly.commands.clear()
    assert hourly.purge.purge() == ["events"]
    wait_off_disk(hourly, person)


def test_the_look_again_reads_once_the_mutations_beside_the_erasure_are_done(store: SeenStore) -> None:
    """Another erasure's DELETE or the purge's APPLY DELETED MASK running beside ours is where a mask can be
    lost: the look again that makes an erasure done waits for them, and reads after."""
    person = new_person()
    store.write(TENANT, [logged(person), viewed(person)])
    store.mutations_running = 3
    store.actions.clear()

    assert store.erase(person) == 2

    waits = [i for i, a in enumerate(store.actions) if a == "waiting for the mutations on the erased tables"]
    finds = [i for i, a in enumerate(store.actions) if a == "finding persons' events"]
    assert len(waits) == 4  # three answers of a mutation running, then none
    assert finds[0] < waits[0]  # the first find, then the wait,
    assert waits[-1] < finds[1]  # then the look again
    assert store.count("events", person) == 0
    assert store.count("decision_events", person) == 0


def test_a_second_erasure_of_the_person_answers_only_once_the_first_is_done(store: SeenStore) -> None:
    """Identity's call and the feed's `erased` marker erase the same person at about the same time. The one
    that starts second finds the events already masked: it must not answer done while the first has still
    to delete their decision copies (GetDecisionEvents would still return the decision)."""
    person = new_person()
    store.write(TENANT, [logged(person)])
    changes = PersonChanges(store, store.overrides, ClickHouseErasedPersons(store))
    second: dict[str, object] = {}

    def erase_again_meanwhile(sql: str) -> None:
        if sql.startswith(("DELETE FROM events ", "DELETE FROM decision_events ")) and not second:

            def erase() -> None:
                changes.erase(TENANT, [PersonToErase(person)])
                second["decision copies left"] = store.count("decision_events", person)

            second["thread"] = thread = threading.Thread(target=erase)
            thread.start()
            thread.join(0.5)  # the first erasure holds here, its first DELETE made, meanwhile

    store.after_command = erase_again_meanwhile
    assert changes.erase(TENANT, [PersonToErase(person)]) == [1]
    thread = second["thread"]
    assert isinstance(thread, threading.Thread)
    thread.join(30)
    assert second["decision copies left"] == 0  # when the second answered done
    assert store.count("events", person) == 0
