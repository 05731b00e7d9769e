"""What identity's person overrides do to the orchestrator's state (ADR 38). Free of gRPC: the feed
(override_feed.py) converts identity's messages into `PersonOverride`.

- A person-wide override to another person (a merge): the absorbed person's flow entries (merge.py), step
  runs, outbox messages, ledger contacts, consent and attributes, connector dead letters and the contact
  events waiting for the timeline become the survivor's.
- An erasure marker: every state kept for the person is deleted.
- An identifier-scoped override (an unmerge or a split) or a cancelled one: nothing moves. A flow entry is
  not an event: once a profile is cut, which side performed the trigger (and received the sends) cannot be
  told, so the entry stays with the person it is keyed by, as the ledger's contacts do.

Each override is applied in one transaction that also moves the tenant's cursor (override_cursors.py): a
crash loses an override whole or not at all, and an override at or below the cursor is skipped, so applying
a page again changes nothing. Consecutive overrides that move nothing share one transaction. The merges are
also remembered, person → survivor (merged_persons.py), for the events still in flight under the absorbed
person's id, and so are the erasures, whose in-flight events are left out; a cancelled person-wide override
forgets its person's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from wayline.common.sql import Transaction
from wayline.common.timestamps import now_us
from wayline_orchestrator.connectors import ConnectorStore
from wayline_orchestrator.contacts import ContactStore
from wayline_orchestrator.flows.runtime import RuntimeStore
from wayline_orchestrator.flows.runtime.merge import merge_entries
from wayline_orchestrator.flows.runtime.outbox_store import OutboxStore
from wayline_orchestrator.merged_persons import MergedPersons
from wayline_orchestrator.override_cursors import OverrideCursors
from wayline_orchestrator.timeline import ContactEventStore

__all__ = ["ObservedPersons", "PersonOverride", "PersonStates", "Unfollowed"]

log = structlog.get_logger("wayline.orchestrator")


@dataclass(frozen=True)
class PersonOverride:
    """One entry of identity's override feed, as the orchestrator reads it."""

    person_id: str
    override_person_id: str
    version: int
    scoped: bool = False  # keyed by an identifier too (an unmerge or a split)
    erased: bool = False

    @property
    def moves(self) -> bool:
        """Whether the override changes the orchestrator's state (a merge or an erasure)."""
        return self.erased or (not self.scoped and self.override_person_id != self.person_id)


class ObservedPersons(Protocol):
    """What ObserveEvents asks of the override feed's state (PersonStates, or Unfollowed without it)."""

    def seen(self, tenant: str) -> None: ...

    def survivors(self, tenant: str, person_ids: Sequence[str]) -> dict[str, str]: ...


class Unfollowed:
    """No follower (no identity address, or polling off): nothing to remember, nobody merged."""

    def seen(self, tenant: str) -> None:
        del tenant

    def survivors(self, tenant: str, person_ids: Sequence[str]) -> dict[str, str]:
        del tenant, person_ids
        return {}


class PersonStates:
    """Every store keyed by person in the orchestrator's one database, moved or erased together."""

    def __init__(  # noqa: PLR0917 - the stores it moves state in
        self,
        runtime: RuntimeStore,
        outbox: OutboxStore,
        contacts: ContactStore,
        connectors: ConnectorStore,
        cursors: OverrideCursors,
        merged: MergedPersons,
        clock: Callable[[], int] = now_us,
        *,
        contact_events: ContactEventStore | None = None,
    ) -> None:
        self._runtime = runtime
        self._contact_events = contact_events
        self._outbox = outbox
        self._contacts = contacts
        self._connectors = connectors
        self._cursors = cursors
        self._merged = merged
        self._clock = clock

    def tenant_names(self) -> list[str]:
        return self._cursors.tenants()

    def cursor(self, tenant: str) -> int:
        return self._cursors.cursor(tenant)

    def seen(self, tenant: str) -> None:
        """A tenant whose events the orchestrator observes: followed from now on."""
        self._cursors.remember(tenant)

    def survivors(self, tenant: str, person_ids: Sequence[str]) -> dict[str, str]:
        """The survivor of each of these persons that a merge applied absorbed, ERASED (merged_persons.py)
        for each an erasure applied took."""
        return self._merged.survivors(tenant, person_ids)

    def apply(self, tenant: str, overrides: Sequence[PersonOverride]) -> int:
        """Apply the overrides above the tenant's cursor, in version order; the cursor after them."""
        quiet: list[PersonOverride] = []  # overrides that move nothing, applied together
        for override in sorted(overrides, key=lambda o: o.version):
            if override.moves:
                self._apply_quiet(tenant, quiet)
                quiet = []
                self._apply_one(tenant, override)
            else:
                quiet.append(override)
        self._apply_quiet(tenant, quiet)
        return self.cursor(tenant)

    def _apply_quiet(self, tenant: str, overrides: list[PersonOverride]) -> None:
        if not overrides:
            return
        with self._runtime.transaction() as tx:
            now = self._clock()
            cursor = self._cursors.lock(tx, tenant, now)
            for override in overrides:
                if override.version > cursor and not override.scoped:
                    self._merged.restore(tx, tenant, override.person_id)  # cancelled: a person again
            self._cursors.advance(tx, tenant, overrides[-1].version, now)

    def _apply_one(self, tenant: str, override: PersonOverride) -> None:
        with self._runtime.transaction() as tx:
            now = self._clock()
            if override.version <= self._cursors.lock(tx, tenant, now):
                return  # applied already (a replayed page, or another replica)
            if override.erased:
                self._merged.erase(tx, tenant, override.person_id)
                deleted = self.erase(tx, tenant, override.person_id)
                log.info("flows.person_erased", tenant=tenant, version=override.version, deleted=deleted)
            else:
                self._merged.record(tx, tenant, override.person_id, override.override_person_id)
                self.merge(tx, tenant, override.person_id, override.override_person_id, now)
                log.info("flows.person_merged", tenant=tenant, version=override.version)
            self._cursors.advance(tx, tenant, override.version, now)

    def merge(self, tx: Transaction, tenant: str, person_id: str, survivor: str, now: int) -> None:
        """Give everything kept for `person_id` to `survivor`."""
        renumbered = merge_entries(self._runtime, tx, tenant, person_id, survivor, now)
        self._outbox.move_person(tx, tenant, person_id, survivor, renumbered)
        self._contacts.move_person(tx, tenant, person_id, survivor)
        self._connectors.move_person(tx, tenant, person_id, survivor)
        if self._contact_events is not None:
            self._contact_events.move_person(tx, tenant, person_id, survivor)

    def erase(self, tx: Transaction, tenant: str, person_id: str) -> int:
        """Delete everything kept for the person; how many rows there were."""
        waiting = self._contact_events.forget_person(tx, tenant, person_id) if self._contact_events else 0
        return (
            self._runtime.forget_person(tx, tenant, person_id)
            + self._outbox.forget_person(tx, tenant, person_id)
            + self._contacts.forget_person(tx, tenant, person_id)
            + self._connectors.forget_person_in(tx, tenant, person_id)
            + waiting
        )
