"""The ledger's ContactEvents (contacts/ledger.py) over the outbox: each recorded contact and each flow's
suppression becomes a waiting event, in the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence

from wayline.common.sql import Transaction
from wayline_orchestrator.contacts.model import Contact, Violation
from wayline_orchestrator.timeline.events import sent, suppressed
from wayline_orchestrator.timeline.store import ContactEventStore

__all__ = ["ContactTimeline"]


class ContactTimeline:
    def __init__(self, store: ContactEventStore) -> None:
        self._store = store

    def sent(self, tx: Transaction, tenant: str, contact: Contact) -> None:
        self._store.add(tx, tenant, sent(tenant, contact))

    def suppressed(
        self, tx: Transaction, tenant: str, contact: Contact, key: str, violations: Sequence[Violation]
    ) -> None:
        self._store.add(tx, tenant, suppressed(tenant, contact, key, violations))
