"""Flow execution: events offered to the tenant's published flows and to the entries their persons are in,
and due timers fired. Free of gRPC: the servicer converts events, the timer loop calls `fire_due`.

Per person, one transaction (on PostgreSQL, a savepoint of a transaction shared by up to 32 persons of the
batch, `_observe_group`): it locks the person's live entries, lets each event wake, convert or end them,
then enters the person into every published flow whose event trigger the event matches, subject to the
flow's re-entry rule and audience, and runs the new entry's first steps. An entry's row is unique by its
triggering event, so an event delivered twice (ingest delivers at least once) enters once.

Segment and schedule triggers enter persons without an event (`enter`, called by the segment poller and the
schedules, ADR 40), keyed by the membership change or the occurrence in the place of the event's id, so a
replayed page enters nobody twice; such an entry has no trigger event (`trigger_property` conditions do not
hold). A person leaving a segment ends their live entries whose version exits on it (`leave_segment`).

Flows that act for one person at the same moment run in the order of their `priority` (higher first, ADR
41): the entries one event wakes and the flows it enters, and the due timers of one person claimed in one
batch, so that the higher-priority flow's contact is recorded first and the contact policy's caps suppress
the lower one's. At equal priority the order is the store's (entries woken before new entries).

No network call happens inside a run's transaction: a run that needs an answer it has not had (a decision, a
person condition, traits) is rolled back, the question is asked with no transaction open, and the run starts
again with every answer so far (answers.py, ADRs 36 and 37). A journeys service that does not answer raises
PersonLookupUnavailable: ObserveEvents answers UNAVAILABLE (ingest delivers the events again), and a timer
stays claimed until its lease ends, then fires again. The person's traits an event's runs read are the
journeys service's under those of the person's identify events handled so far in the batch, that event
included (identified.py): journeys may not have stored them yet.
"""

from __future__ import annotations

import functools
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from itertools import groupby
from typing import TypeVar

import structlog

from wayline.common.sql import Transaction
from wayline.common.timestamps import now_us
from wayline_orchestrator.contacts import ContactLedger
from wayline_orchestrator.errors import PersonLookupUnavailable
from wayline_orchestrator.flows.model import Definition, FlowState, PauseMode
from wayline_orchestrator.flows.runtime.answers import RunPersons, Unanswered
from wayline_orchestrator.flows.runtime.decisions import RunDecisions
from wayline_orchestrator.flows.runtime.identified import IDENTIFY, identified
from wayline_orchestrator.flows.runtime.interpreter import Interpreter
from wayline_orchestrator.flows.runtime.lookups import Lookups
from wayline_orchestrator.flows.runtime.matching import (
    Occurrence,
    may_match,
    person_filters_hold,
    person_traits,
)
from wayline_orchestrator.flows.runtime.model import Entry, EntryStatus, Timer
from wayline_orchestrator.flows.runtime.runs import Run
from wayline_orchestrator.flows.runtime.store import RuntimeStore
from wayline_orchestrator.flows.store import FlowStore
from wayline_orchestrator.flows.values import seconds

__all__ = ["FlowRuntime", "Live", "priority", "segment_exit_reason"]

log = structlog.get_logger("wayline.orchestrator")

Live = tuple[str, int, Definition]  # a published flow: its id, its version, that version's definition
Turn = tuple[Entry | None, Live]  # an entry to wake (with its flow), or None and a flow to enter
Person = tuple[str, list[Occurrence]]  # a person of an ObserveEvents batch and their events, in order
_PAGE = 500
_DEFINITIONS = 1024  # published versions kept in memory (they never change)
# Persons an ObserveEvents batch runs in one transaction, by engine (`_observe_group`). On PostgreSQL a
# transaction's BEGIN and COMMIT are two round trips of the eight a person's entry costs (four of a
# wake-up's), a savepoint one; the persons come in id order, so transactions lock in one order. SQLite's
# commits cost no round trip, and its one write lock is better held for one person at a time.
_PERSONS_PER_TRANSACTION = {"postgresql": 32}
T = TypeVar("T")


def segment_exit_reason(definition: Definition, segment: str) -> str | None:
    """The reason of the definition's time exit on leaving `segment`, or None when it has none."""
    for time_exit in definition.get("time_exits", []):
        if time_exit.get("segment_exit", {}).get("segment") == segment:
            return str(time_exit.get("reason") or "segment_exit")
    return None


def _older(entry: Entry, segment: str, sequence: int, change_time: int) -> bool:
    """Whether a segment exit happened before the entry began (so it does not end it)."""
    entered_by = entry.trigger_event_id.removeprefix(f"segment:{segment}:")
    if entered_by != entry.trigger_event_id and entered_by.isascii() and entered_by.isdigit():
        return sequence <= int(entered_by)  # feed positions are strictly ordered; clocks of two services not
    return change_time < entry.entered_time


def priority(definition: Definition) -> int:
    """The flow's priority, 0 (the default, the lowest) to 1000."""
    return int(definition.get("priority", 0))


class FlowRuntime:
    def __init__(
        self,
        store: RuntimeStore,
        flows: FlowStore,
        ledger: ContactLedger,
        clock: Callable[[], int] = now_us,
        lease_us: int = 60_000_000,
        *,
        lookups: Lookups | None = None,
    ) -> None:
        self._store = store
        self._flows = flows
        self._lookups = lookups or Lookups()
        self._interpreter = Interpreter(store, ledger)
        self._clock = clock
        self._lease_us = lease_us
        self._definitions: OrderedDict[tuple[str, str, int], Definition] = OrderedDict()
        self._persons_per_transaction = _PERSONS_PER_TRANSACTION.get(store.engine, 1)

    @property
    def lookups(self) -> Lookups:
        """What entries ask other services; SimulateFlow runs its simulations with the same."""
        return self._lookups

    def _definition(self, tx: Transaction, tenant: str, flow_id: str, version: int) -> Definition | None:
        """A published version's definition; kept in memory once read (a version never changes)."""
        key = (tenant, flow_id, version)
        found = self._definitions.get(key)
        if found is None:
            found = self._store.definition(tx, tenant, flow_id, version)
            return None if found is None else self._remember(key, found)
        return found

    def _remember(self, key: tuple[str, str, int], definition: Definition) -> Definition:
        self._definitions[key] = definition
        while len(self._definitions) > _DEFINITIONS:
            self._definitions.popitem(last=False)
        return definition

    def published(self, tenant: str) -> list[Live]:
        """The tenant's published flows with an event trigger, at their latest versions."""
        live: list[Live] = []
        after = ""
        while True:
            page, _ = self._flows.page(tenant, after, _PAGE, FlowState.PUBLISHED.value)
            for flow in page:
                key = (tenant, flow.flow_id, flow.published_version)
                definition = self._definitions.get(key)
                if definition is None:
                    found = self._flows.version(tenant, flow.flow_id, flow.published_version)
                    definition = self._remember(key, found[0]) if found else None
                if definition is not None and "event" in definition.get("trigger", {}):
                    live.append((flow.flow_id, flow.published_version, definition))
            if len(page) < _PAGE:
                return live
            after = page[-1].flow_id

    def held(self, tenant: str) -> set[str]:
        """The tenant's flows paused with PAUSE_MODE_HOLD: no step of theirs runs until they are published
        again (their timers stay claimed and are looked at again when the lease ends)."""
        held: set[str] = set()
        after = ""
        while True:
            page, _ = self._flows.page(tenant, after, _PAGE, FlowState.PAUSED.value)
            held.update(f.flow_id for f in page if f.pause_mode in {None, PauseMode.HOLD})
            if len(page) < _PAGE:
                return held
            after = page[-1].flow_id

    def observe(self, tenant: str, events: Sequence[Occurrence]) -> int:
        """Offer the events to the entries and published flows of their persons; how many entries began."""
        live = self.published(tenant)
        held = self.held(tenant)
        triggers = [definition["trigger"]["event"].get("event") for _, _, definition in live]
        ordered = sorted(events, key=lambda e: (e.person_id, e.time, e.event_id))
        # Most events neither trigger a flow nor concern a person inside one: one read finds those that do,
        # and only their persons take a write transaction. A trigger's person filters are left to the run
        # (`_turns`): asking journeys here would cost a call for every event of the trigger's kind.
        inside = self._store.persons_inside(tenant, sorted({e.person_id for e in ordered}))
        persons: list[Person] = []
        for person_id, group in groupby(ordered, key=lambda e: e.person_id):
            mine = list(group)
            if person_id in inside or any(may_match(e, t) for e in mine for t in triggers):
                persons.append((person_id, mine))
        size, entered = self._persons_per_transaction, 0
        answers = self._persons([person_id for person_id, _ in persons])
        for start in range(0, len(persons), size):
            entered += self._observe_group(tenant, persons[start : start + size], live, held, answers)
        return entered

    def _persons(self, batch: Sequence[str]) -> RunPersons:
        """The person answers shared by the runs of a batch: the traits or conditions asked for one person
        of `batch` are asked for all of them at once (answers.py)."""
        return RunPersons(self._lookups.person, batch)

    def _run(self, persons: RunPersons | None = None) -> Lookups:
        """The lookups of a run: they answer only what was asked with no transaction open (answers.py).
        Decisions are the run's own (a run may ask MAX_DECISIONS_PER_RUN); person answers may be a batch's."""
        return Lookups(
            person=persons or RunPersons(self._lookups.person),
            decision=RunDecisions(self._lookups.decision),
        )

    def _answered(self, run: Callable[[Lookups], T], persons: RunPersons | None = None) -> T:
        """Do `run` (one transaction) until it needs no answer it has not had (a decision, a person
        condition, traits): the question it raises is asked once its transaction has rolled back, and it
        starts again with every answer so far (answers.py). `persons` are a batch's answers."""
        lookups = self._run(persons)
        while True:
            try:
                return run(lookups)
            except Unanswered as missing:
                missing.ask()

    def _observe_group(
        self, tenant: str, persons: list[Person], live: list[Live], held: set[str], answers: RunPersons
    ) -> int:
        """Observe the persons' events in one transaction, each person's run after a savepoint of its own
        (not the first's: the transaction's start is theirs); how many entries began. A run that needs an
        answer it has not had rolls back to its savepoint, what the persons before did is committed, the
        question is asked with no transaction open (answers.py), and a new transaction starts again from
        that person with every answer so far. So each person's runs are those of a transaction of their own,
        with two round trips fewer per person on PostgreSQL than one BEGIN and COMMIT each. `answers` are the
        whole ObserveEvents call's person answers."""
        lookups = self._run(answers)
        entered, start = 0, 0
        while start < len(persons):
            missing: Unanswered | None = None
            try:
                with self._store.transaction() as tx:
                    for i, (person_id, events) in enumerate(persons[start:], start):
                        if i > start:
                            self._store.savepoint(tx)
                        try:
                            began = self._observe_in(tx, tenant, person_id, events, live, held, lookups)
                        except Unanswered as raised:
                            if i == start:
                                raise  # nothing before it: the whole transaction rolls back
                            self._store.rollback_to_savepoint(tx)
                            missing, start = raised, i
                            break
                        entered += began
                    else:
                        start = len(persons)
            except Unanswered as raised:
                missing = raised
            if missing is not None:
                missing.ask()
        return entered

    def _observe_in(  # noqa: PLR0917 - the group's inputs, the person's, the transaction
        self,
        tx: Transaction,
        tenant: str,
        person_id: str,
        events: list[Occurrence],
        live: list[Live],
        held: set[str],
        lookups: Lookups,
    ) -> int:
        """Offer one person's events to their live entries and to the published flows, in `tx`; how many
        entries began."""
        entered = 0
        now = self._clock()
        inside = self._store.live_entries(tx, tenant, person_id)
        seen: list[Occurrence] = []  # the person's identify events so far: journeys may lack them yet
        for event in events:
            if event.type == IDENTIFY:
                seen.append(event)
            here = identified(lookups, person_id, seen)
            for entry, (flow_id, version, definition) in self._turns(
                tx, tenant, event, inside, live, held, here
            ):
                if entry is not None:
                    self._interpreter.observe(Run(tx, tenant, definition, entry, now, here), event)
                    continue
                flow = (flow_id, version, definition)
                new = self._enter(tx, tenant, flow, person_id, event, now, here)
                if new is not None:
                    inside.append(new)
                    entered += 1
        for entry in inside:
            self._save(tx, tenant, entry, now)
        return entered

    def _turns(  # noqa: PLR0917 - the moment's every party, at its one caller
        self,
        tx: Transaction,
        tenant: str,
        event: Occurrence,
        inside: list[Entry],
        live: list[Live],
        held: set[str],
        lookups: Lookups,
    ) -> list[Turn]:
        """What `event` sets going for the person — the live entries it is offered to and the flows its
        trigger matches — highest priority first (a stable sort: the store's order at equal priority). The
        person's traits that the triggers the event may match read are asked in one call (the run's
        lookups: asked with no transaction open, answers.py)."""
        turns: list[Turn] = []
        for entry in inside:
            definition = self._definition(tx, tenant, entry.flow_id, entry.version)
            if definition is not None and entry.live and entry.flow_id not in held:
                turns.append((entry, (entry.flow_id, entry.version, definition)))
        candidates = [(flow, flow[2]["trigger"]["event"].get("event")) for flow in live]
        candidates = [(flow, matcher) for flow, matcher in candidates if may_match(event, matcher)]
        wanted = sorted({trait for _, matcher in candidates for trait in person_traits(matcher)})
        known = lookups.person.properties(tenant, event.person_id, wanted) if wanted else {}
        turns += [(None, flow) for flow, matcher in candidates if person_filters_hold(matcher, known)]
        return sorted(turns, key=lambda turn: -priority(turn[1][2]))

    def _enter(  # noqa: PLR0917 - one entry's every input, at its callers
        self,
        tx: Transaction,
        tenant: str,
        flow: Live,
        person_id: str,
        trigger: Occurrence | str,
        now: int,
        lookups: Lookups,
    ) -> Entry | None:
        """Enter the person, if the re-entry rule allows and they are in the flow's audience (asked of the
        journeys service only then, for the trigger), and run the entry's first steps. `trigger` is the
        triggering event, or for an entry without one (segments, schedules), the key that makes it unique in
        its flow."""
        flow_id, version, definition = flow
        latest, last_number = self._store.latest_entry(tx, tenant, flow_id, person_id)
        if latest is not None:
            rules = definition.get("entry_rules", {})
            if rules.get("reentry", "REENTRY_POLICY_NEVER") != "REENTRY_POLICY_AFTER_EXIT" or latest.live:
                return None
            cooldown = round((seconds(rules.get("reentry_cooldown")) or 0.0) * 1_000_000)
            if now < latest.update_time + cooldown:
                return None
        audience = definition.get("entry_rules", {}).get("audience")
        if audience and not lookups.person.holds(tenant, person_id, [audience])[0]:
            log.debug("flows.outside_audience", tenant=tenant, flow_id=flow_id, version=version)
            return None  # nothing recorded: the person simply does not enter
        entry = Entry(
            flow_id=flow_id,
            person_id=person_id,
            number=last_number + 1,
            version=version,
            step_id=definition.get("entry_step_id", ""),
            status=EntryStatus.ACTIVE,
            entered_time=now,
            update_time=now,
            trigger_event_id=trigger if isinstance(trigger, str) else trigger.event_id,
            trigger={} if isinstance(trigger, str) else trigger.as_json(),
        )
        if not self._store.insert_entry(tx, tenant, entry):
            return None  # this event entered already (a redelivery), or another replica entered meanwhile
        entry.revision = 1
        self._interpreter.start(Run(tx, tenant, definition, entry, now, lookups))
        log.info("flows.entered", tenant=tenant, flow_id=flow_id, version=version, entry=entry.number)
        return entry

    def enter(self, tenant: str, flow: Live, keyed: Sequence[tuple[str, str]]) -> int:
        """Enter each (person, key) into a published flow without a trigger event, one transaction per person,
        under the re-entry rules and the audience; an entry's key makes it once (a key seen before enters
        nobody). How many entered. PersonLookupUnavailable (journeys down for the audience or a first step)
        leaves the rest of `keyed` to the caller's retry. The traits the entries' first steps read are
        asked for every person of `keyed` in one call (answers.py)."""
        entered = 0
        answers = self._persons([person_id for person_id, _ in keyed])
        for person_id, key in keyed:
            run = functools.partial(self._enter_once, tenant, flow, person_id, key)
            entered += self._answered(run, answers)
        return entered

    def _enter_once(self, tenant: str, flow: Live, person_id: str, key: str, lookups: Lookups) -> int:
        with self._store.transaction() as tx:
            now = self._clock()
            entry = self._enter(tx, tenant, flow, person_id, key, now, lookups)
            if entry is None:
                return 0
            self._save(tx, tenant, entry, now)
            return 1

    def leave_segment(
        self, tenant: str, person_id: str, segment: str, sequence: int, change_time: int
    ) -> int:
        """The person left `segment` (feed position `sequence`, at `change_time`): end each of their live
        entries whose version has a segment exit on it, with the exit's reason (`segment_exit` by default).
        An exit older than the entry does not end it: for an entry by one of this segment's changes, one at or
        before that change in the feed; for any other, one before the entry's time. How many entries ended."""
        ended = 0
        with self._store.transaction() as tx:
            now = self._clock()
            for entry in self._store.live_entries(tx, tenant, person_id):
                definition = self._definition(tx, tenant, entry.flow_id, entry.version)
                reason = None if definition is None else segment_exit_reason(definition, segment)
                if definition is None or reason is None or _older(entry, segment, sequence, change_time):
                    continue
                self._interpreter.leave(Run(tx, tenant, definition, entry, now), reason)
                self._save(tx, tenant, entry, now)
                ended += 1
        return ended

    def _save(self, tx: Transaction, tenant: str, entry: Entry, now: int) -> None:
        entry.revision += 1
        entry.update_time = now
        self._store.update_entry(tx, tenant, entry)

    def fire_due(self, limit: int) -> int:
        """Claim up to `limit` due timers and fire each in its own transaction; how many were claimed."""
        claimed = self._by_priority(self._store.claim_due(self._clock(), limit, self._lease_us))
        held: dict[str, set[str]] = {}
        answers: dict[str, RunPersons] = {}  # per tenant: what a firing asks of a person, asked for all
        for tenant, timer in claimed:
            if tenant not in held:
                held[tenant] = self.held(tenant)
                answers[tenant] = self._persons([t.person_id for of, t in claimed if of == tenant])
            if timer.flow_id in held[tenant]:
                continue  # left claimed: looked at again when its lease ends
            try:
                self._answered(functools.partial(self._fire, tenant, timer), answers[tenant])
            except PersonLookupUnavailable:
                # Rolled back, the timer left claimed: fired again when its lease ends. The others go on.
                log.warning("flows.timer_deferred", tenant=tenant, flow_id=timer.flow_id, why="journeys")
        return len(claimed)

    def _by_priority(self, claimed: list[tuple[str, Timer]]) -> list[tuple[str, Timer]]:
        """The batch with each person's timers in their flows' priority order (higher first), then by due
        time. Only a person with several timers in the batch costs a read: their entries' versions."""
        per_person = Counter((tenant, timer.person_id) for tenant, timer in claimed)
        ranks: dict[tuple[str, str], int] = {}
        shared = [(t, timer) for t, timer in claimed if per_person[t, timer.person_id] > 1]
        if shared:
            with self._store.transaction() as tx:
                for tenant, timer in shared:
                    entry = self._store.entry(tx, tenant, timer.flow_id, timer.person_id, timer.entry_number)
                    if entry is None:
                        continue
                    definition = self._definition(tx, tenant, entry.flow_id, entry.version)
                    ranks[tenant, timer.key] = priority(definition) if definition is not None else 0

        def order(pair: tuple[str, Timer]) -> tuple[str, str, int, int]:
            tenant, timer = pair
            return tenant, timer.person_id, -ranks.get((tenant, timer.key), 0), timer.due_time

        return sorted(claimed, key=order)

    def _fire(self, tenant: str, timer: Timer, lookups: Lookups) -> None:
        """Fire one claimed timer, in one transaction."""
        with self._store.transaction() as tx:
            now = self._clock()
            entry = self._store.entry(tx, tenant, timer.flow_id, timer.person_id, timer.entry_number)
            self._store.delete_claimed(tx, tenant, timer)
            if entry is None or not entry.live:
                return
            definition = self._definition(tx, tenant, entry.flow_id, entry.version)
            if definition is None:
                return
            self._interpreter.resume(Run(tx, tenant, definition, entry, now, lookups), timer)
            self._save(tx, tenant, entry, now)
