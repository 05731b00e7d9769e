"""SimulateFlow: a definition run over stored history by the live runtime's own code (FlowRuntime and its
Interpreter), against a throwaway store, so a simulation can only disagree with the live flow where the
inputs differ. Free of gRPC: the history comes through `HistorySource` (journeys' ExportEvents in
production), and the servicer converts.

How a simulation runs (ADR 39):
- a temporary SQLite database holds the flows', the runtime's and the ledger's tables, with a copy of the
  tenant's contact policy (none with `ignore_contact_policy`) and the definition published under the flow's
  id (split buckets hash the flow id, so persons land in the variants they land in live);
- the history's events are converted as ObserveEvents converts live ones (person_events.occurrences,
  through journeys_history.py), so every property path — the event fields, `person.<trait>` asked of the
  live runtime's journeys — reads what it reads live;
- persons are independent, so they run one after another, each from an empty ledger and no entry: a
  simulated clock walks through the person's events in time order, and before each event fires the person's
  timers due by then, in due order, then goes on firing them up to the range's end; what an event says of
  the person (consent, attributes, engagement with a message) reaches the throwaway ledger just before it,
  as ObserveEvents gives it to the live one;
- nothing leaves the process: the outbox is never dispatched, and the live database is only read (the
  policy);
- with `engagement_rate`, a stable hash of each simulated send's key decides whether it is engaged with; an
  engaged send is answered by the engagement event its engagement branches watch, one second later (and
  the ledger learns from it as from a real one);
- the statistics are the live ones' (flows/stats.py) over the throwaway store, without active counts.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import tempfile
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from wayline.common.sql import open_database
from wayline_orchestrator.contacts import Attribute, ConsentStatement, ContactLedger, ContactStore, Engagement
from wayline_orchestrator.contacts.engagement import ENGAGEMENT_KINDS
from wayline_orchestrator.flows.catalogue import FlowCatalogue
from wayline_orchestrator.flows.model import Definition, Flow
from wayline_orchestrator.flows.runtime.engine import FlowRuntime
from wayline_orchestrator.flows.runtime.lookups import Lookups
from wayline_orchestrator.flows.runtime.matching import Occurrence
from wayline_orchestrator.flows.runtime.runs import SECOND
from wayline_orchestrator.flows.runtime.stats_store import StatsScope, StatsStore
from wayline_orchestrator.flows.runtime.store import RuntimeStore
from wayline_orchestrator.flows.stats import FlowStats, assemble
from wayline_orchestrator.flows.store import FlowStore

__all__ = [
    "ENGAGEMENT_EVENTS",
    "INLINE_FLOW_ID",
    "HistorySource",
    "PersonHistory",
    "Simulation",
    "SimulationResult",
    "engaged",
    "simulate",
]

INLINE_FLOW_ID = "simulation"
"""The flow id an inline definition runs under."""
ENGAGEMENT_EVENTS = {
    "ENGAGEMENT_TYPE_DELIVERED": "Message Delivered",
    "ENGAGEMENT_TYPE_OPENED": "Message Opened",
    "ENGAGEMENT_TYPE_CLICKED": "Message Clicked",
    "ENGAGEMENT_TYPE_REPLIED": "Message Replied",
}
"""The synthetic event answering an engaged send, by the engagement its branch watches."""
_ENGAGEMENT_SALT = "engagement:"
_TIMERS_PER_FIRING = 100


@dataclass(frozen=True)
class PersonHistory:
    """One person's stored events in the range, oldest first, and what they say of the person (consent,
    attributes, engagement with messages), as ObserveEvents gives them to the ledger."""

    person_id: str
    events: list[Occurrence]
    consents: list[ConsentStatement] = field(default_factory=list)
    attributes: list[Attribute] = field(default_factory=list)
    engagements: list[Engagement] = field(default_factory=list)


class HistorySource(Protocol):
    def persons(self, start: int, end: int, max_persons: int) -> Iterable[PersonHistory]:
        """The histories of up to `max_persons` persons (a stable sample), one person after another."""
        ...


@dataclass(frozen=True)
class Simulation:
    tenant: str
    flow_id: str  # the flow's id (its draft), or INLINE_FLOW_ID
    flow_name: str  # `flows/{id}`, or '' for an inline definition
    definition: Definition  # complete (publishable)
    start: int  # microseconds since the epoch
    end: int  # exclusive
    ignore_contact_policy: bool = False
    engagement_rate: float = 0.0


@dataclass(frozen=True)
class SimulationResult:
    stats: FlowStats
    evaluated_persons: int


def engaged(contact_key: str, rate: float) -> bool:
    """Whether a simulated send counts as engaged with: SHA-256 of its key, read as a share in [0, 1)."""
    digest = hashlib.sha256((_ENGAGEMENT_SALT + contact_key).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


@dataclass
class _Statements:
    """What one event says of the person, for the ledger."""

    consents: list[ConsentStatement] = field(default_factory=list)
    attributes: list[Attribute] = field(default_factory=list)
    engagements: list[Engagement] = field(default_factory=list)


class _Clock:
    """The simulated time (microseconds since the epoch), moved by the simulation only."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


class _Replay:
    """One simulation's throwaway store and runtime."""

    def __init__(
        self, directory: Path, simulation: Simulation, lookups: Lookups, live: ContactLedger
    ) -> None:
        self.simulation = simulation
        self.db = open_database(None, directory / "simulation.db")
        self.clock = _Clock(simulation.start)
        contacts, flows, self.store = ContactStore(self.db), FlowStore(self.db), RuntimeStore(self.db)
        for part in (contacts, flows, self.store):
            part.migrate()
        tenant = simulation.tenant
        if not simulation.ignore_contact_policy:
            contacts.put_policy(tenant, live.policy(tenant), 0)
        self.ledger = ContactLedger(contacts, self.clock)
        catalogue = FlowCatalogue(flows, self.clock)
        draft = Flow(simulation.flow_id, definition=simulation.definition)
        catalogue.create(tenant, simulation.flow_id, draft)
        catalogue.publish(tenant, simulation.flow_id, "")
        self.runtime = FlowRuntime(self.store, flows, self.ledger, self.clock, lookups=lookups)
        self.watched = _watched_engagements(simulation.definition)

    def person(self, history: PersonHistory) -> None:
        """Replay one person's history up to the range's end."""
        tenant, person, end = self.simulation.tenant, history.person_id, self.simulation.end
        statements: dict[str, _Statements] = defaultdict(_Statements)
        for consent in history.consents:
            statements[consent.event_id].consents.append(consent)
        for attribute in history.attributes:
            statements[attribute.event_id].attributes.append(attribute)
        for engagement in history.engagements:
            statements[engagement.event_id].engagements.append(engagement)
        # (time, order, event): the order keeps events of one time as stored, and answers after them.
        pending = [(e.time, i, e) for i, e in enumerate(history.events)]
        heapq.heapify(pending)
        order = itertools.count(len(pending))
        answered: set[str] = set()
        while True:
            due = self.store.next_due(tenant, person)
            if pending and pending[0][0] < end and (due is None or pending[0][0] < due):
                at, _, event = heapq.heappop(pending)
                self.clock.now = at
                said = statements.pop(event.event_id, _Statements())
                self.ledger.observe(tenant, said.consents, said.attributes, said.engagements)
                self.runtime.observe(tenant, [event])
            elif due is not None and due < end:
                self.clock.now = due
                self.runtime.fire_due(_TIMERS_PER_FIRING)
            else:
                return
            for answer in self._engagements(person, answered):
                heapq.heappush(pending, (answer.time, next(order), answer))
                kind, weight = ENGAGEMENT_KINDS.get(answer.name, ("", 0.0))
                if kind:  # the ledger learns from it as from a real one (the learned channel preference)
                    engagement = Engagement(
                        person, answer.properties["contact_id"], kind, weight, answer.time, answer.event_id
                    )
                    statements[answer.event_id].engagements.append(engagement)

    def _engagements(self, person: str, answered: set[str]) -> list[Occurrence]:
        """The engagement events answering the person's new engaged sends (each send answered once)."""
        rate = self.simulation.engagement_rate
        found: list[Occurrence] = []
        if rate <= 0 or not self.watched:
            return found  # nothing could be engaged with: no need to read the sends
        for message in self.store.messages_of(self.simulation.tenant, person):
            key = message.idempotency_key
            if key in answered:
                continue
            answered.add(key)
            if not engaged(key, rate):
                continue
            for name in sorted(self.watched.get(message.step_id, ())):
                found.append(
                    Occurrence(
                        event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{key}#{name}")),
                        person_id=person,
                        name=name,
                        time=message.create_time + SECOND,
                        type="EVENT_TYPE_TRACK",
                        channel=message.channel,
                        properties={"contact_id": key},
                    )
                )
        return found

    def stats(self) -> FlowStats:
        simulation = self.simulation
        counts = StatsStore(self.store).counts(StatsScope(simulation.tenant, simulation.flow_id))
        return assemble(simulation.flow_name, 0, simulation.definition, counts, simulation.end, live=False)


def _watched_engagements(definition: Definition) -> dict[str, set[str]]:
    """Action step id → the engagement events its engagement branches wait for."""
    watched: dict[str, set[str]] = defaultdict(set)
    for step in definition.get("steps", []):
        branch = step.get("engagement_branch")
        if branch and branch.get("engagement") in ENGAGEMENT_EVENTS:
            watched[branch.get("action_step_id", "")].add(ENGAGEMENT_EVENTS[branch["engagement"]])
    return watched


def simulate(  # noqa: PLR0917 - a simulation's every input, at its one caller
    simulation: Simulation,
    histories: Iterable[PersonHistory],
    ledger: ContactLedger,
    lookups: Lookups,
    work_dir: Path,
    keep_going: Callable[[], None],
) -> SimulationResult:
    """Run `simulation` over `histories`; `ledger` is the live one (its policy is copied), `lookups` the live
    runtime's; `keep_going` is called before each person and raises to stop (the caller's deadline)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_dir, prefix="simulation-") as directory:
        replay = _Replay(Path(directory), simulation, lookups, ledger)
        try:
            evaluated = 0
            for history in histories:
                keep_going()
                replay.person(history)
                evaluated += 1
            return SimulationResult(replay.stats(), evaluated)
        finally:
            replay.db.close()
